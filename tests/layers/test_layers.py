"""GhostModule, TripletAttention, FusedMBConv and GhostBottleneck."""
import math

import numpy as np
import pytest

import fer_keras  # noqa: F401
import tensorflow as tf
from fer_keras.errors import ConfigError
from fer_keras.layers import FusedMBConv, GhostBottleneck, GhostModule, TripletAttention
from fer_keras.layers.triplet_attention import gate_conv, rotated_reference, z_pool
from layer_checks import assert_save_reload_identical, random_weights, run_layer_test

CASES = [
    # cls, kwargs, input shape, output shape, trainable weights
    (GhostModule, {"filters": 12}, (2, 8, 8, 5), (2, 8, 8, 12), 6),
    (GhostModule, {"filters": 7, "ratio": 3, "kernel_size": 3, "strides": 2, "use_relu": False},
     (2, 9, 9, 4), (2, 5, 5, 7), 6),
    (TripletAttention, {}, (2, 8, 6, 4), (2, 8, 6, 4), 9),
    (TripletAttention, {"kernel_size": 3}, (1, 5, 7, 3), (1, 5, 7, 3), 9),
    (FusedMBConv, {"filters": 8, "expand_ratio": 1}, (2, 8, 8, 8), (2, 8, 8, 8), 3),
    (FusedMBConv, {"filters": 12, "expand_ratio": 4, "strides": 2}, (2, 8, 8, 6), (2, 4, 4, 12), 6),
    (FusedMBConv, {"filters": 6, "expand_ratio": 2, "dropout_rate": 0.2}, (2, 8, 8, 6), (2, 8, 8, 6), 6),
    (GhostBottleneck, {"filters": 8, "mid_filters": 16}, (2, 8, 8, 8), (2, 8, 8, 8), 21),
    (GhostBottleneck, {"filters": 12, "mid_filters": 24, "kernel_size": 5, "strides": 2},
     (2, 8, 8, 8), (2, 4, 4, 12), 30),
    (GhostBottleneck, {"filters": 12, "mid_filters": 16, "attention": False},
     (2, 6, 6, 8), (2, 6, 6, 12), 18),
]


