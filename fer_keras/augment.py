"""Training-time augmentation, run inside the tf.data pipeline on batches in pixel units 0..255.

Settings (``--augment``), alone or joined with ``+`` (applied in the order listed here,
whatever order they are written in):

``"none"``
    nothing.
``"basic"``
    the studies' geometric augmentation; what it contains depends on the study:
    Study A (DCNN): random rotation and zoom in/out only; Study B (GhostFace): horizontal flip,
    rotation and height/width shift. Each part is a setting of :class:`BasicAugment`.
``"flip"``
    random horizontal flips (added to ``basic``'s settings when both are given).
``"crop"``
    random crops: a shift of up to :data:`CROP_SHIFT` of the height and width with reflected
    borders, the pad-and-crop of the strongest FER2013 recipes.

The geometric parts are one affine warp per image whose randomness is *stateless*: drawn from a
per-batch seed that the training stream derives from ``(seed, epoch, batch)``
(:class:`fer_keras.data.pipeline.TrainingStream`), so an interrupted run resumes with exactly the
augmentation it would have had. RandAugment and MixUp are keras-cv layers with their own random
state, which restarts (seeded) in a resumed process.
``"randaugment"``
    Study B's RandAugment, "0 to 3 transforms per image, random magnitude 2..4", built from
    keras-cv's RandAugment operations (:class:`RandAugmentSettings`):

    * the number of transforms is drawn per image, uniformly from 0, 1, ..., ``max_ops``
      (keras-cv's own ``RandAugment(rate=r)`` would give a binomial count instead);
    * magnitudes are on RandAugment's 0..10 scale, keras-cv's 0..1 (``2..4`` -> ``0.2..0.4``).
      Operations whose keras-cv layer takes a sampled strength (solarize, colour degeneration,
      shear) draw it uniformly from ``[0.2, 0.4]`` per image; operations whose keras-cv layer only
      takes a symmetric range (brightness, contrast, translation) draw from ``+-0.4``;
      auto-contrast and equalisation have no magnitude. The operation is picked uniformly from
      keras-cv's standard list of 10.
    * keras-cv's RandAugment does not work on 1-channel images (colour degeneration and the
      colour ops need RGB). Grayscale batches are therefore repeated to 3 identical channels for
      the operations and averaged back to 1 channel afterwards. Every operation treats the three
      channels alike, so the channels stay identical and the round trip loses nothing.
``"erase"``
    random erasing (Zhong et al., 2020, one of the strongest FER2013 recipes' parts): with
    probability 0.5 a box of 2-40 % of the face, aspect ratio 0.3-3.3, is filled with uniform
    noise in 0..255 (:class:`RandomErasing`; stateless like the geometric parts, so it resumes
    exactly; a box larger than the face is clipped to it).
``"mixup"``
    Study B's MixUp (keras-cv ``MixUp``, ``alpha`` 0.2) on a fraction of the training images
    (:class:`MixUpSettings`, 25% by default): each image of a batch is mixed with probability
    ``fraction`` (with a random partner from the same batch, weight ~ Beta(alpha, alpha)); its
    label becomes the same mix of the two one-hot labels. The other images and labels are
    untouched. (The privacy runs use ``fraction=1``.)

What "basic" holds is the model's choice (its registry entry's ``basic_augment``: ``"study_a"``
or ``"study_b"``, :data:`BASIC_PRESETS`). The settings are an
:class:`~fer_keras.config.AugmentConfig`; ``make_augmenter`` returns an :class:`Augmenter`:
``augmenter(images, labels) -> (images, labels)``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import tensorflow as tf

from fer_keras.config import AugmentConfig
from fer_keras.errors import ConfigError

#: Largest shift of ``"crop"``, as a share of height and width (0.1 = +-4.8 px at 48x48).
CROP_SHIFT = 0.1
#: The parts done by the stateless affine warp.
GEOMETRIC = ("basic", "flip", "crop")
@dataclasses.dataclass(frozen=True)
class BasicAugment:
    """Geometric augmentation. ``rotation``: max degrees either way; ``zoom``: max fraction
    in/out; ``shift``: max fraction of height/width; ``flip``: random horizontal flips."""

    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.0
    flip: bool = False

    def __bool__(self) -> bool:
        return bool(self.rotation or self.zoom or self.shift or self.flip)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """One random affine warp per image (flip, rotation, zoom, shift; reflected borders).

        ``images``: float32 (B, H, W, C); ``seed``: int (2,) stateless seed. Same seed, same output.
        """
        shape = tf.shape(images)
        batch = shape[0]
        h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)

        def uniform(i, low, high):
            return tf.random.stateless_uniform((batch,), s[i], low, high)

        angle = uniform(0, -self.rotation, self.rotation) * (3.141592653589793 / 180.0)
        zoom = uniform(1, 1.0 - self.zoom, 1.0 + self.zoom)  # > 1 zooms in
        tx = uniform(2, -self.shift, self.shift) * w
        ty = uniform(3, -self.shift, self.shift) * h
        flip = tf.where(uniform(4, 0.0, 1.0) < 0.5, -1.0, 1.0) if self.flip else tf.ones((batch,))
        # output pixel p -> input pixel A (p - c) + c + t, with A = R(angle) diag(flip, 1) / zoom
        cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        a2 = cx + tx - a0 * cx - a1 * cy
        b2 = cy + ty - b0 * cx - b1 * cy
        zeros = tf.zeros((batch,))
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")


@dataclasses.dataclass(frozen=True)
class RandomErasing:
    """Random erasing: with ``probability``, one box of ``area`` (fractions of the face, low..high)
    and aspect ratio (height / width) in ``aspect``..1/``aspect`` (log-uniform) is filled with
    uniform noise in 0..255."""

    probability: float = 0.5
    area: tuple[float, float] = (0.02, 0.4)
    aspect: float = 0.3

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``images``: float32 (B, H, W, C) in 0..255; ``seed``: int (2,) stateless seed. Same seed, same output."""
        shape = tf.shape(images)
        batch, h, w = shape[0], shape[1], shape[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)

        def uniform(i, low, high):
            return tf.random.stateless_uniform((batch,), s[i], low, high)

        area = uniform(0, *self.area) * hf * wf
        ratio = tf.exp(uniform(1, tf.math.log(self.aspect), -tf.math.log(self.aspect)))
        box_h = tf.clip_by_value(tf.round(tf.sqrt(area * ratio)), 1.0, hf)
        box_w = tf.clip_by_value(tf.round(tf.sqrt(area / ratio)), 1.0, wf)
        top = tf.floor(uniform(2, 0.0, 1.0) * (hf - box_h + 1.0))
        left = tf.floor(uniform(3, 0.0, 1.0) * (wf - box_w + 1.0))
        erased = uniform(4, 0.0, 1.0) < self.probability
        rows, cols = tf.range(hf)[None, :], tf.range(wf)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (B, H)
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # (B, W)
        mask = in_rows[:, :, None] & in_cols[:, None, :] & erased[:, None, None]
        noise = tf.random.stateless_uniform(shape, s[5], 0.0, 255.0)
        return tf.where(mask[..., None], noise, images)


