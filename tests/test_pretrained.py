"""The pretrained-model registry: a tiny model packaged into a temporary pretrained folder loads as
Keras and as int8 TFLite with its card; a missing or incomplete folder gives a one-line error."""
import json

import numpy as np
import pytest

from fer_keras import pretrained
from fer_keras.classifier import load_classifier
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError
from fer_keras.pretrained.packaging import package_run

from tiny_models import tiny_run


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")
    return tmp_path / "pretrained"


def test_missing_model_says_what_is_missing(root):
    assert pretrained.available() == []
    for call in (pretrained.path, pretrained.card, pretrained.load, pretrained.input_spec, load_classifier):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "'fer2013-dcnn' is not installed" in message
        assert str(root / "fer2013-dcnn") in message and "--model" in message
    (root / "fer2013-dcnn").mkdir(parents=True)
    (root / "fer2013-dcnn" / "card.json").write_text(json.dumps({"class_names": ["a"], "input": {}}))
    with pytest.raises(ConfigError, match=r"incomplete: labels.txt, model_int8.tflite missing"):
        pretrained.load(form="tflite")
    with pytest.raises(ConfigError, match="unknown model form 'onnx'"):
        pretrained.path(form="onnx")
    with pytest.raises(ConfigError, match="not a pretrained model name"):
        pretrained.path("../escape")


def test_build_then_load_both_forms(tmp_path, root):
    run = tiny_run(tmp_path / "run")
    folder = package_run(run, "fer2013-dcnn", log=lambda *_: None)
    assert folder == root / "fer2013-dcnn" and pretrained.available() == ["fer2013-dcnn"]
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "card.json", "labels.txt", "model.keras",
                                                        "model_int8.tflite"]
    card = pretrained.card()
    assert card["class_names"] == list(CLASS_NAMES) == pretrained.labels()
    assert card["input"] == {**card["input"], "shape": [48, 48, 1], "mode": "unit", "standardize": "image"}
    assert card["metrics"]["test"]["accuracy"] == 0.25 and card["source_run"] == "run" and card["data"] == "fer2013"
    assert "fer2013-dcnn" in (folder / "MODEL_CARD.md").read_text()
    faces = np.random.default_rng(0).random((3, 48, 48, 1), dtype=np.float32)
    keras_probs = pretrained.load().predict(faces, verbose=0)
    tflite = pretrained.load("fer2013-dcnn", form="tflite")
    assert tflite.class_names == CLASS_NAMES and tflite.input_shape == (48, 48, 1)
    np.testing.assert_allclose(tflite(faces), keras_probs, atol=0.05)
    cost = card["cost"]  # measured on the packaged files
    assert cost["keras_bytes"] == (folder / "model.keras").stat().st_size and cost["tflite_ms_batch1"] > 0
    assert cost["macs"] > 0 and "multiply-adds per face" in (folder / "MODEL_CARD.md").read_text()
    second = package_run(run, "second", compare_with=("fer2013-dcnn",), log=lambda *_: None)
    rows = pretrained.card("second")["compared_with"]
    assert [r["name"] for r in rows] == ["second", "fer2013-dcnn"] and rows[1]["macs"] == cost["macs"]
    assert "| fer2013-dcnn | " in (second / "MODEL_CARD.md").read_text()
    classifier = load_classifier()  # the default pretrained model
    assert classifier.class_names == CLASS_NAMES and classifier.mode == "unit"
    np.testing.assert_allclose(classifier((faces * 255).round().astype(np.uint8)),
                               pretrained.load().predict((faces * 255).round() / 255, verbose=0), atol=1e-5)
    assert pretrained.is_name("fer2013-dcnn") and not pretrained.is_name("x/model.keras")
    assert not pretrained.is_name("model.tflite")


