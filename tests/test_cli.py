"""``fer-keras evaluate`` (labelled crops, no detection) on every model form, and ``fer-keras predict``
with no --model (the default pretrained model), a missing default, and a demo-trained model."""
import json

import cv2
import numpy as np
import pytest

from fer_keras import pretrained
from fer_keras.classifier import Classifier
from fer_keras.classifier import load_classifier
from fer_keras.cli import main
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError, DataError
from fer_keras.evaluation import evaluate_model_on_data
from fer_keras.pretrained.packaging import package_run

from tiny_models import tiny_run

KAGGLE = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # folder names (aliases)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A Kaggle-layout folder (train/ 1 face per class, test/ 3 per class) and a run with every export."""
    root = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    for split, count in (("train", 1), ("test", 3)):
        for name in KAGGLE:
            (root / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                cv2.imwrite(str(root / "data" / split / name / f"{i}.png"), rng.integers(0, 256, (48, 48), np.uint8))
    return {"data": root / "data", "run": tiny_run(root / "run", tflite=True)}


def _expected(classifier, data_dir, flip=False):
    """Accuracy by hand: test/ faces through the classifier."""
    hits = total = 0
    for label, name in enumerate(KAGGLE):
        for file in sorted((data_dir / "test" / name).iterdir()):
            face = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)[None, ..., None]
            p = classifier(face)
            if flip:
                p = (p + classifier(face[:, :, ::-1].copy())) / 2
            hits += int(p.argmax() == label)
            total += 1
    return hits / total, total


def test_evaluate_command_writes_figures_and_json(setup, tmp_path, capsys):
    main(["evaluate", str(setup["data"]), "--model", str(setup["run"]), "--usage", "PublicTest", "--tta", "flip",
          "--out", str(tmp_path / "ev")])
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    accuracy, total = _expected(Classifier(setup["run"]), setup["data"], flip=True)
    assert result["images"] == total == 21 and result["tta"] == "flip" and result["usage"] == "PublicTest"
    assert result["accuracy"] == pytest.approx(accuracy) and result["class_names"] == list(CLASS_NAMES)
    assert np.array(result["confusion_matrix"]).sum() == 21 and set(result["per_class"]) == set(CLASS_NAMES)
    assert (tmp_path / "ev" / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "ev" / "classification_report.txt").is_file()
    out = capsys.readouterr().out
    assert f"accuracy {accuracy:.4f}" in out and "on 21 faces" in out and "flip TTA" in out


def test_every_model_form_gives_the_same_accuracy(setup, tmp_path, monkeypatch):
    run = setup["run"]
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")
    package_run(run, "fer2013-dcnn", log=lambda *_: None)
    forms = {"run": run, "keras": run / "model" / "model.keras", "saved_model": load_classifier(
                 run / "model" / "saved_model", trusted=True), "tflite": run / "model" / "model.tflite",
             "tflite_int8": run / "model" / "model_dynamic.tflite", "pretrained": "fer2013-dcnn"}
    figures = {form: evaluate_model_on_data(model, setup["data"], usage="PublicTest")["accuracy"]
               for form, model in forms.items()}
    for form in ("keras", "saved_model", "tflite", "pretrained"):
        assert figures[form] == figures["run"], figures
    assert abs(figures["tflite_int8"] - figures["run"]) <= 2 / 21, figures
    main(["evaluate", str(setup["data"]), "--model", str(run / "model" / "saved_model"), "--trust-model",
          "--out", str(tmp_path / "sm")])  # the command too; a SavedModel can run code, so only when trusted
    assert json.loads((tmp_path / "sm" / "evaluation.json").read_text())["images"] == 28


def test_evaluate_matches_classes_by_name_and_checks_input(setup, tmp_path):
    three = tiny_run(tmp_path / "three", class_names=("happiness", "sadness", "neutral"))
    result = evaluate_model_on_data(three, setup["data"], usage="PublicTest")
    assert result["images"] == 9 and result["skipped"] == 12 and result["class_names"] == ["happiness", "sadness",
                                                                                           "neutral"]
    with pytest.raises(DataError, match="no rows with Usage 'PrivateTest'"):
        evaluate_model_on_data(three, setup["data"], usage="PrivateTest")
    with pytest.raises(ConfigError, match="tta must be"):
        evaluate_model_on_data(three, setup["data"], tta="crop")


def test_predict_without_model_uses_the_default(setup, tmp_path, monkeypatch, capsys):
    import matplotlib.cbook

    photo = str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", photo, "--detector", "haar"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert err.startswith("error: no --model given and pretrained model 'fer2013-dcnn' is not installed")

    package_run(setup["run"], "fer2013-dcnn", log=lambda *_: None)
    main(["predict", photo, "--detector", "haar", "--out", "p"])
    assert "using the pretrained model fer2013-dcnn" in capsys.readouterr().err
    saved = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert len(saved["items"][0]["faces"]) == 1 and saved["class_names"] == list(CLASS_NAMES)
    from fer_keras.predict import predict

    for model in (None, "fer2013-dcnn"):  # the Python API takes the default / a pretrained name too
        assert predict(photo, model, "haar", log=lambda *_: None)["items"][0]["faces"] == saved["items"][0]["faces"]

    demo = tiny_run(tmp_path / "demo", data=None)
    main(["predict", photo, "--model", str(demo), "--detector", "haar", "--out", "q"])
    assert "warning: model" in capsys.readouterr().err and (tmp_path / "q" / "predictions.json").is_file()
    from toys import exit_2_one_line  # an error after the demo model's warning is still one line alone

    line = exit_2_one_line(capsys, lambda: main(["predict", "missing.jpg", "--model", str(demo), "--out", "r"]))
    assert "missing.jpg" in line


def test_progress_bars(setup, tmp_path, capsys):
    import matplotlib.cbook

    from fer_keras.data.face_crops import crop_folder
    from fer_keras.predict import predict

    photo = str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    predict(photo, setup["run"], "haar", progress=True, log=lambda *_: None)
    assert "predict: 100%" in capsys.readouterr().err
    evaluate_model_on_data(setup["run"], setup["data"], progress=True, batch_size=10)
    err = capsys.readouterr().err
    assert "evaluate: 100%" in err and "28/28" in err
    (tmp_path / "photos" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "happy" / "a.jpg"), cv2.imread(photo))
    crop_folder(tmp_path / "photos", tmp_path / "crops", "haar", progress=True, log=lambda *_: None)
    assert "preprocess: 100%" in capsys.readouterr().err
    evaluate_model_on_data(setup["run"], setup["data"], progress=False)
    assert capsys.readouterr().err == ""
