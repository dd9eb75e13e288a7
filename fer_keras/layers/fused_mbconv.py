"""Fused-MBConv block (Tan & Le, EfficientNetV2, ICML 2021) with ReLU."""
from __future__ import annotations

import tensorflow as tf

from fer_keras.layers.ghost_module import CONV_INIT, strided_shape


@tf.keras.utils.register_keras_serializable(package="fer_keras")
class FusedMBConv(tf.keras.layers.Layer):
    """k x k conv to ``expand_ratio x C_in`` channels (given stride) + BN + ReLU, 1x1 conv + BN.

    With ``expand_ratio == 1`` the block is a single k x k conv to ``filters`` + BN + ReLU, as
    in EfficientNetV2. The input is added back when ``strides == 1`` and ``C_in == filters``;
    ``dropout_rate`` then drops the residual branch of whole samples (stochastic depth,
    ``noise_shape=(None, 1, 1, 1)``) during training.

    Args:
        filters: output channels.
        expand_ratio: width of the k x k conv as a multiple of the input channels.
        kernel_size: side k of the expanding conv (pixels).
        strides: stride of the expanding conv.
        dropout_rate: drop rate of the residual branch (0 = off; ignored without residual).

    Input shape: ``(batch, H, W, C_in)``. Output shape: ``(batch, ceil(H / strides),
    ceil(W / strides), filters)``.

    Example:
        >>> y = FusedMBConv(24, expand_ratio=4, strides=2)(tf.zeros((2, 32, 32, 16)))  # (2, 16, 16, 24)
    """

    def __init__(self, filters, expand_ratio=4, kernel_size=3, strides=1, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.expand_ratio = int(filters), int(expand_ratio)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.dropout_rate = float(dropout_rate)

    def build(self, input_shape):
        layers = tf.keras.layers
        in_channels = int(input_shape[-1])
        expanded = self.filters if self.expand_ratio == 1 else in_channels * self.expand_ratio
        self.expand_conv = layers.Conv2D(expanded, self.kernel_size, self.strides, padding="same",
                                         use_bias=False, kernel_initializer=CONV_INIT, name="expand_conv")
        self.expand_bn = layers.BatchNormalization(name="expand_bn")
        if self.expand_ratio != 1:
            self.project_conv = layers.Conv2D(self.filters, 1, padding="same", use_bias=False,
                                              kernel_initializer=CONV_INIT, name="project_conv")
            self.project_bn = layers.BatchNormalization(name="project_bn")
        self.residual = self.strides == 1 and in_channels == self.filters
        if self.residual and self.dropout_rate > 0:
            self.dropout = layers.Dropout(self.dropout_rate, noise_shape=(None, 1, 1, 1), name="drop")
        super().build(input_shape)

    def call(self, inputs, training=None):
        x = tf.nn.relu(self.expand_bn(self.expand_conv(inputs), training=training))
        if self.expand_ratio != 1:
            x = self.project_bn(self.project_conv(x), training=training)
        if not self.residual:
            return x
        if self.dropout_rate > 0:
            x = self.dropout(x, training=training)
        return x + inputs

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "expand_ratio": self.expand_ratio,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "dropout_rate": self.dropout_rate}
