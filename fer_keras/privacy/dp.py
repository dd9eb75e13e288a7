"""Differentially private training: :func:`compile_dp` compiles a model with tensorflow-privacy's
DP Keras optimizers (per-example clipping + Gaussian noise; the loss is per-example, reduction
NONE) and :func:`dp_epsilon` gives the (epsilon, delta) spent (RDP accounting)."""
from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from fer_keras._compat import import_tf_privacy
from fer_keras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DPSettings:
    """DP-SGD settings: per-example gradients clipped to ``l2_norm_clip`` and Gaussian noise of
    std ``noise_multiplier * l2_norm_clip`` added to their sum. ``num_microbatches`` None = one
    per example (the tightest accounting). ``delta`` None = 1 / (10 * training images)."""

    l2_norm_clip: float = 1.0
    noise_multiplier: float = 1.1
    num_microbatches: int | None = None
    delta: float | None = None

    def __post_init__(self):
        if self.l2_norm_clip <= 0:
            raise ConfigError(f"--dp-clip must be positive (got {self.l2_norm_clip})")
        if self.noise_multiplier < 0:
            raise ConfigError(f"--dp-noise must be non-negative (got {self.noise_multiplier})")
        if self.num_microbatches is not None and self.num_microbatches < 1:
            raise ConfigError(f"--dp-microbatches must be at least 1 (got {self.num_microbatches})")


def compile_dp(model: tf.keras.Model, l2_norm_clip: float = 1.0, noise_multiplier: float = 1.1,
               num_microbatches: int | None = None, lr: float = 1e-3,
               optimizer: str = "adam") -> tf.keras.Model:
    """Compile ``model`` (plain Keras, inputs ``(x, one-hot y)``) for DP-SGD training.

    Uses tensorflow-privacy's ``DPKerasAdamOptimizer`` / ``DPKerasSGDOptimizer`` with a
    per-example cross-entropy (``reduction=NONE``, which these optimizers need to clip each
    example's gradient). ``num_microbatches`` must divide the batch size; None = per example.
    """
    dp = import_tf_privacy("privacy.optimizers.dp_optimizer_keras")
    classes = {"adam": dp.DPKerasAdamOptimizer, "sgd": dp.DPKerasSGDOptimizer}
    if optimizer not in classes:
        raise ConfigError(f"--optimizer {optimizer!r}: DP training supports adam or sgd")
    opt = classes[optimizer](l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
                             num_microbatches=num_microbatches, learning_rate=lr)
    loss = tf.keras.losses.CategoricalCrossentropy(reduction=tf.keras.losses.Reduction.NONE)
    model.compile(optimizer=opt, loss=loss,
                  metrics=[tf.keras.metrics.CategoricalAccuracy(name="categorical_accuracy")])
    return model


def dp_epsilon(num_examples: int, batch_size: int, epochs: float, noise_multiplier: float,
               delta: float | None = None, num_microbatches: int | None = None) -> dict:
    """Epsilon spent by DP-SGD (add-or-remove-one-example adjacency, RDP accounting).

    Computed as tensorflow-privacy's ``compute_dp_sgd_privacy_lib`` does for its headline figure:
    ``epochs * ceil(N / batch)`` steps of the sampled Gaussian mechanism with sampling rate
    ``batch / N`` (Poisson-sampling assumption; shuffled batches are believed to be close), with
    the sensitivity doubled when several examples share a microbatch.
    """
    lib = import_tf_privacy("privacy.analysis.compute_dp_sgd_privacy_lib")
    if delta is None:
        delta = 1.0 / (10 * num_examples)
    microbatched = num_microbatches is not None and num_microbatches < batch_size
    if noise_multiplier == 0:
        eps = math.inf
    else:
        steps = epochs * math.ceil(num_examples / batch_size)
        eps = lib._compute_dp_sgd_example_privacy(  # noqa: SLF001 (the library's own accountant)
            num_epochs=steps * batch_size / num_examples, noise_multiplier=noise_multiplier,
            example_delta=delta, used_microbatching=microbatched,
            poisson_subsampling_probability=batch_size / num_examples)
    return {"epsilon": float(eps), "delta": float(delta), "noise_multiplier": noise_multiplier,
            "steps": int(epochs * math.ceil(num_examples / batch_size)), "batch_size": batch_size,
            "examples": num_examples, "accounting": "RDP, Poisson sampling q = batch / N",
            "microbatched": microbatched}
