"""Writing exports of a trained (base) model: Keras ``.keras``, a TensorFlow SavedModel and TFLite files.

Files in ``out_dir`` (each appears whole or not at all):

* ``model.keras``: the Keras model. Custom layers are registered Keras serializables, so
  ``tf.keras.models.load_model`` needs no ``custom_objects``.
* ``saved_model/`` with two signatures, both returning ``probabilities`` float32 (B, K) and, in
  TF Serving's classify convention, ``scores`` (the same values) and ``classes``: string (B, K),
  the class names in output order, so a plain ``tf.saved_model.load`` tells what each column is:

  - ``serving_default``: input ``image`` float32 (B, H, W, C), already prepared as the model
    expects (see :mod:`fer_keras.data.pipeline`);
  - ``serving_uint8`` (written when ``input_mode`` is given): input ``pixels`` uint8 (B, h, w, c),
    raw pixels 0..255 of any size h x w with the model's channel count C; inside, it resizes
    bilinearly to (H, W) and scales as the model was trained (``"unit"``: / 255;
    ``"standardize"``: mean 0 / std 1 per image, or with the training set's ``mean``/``std``).

* ``model.tflite`` (float32) and ``model_dynamic.tflite`` (dynamic-range quantised: int8 weights,
  float activations) when ``tflite=True``: the ``serving_default`` computation (input prepared
  float32 (1, H, W, C); resize the batch dimension with :func:`tflite_predict`); one output,
  ``probabilities``.
* ``labels.txt`` (class names, one a line, in output order) and ``model_info.json`` (class
  names, input shape/dtype and how to prepare pixels: ``mode``, ``standardize``, ``mean``, ``std``),
  which :class:`TFLiteModel` and :func:`read_model_info` read: a phone app needs nothing else.

:func:`check_exports` runs every export on the same inputs and reports the largest absolute
difference of its probabilities from the Keras model's.
"""
from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras.data.labels import CLASS_NAMES
from fer_keras.data.pipeline import InputSpec
from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.export.files import (KERAS_FILE, LABELS_FILE, MODEL_INFO_FILE, SAVED_MODEL_DIR, TFLITE_DYNAMIC_FILE,
                                    TFLITE_FILE, UINT8_SIGNATURE)
from fer_keras.export.run import saved_model_predict, tflite_predict
from fer_keras.files import atomic_write_text, ensure_writable_dir, write_json
from fer_keras.model_files import load_keras
from fer_keras.nsl import base_model
from fer_keras.precision import float32_model


