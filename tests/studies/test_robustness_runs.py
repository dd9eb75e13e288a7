"""The robustness study on run folders: the command, its comparison table, its one-line errors."""
import json
import runpy
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from fer_keras.config import ExperimentConfig
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError
from fer_keras.files import write_json
from fer_keras.studies.robustness import evaluate_run, write_comparison

ROOT = Path(__file__).resolve().parents[2]


def _fake_run(root: Path, name: str, adversarial: bool) -> Path:
    """A run folder like run_experiment's, with a tiny 48x48 model, on 6-per-class demo data."""
    run = root / name
    (run / "model").mkdir(parents=True)
    config = ExperimentConfig.from_dict({"demo_images_per_class": 6, "adversarial": adversarial})
    write_json(run / "config.json", {"config": config.to_dict(), "resolved": {
        "input_shape": [48, 48, 1], "input_mode": "unit", "dataset_mean": None, "dataset_std": None,
        "class_names": list(CLASS_NAMES)}})
    tf.keras.utils.set_random_seed(1)
    inputs = tf.keras.Input((48, 48, 1), name="image")
    x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3)(inputs))
    tf.keras.Model(inputs, tf.keras.layers.Dense(7, activation="softmax")(x)).save(run / "model" / "model.keras")
    return run


def test_run_robustness_command(tmp_path, monkeypatch):
    runs = [_fake_run(tmp_path, "a-plain", False), _fake_run(tmp_path, "b-nsl", True)]
    argv = ["run_robustness.py", "--runs", *map(str, runs), "--epsilons", "0,4/255", "--pgd-steps", "2",
            "--out", str(tmp_path / "cmp")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "experiments" / "run_robustness.py"), run_name="__main__")  # in-process: fast
    for run in runs:
        res = json.loads((run / "robustness.json").read_text())
        assert res["epsilons"] == [0.0, 4 / 255] and res["images"] == 7 and (run / "figures" / "robustness.png").is_file()
    (cmp,) = (tmp_path / "cmp").iterdir()
    table = (cmp / "robustness_table.md").read_text()
    assert table.count("| a-plain |") == 3 and "NSL x0.3 step 0.12" in table
    assert (cmp / "robustness.png").is_file() and (cmp / "robustness_table.csv").is_file()


def test_evaluate_run_rejects_a_non_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="--runs .*nowhere: not a run folder"):
        evaluate_run(tmp_path / "nowhere")


def test_write_comparison_needs_same_epsilons(tmp_path):
    base = {"run": "r", "label": "x", "model": "dcnn", "adversarial": False, "multiplier": None, "step": None,
            "augment": "basic", "images": 1, "clean": 1.0, "fgsm": [1.0], "pgd": [1.0], "units": "u",
            "settings": {"pgd_steps": 1, "pgd_step_size": 0.1, "nsl_grad_norm": None, "white_box": True}}
    with pytest.raises(ConfigError, match="different --epsilons"):
        write_comparison([{**base, "epsilons": [0.0]}, {**base, "epsilons": [0.1]}], tmp_path)


def test_the_validation_split_is_attacked_into_its_own_file(tmp_path, monkeypatch):
    from fer_keras.runs import RunFolder

    run = _fake_run(tmp_path, "a-plain", False)
    argv = ["run_robustness.py", "--runs", str(run), "--split", "val", "--epsilons", "0,4/255", "--pgd-steps", "2",
            "--out", str(tmp_path / "cmp")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "experiments" / "run_robustness.py"), run_name="__main__")
    res = json.loads((run / "robustness_val.json").read_text())
    val, test = (RunFolder.open(run).held_out_split(part=part) for part in ("val", "test"))
    assert res["split"] == "val" and res["images"] == len(val) and len(val) != len(test)
    assert not (run / "robustness.json").exists() and (run / "figures" / "robustness_val.png").is_file()
    (cmp,) = (tmp_path / "cmp").iterdir()
    assert f"Accuracy on {len(val)} validation images per run" in (cmp / "robustness_table.md").read_text()
    with pytest.raises(ConfigError, match="--split train: must be one of test, val"):
        evaluate_run(run, split="train")
