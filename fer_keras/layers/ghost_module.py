"""Ghost module (Han et al., GhostNet, CVPR 2020): a few ordinary feature maps plus cheap "ghosts"."""
from __future__ import annotations

import math

import tensorflow as tf

from fer_keras.errors import ConfigError

#: Kernel initializer of every conv in fer_keras's layers (ReLU networks).
CONV_INIT = "he_normal"


def strided_shape(input_shape, strides: int, filters: int) -> tf.TensorShape:
    """``(batch, ceil(H / strides), ceil(W / strides), filters)``: a "same"-padded conv's output."""
    batch, *sides = tf.TensorShape(input_shape).as_list()[:3]
    return tf.TensorShape([batch, *(None if s is None else -(-s // strides) for s in sides), filters])


@tf.keras.utils.register_keras_serializable(package="fer_keras")
class GhostModule(tf.keras.layers.Layer):
    """Ordinary conv for ``m = ceil(filters / ratio)`` intrinsic maps, depthwise conv for the rest.

    primary: ``kernel_size`` conv (given ``strides``, no bias) + BN [+ ReLU] -> m maps;
    cheap: ``dw_kernel_size`` depthwise conv (depth multiplier ``ratio - 1``) + BN [+ ReLU] on
    those m maps -> ``m * (ratio - 1)`` ghost maps; both are concatenated and the first
    ``filters`` channels kept.

    Args:
        filters: number of output channels n.
        ratio: n / m, at least 2.
        kernel_size: side of the primary conv's kernel (pixels).
        dw_kernel_size: side of the cheap depthwise conv's kernel (pixels).
        strides: stride of the primary conv.
        use_relu: apply ReLU after both BNs (the expanding module of a bottleneck) or not
            (the projecting one).

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, ceil(H / strides),
    ceil(W / strides), filters)`` ("same" padding).

    Example:
        >>> y = GhostModule(32)(tf.zeros((2, 16, 16, 8)))  # (2, 16, 16, 32), 16 of them cheap
    """

    def __init__(self, filters, ratio=2, kernel_size=1, dw_kernel_size=3, strides=1, use_relu=True,
                 **kwargs):
        super().__init__(**kwargs)
        if int(ratio) < 2:
            raise ConfigError(f"GhostModule ratio must be an integer >= 2, not {ratio!r}")
        self.filters, self.ratio = int(filters), int(ratio)
        self.kernel_size, self.dw_kernel_size = int(kernel_size), int(dw_kernel_size)
        self.strides, self.use_relu = int(strides), bool(use_relu)
        self.intrinsic_filters = math.ceil(self.filters / self.ratio)
        layers = tf.keras.layers
        self.primary_conv = layers.Conv2D(self.intrinsic_filters, self.kernel_size, self.strides,
                                          padding="same", use_bias=False, kernel_initializer=CONV_INIT,
                                          name="primary_conv")
        self.primary_bn = layers.BatchNormalization(name="primary_bn")
        self.cheap_conv = layers.DepthwiseConv2D(self.dw_kernel_size, padding="same",
                                                 depth_multiplier=self.ratio - 1, use_bias=False,
                                                 depthwise_initializer=CONV_INIT, name="cheap_conv")
        self.cheap_bn = layers.BatchNormalization(name="cheap_bn")

    def call(self, inputs, training=None):
        x1 = self.primary_bn(self.primary_conv(inputs), training=training)
        if self.use_relu:
            x1 = tf.nn.relu(x1)
        x2 = self.cheap_bn(self.cheap_conv(x1), training=training)
        if self.use_relu:
            x2 = tf.nn.relu(x2)
        x = tf.concat([x1, x2], axis=-1)
        # m * ratio >= filters; slice only when it is more (a no-op slice still costs a copy and its gradient)
        return x if self.intrinsic_filters * self.ratio == self.filters else x[..., : self.filters]

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "ratio": self.ratio,
                "kernel_size": self.kernel_size, "dw_kernel_size": self.dw_kernel_size,
                "strides": self.strides, "use_relu": self.use_relu}