#: The studies' "basic" augmentation, by the ``basic_augment`` of a model's registry entry.
BASIC_PRESETS = {
    "study_a": BasicAugment(rotation=10.0, zoom=0.1),  # Study A (DCNN): rotation and zoom only
    "study_b": BasicAugment(rotation=10.0, zoom=0.0, shift=0.1, flip=True),  # Study B (GhostFace)
}


def _keras_cv():
    """keras-cv, imported when RandAugment or MixUp is first built (it is slow to import)."""
    import keras_cv

    return keras_cv


def _rand_augment_ops(low: float, high: float, seed: int) -> list:
    """keras-cv's standard RandAugment operations with magnitude in [low, high] (0..1 scale)."""
    keras_cv = _keras_cv()
    core = keras_cv.core

    P = keras_cv.layers
    vr = (0, 255)
    # Some keras-cv layers draw from TensorFlow's global generator whatever seed they are given;
    # under op determinism it must be set explicitly (seeded, so runs repeat).
    tf.random.set_global_generator(tf.random.Generator.from_seed(seed))
    high = max(high, 1e-3)  # keras-cv's RandomContrast rejects factor 0

    def uniform(lo, hi):
        return core.UniformFactorSampler(lo, hi)

    ops = [
        P.AutoContrast(value_range=vr, seed=seed),
        P.Equalization(value_range=vr, seed=seed),
        # keras-cv's policy: add up to 110 levels to pixels above a threshold of 255 * (1 - m)
        P.Solarization(value_range=vr, addition_factor=uniform(low * 110, high * 110),
                       threshold_factor=uniform(255 * (1 - high), 255 * (1 - low)), seed=seed),
        P.RandomColorDegeneration(factor=uniform(low, high), seed=seed),
        P.RandomContrast(value_range=vr, factor=high, seed=seed),
        P.RandomBrightness(value_range=vr, factor=high, seed=seed),
        P.RandomShear(x_factor=uniform(low, high), y_factor=None, seed=seed),
        P.RandomShear(x_factor=None, y_factor=uniform(low, high), seed=seed),
        P.RandomTranslation(height_factor=0, width_factor=high, seed=seed),
        P.RandomTranslation(height_factor=high, width_factor=0, seed=seed),
    ]
    return ops


def _uniform_count_pipeline(ops: Sequence, max_ops: int, seed: int):
    """keras-cv RandomAugmentationPipeline whose per-image number of operations is uniform on 0..max_ops."""
    keras_cv = _keras_cv()

    class UniformCountPipeline(keras_cv.layers.RandomAugmentationPipeline):
        def _augment(self, inputs):
            count = tf.floor(self._random_generator.uniform(shape=(), minval=0.0, maxval=1.0)
                             * (max_ops + 1))
            result = inputs
            for i in range(max_ops):
                result = tf.cond(float(i) < count, lambda r=result: self._random_choice(r),
                                 lambda r=result: r)
            return result

    return UniformCountPipeline(layers=list(ops), augmentations_per_image=max_ops, seed=seed,
                                name="randaugment")


