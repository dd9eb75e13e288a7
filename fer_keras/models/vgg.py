"""A compact VGG-style network for 48x48 faces: a quarter of the DCNN's cost, for CPU-budget runs.

Four blocks of two 3x3 conv + BatchNorm + ReLU, each ending in 2x2 max-pool (and dropout),
then Flatten, Dense 256 + ReLU, Dropout 0.5, Dense softmax. With widths 32-64-128-256 it has
1,766,439 parameters and ~117 M multiply-adds per 48x48x1 face: about a quarter of Study A's
DCNN (496 M), and 3.7x its training speed on a 2-core CPU (460 vs 124 images/s, full-data runs
in docs/runs). On full FER2013 with the cosine recipe (``--preset compact-vgg-fer2013``, 40 epochs) it
reached 64.23 % validation / 61.99 % PublicTest against the same recipe's DCNN's 64.30 / 63.05 % (30
epochs), so a DCNN ships. Inputs are float images in [0, 1] named ``image``.
"""
from __future__ import annotations

import tensorflow as tf

from fer_keras.models.registry import register_model

WIDTHS = (32, 64, 128, 256)
BLOCK_DROPOUT = (0.0, 0.1, 0.2, 0.3)


@register_model(input_shape=(48, 48, 1), input_mode="unit", basic_augment="study_a",
                gradcam_layer="block4_conv2", description="compact VGG for 48x48 faces (1,766,439 parameters)")
def vgg(input_shape=(48, 48, 1), num_classes: int = 7, widths=WIDTHS, block_dropout=BLOCK_DROPOUT,
        dense: int = 256, dense_dropout: float = 0.5) -> tf.keras.Model:
    """Build the compact VGG.

    Args:
        input_shape: (H, W, C) of the float input in [0, 1]; 48x48x1 for FER2013.
        num_classes: width of the softmax output.
        widths: filters of each block's two convolutions (one block per entry).
        block_dropout: dropout rate after each block's pooling.
        dense, dense_dropout: hidden dense width and the dropout after it.
    Returns:
        A functional model ``image -> (batch, num_classes)`` probabilities, named ``vgg``.
    """
    L = tf.keras.layers
    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = inputs
    for b, (filters, rate) in enumerate(zip(widths, block_dropout), start=1):
        for c in (1, 2):
            x = L.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                         name=f"block{b}_conv{c}")(x)
            x = L.BatchNormalization(name=f"block{b}_bn{c}")(x)
            x = L.Activation("relu", name=f"block{b}_relu{c}")(x)
        x = L.MaxPooling2D(2, name=f"block{b}_pool")(x)
        if rate:
            x = L.Dropout(rate, name=f"block{b}_dropout")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(dense, activation="relu", kernel_initializer="he_normal", name="dense")(x)
    x = L.Dropout(dense_dropout, name="dense_dropout")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name="vgg")
