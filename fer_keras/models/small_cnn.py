"""A small plain CNN for fast privacy audits (membership inference) on 2 CPU cores.

Not one of the studies' models: it exists so the whole defence grid of
``experiments/run_mia.py`` (7 trainings, one of them differentially private with per-example
gradients) runs in minutes. It has the same ``noise_layers`` setting as GhostFace, with the
noise in the same places (after the stem; on the pooled features before the classifier), and
no batch normalisation, so per-example gradient clipping (DP-SGD) is exact.

| stage | layers | output at 48x48x1 |
| --- | --- | --- |
| stem | conv 3x3 stride 2, ``widths[0]``, ReLU (+ ``noise_1``) | 24x24x16 |
| 1..3 | conv 3x3 ``w``, ReLU, max-pool 2x2 | 12, 6, 3 (x 16, 32, 64) |
| head | global average pool, dense 128 ReLU (+ ``noise_2``), dense softmax | K |
"""
from __future__ import annotations

import tensorflow as tf

from fer_keras.errors import ConfigError
from fer_keras.models.registry import register_model


@register_model(input_shape=(48, 48, 1), input_mode="unit", basic_augment="study_a", gradcam_layer="conv3",
                noise_layers=True, description="small CNN for fast privacy audits")
def small_cnn(input_shape=(48, 48, 1), num_classes: int = 7, noise_layers: int = 0,
              noise_std: float = 0.1, widths=(16, 32, 64), dense: int = 128,
              name: str = "small_cnn") -> tf.keras.Model:
    """Build the small CNN.

    Args:
        input_shape: (height, width, channels) of the ``image`` input (pixels / 255).
        num_classes: size of the softmax output ``probabilities``.
        noise_layers: 0, 1 or 2 ``GaussianNoise(noise_std)`` layers (training only).
        noise_std: standard deviation of that noise.
        widths: filters of the stem and of each conv stage.
        dense: units of the hidden dense layer.
    """
    if noise_layers not in (0, 1, 2):
        raise ConfigError(f"noise_layers must be 0, 1 or 2, not {noise_layers!r}")
    layers = tf.keras.layers
    inputs = layers.Input(tuple(input_shape), name="image")
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", activation="relu", name="stem_conv")(inputs)
    if noise_layers >= 1:
        x = layers.GaussianNoise(noise_std, name="noise_1")(x)
    for i, width in enumerate(widths, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(dense, activation="relu", name="hidden")(x)
    if noise_layers >= 2:
        x = layers.GaussianNoise(noise_std, name="noise_2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=name)
