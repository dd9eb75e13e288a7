"""GhostFace: a light facial-expression network (Study B) built from a stage table.

stem 3x3 conv -> Fused-MBConv stages (EfficientNetV2; plain convs where depthwise convs are slow,
at high resolution) -> attention Ghost bottleneck stages (GhostNet's bottleneck with triplet
attention instead of squeeze-and-excitation) -> 1x1 conv head (``last_conv``) -> global average
pooling -> dropout -> dense softmax. All activations are ReLU. Inputs are float images already
standardised to mean 0 and standard deviation 1 (no rescaling inside the model); any size
and channel count builds (224x224x3 for RAF-DB, 48x48x1 for FER2013, 112x112x3, ...).

The study gives the budget (1.28 M parameters, 134.66 M multiply-adds at 224x224x3) but not the
widths. This table meets it; ``expand`` multiplies a block's *input* channels (the Fused-MBConv
expansion, resp. the Ghost bottleneck's middle width, rounded to a multiple of 4); only the first
block of a row has the row's stride. Shapes are for a 224x224x3 input:

====== ======= ====== ====== ======= ======= ================ ==========
block  repeats kernel expand filters strides output           mid width
====== ======= ====== ====== ======= ======= ================ ==========
stem   1       3      -      16      2       112 x 112 x 16   -
fused  1       3      2      24      2       56 x 56 x 24     32
fused  1       3      2      40      2       28 x 28 x 40     48
ghost  1       3      3      40      1       28 x 28 x 40     120
ghost  1       3      6      80      2       14 x 14 x 80     240
ghost  1       3      2      80      1       14 x 14 x 80     160
ghost  1       3      6      112     1       14 x 14 x 112    480
ghost  1       5      6      192     2       7 x 7 x 192      672
ghost  3       5      6      192     1       7 x 7 x 192      1152
head   1       1      -      1536    1       7 x 7 x 1536     -
====== ======= ====== ====== ======= ======= ================ ==========

Resulting cost at 224x224x3 with 7 classes (``python benchmarks/profile_models.py --model ghostface``):
**1,292,159 parameters** (Keras "Total params"; 1,273,247 trainable, i.e. without the BN moving
statistics: both within 1% of 1.28 M) and **128.04 M multiply-accumulates** under
:data:`fer_keras.profiler.MAC_CONVENTION` (convs and dense; 129.44 M with the attention gates'
multiplies; <= 134.66 M either way). TensorFlow's profiler reports 268.91 M FLOPs (2 per
multiply-add, plus element-wise ops).

``noise_layers`` adds ``GaussianNoise(noise_std)`` layers, active in training only, for the privacy
study: the first (``noise_1``) after the stem, the second (``noise_2``) on the pooled features
before the classifier.
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from fer_keras.errors import ConfigError
from fer_keras.layers import FusedMBConv, GhostBottleneck
from fer_keras.layers.ghost_module import CONV_INIT
from fer_keras.models.registry import register_model


class Stage(NamedTuple):
    """One row of the stage table; see the module docstring."""

    block: str  # "fused" (FusedMBConv) or "ghost" (GhostBottleneck with triplet attention)
    repeats: int
    kernel: int  # side of the 3x3 expanding conv (fused) or of the depthwise convs (ghost)
    expand: float  # expansion (fused) / middle width (ghost) as a multiple of input channels
    filters: int
    strides: int  # stride of the row's first block


STEM_FILTERS = 16
HEAD_FILTERS = 1536
STAGES = (
    Stage("fused", 1, 3, 2, 24, 2),
    Stage("fused", 1, 3, 2, 40, 2),
    Stage("ghost", 1, 3, 3, 40, 1),
    Stage("ghost", 1, 3, 6, 80, 2),
    Stage("ghost", 1, 3, 2, 80, 1),
    Stage("ghost", 1, 3, 6, 112, 1),
    Stage("ghost", 1, 5, 6, 192, 2),
    Stage("ghost", 3, 5, 6, 192, 1),
)
#: Name of the last convolution (before pooling), for Grad-CAM; its BN and ReLU follow as
#: ``last_bn`` and ``last_relu``.
LAST_CONV_LAYER = "last_conv"


def make_divisible(value: float, divisor: int = 4) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), as in timm."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@register_model(input_shape=(224, 224, 3), input_mode="standardize", basic_augment="study_b",
                gradcam_layer=LAST_CONV_LAYER, noise_layers=True,
                cpu_xla_problem="XLA on a CPU trains GhostFace ~8x slower (16 vs 125 images/s at 112x112x3, "
                "batch 64, 2 cores) and its loss turns NaN within 13 steps (TensorFlow 2.19)",
                description="Study B's GhostFace (1.29 M parameters, 128 M MACs at 224x224x3)")
def ghostface(input_shape=(224, 224, 3), num_classes: int = 7, noise_layers: int = 0,
              noise_std: float = 0.1, dropout: float = 0.2, block_dropout: float = 0.0,
              attention: bool = True, stages=STAGES, stem_filters: int = STEM_FILTERS,
              head_filters: int = HEAD_FILTERS, name: str = "ghostface") -> tf.keras.Model:
    """Build GhostFace (uncompiled).

    Args:
        input_shape: ``(height, width, channels)`` of the standardised float input images.
        num_classes: outputs of the softmax.
        noise_layers: 0, 1 or 2 Gaussian-noise layers (after the stem; and before the classifier).
        noise_std: standard deviation of the Gaussian noise (in standardised input units).
        dropout: dropout rate on the pooled features before the classifier.
        block_dropout: stochastic-depth rate of residual Fused-MBConv blocks (0 = off).
        attention: triplet attention in the Ghost bottlenecks (False: plain GhostNet bottlenecks).
        stages, stem_filters, head_filters: the architecture (defaults: the documented table).
        name: the model's name.

    Returns:
        A functional ``tf.keras.Model`` with input ``image`` ``(batch, *input_shape)`` float32 and
        output ``probabilities`` ``(batch, num_classes)`` class probabilities.
    """
    if len(tuple(input_shape)) != 3:
        raise ConfigError(f"input_shape must be (height, width, channels), not {tuple(input_shape)}")
    if noise_layers not in (0, 1, 2):
        raise ConfigError(f"noise_layers must be 0, 1 or 2, not {noise_layers!r}")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, not {num_classes}")
    layers = tf.keras.layers

    inputs = layers.Input(tuple(input_shape), name="image")
    x = layers.Conv2D(stem_filters, 3, 2, padding="same", use_bias=False, kernel_initializer=CONV_INIT,
                      name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if noise_layers >= 1:
        x = layers.GaussianNoise(noise_std, name="noise_1")(x)

    channels = stem_filters
    for i, stage in enumerate(stages, start=1):
        for j in range(stage.repeats):
            strides = stage.strides if j == 0 else 1
            block_name = f"stage{i}_block{j + 1}"
            if stage.block == "fused":
                x = FusedMBConv(stage.filters, int(stage.expand), stage.kernel, strides,
                                dropout_rate=block_dropout, name=block_name)(x)
            elif stage.block == "ghost":
                x = GhostBottleneck(stage.filters, make_divisible(channels * stage.expand), stage.kernel,
                                    strides, attention=attention, name=block_name)(x)
            else:
                raise ConfigError(f"stage {i}: unknown block {stage.block!r}; use 'fused' or 'ghost'")
            channels = stage.filters

    x = layers.Conv2D(head_filters, 1, use_bias=False, kernel_initializer=CONV_INIT,
                      name=LAST_CONV_LAYER)(x)
    x = layers.BatchNormalization(name="last_bn")(x)
    x = layers.ReLU(name="last_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    if noise_layers >= 2:
        x = layers.GaussianNoise(noise_std, name="noise_2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=name)
