"""Run folders: the one reader of their layout, for new folders and every folder under docs/runs."""
from pathlib import Path

import pytest

from fer_keras.config import ExperimentConfig
from fer_keras.errors import ConfigError, DataError
from fer_keras.runs import KERAS_FILE, MODEL_DIR, RunFolder, resolve_model
from fer_keras.studies.mia import MIAConfig

DOCS_RUNS = sorted(p.parent for p in (Path(__file__).resolve().parents[1] / "docs" / "runs").rglob("config.json"))


def test_create_write_and_read(tmp_path):
    run = RunFolder.create(tmp_path / "out", "dcnn-nsl")
    assert run.name.endswith("-dcnn-nsl") and run.path.parent == tmp_path / "out"
    assert RunFolder.create(tmp_path / "out", "dcnn-nsl").path != run.path  # same second: suffixed
    config = ExperimentConfig().replace(model__name="vgg")
    run.write_config(config, {"input_shape": [48, 48, 1], "input_mode": "unit", "class_names": ["a", "b"]})
    again = RunFolder.open(run.path)
    assert again.config == config and again.kind == "train" and again.class_names == ("a", "b")
    assert again.input_spec.shape == (48, 48, 1) and again.input_spec.mode == "unit"
    assert again.environment["cpus"] >= 1 and not again.finished and again.metrics() is None
    assert again.model_file == run.path / MODEL_DIR / KERAS_FILE and again / "x.json" == run.path / "x.json"


def test_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="--resume .*nowhere: not a run folder"):
        RunFolder.open(tmp_path / "nowhere", "--resume")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json: not valid JSON"):
        RunFolder.open(tmp_path / "broken")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"config": {}}')
    with pytest.raises(ConfigError, match="not a finished run folder"):
        RunFolder.open(tmp_path / "empty", finished=True)
    with pytest.raises(ConfigError, match="no such file or folder"):
        resolve_model(tmp_path / "gone")


def test_find_from_a_path_inside(tmp_path):
    run = RunFolder.create(tmp_path, "x")
    run.write_config(ExperimentConfig())
    (run.model_dir).mkdir()
    assert RunFolder.find(run.model_dir / "model.tflite").path == run.path
    assert RunFolder.find(run.path).path == run.path and RunFolder.find(tmp_path) is None


@pytest.mark.parametrize("folder", DOCS_RUNS, ids=[p.name for p in DOCS_RUNS])
def test_every_published_run_folder_still_loads(folder):
    run = RunFolder.open(folder)
    if run.kind == "train":
        assert run.config.model.name and run.input_spec.shape == tuple(run.resolved["input_shape"])
        assert len(run.history()) >= 1
    elif run.kind == "framing":
        from fer_keras.studies.framing import FramingConfig

        assert FramingConfig.from_dict(run.saved["config"]).margins and run.metrics()["choice"]["detector_order"]
    elif run.kind == "ensemble":
        from fer_keras.studies.ensemble import EnsembleConfig

        metrics = run.metrics()
        assert EnsembleConfig(**run.saved["config"]).models and sum(metrics["weights"].values()) > 0.99
    else:
        assert MIAConfig.from_dict(run.saved["config"]).audit.settings