def test_build_records_evaluation_of_both_forms(tmp_path, root):
    from fer_keras.data import FaceData, write_fer2013_csv

    rng = np.random.default_rng(1)
    data = FaceData(rng.integers(0, 256, (21, 48, 48, 1), dtype=np.uint8), np.arange(21) % 7,
                    usage=np.array(["PublicTest"] * 14 + ["Training"] * 7))
    write_fer2013_csv(data, tmp_path / "fer2013.csv")
    folder = package_run(tiny_run(tmp_path / "run"), "tiny", data=tmp_path / "fer2013.csv", log=lambda *_: None)
    evaluation = json.loads((folder / "card.json").read_text())["evaluation"]
    assert evaluation["usage"] == "PublicTest" and evaluation["data"] == "fer2013.csv"
    assert evaluation["keras"]["images"] == evaluation["tflite"]["images"] == 14
    assert abs(evaluation["keras"]["accuracy"] - evaluation["tflite"]["accuracy"]) <= 2 / 14
    assert "tflite on PublicTest" in (folder / "MODEL_CARD.md").read_text()


def test_package_script_writes_the_card_with_the_run_timing(tmp_path, root, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "package_model", Path(__file__).resolve().parents[1] / "experiments" / "package_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = tiny_run(tmp_path / "run")
    timing = tmp_path / "timing.json"
    timing.write_text(json.dumps({"wall_seconds": 120.5, "cpu_percent": 180, "cpu_model": "test CPU"}))
    script.main([str(run), "--name", "tiny", "--root", str(root), "--timing", str(timing)])
    card = json.loads((root / "tiny" / "card.json").read_text())
    assert card["source_run"] == "run" and card["training"]["wall_seconds"] == 120.5
    assert card["training"]["command"] is None  # no preset's flags give its epochs (None: chosen by the data)
    assert "Packaged run as 'tiny'" in capsys.readouterr().out
    (run / "metrics.json").unlink()
    with pytest.raises(ConfigError, match="not a finished training run"):
        script.main([str(run), "--name", "tiny", "--root", str(root)])
    with pytest.raises(ConfigError, match="--timing .*: no such file"):
        script.main([str(tiny_run(tmp_path / "run2")), "--name", "t2", "--root", str(root), "--timing", "nope.json"])


def test_a_model_trained_from_another_has_both_trainings_on_its_card(tmp_path, root):
    from fer_keras.files import read_json, write_json
    from fer_keras.pretrained.packaging import started_from

    first, second = tiny_run(tmp_path / "first"), tiny_run(tmp_path / "second")
    for run, epochs in ((first, 30), (second, 24)):
        write_json(run / "metrics.json", {**read_json(run / "metrics.json"), "training": {"epochs": epochs}})
    saved = read_json(second / "config.json")
    saved["config"]["model"]["init_from"] = str(first)
    write_json(second / "config.json", saved)
    source = started_from(str(first), command="python experiments/run_nsl.py --preset x",
                          timing={"wall_seconds": 7000.0, "cpu_percent": 167})
    assert source == {"source": "first", "epochs": 30, "command": "python experiments/run_nsl.py --preset x",
                      "wall_seconds": 7000.0, "cpu_percent": 167}
    folder = package_run(second, "restarted", started=source, log=lambda *_: None,
                         timing={"wall_seconds": 5400.0, "cpu_percent": 180,
                                 "cpu_percent_of": "the timed 4000 s of 5400 s"})
    assert pretrained.card("restarted")["training"]["started_from"] == source
    card = (folder / "MODEL_CARD.md").read_text()
    assert "| started from | `first`: 30 epochs, 1.94 h at 167 % CPU, `python experiments/run_nsl.py --preset x` |" in card
    assert "), 180 % CPU (over the timed 4000 s of 5400 s) |" in card  # a share of part of the run says so
    assert "| in all | 54 epochs, 3.44 h |" in card
    # a model fine-tuned from that pretrained one: its card's training, chain included
    assert started_from("restarted") == {"source": "restarted", "version": 1, "source_run": "second", "epochs": 24,
                                         "wall_seconds": 5400.0, "cpu_percent": 180,
                                         "cpu_percent_of": "the timed 4000 s of 5400 s", "started_from": source}
    third = tiny_run(tmp_path / "third")  # and its card names which version of the name it started from
    card = (package_run(third, "third", started=started_from("restarted"), log=lambda *_: None) / "MODEL_CARD.md").read_text()
    assert ("| started from | `restarted` version 1 (run second): 24 epochs, 1.50 h at 180 % CPU (over the timed "
            "4000 s of 5400 s) |") in card
    assert started_from(str(second / "model" / "model.keras")) == {"source": "model.keras"}


def test_a_run_that_started_from_an_older_version_of_a_name_cites_that_version(tmp_path, root):
    from fer_keras.pretrained.packaging import started_from

    first, second = tiny_run(tmp_path / "first"), tiny_run(tmp_path / "second")
    package_run(first, "named", timing={"wall_seconds": 60.0, "cpu_percent": 150}, log=lambda *_: None)
    version_1 = started_from("named")
    assert pretrained.identity("named") == {"version": 1, "source_run": "first"}
    package_run(second, "named", started=version_1, changes="fine-tuned", log=lambda *_: None)
    assert pretrained.identity("named") == {"version": 2, "source_run": "second"}
    # a run that began from version 1 while version 2 now ships under the name
    assert started_from("named", recorded={"version": 1, "source_run": "first"}) == version_1
    assert started_from("named", recorded={"version": 2, "source_run": "second"})["version"] == 2
    lost = started_from("named", recorded={"version": 1, "source_run": "elsewhere"})
    assert lost["source_run"] == "elsewhere" and "not found" in lost["note"]
    card = (package_run(tiny_run(tmp_path / "third"), "third", started=lost, log=lambda *_: None)
            / "MODEL_CARD.md").read_text()
    assert "| started from | `named` version 1 (run elsewhere): no longer shipped under this name; its training record was not found |" in card
    assert "| in all |" not in card


@pytest.mark.parametrize("name", ["fer2013-dcnn", "fer2013-ghostface"])
def test_shipped_models_load_in_both_forms_and_agree_with_their_cards(name):
    """The models committed in fer_keras/pretrained/: both forms load safely, give the same
    classes, and the card's cost matches the files."""
    from fer_keras.recognizer import EmotionRecognizer

    assert name in pretrained.available()
    card = pretrained.card(name)
    folder = pretrained.path(name)
    assert card["cost"]["keras_bytes"] == (folder / "model.keras").stat().st_size
    assert sum(p.stat().st_size for p in folder.iterdir()) < 13 * 2**20
    spec = pretrained.input_spec(name)
    faces = np.random.default_rng(0).integers(0, 256, (2, *spec.shape), dtype=np.uint8)
    keras_probs = load_classifier(name)(faces)
    tflite = pretrained.load(name, form="tflite")
    np.testing.assert_allclose(tflite(spec.prepare(faces).numpy()), keras_probs, atol=0.05)
    recognizer = EmotionRecognizer(model=name, detector=None)
    assert recognizer.detect_emotions(faces[0, ..., 0] if spec.shape[-1] == 1 else faces[0])[0]["label"] in CLASS_NAMES


def test_shipped_models_fit_the_size_budget():
    total = sum(p.stat().st_size for p in pretrained.ROOT.rglob("*") if p.is_file())
    assert total <= 25 * 2**20, f"fer_keras/pretrained holds {total / 2**20:.1f} MiB (budget 25 MiB)"


def test_a_new_version_of_a_shipped_name_says_what_changed(tmp_path, root):
    first, second = tiny_run(tmp_path / "first"), tiny_run(tmp_path / "second")
    card = json.loads((package_run(first, "tiny", root=root, log=lambda *a: None) / "card.json").read_text())
    assert card["version"] == 1 and "changes" not in card
    assert card["metrics"]["validation"] == {"accuracy": 0.5, "epoch": 2}  # the last epoch: no best one kept
    again = json.loads((package_run(first, "tiny", root=root, log=lambda *a: None) / "card.json").read_text())
    assert again["version"] == 1  # the same run packaged again is the same version
    with pytest.raises(ConfigError, match=r"tiny exists \(from first\): say what the new version changes"):
        package_run(second, "tiny", root=root, log=lambda *a: None)
    assert json.loads((root / "tiny" / "card.json").read_text())["source_run"] == "first"  # left as it was
    folder = package_run(second, "tiny", root=root, changes="distilled from an ensemble", log=lambda *a: None)
    card = json.loads((folder / "card.json").read_text())
    assert (card["version"], card["changes"], card["source_run"]) == (2, "distilled from an ensemble", "second")
    assert "| version | 2: distilled from an ensemble |" in (folder / "MODEL_CARD.md").read_text()