def export_model(model: tf.keras.Model, out_dir: str | Path, inputs: InputSpec | None = None, *,
                 tflite: bool = False) -> dict[str, Path]:
    """Write the exports listed in the module docstring into ``out_dir``; return their paths.

    Args:
        model: a Keras model (or NSL wrapper; its base model is exported).
        inputs: how the model's input is prepared from pixels and its class names
            (:class:`~fer_keras.data.pipeline.InputSpec`); with it the SavedModel also gets the
            ``serving_uint8`` signature. Without it: no uint8 signature, and the class names are
            the seven FER2013 classes for a 7-way head, else ``class_0`` ... ``class_{K-1}``.
        tflite: also write ``model.tflite`` and ``model_dynamic.tflite``.

    Returns: ``{"keras", "saved_model", "labels", "info"[, "tflite", "tflite_dynamic"]}`` -> path.
    """
    model = float32_model(base_model(model))  # exports are float32 whatever the training precision
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    height, width, channels = model.input_shape[1:]
    outputs = model.output_shape[-1]
    if inputs is None:  # the seven FER2013 classes, or numbered ones for other heads
        class_names = list(CLASS_NAMES) if outputs == len(CLASS_NAMES) else [f"class_{i}" for i in range(outputs)]
        input_mode, standardize, mean, std = None, "image", None, None
    else:
        if tuple(inputs.shape) != (height, width, channels):
            raise ConfigError(f"input spec for {inputs.shape} but the model takes {(height, width, channels)}")
        inputs.prepare(np.zeros((1, 1, 1, channels), np.uint8))  # a bad standardize / mean / std fails now
        class_names, input_mode = list(inputs.class_names), inputs.mode
        standardize, mean, std = inputs.standardize, inputs.mean, inputs.std
    if len(class_names) != model.output_shape[-1]:
        raise ConfigError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    names = {"keras": KERAS_FILE, "saved_model": SAVED_MODEL_DIR, "labels": LABELS_FILE, "info": MODEL_INFO_FILE}
    classes = tf.constant([class_names])  # (1, K)

    def outputs(probabilities):
        return {"probabilities": probabilities, "scores": tf.identity(probabilities),
                "classes": tf.tile(classes, [tf.shape(probabilities)[0], 1])}
    with _out_of_space_in_one_line(out_dir, created, model, tflite), \
            tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        tmp = Path(tmp)
        model.save(tmp / KERAS_FILE)

        @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name="image")])
        def serve(image):
            return outputs(model(image, training=False))

        signatures = {"serving_default": serve}
        if inputs is not None:
            @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="pixels")])
            def serve_uint8(pixels):
                return outputs(model(inputs.prepare(pixels), training=False))

            signatures[UINT8_SIGNATURE] = serve_uint8
        tf.saved_model.save(model, str(tmp / SAVED_MODEL_DIR), signatures=signatures)
        atomic_write_text(tmp / LABELS_FILE, "".join(f"{c}\n" for c in class_names))
        write_json(tmp / MODEL_INFO_FILE, {
            "class_names": class_names,
            "input": {"name": "image", "shape": [int(height), int(width), int(channels)], "dtype": "float32",
                      "mode": input_mode, "standardize": standardize, "mean": mean, "std": std,
                      "pixels": "0..255 before preparation: unit = pixels / 255; standardize = mean 0 / std 1 "
                                "(per image, or (pixels - mean) / std with standardize 'dataset')"},
            "output": {"name": "probabilities", "shape": [None, len(class_names)], "dtype": "float32"},
            "files": {k: v for k, v in names.items() if k not in ("labels", "info")}
                     | ({"tflite": TFLITE_FILE, "tflite_dynamic": TFLITE_DYNAMIC_FILE} if tflite else {}),
        })
        if tflite:
            for key, name, quantise in (("tflite", TFLITE_FILE, False), ("tflite_dynamic", TFLITE_DYNAMIC_FILE, True)):
                (tmp / name).write_bytes(convert_tflite(tmp / SAVED_MODEL_DIR, quantise))
                names[key] = name
        for name in {TFLITE_FILE, TFLITE_DYNAMIC_FILE} - set(names.values()):
            (out_dir / name).unlink(missing_ok=True)  # a re-export must not leave another model's TFLite files
        for name in names.values():
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            (tmp / name).replace(target)
    return {key: out_dir / name for key, name in names.items()}


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (OSError, h5py's OSError, a TensorFlow op error) means the disk or quota is full."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        text in str(exc) for text in ("No space left on device", "Disk quota exceeded"))


@contextlib.contextmanager
def _out_of_space_in_one_line(out_dir: Path, created: bool, model: tf.keras.Model, tflite: bool):
    """Out of disk space in the block (whose temporary files are already gone) -> one line naming
    ``out_dir`` and about how much space the export needs; ``out_dir`` is removed if this created it."""
    try:
        yield
    except (OSError, tf.errors.OpError) as exc:
        if not out_of_space(exc):
            raise
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        need = model.count_params() * 4 * (2 + (1.25 if tflite else 0)) / 2 ** 20 + 1  # .keras, SavedModel, TFLite
        raise FerKerasError(f"{out_dir}: out of disk space while exporting (needs about {need:.0f} MB); nothing "
                            "was written. Free some space or export to another disk (--out), then run again") from None


def convert_tflite(saved_model_dir: str | Path, quantise: bool = False) -> bytes:
    """TFLite flatbuffer of a SavedModel's ``serving_default`` (its ``probabilities`` output only: the
    string ``classes`` stay in ``labels.txt``); ``quantise`` = dynamic-range int8 weights."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    signature = loaded.signatures["serving_default"]
    spec = signature.structured_input_signature[1]["image"]

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name="image")])
    def probabilities_only(image):
        return {"probabilities": signature(image=image)["probabilities"]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([probabilities_only.get_concrete_function()], loaded)
    if quantise:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def check_exports(model: tf.keras.Model, paths: dict[str, Path], images: np.ndarray,
                  pixels: np.ndarray | None = None, inputs: InputSpec | None = None) -> dict[str, float]:
    """Max absolute probability difference of each export against ``model``.

    ``images``: prepared float32 (B, H, W, C), fed to the Keras model, ``serving_default`` and the
    TFLite files. ``pixels``: optional uint8 (B, h, w, c) 0..255; with ``inputs`` (the
    :class:`~fer_keras.data.pipeline.InputSpec` it was exported with) the ``serving_uint8``
    signature on ``pixels`` is compared with the Keras model on the same pixels prepared by
    ``inputs.prepare``.
    Keys: ``<export>_max_abs_diff`` for keras, saved_model, [saved_model_uint8, tflite, tflite_dynamic].
    """
    model = base_model(model)
    expected = model.predict(images, verbose=0)
    diffs = {  # ``paths`` are exports :func:`export_model` just wrote: trusted
        "keras_max_abs_diff": np.abs(load_keras(paths["keras"]).predict(images, verbose=0) - expected).max(),
        "saved_model_max_abs_diff": np.abs(saved_model_predict(paths["saved_model"], images, trusted=True)
                                           - expected).max(),
    }
    if pixels is not None and inputs is not None:
        prepared = inputs.prepare(pixels)
        got = saved_model_predict(paths["saved_model"], pixels, UINT8_SIGNATURE, trusted=True)
        diffs["saved_model_uint8_max_abs_diff"] = np.abs(got - model.predict(prepared, verbose=0)).max()
    for key in ("tflite", "tflite_dynamic"):
        if key in paths:
            diffs[f"{key}_max_abs_diff"] = np.abs(tflite_predict(paths[key], images, trusted=True) - expected).max()
    return {k: float(v) for k, v in diffs.items()}


def export_checked(model: tf.keras.Model, out_dir: str | Path, inputs: InputSpec, tflite: bool = True,
                   check_images: int = 32, seed: int = 0) -> dict:
    """:func:`export_model` with the input preparation and class names of ``inputs``, then
    :func:`check_exports` on ``check_images`` random faces. Returns ``{"paths": {...}, "check":
    {export: max abs probability difference}}``."""
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir = ensure_writable_dir(out_dir, "--out")
    try:
        paths = export_model(model, out_dir, inputs, tflite=tflite)
    except FerKerasError:
        if created:  # e.g. out of disk space: leave no empty --out folder behind
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    pixels = np.random.default_rng(seed).integers(0, 256, (check_images, *inputs.shape), dtype=np.uint8)
    check = check_exports(model, paths, inputs.prepare(pixels).numpy(), pixels=pixels, inputs=inputs)
    return {"paths": {k: str(v) for k, v in paths.items()}, "check": check}
