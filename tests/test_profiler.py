"""Parameter, MAC, TF-profiler, size and latency figures; the benchmark command."""
import importlib.util
import math
from pathlib import Path

import pytest

import fer_keras  # noqa: F401
import tensorflow as tf
from fer_keras import profiler
from fer_keras.layers import GhostModule, TripletAttention
from fer_keras.models.ghostface import ghostface

ROOT = Path(__file__).resolve().parents[1]
L = tf.keras.layers


def plain_model(groups=2):
    inputs = tf.keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(inputs)  # 8*8*9*3*16
    x = L.DepthwiseConv2D(3, 2, padding="same", use_bias=False, name="dw")(x)  # 4*4*9*16
    x = L.Conv2D(8, 1, groups=groups, use_bias=False, name="grouped")(x)  # 4*4*(16/2)*8
    x = L.SeparableConv2D(4, 3, use_bias=False, name="sep")(x)  # 2*2*(9*8 + 8*4)
    x = L.Flatten()(x)
    outputs = L.Dense(5, use_bias=False, name="dense")(x)  # 16*5
    return tf.keras.Model(inputs, outputs)


EXPECTED = {"conv": 8 * 8 * 9 * 3 * 16, "dw": 4 * 4 * 9 * 16, "grouped": 4 * 4 * 8 * 8,
            "sep": 2 * 2 * (9 * 8 + 8 * 4), "dense": 16 * 5}


def test_count_macs_per_layer_formulas():
    total, rows = profiler.count_macs(plain_model(), per_layer=True)
    by_name = {r["name"]: r for r in rows}
    assert {n: by_name[n]["macs"] for n in EXPECTED} == EXPECTED
    assert total == sum(EXPECTED.values()) == sum(r["macs"] for r in rows)
    assert by_name["image"]["output_shape"] == (1, 8, 8, 3) and by_name["dw"]["output_shape"] == (1, 4, 4, 16)


def test_custom_layers_are_counted_through_their_sublayers():
    h, w, c = 6, 5, 4
    inputs = tf.keras.Input((h, w, c))
    x = GhostModule(10, strides=1, name="ghost")(inputs)  # m = 5: 1x1 conv 4->5, 3x3 depthwise on 5
    outputs = TripletAttention(name="att")(x)  # three 7x7 convs 2->1 on (H,C), (C,W), (H,W) planes
    model = tf.keras.Model(inputs, outputs)
    _, rows = profiler.count_macs(model, per_layer=True)
    by_name = {r["name"]: r["macs"] for r in rows}
    assert by_name["ghost"] == h * w * c * 5 + h * w * 9 * 5
    assert by_name["att"] == 49 * 2 * (h * 10 + 10 * w + h * w)
    with_mul = profiler.count_macs(model, elementwise=True)
    assert with_mul == sum(by_name.values()) + 3 * h * w * 10


def test_count_parameters():
    model = ghostface((32, 32, 3))
    assert profiler.count_parameters(model) == model.count_params()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert profiler.count_parameters(model, trainable_only=True) == trainable


def test_tf_profiler_counts_two_flops_per_mac():
    model = plain_model(groups=1)  # TF's profiler counts grouped convs as 0
    assert profiler.tf_profiler_flops(model) == 2 * profiler.count_macs(model)


def test_size_latency_profile_and_tables(capsys):
    model = ghostface((32, 32, 3))
    figures = profiler.profile(model, latency_runs=2)
    assert figures["params"] == model.count_params()
    assert figures["size_bytes"] > 4 * figures["params"]  # float32 weights plus the config
    assert figures["latency_ms"] > 0
    # TF counts the FLOPs of the graph as run; triplet attention's gate convs run folded
    # (fer_keras.layers.triplet_attention.gate_conv), so compare on GhostFace without attention
    plain = profiler.profile(ghostface((32, 32, 3), attention=False), latency_runs=0)
    assert 2 * plain["macs"] <= plain["tf_profiler_flops"] <= 2.2 * plain["macs_with_attention"]
    assert figures["macs"] > plain["macs"]  # the gate convs are counted as defined (TripletAttention.own_macs)
    text = profiler.format_profile(figures)
    assert "2 FLOPs per multiply-add" in text and "convention" in text
    profiler.print_layer_table(model)
    table = capsys.readouterr().out
    assert "last_conv" in table and f"{figures['params']:,}" in table


def test_benchmark_command(capsys):
    spec = importlib.util.spec_from_file_location("profile_models", ROOT / "benchmarks" / "profile_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--model", "ghostface", "--input", "32,32,1", "--per-layer", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "== ghostface ==" in out and "TF profiler" in out and "stage8_block3" in out
    with pytest.raises(SystemExit):
        module.main(["--input", "32,32"])
