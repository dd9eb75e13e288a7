"""Triplet attention (Misra et al., "Rotate to Attend", WACV 2021), channels-last."""
from __future__ import annotations

import tensorflow as tf

from fer_keras.layers.ghost_module import CONV_INIT

# Rotations (self-inverse permutations of (batch, H, W, C)) that put the pooled axis last.
_POOL_W = (0, 1, 3, 2)  # (B, H, C, W): channel-height interaction, Z-pool over width
_POOL_H = (0, 3, 2, 1)  # (B, C, W, H): channel-width interaction, Z-pool over height


def z_pool(x):
    """Concatenate max and mean over the last axis: (..., N) -> (..., 2)."""
    return tf.concat([tf.reduce_max(x, -1, keepdims=True), tf.reduce_mean(x, -1, keepdims=True)], -1)


class _AttentionGate(tf.keras.layers.Layer):
    """Z-pool -> k x k conv (1 map, no bias) -> BN -> sigmoid: weights (..., 1) in (0, 1)."""

    def __init__(self, kernel_size, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.conv = tf.keras.layers.Conv2D(1, kernel_size, padding="same", use_bias=False,
                                           kernel_initializer=CONV_INIT, name="conv")
        self.bn = tf.keras.layers.BatchNormalization(name="bn")

    def call(self, inputs, training=None):
        return tf.sigmoid(self.bn(self.conv(z_pool(inputs)), training=training))

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@tf.keras.utils.register_keras_serializable(package="fer_keras")
class TripletAttention(tf.keras.layers.Layer):
    """Three attention branches, averaged; no learned weights besides three 2->1 convs and BNs.

    * channel-height: rotate to ``(B, H, C, W)``, gate = sigmoid(BN(conv(Z-pool over W)));
    * channel-width: rotate to ``(B, C, W, H)``, gate from Z-pool over H;
    * spatial: gate from Z-pool over C on ``(B, H, W, C)`` itself.

    Each branch multiplies its gate onto its (rotated) input and rotates back; the output is the
    mean of the three. Z-pool = concat(max, mean) over one axis (2 maps).

    Args:
        kernel_size: side k of each gate's k x k conv (7 in the paper).

    Input shape: ``(batch, H, W, C)``. Output shape: the same.

    Example:
        >>> att = TripletAttention()
        >>> y = att(tf.random.normal((2, 8, 8, 16)))          # (2, 8, 8, 16)
        >>> ch, cw, hw = att.attention_weights(tf.random.normal((2, 8, 8, 16)))
        >>> ch.shape, cw.shape, hw.shape                       # (2,8,1,16) (2,1,8,16) (2,8,8,1)
    """

    def __init__(self, kernel_size=7, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.channel_height = _AttentionGate(self.kernel_size, name="channel_height")
        self.channel_width = _AttentionGate(self.kernel_size, name="channel_width")
        self.spatial = _AttentionGate(self.kernel_size, name="spatial")

    def call(self, inputs, training=None):
        weights = self.attention_weights(inputs, training=training)
        return tf.add_n([inputs * w for w in weights]) / 3.0

    def attention_weights(self, inputs, training=False):
        """The three gates in (0, 1), rotated back so they broadcast onto ``inputs``.

        Returns ``(channel_height, channel_width, spatial)`` of shapes ``(B, H, 1, C)``,
        ``(B, 1, W, C)`` and ``(B, H, W, 1)``. ``x * w`` for a rotated-back gate equals
        rotating ``x``, gating it and rotating back.
        """
        ch = tf.transpose(self.channel_height(tf.transpose(inputs, _POOL_W), training=training), _POOL_W)
        cw = tf.transpose(self.channel_width(tf.transpose(inputs, _POOL_H), training=training), _POOL_H)
        return ch, cw, self.spatial(inputs, training=training)

    def elementwise_multiplies(self, input_shape):
        """Gating multiplies per image (3 x H x W x C) for profilers that count them."""
        _, h, w, c = tf.TensorShape(input_shape).as_list()
        return 3 * h * w * c

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
