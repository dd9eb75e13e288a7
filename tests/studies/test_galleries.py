"""The explanation galleries of experiments/explain.py on two run folders."""
import json
import sys
from pathlib import Path

import tensorflow as tf

from fer_keras.config import ExperimentConfig
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.files import write_json
from fer_keras.models import small_cnn

ROOT = Path(__file__).resolve().parents[2]


def _fake_run(path, model, tag):
    """A run folder as fer_keras.training.experiment writes it, on the synthetic demo set."""
    config = ExperimentConfig.from_dict({"model": "dcnn", "demo_images_per_class": 10, "eval_limit": 70,
                                         "seed": int(tag)})
    run = path / f"run{tag}"
    (run / "model").mkdir(parents=True)
    write_json(run / "config.json", {"config": config.to_dict(), "resolved": {
        "input_shape": [48, 48, 1], "input_mode": "unit", "class_names": list(CLASS_NAMES)}})
    model.save(run / "model" / "model.keras")
    return run


def test_command_writes_galleries(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    import explain as command

    tf.keras.utils.set_random_seed(0)
    a, b = _fake_run(tmp_path, small_cnn(), 1), _fake_run(tmp_path, small_cnn(widths=(8, 8, 8)), 2)
    out = command.main(["--run", str(a), "--compare", str(b), "--threshold", "0", "--count", "8",
                        "--out", str(tmp_path / "explain")])
    summary = json.loads((out / "explain.json").read_text())
    for name in summary["figures"]:
        assert (out / name).stat().st_size > 5000
    assert {"gradcam.png", "confident_disagreements.png", "wrong_run1_right_run2.png",
            "wrong_run2_right_run1.png"} <= set(summary["figures"])
    assert summary["figures"]["confident_disagreements.png"] == 8  # threshold 0: every wrong face
    assert summary["layer"] == "conv3"
