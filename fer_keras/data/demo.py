"""A synthetic, deterministic demo set of drawn faces, used when no data path is given.

Each class has its own expression, drawn with OpenCV: brow angle and height, eye opening and
mouth shape (smile, frown, open "O", asymmetric sneer, ...). Faces vary in position, size,
brightness, contrast, blur and noise, so the task is learnable but not trivial. 48x48 grayscale,
like FER2013; the same ``seed`` always gives the same images.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_keras.data.dataset import FaceData
from fer_keras.data.labels import CLASS_NAMES

# Per class: brow tilt (+ = inner ends down, angry), brow lift (px), eye height (px),
# mouth curve (+ = smile), mouth opening (px), mouth width (px), mouth asymmetry (px).
_EXPRESSIONS = {
    "anger":     dict(tilt=4, lift=-2, eye=2, curve=-2, open=0, width=8, skew=0),
    "disgust":   dict(tilt=2, lift=-1, eye=2, curve=0, open=1, width=7, skew=4),
    "fear":      dict(tilt=-3, lift=3, eye=4, curve=-1, open=3, width=9, skew=0),
    "happiness": dict(tilt=0, lift=0, eye=2, curve=5, open=0, width=11, skew=0),
    "sadness":   dict(tilt=-4, lift=1, eye=2, curve=-5, open=0, width=9, skew=0),
    "surprise":  dict(tilt=0, lift=5, eye=4, curve=0, open=6, width=5, skew=0),
    "neutral":   dict(tilt=0, lift=0, eye=2, curve=0, open=0, width=9, skew=0),
}
_SCALE = 8  # draw at 8x resolution, then shrink: smooth, anti-aliased shapes


def make_demo(images_per_class: int = 100, seed: int = 0, size: int = 48,
              usage_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> FaceData:
    """``7 * images_per_class`` drawn faces with FER2013-style Usage (Training/PublicTest/PrivateTest).

    Returns a FaceData of uint8 (N, size, size, 1) images, classes in the project order.
    """
    rng = np.random.default_rng(seed)
    n = images_per_class * len(CLASS_NAMES)
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int32), images_per_class)
    rng.shuffle(labels)
    images = np.empty((n, size, size, 1), np.uint8)
    for i, label in enumerate(labels):
        images[i, ..., 0] = cv2.resize(_draw_face(_EXPRESSIONS[CLASS_NAMES[label]], rng, size),
                                       (size, size), interpolation=cv2.INTER_AREA)
    cuts = np.cumsum(np.round(np.array(usage_fractions) * n).astype(int))[:2]
    usage = np.empty(n, dtype=object)
    usage[:cuts[0]], usage[cuts[0]:cuts[1]], usage[cuts[1]:] = "Training", "PublicTest", "PrivateTest"
    sources = np.array([f"demo:{i}" for i in range(n)])
    return FaceData(images, labels, CLASS_NAMES, usage.astype(str), sources)


def _draw_face(e: dict, rng: np.random.Generator, size: int) -> np.ndarray:
    s = _SCALE
    big = size * s
    background = rng.uniform(20, 120)
    canvas = np.full((big, big), background, np.float32)
    jitter = lambda spread: rng.uniform(-spread, spread)  # noqa: E731
    cx, cy = size / 2 + jitter(3), size / 2 + jitter(3)
    scale = rng.uniform(0.85, 1.1)
    skin = rng.uniform(130, 220)
    dark = skin - rng.uniform(70, 120)

    def p(x, y):  # face coordinates (px at 48x48, centred) -> canvas integer point
        return int((cx + x * scale) * s), int((cy + y * scale) * s)

    def r(v):
        return max(1, int(v * scale * s))

    cv2.ellipse(canvas, p(0, 0), (r(16), r(21)), jitter(8), 0, 360, skin, -1, cv2.LINE_AA)
    thick = r(1.4)
    for side in (-1, 1):
        # Eyebrows: inner end at x = 3, outer end at x = 12; tilt lowers the inner end.
        y = -9 - e["lift"] + jitter(0.7)
        tilt = e["tilt"] + jitter(0.8)
        cv2.line(canvas, p(side * 3, y + tilt / 2), p(side * 12, y - tilt / 2), dark, thick, cv2.LINE_AA)
        cv2.ellipse(canvas, p(side * 7, -4), (r(3), r(max(0.7, e["eye"] + jitter(0.4)))), 0, 0, 360,
                    dark, -1, cv2.LINE_AA)
    # Mouth: a parabola y = curve * (x/w)^2 (upward smile for curve > 0), optionally open.
    w = e["width"] + jitter(1)
    xs = np.linspace(-w, w, 24)
    curve = e["curve"] + jitter(0.8)
    ys = 10 - curve * (xs / w) ** 2 + curve / 2 + e["skew"] * (xs / w + 1) / 2 * (xs > 0)
    upper = np.array([p(x, y) for x, y in zip(xs, ys)], np.int32)
    opening = max(0.0, e["open"] + jitter(0.6))
    if opening > 0.8:
        lower = np.array([p(x, y + opening * (1 - (x / w) ** 2)) for x, y in zip(xs, ys)], np.int32)
        cv2.fillPoly(canvas, [np.concatenate([upper, lower[::-1]])], dark * 0.6, cv2.LINE_AA)
    else:
        cv2.polylines(canvas, [upper], False, dark, thick, cv2.LINE_AA)
    cv2.line(canvas, p(0, -2), p(jitter(1), 4), skin - 25, r(1), cv2.LINE_AA)  # nose

    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    small = (small - small.mean()) * rng.uniform(0.7, 1.2) + small.mean() + jitter(20)
    small = cv2.GaussianBlur(small, (3, 3), rng.uniform(0.1, 0.9))
    small += rng.normal(0, rng.uniform(2, 8), small.shape)
    return np.clip(small, 0, 255).astype(np.uint8)
