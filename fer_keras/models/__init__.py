"""Models by name: ``build_model("dcnn", input_shape, num_classes)``.

Each model declares how its input is prepared (see :data:`INPUT_MODES`):
``"unit"`` = pixels / 255 in [0, 1] (DCNN, as in Study A); ``"standardize"`` = mean 0, std 1
(GhostFace, as in Study B).
"""
from __future__ import annotations

import functools

from fer_keras.errors import ConfigError
from fer_keras.models.dcnn import dcnn
from fer_keras.models.vgg import vgg

#: name -> (builder, default input shape, input mode)
REGISTRY = {
    "dcnn": (functools.partial(dcnn, variant="dcnn"), (48, 48, 1), "unit"),
    "dcnn_deeper": (functools.partial(dcnn, variant="dcnn_deeper"), (48, 48, 1), "unit"),
    "dcnn_final": (functools.partial(dcnn, variant="dcnn_final"), (48, 48, 1), "unit"),
    "vgg": (vgg, (48, 48, 1), "unit"),
}
try:  # GhostFace lives in its own module; registered when present.
    from fer_keras.models.ghostface import ghostface

    REGISTRY["ghostface"] = (ghostface, (224, 224, 3), "standardize")
except ImportError:  # pragma: no cover
    pass

MODEL_NAMES = tuple(REGISTRY)


def _entry(name: str):
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; use one of: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def default_input_shape(name: str) -> tuple[int, int, int]:
    return _entry(name)[1]


def input_mode(name: str) -> str:
    return _entry(name)[2]


def build_model(name: str, input_shape=None, num_classes: int = 7, **kwargs):
    """Build model ``name`` (see ``MODEL_NAMES``) for ``input_shape`` (H, W, C) and ``num_classes``."""
    builder, default_shape, _ = _entry(name)
    return builder(input_shape=tuple(input_shape or default_shape), num_classes=num_classes, **kwargs)


__all__ = ["MODEL_NAMES", "build_model", "dcnn", "default_input_shape", "input_mode", "vgg"]
