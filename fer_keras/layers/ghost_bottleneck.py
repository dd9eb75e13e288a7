"""GhostNet's bottleneck with triplet attention in place of squeeze-and-excitation."""
from __future__ import annotations

import tensorflow as tf

from fer_keras.layers.ghost_module import CONV_INIT, GhostModule, strided_shape
from fer_keras.layers.triplet_attention import TripletAttention


@tf.keras.utils.register_keras_serializable(package="fer_keras")
class GhostBottleneck(tf.keras.layers.Layer):
    """Attention Ghost bottleneck, as timm's ``ghostnet.GhostBottleneck`` with SE -> triplet attention.

    GhostModule(``mid_filters``, ReLU) -> [k x k depthwise conv, stride 2, + BN] ->
    [TripletAttention] -> GhostModule(``filters``, no ReLU) -> + shortcut. The shortcut is the
    input itself when ``strides == 1`` and ``C_in == filters``, else k x k depthwise conv
    (given stride) + BN + 1x1 conv + BN. No activation after the sum (as in GhostNet).

    Args:
        filters: output channels.
        mid_filters: channels of the expanded middle (the first Ghost module's output).
        kernel_size: side k of the depthwise convs (main branch and shortcut), pixels.
        strides: 1 or 2.
        attention: insert triplet attention (False gives GhostNet's bottleneck without SE).
        attention_kernel_size: side of the triplet-attention gates' convs.

    Input shape: ``(batch, H, W, C_in)``. Output shape: ``(batch, ceil(H / strides),
    ceil(W / strides), filters)``.

    Example:
        >>> y = GhostBottleneck(40, mid_filters=72, kernel_size=5, strides=2)(tf.zeros((2, 28, 28, 24)))
        >>> y.shape  # (2, 14, 14, 40)
    """

    def __init__(self, filters, mid_filters, kernel_size=3, strides=1, attention=True,
                 attention_kernel_size=7, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.mid_filters = int(filters), int(mid_filters)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.attention, self.attention_kernel_size = bool(attention), int(attention_kernel_size)

    def build(self, input_shape):
        layers = tf.keras.layers
        in_channels = int(input_shape[-1])
        self.ghost_expand = GhostModule(self.mid_filters, use_relu=True, name="ghost_expand")
        if self.strides > 1:
            self.dw_conv = layers.DepthwiseConv2D(self.kernel_size, self.strides, padding="same",
                                                  use_bias=False, depthwise_initializer=CONV_INIT,
                                                  name="dw_conv")
            self.dw_bn = layers.BatchNormalization(name="dw_bn")
        if self.attention:
            self.triplet_attention = TripletAttention(self.attention_kernel_size, name="triplet_attention")
        self.ghost_project = GhostModule(self.filters, use_relu=False, name="ghost_project")
        self.identity_shortcut = self.strides == 1 and in_channels == self.filters
        if not self.identity_shortcut:
            self.shortcut_dw = layers.DepthwiseConv2D(self.kernel_size, self.strides, padding="same",
                                                      use_bias=False, depthwise_initializer=CONV_INIT,
                                                      name="shortcut_dw")
            self.shortcut_dw_bn = layers.BatchNormalization(name="shortcut_dw_bn")
            self.shortcut_conv = layers.Conv2D(self.filters, 1, use_bias=False,
                                               kernel_initializer=CONV_INIT, name="shortcut_conv")
            self.shortcut_bn = layers.BatchNormalization(name="shortcut_bn")
        super().build(input_shape)

    def call(self, inputs, training=None):
        x = self.ghost_expand(inputs, training=training)
        if self.strides > 1:
            x = self.dw_bn(self.dw_conv(x), training=training)
        if self.attention:
            x = self.triplet_attention(x, training=training)
        x = self.ghost_project(x, training=training)
        if self.identity_shortcut:
            return x + inputs
        shortcut = self.shortcut_dw_bn(self.shortcut_dw(inputs), training=training)
        return x + self.shortcut_bn(self.shortcut_conv(shortcut), training=training)

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "mid_filters": self.mid_filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "attention": self.attention,
                "attention_kernel_size": self.attention_kernel_size}
