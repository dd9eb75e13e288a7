"""GhostFace: budget at 224x224x3, other input sizes, noise layers, naming, saving."""
import importlib

import numpy as np
import pytest

import fer_keras  # noqa: F401
import tensorflow as tf
from fer_keras.errors import ConfigError
from fer_keras.layers import FusedMBConv, GhostBottleneck, TripletAttention
from fer_keras.models.ghostface import LAST_CONV_LAYER, STAGES, ghostface
from fer_keras.profiler import count_macs, count_parameters
from layer_checks import assert_save_reload_identical, random_weights

ghostface_module = importlib.import_module("fer_keras.models.ghostface")  # the package re-exports
BUDGET_PARAMS, BUDGET_MACS = 1.28e6, 134.66e6


@pytest.fixture(scope="module")
def model224():
    return ghostface()


def test_budget_at_224(model224):
    params, trainable = count_parameters(model224), count_parameters(model224, trainable_only=True)
    macs = count_macs(model224)
    assert abs(params - BUDGET_PARAMS) <= 0.01 * BUDGET_PARAMS
    assert abs(trainable - BUDGET_PARAMS) <= 0.01 * BUDGET_PARAMS  # also without BN statistics
    assert params == model224.count_params()
    assert macs <= BUDGET_MACS
    # The module docstring states the figures: keep it honest.
    assert f"{params:,}" in ghostface_module.__doc__ and f"{trainable:,}" in ghostface_module.__doc__
    assert f"{macs / 1e6:.2f} M" in ghostface_module.__doc__


def test_structure_follows_the_stage_table(model224):
    assert model224.name == "ghostface" and model224.input.name == "image"
    assert model224.input_shape == (None, 224, 224, 3) and model224.output_shape == (None, 7)
    blocks = [layer for layer in model224.layers if isinstance(layer, (FusedMBConv, GhostBottleneck))]
    assert len(blocks) == sum(stage.repeats for stage in STAGES)
    first_ghost = next(i for i, b in enumerate(blocks) if isinstance(b, GhostBottleneck))
    assert all(isinstance(b, FusedMBConv) for b in blocks[:first_ghost])  # fused first, ghost after
    assert all(isinstance(b, GhostBottleneck) and b.attention for b in blocks[first_ghost:])
    last_conv = model224.get_layer(LAST_CONV_LAYER)
    assert isinstance(last_conv, tf.keras.layers.Conv2D) and last_conv.output_shape == (None, 7, 7, 1536)
    assert not any(isinstance(layer, tf.keras.layers.GaussianNoise) for layer in model224.layers)


@pytest.mark.parametrize("shape", [(48, 48, 1), (112, 112, 3), (32, 32, 3)])
def test_other_input_sizes_build(shape):
    model = ghostface(shape, num_classes=5)
    assert model.output_shape == (None, 5)
    if shape == (32, 32, 3):
        probs = model(np.zeros((2, *shape), "float32"), training=False).numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("noise_layers", [1, 2])
def test_noise_layers(noise_layers):
    model = ghostface((32, 32, 1), noise_layers=noise_layers, noise_std=0.3)
    noise = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.GaussianNoise)]
    assert [layer.name for layer in noise] == ["noise_1", "noise_2"][:noise_layers]
    assert all(layer.stddev == 0.3 for layer in noise)
    names = [layer.name for layer in model.layers]
    assert names.index("noise_1") == names.index("stem_relu") + 1
    if noise_layers == 2:
        assert names.index("noise_2") == names.index("probabilities") - 1
    # Inference is deterministic (noise only in training).
    x = np.ones((1, 32, 32, 1), "float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="noise_layers"):
        ghostface((32, 32, 3), noise_layers=3)
    with pytest.raises(ConfigError, match="input_shape"):
        ghostface((32, 32))


def test_without_attention_has_no_triplet_attention():
    model = ghostface((32, 32, 3), attention=False)
    assert not any(isinstance(layer, TripletAttention) for layer in model._flatten_layers())
    assert count_parameters(model) < count_parameters(ghostface((32, 32, 3)))


def test_save_and_reload_identical(tmp_path):
    model = ghostface((32, 32, 1), noise_layers=2)
    random_weights(model, seed=2)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    loaded = assert_save_reload_identical(model, x, str(tmp_path))
    assert loaded.name == "ghostface" and loaded.get_layer(LAST_CONV_LAYER) is not None


def test_saved_model_loads_in_a_fresh_process_after_import_fer_keras(tmp_path):
    """A user's session: only ``import fer_keras``, then plain ``load_model`` (no custom_objects)."""
    import subprocess
    import sys

    model = ghostface((32, 32, 3))
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "g.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model(x).numpy())
    code = ("import fer_keras, numpy as np, tensorflow as tf, sys; d = sys.argv[1]; "
            "m = tf.keras.models.load_model(d + '/g.keras'); "
            "print(float(np.abs(m(np.load(d + '/x.npy')).numpy() - np.load(d + '/y.npy')).max()))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-5


def test_speed_benchmark_runs_and_checks_equal_outputs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ghostface.py"
    spec = importlib.util.spec_from_file_location("bench_ghostface", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--size", "32", "--batch", "4", "--steps", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    diff = float(out.split("relative to the largest feature: ")[1].split()[0])
    assert diff < 1e-4 and "before:" in out and "after :" in out and "speed-up:" in out
