"""Study A's "DCNN" for 48x48x1 faces, and its *deeper* and *final* variants.

The base network has exactly 2,395,591 parameters (SPEC.md, layer by layer):
three blocks of two conv(+activation)+BN pairs, each block ending in 2x2 max-pool and dropout,
then Flatten, Dense 128 (+activation) + BN, Dropout 0.6, Dense softmax. Inputs are float images
in [0, 1] (pixels / 255), shape (H, W, C), named ``image``.
"""
from __future__ import annotations

import tensorflow as tf

from fer_keras.models.registry import register_model

# (convs, filters, kernel, dropout) per block.
DCNN_BLOCKS = ((2, 64, 5, 0.4), (2, 128, 3, 0.4), (2, 256, 3, 0.5))
DEEPER_BLOCKS = DCNN_BLOCKS + ((2, 512, 3, 0.5), (2, 512, 3, 0.5))
FINAL_BLOCKS = ((2, 32, 5, 0.5), (3, 64, 3, 0.5), (4, 64, 3, 0.5), (3, 128, 3, 0.5), (3, 512, 2, 0.5))
VARIANTS = {"dcnn": (DCNN_BLOCKS, 0.6, True), "dcnn_deeper": (DEEPER_BLOCKS, 0.6, True),
            "dcnn_final": (FINAL_BLOCKS, 0.5, False)}


def build_dcnn(input_shape=(48, 48, 1), num_classes: int = 7, variant: str = "dcnn",
               activation: str = "elu", kernel_initializer: str = "he_normal") -> tf.keras.Model:
    """Build a DCNN variant (``"dcnn"``, ``"dcnn_deeper"`` or ``"dcnn_final"``).

    Args:
        input_shape: (H, W, C) of the float input in [0, 1]; 48x48x1 for FER2013.
        num_classes: width of the softmax output.
        variant: which stage table to use (see ``VARIANTS``).
        activation, kernel_initializer: of every conv and the hidden dense layer
            (the study does not state them; ELU + he_normal is the usual choice).
    Returns:
        A functional model ``image -> (batch, num_classes)`` probabilities, named ``variant``.
    """
    blocks, head_dropout, head_bn = VARIANTS[variant]
    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = inputs
    for b, (convs, filters, kernel, dropout) in enumerate(blocks, start=1):
        for c in range(1, convs + 1):
            x = tf.keras.layers.Conv2D(filters, kernel, padding="same", activation=activation,
                                       kernel_initializer=kernel_initializer, name=f"block{b}_conv{c}")(x)
            x = tf.keras.layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
        x = tf.keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        x = tf.keras.layers.Dropout(dropout, name=f"block{b}_dropout")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(128, activation=activation, kernel_initializer=kernel_initializer,
                              name="dense")(x)
    if head_bn:
        x = tf.keras.layers.BatchNormalization(name="dense_bn")(x)
    x = tf.keras.layers.Dropout(head_dropout, name="dense_dropout")(x)
    outputs = tf.keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=variant)


_FACTS = dict(input_shape=(48, 48, 1), input_mode="unit", basic_augment="study_a")


@register_model(gradcam_layer="block3_conv2", description="Study A's DCNN (2,395,591 parameters)", **_FACTS)
def dcnn(input_shape=(48, 48, 1), num_classes: int = 7, **kwargs) -> tf.keras.Model:
    """Study A's DCNN; ``kwargs``: ``activation``, ``kernel_initializer`` (see :func:`build_dcnn`)."""
    return build_dcnn(input_shape, num_classes, "dcnn", **kwargs)


@register_model(gradcam_layer="block5_conv2", description="Study A's deeper variant (five blocks)", **_FACTS)
def dcnn_deeper(input_shape=(48, 48, 1), num_classes: int = 7, **kwargs) -> tf.keras.Model:
    return build_dcnn(input_shape, num_classes, "dcnn_deeper", **kwargs)


@register_model(gradcam_layer="block5_conv3", description="Study A's final variant", **_FACTS)
def dcnn_final(input_shape=(48, 48, 1), num_classes: int = 7, **kwargs) -> tf.keras.Model:
    return build_dcnn(input_shape, num_classes, "dcnn_final", **kwargs)
