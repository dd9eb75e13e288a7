"""Numeric precision of training and prediction: float32, or Keras mixed precision.

``mixed_bfloat16`` computes in bfloat16 with float32 weights (fast on CPUs with AMX, Intel Xeon
4th generation and later); ``mixed_float16`` in float16 with loss scaling (GPUs); ``auto`` picks
``mixed_float16`` when TensorFlow sees a GPU, ``mixed_bfloat16`` on a CPU with AMX
(``amx_bf16`` in /proc/cpuinfo), else ``float32``. Every model's softmax layer computes in
float32 (the builders give it ``dtype="float32"``), so probabilities and losses are float32, and
exports are always float32 (:func:`float32_model`).

Measured on a 2-core AMD EPYC with AVX512-BF16 but no AMX (one process, another training run
sharing the cores): the DCNN trained at 93-94 vs 47-70 images/s (bf16 vs float32), GhostFace at
112 px at 94 vs 188 (bf16 twice as slow: its depthwise convolutions and reductions have no fast
bf16 kernels), which is why ``auto`` asks for AMX.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import tensorflow as tf

from fer_keras.config import PRECISIONS
from fer_keras.errors import ConfigError


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read, e.g. macOS)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(name: str, flags: set[str] | None = None, gpu: bool | None = None) -> str:
    """The Keras dtype policy ``name`` means on this machine (``auto`` resolved; see the module docstring)."""
    if name not in PRECISIONS:
        raise ConfigError(f"--precision {name!r}: use one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    gpu = bool(tf.config.list_physical_devices("GPU")) if gpu is None else gpu
    if gpu:
        return "mixed_float16"
    return "mixed_bfloat16" if "amx_bf16" in (cpu_flags() if flags is None else flags) else "float32"


@contextlib.contextmanager
def precision_policy(name: str):
    """Build (and compile) models under the Keras global dtype policy ``name`` (resolved), then restore it."""
    before = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(resolve_precision(name))
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(before)


def float32_model(model: tf.keras.Model) -> tf.keras.Model:
    """``model`` itself when it computes in float32, else a float32 copy with the same weights."""
    if all(layer.compute_dtype in (None, "float32") for layer in model.submodules
           if isinstance(layer, tf.keras.layers.Layer)):
        return model
    return _rebuilt(model, _float32_config(model.get_config()), "float32")


def with_precision(model: tf.keras.Model, name: str) -> tf.keras.Model:
    """``model`` computing under the dtype policy ``name`` (resolved, e.g. ``auto``): a copy with the
    same weights whose layers compute in ``name`` except the output layer, which stays float32 (as
    the builders make it, so probabilities are float32); for float32, :func:`float32_model`."""
    name = resolve_precision(name)
    if name == "float32":
        return float32_model(model)
    config = _float32_config(model.get_config())
    outputs = {entry[0] for entry in config.get("output_layers", [])} or {config["layers"][-1]["config"]["name"]}
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = "float32" if layer["config"]["name"] in outputs else name
    return _rebuilt(model, config, name)


def _rebuilt(model: tf.keras.Model, config: dict, policy: str) -> tf.keras.Model:
    """A copy of ``model`` built from ``config`` under the global ``policy`` (layers made inside
    custom layers take it), with ``model``'s weights."""
    with precision_policy(policy):
        copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _float32_config(obj):
    """A Keras config with every mixed dtype policy replaced by ``"float32"``."""
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class_name") in ("Policy", "DTypePolicy"):
        return "float32"
    return {k: "float32" if k == "dtype" and isinstance(v, str) and v.startswith("mixed") else _float32_config(v)
            for k, v in obj.items()}
