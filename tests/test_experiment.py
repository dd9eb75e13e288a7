"""End to end: run_experiment and the run_nsl.py command on tiny demo data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from fer_keras.config import ExperimentConfig, TrainingConfig
from fer_keras.errors import ConfigError
from fer_keras.flags import config_from_args
from fer_keras.training.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = ["config.json", "history.csv", "metrics.json", "classification_report.txt",
             "figures/class_distribution.png", "figures/samples.png", "figures/training_curves.png",
             "figures/confusion_matrix.png", "figures/misclassified.png", "model/model.keras",
             "model/saved_model/saved_model.pb"]


def _config(tmp_path, **kw):
    """A tiny demo-set config; ``kw`` are flat settings (as earlier run folders stored them)."""
    return ExperimentConfig.from_dict({"demo_images_per_class": 6, "epochs": 1, "batch_size": 16,
                                       "out": str(tmp_path / "runs"), **kw})


@pytest.fixture(scope="module")
def nsl_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    return run_experiment(_config(tmp), log=lambda *a: None)


def test_run_folder_has_everything(nsl_run):
    for name in RUN_FILES:
        assert (nsl_run / name).exists(), name
    metrics = json.loads((nsl_run / "metrics.json").read_text())
    assert list(metrics["evaluate"]) == ["loss", "categorical_crossentropy", "categorical_accuracy",
                                         "scaled_adversarial_loss"]
    assert metrics["wrong"] == round((1 - metrics["accuracy"]) * metrics["images"])
    assert set(metrics["per_class"]) == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}
    assert metrics["export_check"]["keras_max_abs_diff"] < 1e-5
    assert metrics["export_check"]["saved_model_uint8_max_abs_diff"] < 1e-4  # raw pixels in, same answer
    config = json.loads((nsl_run / "config.json").read_text())
    assert config["config"]["adversarial"]["multiplier"] == 0.3 and config["resolved"]["images"]["train"] == 29
    assert "precision" in (nsl_run / "classification_report.txt").read_text()


def test_resume_of_a_finished_run_does_not_retrain(nsl_run):
    before = (nsl_run / "history.csv").read_text()
    run_experiment(ExperimentConfig(), resume=nsl_run, log=lambda *a: None)  # config comes from the folder
    assert (nsl_run / "history.csv").read_text() == before


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path, nsl_run):
    again = run_experiment(_config(tmp_path), log=lambda *a: None)
    first = json.loads((nsl_run / "metrics.json").read_text())["evaluate"]
    assert json.loads((again / "metrics.json").read_text())["evaluate"] == first


@pytest.mark.slow
def test_plain_run(tmp_path):
    run = run_experiment(_config(tmp_path, adversarial=False), log=lambda *a: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["evaluate"]) == ["loss", "categorical_crossentropy", "categorical_accuracy"]
    assert run.name.endswith("dcnn-plain")


def test_unwritable_out_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out .*cannot write there"):
        run_experiment(ExperimentConfig(out=str(blocker / "runs")), log=lambda *a: None)


def _run_nsl(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "experiments" / "run_nsl.py"), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/fer2013"], "error: no/such/fer2013: no such file or folder"),
    (["--labels", "joy,sad"], "error: unknown label 'joy'"),
    (["--resume", "nowhere"], "error: --resume nowhere: not a run folder"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    result = _run_nsl(*args, "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.mark.slow
def test_ghostface_nsl_run_at_small_input(tmp_path):
    config = _config(tmp_path, model="ghostface", input_shape=(32, 32, 3), optimizer="sgd", lr=0.1,
                     noise_layers=1)
    run = run_experiment(config, log=lambda *a: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert "scaled_adversarial_loss" in metrics["evaluate"]
    assert metrics["export_check"]["saved_model_max_abs_diff"] < 1e-5
    import tensorflow as tf

    model = tf.keras.models.load_model(run / "model" / "model.keras", compile=False)
    assert model.input_shape == (None, 32, 32, 3) and model.get_layer("noise_1")


def test_run_ghostface_defaults_are_the_study_recipe():
    from fer_keras.training.command_line import experiment_parser

    parser, defaults = experiment_parser("B", "", [])
    recipe = config_from_args(parser.parse_args([]), defaults)
    assert (recipe.model.name, recipe.optimizer.name, recipe.optimizer.lr) == ("ghostface", "sgd", 0.1)
    assert (recipe.training.batch_size, recipe.resolved_epochs) == (16, 8)  # demo set: 8 epochs
    assert recipe.replace(data__path="x").resolved_epochs == 100
    assert recipe.training.early_stopping and recipe.training.reduce_lr and not recipe.adversarial.enabled


def test_jit_is_refused_for_ghostface_on_a_cpu_before_any_run_folder(tmp_path):
    from fer_keras.config import ExperimentConfig
    from fer_keras.training.experiment import run_experiment

    config = ExperimentConfig(name="g", out=str(tmp_path / "runs")).replace(
        model__name="ghostface", model__input_size=32, adversarial__enabled=False, training__jit_compile=True,
        training__deterministic=False, training__epochs=1, data__demo_images_per_class=4)
    with pytest.raises(ConfigError, match="--jit: XLA on a CPU trains GhostFace ~8x slower .* loss turns NaN"):
        run_experiment(config, log=lambda *_: None)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_new_run_stopped_by_a_mistake_before_its_first_checkpoint_leaves_no_folder(tmp_path):
    from fer_keras.config import ExperimentConfig
    from fer_keras.training.experiment import run_experiment

    config = ExperimentConfig(name="n", out=str(tmp_path / "runs")).replace(
        model__noise_layers=1, adversarial__enabled=False, training__epochs=1, data__demo_images_per_class=4)
    with pytest.raises(ConfigError, match="model dcnn has no Gaussian-noise layers"):  # found after the folder was made
        run_experiment(config, log=lambda *_: None)
    assert list((tmp_path / "runs").iterdir()) == []


def test_jit_needs_nondeterministic_ops():
    with pytest.raises(ConfigError, match="--jit needs --no-deterministic"):
        TrainingConfig(jit_compile=True)
    assert TrainingConfig(jit_compile=True, deterministic=False).jit_compile


def test_init_from_copies_a_run_s_weights_and_refuses_another_architecture(tmp_path, nsl_run):
    import numpy as np

    from fer_keras.models import build_model
    from fer_keras.training import checkpointed_randomness
    from fer_keras.training.experiment import copy_weights

    with checkpointed_randomness():  # as run_experiment builds models
        model = build_model("dcnn", (48, 48, 1), 7)
    copy_weights(str(nsl_run), model)
    donor = tf.keras.models.load_model(nsl_run / "model" / "model.keras", compile=False)
    for a, b in zip(model.get_weights(), donor.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="--init-from .*: its weights do not fit model vgg"):
        copy_weights(str(nsl_run), build_model("vgg", (48, 48, 1), 7))
    run = run_experiment(_config(tmp_path, adversarial=False, init_from=str(nsl_run)), log=lambda *a: None)
    assert run.config.model.init_from == str(nsl_run) and run.finished
    # same data and split as the source run: it trained on none of this run's held-out images
    assert run.resolved["init_from"] == {"source": str(nsl_run), "val_images_it_trained_on": 0,
                                         "test_images_it_trained_on": 0}
    assert "it trained on 0 of this run's validation and 0 of its test images" in run.log_file.read_text()


def test_init_from_counts_held_out_images_the_source_trained_on(nsl_run, tmp_path, monkeypatch):
    from fer_keras import pretrained
    from fer_keras.data.prepare import prepare_data
    from fer_keras.pretrained.packaging import package_run
    from fer_keras.training.held_out import held_out_seen_by

    config = _config(nsl_run.path, split="80/10/10")  # held-out images drawn from all rows, Training too
    parts = prepare_data(config.data, config.seed, log=lambda *a: None)
    seen = held_out_seen_by(str(nsl_run), config, parts)
    val, test = seen["val_images_it_trained_on"], seen["test_images_it_trained_on"]
    training = [int((parts[p].usage == "Training").sum()) for p in ("val", "test")]
    assert [val, test] == training and val + test > 0  # exactly the held-out images from the source's Training
    bare = held_out_seen_by(str(nsl_run.model_file), config, parts)  # the .keras file: its run is found
    assert bare == {**seen, "source": str(nsl_run.model_file)}
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")  # a pretrained name: its card's config
    package_run(nsl_run, "demo-dcnn", log=lambda *a: None)
    assert held_out_seen_by("demo-dcnn", config, parts) == {**seen, "source": "demo-dcnn", "version": 1,
                                                           "source_run": nsl_run.name}  # which model the name was
    other = held_out_seen_by(str(nsl_run), config.replace(data__path="elsewhere/rafdb"), parts)
    assert other["not_checked"] == "trained on other data (the demo set)" and other["val_images_it_trained_on"] is None
