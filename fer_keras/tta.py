"""Test-time augmentation (TTA): average a model's class probabilities over views of each face.

Modes (:data:`fer_keras.config.TTA_MODES`; :func:`fer_keras.config.view_count` says how many views each makes):

- ``"none"``: the face as it is (one model call);
- ``"flip"``: the face and its mirror image (2 calls);
- ``"flip+crops"``: the face, five crops of 90 % of its side (the four corners and the centre)
  resized back to the input size, and the mirror image of all six (12 calls), the multi-crop
  averaging of the strongest FER2013 results.

Views are made of the model's prepared input (B, H, W, C), after the pixel scaling of
:mod:`fer_keras.data.pipeline`, so every saved form of a model (Keras, SavedModel, TFLite) sees the
same views.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from fer_keras.config import check_tta

#: Side of each ``flip+crops`` crop, as a fraction of the input side.
CROP_FRACTION = 0.9


def views(batch, mode: str) -> list[np.ndarray]:
    """The views of ``batch`` (B, H, W, C) that ``mode`` averages over, each (B, H, W, C) float32."""
    x = np.asarray(batch, np.float32)
    if check_tta(mode) == "none":
        return [x]
    upright = [x]
    if mode == "flip+crops":
        h, w = x.shape[1:3]
        ch, cw = int(round(h * CROP_FRACTION)), int(round(w * CROP_FRACTION))
        corners = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
        upright += [tf.image.resize(x[:, y:y + ch, z:z + cw], (h, w)).numpy() for y, z in corners]
    return [v for u in upright for v in (u, np.ascontiguousarray(u[:, :, ::-1]))]


def average_probabilities(predict: Callable[[np.ndarray], np.ndarray], batch, mode: str) -> np.ndarray:
    """Mean over :func:`views` of ``predict(view)`` ((B, K) probabilities each): (B, K) float32."""
    probs = [np.asarray(predict(v), np.float32) for v in views(batch, mode)]
    return np.mean(probs, axis=0, dtype=np.float32)