@pytest.mark.parametrize("cls, kwargs, in_shape, out_shape, n_weights", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_layer(cls, kwargs, in_shape, out_shape, n_weights, tmp_path):
    run_layer_test(cls, kwargs, in_shape, out_shape, n_weights, folder=str(tmp_path))


def test_ghost_module_intrinsic_and_ghost_maps():
    layer = GhostModule(7, ratio=3, use_relu=False)
    x = tf.random.normal((1, 6, 6, 4))
    y = layer(x)
    m = math.ceil(7 / 3)
    assert layer.intrinsic_filters == m == 3
    assert layer.primary_conv.kernel.shape == (1, 1, 4, m)
    assert layer.cheap_conv.depthwise_kernel.shape == (3, 3, m, 2)  # depth multiplier ratio - 1
    intrinsic = layer.primary_bn(layer.primary_conv(x), training=False)
    np.testing.assert_allclose(y[..., :m], intrinsic, atol=1e-6)  # first m outputs are intrinsic


def test_ghost_module_ratio_below_2_is_a_config_error():
    with pytest.raises(ConfigError, match="ratio"):
        GhostModule(8, ratio=1)


def test_triplet_attention_weights_in_unit_interval_and_output_is_their_mean():
    layer = TripletAttention()
    x = tf.random.normal((2, 5, 6, 4), seed=3)
    ch, cw, hw = layer.attention_weights(x)
    assert (ch.shape, cw.shape, hw.shape) == ((2, 5, 1, 4), (2, 1, 6, 4), (2, 5, 6, 1))
    for w in (ch, cw, hw):
        assert float(tf.reduce_min(w)) > 0 and float(tf.reduce_max(w)) < 1
    np.testing.assert_allclose(layer(x), (x * ch + x * cw + x * hw) / 3, atol=1e-5)


@pytest.mark.parametrize("shape, kernel", [((3, 5, 6, 4), 7), ((2, 4, 4, 40), 7), ((2, 7, 3, 9), 4),
                                           ((1, 40, 6, 5), 3)])
@pytest.mark.parametrize("training", [False, True])
def test_triplet_attention_equals_the_papers_rotations_outputs_and_gradients(shape, kernel, training):
    """The fast call (no rotations, folded gate convs, one multiply) computes the paper's function:
    same weights -> same outputs and gradients as rotating, gating and rotating back. The shapes
    cover folded (<= 32 rows) and plain gate convs, odd and even kernels."""
    layer = TripletAttention(kernel)
    x = tf.random.normal(shape, seed=5)
    layer(x)
    rng = np.random.default_rng(2)  # every weight, BN statistics included, away from its initial value
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fast = layer(x, training=training)
        ref = rotated_reference(layer, x, training=training)
        fast_loss, ref_loss = tf.reduce_sum(fast * fast), tf.reduce_sum(ref * ref)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(tape.gradient(fast_loss, [x, *layer.trainable_weights]),
                         tape.gradient(ref_loss, [x, *layer.trainable_weights])):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_gate_conv_folded_equals_plain_conv():
    for rows, cols, k in ((4, 50, 7), (13, 9, 7), (6, 6, 2), (32, 5, 5)):
        maps = tf.random.normal((2, rows, cols, 2), seed=rows)
        kernel = tf.random.normal((k, k, 2, 1), seed=k)
        np.testing.assert_allclose(gate_conv(maps, kernel), tf.nn.conv2d(maps, kernel, 1, "SAME"),
                                   rtol=1e-5, atol=1e-5)


def test_triplet_attention_branch_equals_rotate_gate_rotate_back():
    layer = TripletAttention()
    x = tf.random.normal((1, 5, 6, 4), seed=4)
    _, cw, _ = layer.attention_weights(x)
    rotated = tf.transpose(x, (0, 3, 2, 1))  # (B, C, W, H): Z-pool over H
    gated = rotated * layer.channel_width(z_pool(rotated), training=False)
    np.testing.assert_allclose(tf.transpose(gated, (0, 3, 2, 1)), x * cw, atol=1e-6)


def test_fused_mbconv_structure():
    e4 = FusedMBConv(16, expand_ratio=4)
    e4(tf.zeros((1, 8, 8, 16)))
    assert e4.residual and e4.expand_conv.filters == 64 and e4.project_conv.filters == 16
    e1 = FusedMBConv(16, expand_ratio=1, strides=2)
    e1.build((None, 8, 8, 8))
    assert not e1.residual and not hasattr(e1, "project_conv")
    # 3x3 conv 16->64 + BN, 1x1 conv 64->16 + BN
    assert e4.count_params() == 9 * 16 * 64 + 4 * 64 + 64 * 16 + 4 * 16


def test_ghost_bottleneck_shortcut_and_attention():
    same = GhostBottleneck(8, 16)
    same.build((None, 8, 8, 8))
    assert same.identity_shortcut and not hasattr(same, "shortcut_conv")
    assert isinstance(same.triplet_attention, TripletAttention) and not hasattr(same, "dw_conv")
    down = GhostBottleneck(8, 16, strides=2, attention=False)
    down.build((None, 8, 8, 8))
    assert not down.identity_shortcut and hasattr(down, "dw_conv")
    assert not hasattr(down, "triplet_attention")


def test_model_with_every_layer_saves_and_reloads_identically(tmp_path):
    inputs = tf.keras.Input((16, 16, 3))
    x = FusedMBConv(8, expand_ratio=1, strides=2)(inputs)
    x = FusedMBConv(8, expand_ratio=2, dropout_rate=0.1)(x)
    x = GhostModule(12)(x)
    x = TripletAttention()(x)
    x = GhostBottleneck(16, 24, strides=2)(x)
    x = GhostBottleneck(16, 32)(x)
    outputs = tf.keras.layers.Dense(3, activation="softmax")(tf.keras.layers.GlobalAveragePooling2D()(x))
    model = tf.keras.Model(inputs, outputs)
    random_weights(model, seed=7)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    assert_save_reload_identical(model, x, str(tmp_path))
