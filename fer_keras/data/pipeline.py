"""`tf.data` pipelines from FaceData: uint8 in memory -> batched model inputs.

Images stay uint8 until the batch is drawn, so a 224x224 pipeline costs 1 byte per pixel in
memory (RAF-DB's 12,271 training faces at 100x100x3: 368 MB, not 7 GB of float32 at 224).
Per batch: cast to float32 -> match channels (gray <-> RGB) -> resize to the model input ->
augment (training only, pixel range 0..255; see below) -> scale as the model expects:

* ``"unit"``: pixels / 255, in [0, 1] (DCNN, Study A).
* ``"standardize"``: mean 0, std 1, either per image (``standardize="image"``) or with the
  training set's mean and std (``standardize="dataset"``; pass ``mean``/``std``) (GhostFace, Study B).

Every element is ``{"image": float32 (B, H, W, C), "label": float32 one-hot (B, K)}``, the
feature dict NSL's AdversarialRegularization needs; :func:`as_xy` turns it into the
``(features, labels)`` pair plain Keras ``fit`` takes.

An ``augment`` hook is either a function ``images -> images`` or an object with
``uses_labels = True`` called as ``augment(images, labels) -> (images, labels)`` (needed by
MixUp, which mixes labels too; see :class:`fer_keras.augment.Augmenter`). Either way it sees
float32 pixels 0..255 at the model's input size, and it runs on training datasets only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from fer_keras.data.dataset import FaceData
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError

INPUT_MODES = ("unit", "standardize")
#: Evaluation batches are cached after preparation only while they take at most this much memory
#: (float32); larger inputs (e.g. 3,589 test faces at 224x224x3 = 2.2 GB) are prepared on the fly.
CACHE_LIMIT_BYTES = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How a model's input is made from pixels, and what its outputs are.

    ``shape``: the model input (H, W, C); ``mode``: ``"unit"`` (pixels / 255) or ``"standardize"``
    (mean 0 / std 1 per image with ``standardize="image"``, or ``(pixels - mean) / std`` with the
    training set's ``mean``/``std`` in pixel units for ``"dataset"``); ``class_names``: the output
    columns, in order. Run folders, exports (``model_info.json``) and pretrained cards store it.
    """

    shape: tuple[int, int, int]
    mode: str = "unit"
    standardize: str = "image"
    mean: float | None = None
    std: float | None = None
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if self.mode not in INPUT_MODES:
            raise ConfigError(f"unknown input mode {self.mode!r}; use one of {', '.join(INPUT_MODES)}")

    @property
    def scaling(self) -> dict[str, Any]:
        """``mode``, ``standardize``, ``mean``, ``std``: the keyword arguments of :func:`scale`."""
        return {"mode": self.mode, "standardize": self.standardize, "mean": self.mean, "std": self.std}

    def prepare(self, pixels) -> tf.Tensor:
        """uint8/float pixels 0..255 (B, h, w, c) -> model input float32 (B, H, W, C)."""
        return scale(to_pixels(pixels, self.shape), **self.scaling)

    def dataset(self, data: FaceData, batch_size: int, **kwargs) -> tf.data.Dataset:
        """:func:`make_dataset` of ``data`` prepared for this input."""
        return make_dataset(data, self.shape, batch_size, **self.scaling, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The ``input`` entry of exports' ``model_info.json`` and pretrained cards (class names aside)."""
        return {"shape": list(self.shape), "mode": self.mode, "standardize": self.standardize,
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, spec: dict[str, Any], class_names=None) -> "InputSpec":
        return cls(tuple(spec["shape"]), spec.get("mode") or "unit", spec.get("standardize") or "image",
                   spec.get("mean"), spec.get("std"), tuple(class_names) if class_names else CLASS_NAMES)


def dataset_stats(data: FaceData) -> tuple[float, float]:
    """Mean and std of all pixels (0..255 units), for ``standardize="dataset"``."""
    sample = data.images[:: max(1, len(data) // 5000)].astype(np.float64)
    return float(sample.mean()), float(sample.std() + 1e-6)


def preprocess(images: tf.Tensor, input_shape, mode: str = "unit", standardize: str = "image",
               mean: float | None = None, std: float | None = None,
               augment: Callable | None = None) -> tf.Tensor:
    """Turn a uint8/float batch (B, h, w, c) in 0..255 into model input (B, H, W, C) float32.

    ``augment`` here is an images-only hook (a labels-aware one is applied by :func:`make_dataset`).
    """
    x = to_pixels(images, input_shape)
    if augment is not None:
        x = augment(x)
    return scale(x, mode, standardize, mean, std)


def to_pixels(images: tf.Tensor, input_shape) -> tf.Tensor:
    """Cast to float32 (still 0..255), match the channel count and resize to ``input_shape``."""
    height, width, channels = input_shape
    x = tf.cast(images, tf.float32)
    if x.shape[-1] == 1 and channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    elif x.shape[-1] == 3 and channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    if x.shape[1] != height or x.shape[2] != width:
        x = tf.image.resize(x, (height, width), method="bilinear")
    return x


def scale(x: tf.Tensor, mode: str = "unit", standardize: str = "image",
          mean: float | None = None, std: float | None = None) -> tf.Tensor:
    """Pixels 0..255 -> the model's input units (``mode`` "unit" or "standardize")."""
    if mode not in INPUT_MODES:
        raise ConfigError(f"unknown input mode {mode!r}; use one of {INPUT_MODES}")
    if mode == "unit":
        return x / 255.0
    if standardize == "image":
        m, v = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
        return (x - m) / tf.maximum(tf.sqrt(v), 1e-3)
    if standardize == "dataset":
        if mean is None or std is None:
            raise ConfigError("standardize='dataset' needs the training set's mean and std")
        return (x - mean) / std
    raise ConfigError(f"standardize must be 'image' or 'dataset', not {standardize!r}")


def _apply_augment(augment, x, labels, seed):
    if getattr(augment, "uses_seed", False):
        return augment(x, labels, seed=seed)
    if getattr(augment, "uses_labels", False):
        return augment(x, labels)
    return augment(x), labels


def make_dataset(data: FaceData, input_shape, batch_size: int, *, mode: str = "unit",
                 training: bool = False, augment: Callable | None = None, seed: int = 42,
                 standardize: str = "image", mean: float | None = None, std: float | None = None,
                 cache: bool = True) -> tf.data.Dataset:
    """Batched, prefetched dataset of ``{"image", "label"}`` dicts.

    ``training=True`` shuffles every epoch (seeded) and applies ``augment``, for a plain
    ``model.fit(ds, epochs=...)``; the project's own training uses :class:`TrainingStream`, whose
    batches are a pure function of ``(seed, epoch)`` so that a resumed run is exact. Evaluation
    datasets keep the data's order. ``cache`` keeps prepared evaluation batches in memory when
    they fit in :data:`CACHE_LIMIT_BYTES`.
    """
    if len(data) == 0:
        raise ConfigError("cannot build a dataset from 0 images")
    scale(tf.zeros((1, 1, 1, 1)), mode, standardize, mean, std)  # check the settings now, not in a trace
    ds = tf.data.Dataset.from_tensor_slices((data.images, data.one_hot()))
    if not training:
        ds = ds.batch(batch_size)

        def prepare(images, labels):
            return {"image": scale(to_pixels(images, input_shape), mode, standardize, mean, std), "label": labels}

        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if cache and len(data) * int(np.prod(input_shape)) * 4 <= CACHE_LIMIT_BYTES:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)
    ds = ds.shuffle(min(len(data), 20000), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))
    prepare = _training_batch(input_shape, mode, augment, standardize, mean, std)
    return ds.map(lambda batch, s: prepare(*batch, s), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True).prefetch(tf.data.AUTOTUNE)


def _training_batch(input_shape, mode, augment, standardize, mean, std):
    def prepare(images, labels, seed):
        x = to_pixels(images, input_shape)
        if augment is not None:
            x, labels = _apply_augment(augment, x, labels, seed)
        return {"image": scale(x, mode, standardize, mean, std), "label": labels}

    return prepare


class TrainingStream:
    """Training batches as a pure function of ``(seed, epoch)``, so a resumed run is exact.

    Epoch ``e`` visits the images in the order ``stateless_shuffle(range(N), seed=(seed, e))``,
    in batches of ``batch_size`` (the last one smaller), and batch ``i`` of it is augmented with
    the stateless seed ``(seed, e * steps_per_epoch + i)``. :meth:`epochs` gives the batches of
    epochs ``start .. stop - 1`` as one dataset, which ``model.fit`` reads with
    ``steps_per_epoch`` and ``initial_epoch=start``. Elements are ``{"image", "label"}`` dicts as
    from :func:`make_dataset`; labels are one-hot, or the rows of ``targets`` (N, K) when given
    (soft targets, e.g. a teacher's: :mod:`fer_keras.training.distil`).
    """

    def __init__(self, data: FaceData, input_shape, batch_size: int, *, mode: str = "unit",
                 augment: Callable | None = None, seed: int = 42, standardize: str = "image",
                 mean: float | None = None, std: float | None = None, targets: np.ndarray | None = None):
        if len(data) == 0:
            raise ConfigError("cannot train on 0 images")
        if targets is not None and targets.shape != (len(data), len(data.class_names)):
            raise ConfigError(f"training targets of shape {targets.shape}: need one row of "
                              f"{len(data.class_names)} per training image ({len(data)})")
        self.targets = targets
        scale(tf.zeros((1, 1, 1, 1)), mode, standardize, mean, std)
        self.data, self.batch_size, self.seed = data, int(batch_size), int(seed)
        self.images_per_epoch = len(data)
        self.steps_per_epoch = -(-len(data) // self.batch_size)
        self._prepare = _training_batch(tuple(input_shape), mode, augment, standardize, mean, std)

    def epochs(self, start: int, stop: int) -> tf.data.Dataset:
        """The batches of epochs ``start`` to ``stop - 1``, in order."""
        images = tf.constant(self.data.images)
        labels = tf.constant(self.data.one_hot() if self.targets is None else self.targets, tf.float32)
        n, steps, seed = len(self.data), self.steps_per_epoch, self.seed

        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            batches = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size).enumerate()
            return batches.map(lambda i, idx: (tf.gather(images, idx), tf.gather(labels, idx),
                                               tf.stack([tf.constant(seed, tf.int64), epoch * steps + i])))

        ds = tf.data.Dataset.range(start, stop).flat_map(epoch_batches)
        return ds.map(self._prepare, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).prefetch(tf.data.AUTOTUNE)


def _xy(batch):
    return {"image": batch["image"]}, batch["label"]


def _image(batch):
    return batch["image"]


def as_xy(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``{"image", "label"}`` -> ``({"image"}, label)`` for a plain (non-NSL) Keras model."""
    return ds.map(_xy)


def images_only(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``{"image", "label"}`` -> ``image`` batches, for ``predict``."""
    return ds.map(_image)
