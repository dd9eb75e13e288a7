"""Triplet attention (Misra et al., "Rotate to Attend", WACV 2021), channels-last.

The paper's definition rotates the whole input so that channels meet height (resp. width), gates
it and rotates back (:func:`rotated_reference`, kept as the specification the tests compare
against). :class:`TripletAttention` computes the same function without moving the input: each
Z-pool reduces the axis in place, the channel-width gate's conv runs on the pooled maps in
``(W, C)`` layout with its kernel's two spatial axes swapped (a convolution of a transposed
plane with the transposed kernel is the transposed convolution, for any kernel side under
"same" padding), and the three gates are summed before one multiply. Same weights, same
outputs (to float rounding); on 2 CPU cores a GhostFace training step at 112x112x3 is about
twice as fast (``python benchmarks/bench_ghostface.py``).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from fer_keras.layers.ghost_module import CONV_INIT

#: Planes with at most this many rows are convolved with their rows folded into channels.
FOLD_ROWS_UP_TO = 32
# Rotations (self-inverse permutations of (batch, H, W, C)) that put the pooled axis last.
_POOL_W = (0, 1, 3, 2)  # (B, H, C, W): channel-height interaction, Z-pool over width
_POOL_H = (0, 3, 2, 1)  # (B, C, W, H): channel-width interaction, Z-pool over height


def z_pool(x, axis: int = -1):
    """Max and mean over ``axis``, stacked last: (..., N, ...) -> (..., 2) without that axis."""
    return tf.stack([tf.reduce_max(x, axis), tf.reduce_mean(x, axis)], -1)


def gate_conv(maps, kernel):
    """The "same" convolution of ``maps`` (B, P, Q, c) with ``kernel`` (k, k, c, 1): (B, P, Q, 1).

    A 2-channel, 1-map conv keeps CPU conv kernels (oneDNN) nearly idle; when the plane has at most
    :data:`FOLD_ROWS_UP_TO` rows (the attention gates of GhostFace at 112-224 px have 4-28) the
    same sums are computed as a 1 x k conv along Q whose input channels are the P rows x c maps and
    whose outputs are the P rows: kernel entry (dq, (p_in, i), p_out) = kernel[p_in - p_out + top,
    dq, i] where that row exists (top = (k - 1) // 2, "same" padding), else 0. Measured 2-3x faster
    forward + backward than the plain conv on 2 CPU cores.
    """
    k, _, c, _ = kernel.shape
    _, rows, cols, _ = maps.shape
    if rows is None or cols is None or rows > FOLD_ROWS_UP_TO:
        return tf.nn.conv2d(maps, kernel, 1, "SAME")
    top = (k - 1) // 2
    padded = tf.pad(kernel[..., 0], [[rows - 1, rows - 1], [0, 0], [0, 0]])  # row r + rows - 1 = kernel row r
    offsets = np.arange(rows)[:, None] - np.arange(rows)[None, :] + top + rows - 1  # (p_in, p_out)
    folded = tf.reshape(tf.gather(padded, offsets.reshape(-1)), (rows, rows, k, c))  # p_in, p_out, dq, i
    folded = tf.reshape(tf.transpose(folded, (2, 0, 3, 1)), (1, k, rows * c, rows))  # 1, dq, (p_in, i), p_out
    x = tf.reshape(tf.transpose(maps, (0, 2, 1, 3)), (-1, 1, cols, rows * c))  # (B, 1, Q, (p, i))
    return tf.transpose(tf.nn.conv2d(x, folded, 1, "SAME"), (0, 3, 2, 1))  # (B, 1, Q, P) -> (B, P, Q, 1)


class _AttentionGate(tf.keras.layers.Layer):
    """Z-pooled maps (B, P, Q, 2) -> k x k conv (1 map, no bias) -> BN -> sigmoid: (B, P, Q, 1) in (0, 1).

    ``transposed=True``: the maps are the transpose (Q x P plane) of the one the kernel was learned
    on; the conv then runs with the kernel's spatial axes swapped, which gives the transpose of
    the gate of the untransposed maps.
    """

    def __init__(self, kernel_size, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.conv = tf.keras.layers.Conv2D(1, kernel_size, padding="same", use_bias=False,
                                           kernel_initializer=CONV_INIT, name="conv")
        self.bn = tf.keras.layers.BatchNormalization(name="bn")

    def build(self, input_shape):
        with tf.name_scope(self.conv.name):  # its kernel is used by gate_conv, the layer never called
            self.conv.build(input_shape)
        super().build(input_shape)

    def call(self, pooled, transposed: bool = False, training=None):
        kernel = tf.transpose(self.conv.kernel, (1, 0, 2, 3)) if transposed else self.conv.kernel
        return tf.sigmoid(self.bn(gate_conv(pooled, kernel), training=training))

    def own_macs(self, input_shape):
        """Multiply-adds of the conv per image as defined (k x k x 2 per pixel of the P x Q plane),
        whichever way :func:`gate_conv` computes them."""
        _, rows, cols, channels = tf.TensorShape(input_shape).as_list()
        return self.kernel_size ** 2 * channels * rows * cols

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@tf.keras.utils.register_keras_serializable(package="fer_keras")
class TripletAttention(tf.keras.layers.Layer):
    """Three attention branches, averaged; no learned weights besides three 2->1 convs and BNs.

    * channel-height: rotate to ``(B, H, C, W)``, gate = sigmoid(BN(conv(Z-pool over W)));
    * channel-width: rotate to ``(B, C, W, H)``, gate from Z-pool over H;
    * spatial: gate from Z-pool over C on ``(B, H, W, C)`` itself.

    Each branch multiplies its gate onto its (rotated) input and rotates back; the output is the
    mean of the three. Z-pool = concat(max, mean) over one axis (2 maps). (Computed without
    rotating the input; see the module docstring.)

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
        ch, cw, hw = self.attention_weights(inputs, training=training)
        return inputs * ((ch + cw + hw) / 3.0)

    def attention_weights(self, inputs, training=False):
        """The three gates in (0, 1), rotated back so they broadcast onto ``inputs``.

        Returns ``(channel_height, channel_width, spatial)`` of shapes ``(B, H, 1, C)``,
        ``(B, 1, W, C)`` and ``(B, H, W, 1)``. ``x * w`` for a rotated-back gate equals
        rotating ``x``, gating it and rotating back.
        """
        # (B, H, C, 2): the rotated (B, H, C, W) tensor's Z-pool, without rotating it
        ch = self.channel_height(z_pool(inputs, 2), training=training)
        # (B, W, C, 2): the transpose of the rotated (B, C, W, H) tensor's Z-pool
        cw = self.channel_width(z_pool(inputs, 1), transposed=True, training=training)
        hw = self.spatial(z_pool(inputs, 3), training=training)
        return tf.expand_dims(ch[..., 0], 2), tf.expand_dims(cw[..., 0], 1), hw

    def elementwise_multiplies(self, input_shape):
        """Gating multiplies per image (3 x H x W x C) for profilers that count them."""
        _, h, w, c = tf.TensorShape(input_shape).as_list()
        return 3 * h * w * c

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


def rotated_reference(layer: TripletAttention, inputs, training=False):
    """The paper's definition, with ``layer``'s weights: rotate the input for each branch, Z-pool
    its last axis, gate (plain conv, BN, sigmoid), multiply, rotate back, average. Slow (it moves
    the whole input twice per branch; GhostFace's speed before the fast call); the specification
    :class:`TripletAttention` is tested and benchmarked against."""
    def gate(branch, rotated):
        if not branch.built:
            with tf.name_scope(branch.name):
                branch.build((None, None, None, 2))
        conv = tf.nn.conv2d(z_pool(rotated), branch.conv.kernel, 1, "SAME")
        return rotated * tf.sigmoid(branch.bn(conv, training=training))

    ch = tf.transpose(gate(layer.channel_height, tf.transpose(inputs, _POOL_W)), _POOL_W)
    cw = tf.transpose(gate(layer.channel_width, tf.transpose(inputs, _POOL_H)), _POOL_H)
    return tf.add_n([ch, cw, gate(layer.spatial, inputs)]) / 3.0
