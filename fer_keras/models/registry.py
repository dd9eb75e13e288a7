"""The model registry: one :class:`ModelSpec` per model, written beside its builder.

    @register_model(input_shape=(48, 48, 1), input_mode="unit", basic_augment="study_a",
                    gradcam_layer="block3_conv2")
    def dcnn(input_shape=(48, 48, 1), num_classes=7): ...

Everything else asks the registry, never the model's name: how a model's input is prepared
(``input_mode``: ``"unit"`` = pixels / 255, ``"standardize"`` = mean 0 / std 1), which study's
"basic" augmentation it trains with, which layer Grad-CAM explains, whether it has the privacy
study's Gaussian-noise layers, and how to get its logits (:func:`logits_model`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from fer_keras.errors import ConfigError

from fer_keras.data.pipeline import INPUT_MODES
#: The studies' "basic" augmentations (see :data:`fer_keras.augment.BASIC_PRESETS`).
BASIC_AUGMENTS = ("study_a", "study_b")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the rest of fer_keras needs to know about a registered model.

    Attributes:
        name: registry name; the built ``tf.keras.Model`` has this name too.
        builder: ``builder(input_shape=(H, W, C), num_classes=K, **kwargs) -> tf.keras.Model`` whose
            input is named ``image`` and whose output layer ``logits_layer`` is a softmax Dense.
        input_shape: default (H, W, C).
        input_mode: how pixels 0..255 are prepared: ``"unit"`` or ``"standardize"``.
        basic_augment: the study whose "basic" augmentation the model trains with.
        gradcam_layer: the conv layer Grad-CAM explains (the last one).
        noise_layers: whether the builder takes ``noise_layers`` (0, 1 or 2 Gaussian-noise layers).
        logits_layer: the softmax Dense layer whose pre-activation values are the logits.
        cpu_xla_problem: why XLA (``--jit``) must not train it on a CPU, if it must not (measured).
        description: one line for listings.
    """

    name: str
    builder: Callable[..., tf.keras.Model]
    input_shape: tuple[int, int, int]
    input_mode: str
    basic_augment: str
    gradcam_layer: str
    noise_layers: bool = False
    logits_layer: str = "probabilities"
    cpu_xla_problem: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"model {self.name}: input_mode must be one of {INPUT_MODES}")
        if self.basic_augment not in BASIC_AUGMENTS:
            raise ValueError(f"model {self.name}: basic_augment must be one of {BASIC_AUGMENTS}")

    def input_shape_for(self, input_size: int | None = None) -> tuple[int, int, int]:
        """(H, W, C) for a square side ``input_size`` (None = the default), keeping the channels."""
        if input_size is None:
            return tuple(self.input_shape)
        return (int(input_size), int(input_size), self.input_shape[2])

    def build(self, input_shape=None, num_classes: int = 7, **kwargs) -> tf.keras.Model:
        """Build the model (``input_shape`` None = the default); refuses ``noise_layers`` where there are none."""
        if kwargs.get("noise_layers") and not self.noise_layers:
            raise ConfigError(f"model {self.name} has no Gaussian-noise layers (--noise-layers); models that do: "
                              f"{', '.join(n for n, s in REGISTRY.items() if s.noise_layers)}")
        if not self.noise_layers:
            kwargs.pop("noise_layers", None)
        return self.builder(input_shape=tuple(input_shape or self.input_shape), num_classes=num_classes, **kwargs)


#: name -> ModelSpec, filled by :func:`register_model` as the model modules are imported.
REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str | None = None, **facts):
    """Decorator registering a builder function as model ``name`` (default: the function's name),
    with the :class:`ModelSpec` ``facts`` (input_shape, input_mode, basic_augment, gradcam_layer, ...)."""
    def register(builder):
        spec = ModelSpec(name=name or builder.__name__, builder=builder, **facts)
        if spec.name in REGISTRY:
            raise ValueError(f"model {spec.name!r} is registered twice")
        REGISTRY[spec.name] = spec
        return builder
    return register


def model_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_spec(name_or_model: str | tf.keras.Model) -> ModelSpec:
    """The spec of a registered model name, or of a model built (or loaded) from one; one-line
    ConfigError for anything else."""
    name = name_or_model if isinstance(name_or_model, str) else getattr(name_or_model, "name", None)
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; use one of: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def find_spec(model: tf.keras.Model) -> ModelSpec | None:
    """The spec of a (loaded) model whose name is registered, else None."""
    return REGISTRY.get(getattr(model, "name", None))


def build_model(name: str, input_shape=None, num_classes: int = 7, **kwargs) -> tf.keras.Model:
    """Build registered model ``name`` for ``input_shape`` (H, W, C; None = its default) and ``num_classes``."""
    return get_spec(name).build(input_shape, num_classes, **kwargs)


def default_input_shape(name: str) -> tuple[int, int, int]:
    return tuple(get_spec(name).input_shape)


def input_mode(name: str) -> str:
    return get_spec(name).input_mode


def softmax_head(model: tf.keras.Model) -> tf.keras.layers.Dense:
    """The softmax Dense layer whose pre-activation values are ``model``'s logits: the spec's
    ``logits_layer`` (for an unregistered model, its last layer). ConfigError if it is none."""
    spec = find_spec(model)
    head = model.get_layer(spec.logits_layer) if spec else model.layers[-1]
    if not (isinstance(head, tf.keras.layers.Dense) and getattr(head.activation, "__name__", "") == "softmax"
            and not isinstance(head.input, list)):
        raise ConfigError(f"model {model.name!r}: its output layer {head.name!r} is not a softmax Dense layer, "
                          "so its logits are not defined")
    return head


def logits_model(model: tf.keras.Model) -> tf.keras.Model:
    """``image -> logits`` (B, K) float32, sharing ``model``'s weights (see :func:`softmax_head`)."""
    head = softmax_head(model)
    return tf.keras.Model(model.inputs, tf.matmul(head.input, head.kernel) + head.bias, name=f"{model.name}_logits")
