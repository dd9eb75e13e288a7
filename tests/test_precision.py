"""--precision: auto's choice, float32 softmax under mixed policies, a short mixed run that trains,
resumes exactly and exports float32 models."""
import json

import numpy as np
import pytest
import tensorflow as tf

from fer_keras.config import ExperimentConfig, TrainingConfig
from fer_keras.errors import ConfigError
from fer_keras.models import build_model
from fer_keras.precision import cpu_flags, float32_model, precision_policy, resolve_precision


def test_auto_chooses_by_device_and_cpu_flags():
    assert resolve_precision("auto", flags={"avx2", "amx_bf16", "amx_tile"}, gpu=False) == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx2", "avx512_bf16"}, gpu=False) == "float32"  # no AMX
    assert resolve_precision("auto", flags=set(), gpu=True) == "mixed_float16"
    assert resolve_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ConfigError, match="--precision 'half'"):
        resolve_precision("half")
    with pytest.raises(ConfigError, match="--precision"):
        TrainingConfig(precision="bf16")
    assert isinstance(cpu_flags(), set)


@pytest.mark.parametrize("name", ["dcnn", "ghostface"])
def test_softmax_is_float32_under_bf16_and_the_float32_copy_gives_the_same_probabilities(name):
    shape = (48, 48, 1) if name == "dcnn" else (32, 32, 3)
    with precision_policy("mixed_bfloat16"):
        model = build_model(name, shape, 7)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored
    x = tf.random.uniform((2, *shape), seed=1)
    probs = model(x, training=False)
    assert probs.dtype == tf.float32 and model.get_layer("probabilities").compute_dtype == "float32"
    assert model.layers[1].compute_dtype == "bfloat16"
    copy = float32_model(model)
    assert copy is not model and all(layer.compute_dtype == "float32" for layer in copy.layers)
    np.testing.assert_allclose(copy(x, training=False), probs, atol=0.05)  # bf16 rounding in the original
    assert float32_model(copy) is copy


def test_a_bf16_run_trains_and_exports_float32(tmp_path):
    from fer_keras.training.experiment import run_experiment

    config = ExperimentConfig(name="bf16", out=str(tmp_path)).replace(
        model__name="small_cnn", adversarial__enabled=True, training__epochs=1, training__batch_size=16,
        training__precision="mixed_bfloat16", data__demo_images_per_class=8)
    run = run_experiment(config, log=lambda *_: None)
    assert json.loads(run.file("config.json").read_text())["config"]["training"]["precision"] == "mixed_bfloat16"
    saved = tf.keras.models.load_model(run.model_file)
    assert all(layer.compute_dtype == "float32" for layer in saved.layers)  # NSL perturbed, the export is float32
    assert np.isfinite(run.metrics()["evaluate"]["loss"])


def test_a_bf16_run_stopped_and_resumed_matches_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    """Exact resume holds under mixed_bfloat16 (time budget after epoch 1 of 2, then --resume)."""
    import csv
    import sys
    from pathlib import Path

    from fer_keras.errors import run_main

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import run_nsl

    args = ["--no-adversarial", "--model", "small_cnn", "--limit", "40", "--eval-limit", "14", "--epochs", "2",
            "--batch-size", "10", "--precision", "mixed_bfloat16"]

    def history(out):
        run = next(Path(out).iterdir())
        with open(run / "history.csv") as f:
            return run, [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]

    for out, extra in ((tmp_path / "straight", []), (tmp_path / "stopped", ["--time-budget", "0.0001"])):
        monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--out", str(out), *args, *extra])
        run_main(run_nsl.main)
    stopped, partial = history(tmp_path / "stopped")
    assert len(partial) == 1
    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--resume", str(stopped)])
    run_main(run_nsl.main)
    assert history(tmp_path / "stopped")[1] == history(tmp_path / "straight")[1]


def test_classifier_computes_in_bf16_with_float32_probabilities():
    from fer_keras.classifier import load_classifier

    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1), dtype=np.uint8)
    exact = load_classifier("fer2013-dcnn")(faces)
    bf16 = load_classifier("fer2013-dcnn", precision="mixed_bfloat16")
    got = bf16(faces)
    assert got.dtype == np.float32 and np.allclose(got.sum(1), 1, atol=1e-5)
    assert np.abs(got - exact).max() < 0.05 and not np.array_equal(got, exact)  # bf16 rounds, a little
    assert bf16.precision == "mixed_bfloat16" and (got.argmax(1) == exact.argmax(1)).mean() >= 0.75


def test_with_precision_keeps_the_output_layer_float32():
    from fer_keras.models import build_model
    from fer_keras.precision import with_precision

    model = build_model("dcnn")
    mixed = with_precision(model, "mixed_bfloat16")
    assert mixed.layers[1].compute_dtype == "bfloat16" and mixed.layers[-1].compute_dtype == "float32"
    assert all(np.array_equal(a, b) for a, b in zip(mixed.get_weights(), model.get_weights()))
    assert with_precision(mixed, "float32").layers[1].compute_dtype == "float32"


def test_precision_of_a_tflite_model_is_one_line(tmp_path, capsys):
    from fer_keras import pretrained
    from fer_keras.cli import main

    tflite = pretrained.path("fer2013-dcnn", "tflite")
    face = tmp_path / "face.png"
    import cv2
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(face), "--model", str(tflite), "--detector", "none", "--precision", "mixed_bfloat16",
              "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision mixed_bfloat16: only a Keras model" in err[0] and "tflite" in err[0]
