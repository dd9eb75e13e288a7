"""Training-time augmentation, run inside the tf.data pipeline on batches in pixel units 0..255.

``"basic"`` is the studies' geometric augmentation; what it contains depends on the study:
Study A (DCNN): random rotation and zoom in/out only; Study B (GhostFace): horizontal flip,
rotation and height/width shift. Each part is a setting of :class:`BasicAugment`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from fer_keras.errors import ConfigError

AUGMENTS = ("none", "basic")


@dataclasses.dataclass(frozen=True)
class BasicAugment:
    """Geometric augmentation. ``rotation``: max degrees either way; ``zoom``: max fraction
    in/out; ``shift``: max fraction of height/width; ``flip``: random horizontal flips."""

    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.0
    flip: bool = False

    def layers(self, seed: int) -> list[tf.keras.layers.Layer]:
        L = tf.keras.layers
        out = []
        if self.flip:
            out.append(L.RandomFlip("horizontal", seed=seed))
        if self.rotation:
            out.append(L.RandomRotation(self.rotation / 360.0, fill_mode="reflect", seed=seed + 1))
        if self.zoom:
            out.append(L.RandomZoom((-self.zoom, self.zoom), fill_mode="reflect", seed=seed + 2))
        if self.shift:
            out.append(L.RandomTranslation(self.shift, self.shift, fill_mode="reflect", seed=seed + 3))
        return out


#: The studies' "basic" augmentation per model family.
BASIC_PRESETS = {
    "dcnn": BasicAugment(rotation=10.0, zoom=0.1),
    "ghostface": BasicAugment(rotation=10.0, zoom=0.0, shift=0.1, flip=True),
}


def make_augmenter(name: str, model: str = "dcnn", seed: int = 42,
                   basic: BasicAugment | None = None) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """A function ``images (B,H,W,C) float 0..255 -> augmented images``, or None for ``"none"``."""
    if name not in AUGMENTS:
        raise ConfigError(f"--augment {name!r}: use one of {', '.join(AUGMENTS)}")
    if name == "none":
        return None
    family = "ghostface" if model.startswith("ghostface") else "dcnn"
    pipeline = tf.keras.Sequential((basic or BASIC_PRESETS[family]).layers(seed), name="basic_augment")

    def augment(images):
        return pipeline(images, training=True)

    return augment