class Augmenter:
    """A training augmentation: ``augmenter(images, labels) -> (images, labels)``.

    ``images``: float32 (B, H, W, C) in 0..255, C = 1 or 3; ``labels``: float32 (B, K), one-hot
    or soft. Stages run in the order of :data:`~fer_keras.config.AUGMENT_PARTS`. The output images are float32 in 0..255
    with the input's shape; labels stay one-hot unless MixUp mixed them (rows still sum to 1).
    ``uses_labels`` tells :func:`fer_keras.data.pipeline.make_dataset` to pass labels.
    """

    uses_labels = True
    uses_seed = True

    def __init__(self, settings: AugmentConfig, basic_augment: str = "study_a", seed: int = 42,
                 basic: BasicAugment | None = None):
        if basic_augment not in BASIC_PRESETS:
            raise ConfigError(f"basic augmentation {basic_augment!r}: use one of {', '.join(BASIC_PRESETS)}")
        self.settings = settings
        self.parts = settings.parts
        self.name = settings.name
        geometric = basic or (BASIC_PRESETS[basic_augment] if "basic" in self.parts else BasicAugment(0.0, 0.0))
        if "flip" in self.parts:
            geometric = dataclasses.replace(geometric, flip=True)
        if "crop" in self.parts:
            geometric = dataclasses.replace(geometric, shift=max(geometric.shift, CROP_SHIFT))
        self.basic = geometric
        self._seed = seed
        self._rand = self._mix = None
        self._geometric = any(p in GEOMETRIC for p in self.parts) and bool(self.basic)
        self.erase = RandomErasing() if "erase" in self.parts else None
        if "randaugment" in self.parts and settings.randaugment_max_ops > 0:
            low, high = (m / 10.0 for m in settings.randaugment_magnitude)
            self._rand = _uniform_count_pipeline(_rand_augment_ops(low, high, seed + 10),
                                                 settings.randaugment_max_ops, seed + 11)
        if "mixup" in self.parts:
            self._mix = _keras_cv().layers.MixUp(alpha=settings.mixup_alpha, seed=seed + 20)

    def __repr__(self):
        return f"Augmenter({self.name!r})"

    def rand_augment(self, images: tf.Tensor) -> tf.Tensor:
        """RandAugment a batch; 1-channel images go through 3 identical channels and back."""
        gray = images.shape[-1] == 1
        x = tf.image.grayscale_to_rgb(images) if gray else images
        x = self._rand(x, training=True)
        if gray:
            x = tf.reduce_mean(x, axis=-1, keepdims=True)
        x = tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 255.0)
        return tf.ensure_shape(x, images.shape)

    def mix_up(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """MixUp the whole batch with keras-cv, then keep the mix only for a random ``fraction``."""
        labels = tf.cast(labels, tf.float32)
        mixed = self._mix({"images": images, "labels": labels}, training=True)
        batch = tf.shape(images)[0]
        chosen = tf.random.uniform((batch,), seed=self._seed + 21) < self.settings.mixup_fraction
        x = tf.where(chosen[:, None, None, None], tf.cast(mixed["images"], tf.float32), images)
        y = tf.where(chosen[:, None], tf.cast(mixed["labels"], tf.float32), labels)
        return tf.ensure_shape(x, images.shape), tf.ensure_shape(y, labels.shape)

    def __call__(self, images: tf.Tensor, labels: tf.Tensor | None = None, seed: tf.Tensor | None = None):
        """Augment a batch; ``seed`` (int (2,)) drives the geometric parts (drawn when omitted)."""
        x = tf.cast(images, tf.float32)
        if seed is None and (self._geometric or self.erase is not None):
            seed = tf.random.uniform((2,), 0, 2**31 - 1, dtype=tf.int64, seed=self._seed)
        if self._geometric:
            x = self.basic(x, seed)
        if self._rand is not None:
            x = self.rand_augment(x)
        if self.erase is not None:  # its own stream of the batch's seed (the warp keeps the seed itself)
            x = self.erase(x, tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1))
        if self._mix is not None:
            if labels is None:
                raise ConfigError("MixUp needs the labels: call augmenter(images, labels)")
            x, labels = self.mix_up(x, labels)
        return x, labels


def make_augmenter(settings: AugmentConfig | str = "basic", basic_augment: str = "study_a", seed: int = 42,
                   basic: BasicAugment | None = None, **fields) -> Augmenter | None:
    """The :class:`Augmenter` for ``settings`` (an AugmentConfig, or its name such as
    ``"randaugment+mixup"`` with more AugmentConfig ``fields``, e.g. ``mixup_fraction=1.0``),
    or None for ``"none"``. ``basic_augment``: the study whose "basic" is meant (the model's
    registry entry says which)."""
    if isinstance(settings, str):
        settings = AugmentConfig(name=settings, **fields)
    elif fields:
        settings = dataclasses.replace(settings, **fields)
    if not settings.parts:
        return None
    return Augmenter(settings, basic_augment, seed, basic)
