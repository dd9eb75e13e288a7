"""Synthetic label noise for the memorisation study: flip a fraction of the training labels.

``flip_labels(labels, 0.2)`` flips exactly ``round(0.2 * N)`` labels, chosen at random, and
never to the label's own class:

* ``mode="uniform"``: the new class is drawn uniformly from the other ``K - 1`` classes.
* ``mode="class"``: class-dependent noise; every class flips to one fixed "similar" class
  (:data:`SIMILAR`): anger <-> disgust, fear <-> surprise, sadness <-> neutral,
  happiness -> surprise. These are the expression pairs most often confused on FER2013 and
  RAF-DB. When the target is not among the kept classes (e.g. the 3-class subset), or the
  class names are not given, class ``c`` flips to ``(c + 1) mod K``.

Only the training split is ever noised (:func:`fer_keras.data.prepare.prepare_data` with
``DataConfig.label_noise``); the flipped indices, true and noisy labels are kept so a trained
model can be checked for memorisation (:func:`fer_keras.evaluation.memorisation`).
"""
from __future__ import annotations

import numpy as np

from fer_keras.errors import ConfigError

NOISE_MODES = ("uniform", "class")

#: Class-dependent noise: each expression flips to a visually similar one.
SIMILAR = {"anger": "disgust", "disgust": "anger", "fear": "surprise", "surprise": "fear",
           "sadness": "neutral", "neutral": "sadness", "happiness": "surprise"}


def confusion_target(num_classes: int, class_names=None) -> np.ndarray:
    """The class each class flips to under ``mode="class"`` (never itself)."""
    target = (np.arange(num_classes) + 1) % num_classes
    if class_names is not None:
        names = list(class_names)
        for c, name in enumerate(names):
            if SIMILAR.get(name) in names:
                target[c] = names.index(SIMILAR[name])
    return target


def flip_labels(labels, fraction: float, mode: str = "uniform", num_classes: int | None = None,
                seed: int = 0, class_names=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy_labels, flipped)``: int32 labels with ``round(fraction * N)`` of them changed
    to another class, and the boolean mask of the changed rows."""
    labels = np.asarray(labels, dtype=np.int32)
    if not 0 <= fraction <= 1:
        raise ConfigError(f"--label-noise must be between 0 and 1 (got {fraction})")
    if mode not in NOISE_MODES:
        raise ConfigError(f"--noise-mode {mode!r}: use one of {', '.join(NOISE_MODES)}")
    k = int(num_classes if num_classes is not None else (len(class_names) if class_names is not None
                                                          else labels.max(initial=0) + 1))
    if k < 2:
        raise ConfigError("label noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    n_flip = int(round(fraction * len(labels)))
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), n_flip, replace=False)] = True
    noisy = labels.copy()
    old = labels[flipped]
    if mode == "uniform":  # shift by 1..k-1: uniform over the other classes
        noisy[flipped] = (old + rng.integers(1, k, size=n_flip)) % k
    else:
        noisy[flipped] = confusion_target(k, class_names)[old]
    return noisy, flipped
