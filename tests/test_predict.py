"""Predict: faces in images, folders and videos -> boxes, probabilities, labels, annotated copies.

The model is an untrained DCNN (weights are random but fixed, so outputs can be compared across
formats). Faces are found with the Haar cascade, which needs no optional package.
"""
import csv
import json

import cv2
import numpy as np
import pytest

from fer_keras.classifier import Classifier
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.predict import predict


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A run folder (config.json + model/ export), a lone .keras file and a .tflite file."""
    import tensorflow as tf

    from fer_keras.data.pipeline import InputSpec
    from fer_keras.export import export_model
    from fer_keras.files import write_json
    from fer_keras.models import build_model

    root = tmp_path_factory.mktemp("models")
    tf.keras.utils.set_random_seed(0)
    model = build_model("dcnn")
    run = root / "run"
    paths = export_model(model, run / "model", InputSpec((48, 48, 1), "unit"), tflite=True)
    names = [f"class{i}" for i in range(7)]  # names come from the run's config, not the defaults
    write_json(run / "config.json", {"config": {"data": "fer2013.csv", "model": "dcnn", "standardize": "image"},
                                     "resolved": {"input_mode": "unit", "class_names": names}})
    model.save(root / "alone.keras")
    for name in ("tflite", "tflite_dynamic"):  # outside the run folder: nothing tells their input mode
        paths[name] = paths[name].replace(root / paths[name].name)
    return {"run": run, "keras": root / "alone.keras", "saved_model": paths["saved_model"],
            "tflite": paths["tflite"], "tflite_dynamic": paths["tflite_dynamic"], "names": names}


@pytest.fixture(scope="module")
def photo_bgr():
    import matplotlib.cbook

    return cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def _check_faces(item, names, count=1):
    assert item["status"] == ("ok" if count else "no_face") and len(item["faces"]) == count
    for face in item["faces"]:
        x, y, w, h = face["box"]
        assert 100 < (x + w / 2) % 512 < 400 and w > 100  # (512: the photo's width, for pasted copies)
        probs = face["probabilities"]
        assert list(probs) == list(names) and abs(sum(probs.values()) - 1) < 1e-3
        assert face["label"] == max(probs, key=probs.get)


def test_image_folder_with_run_folder_model(tmp_path, models, photo_bgr):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "hopper.jpg"), photo_bgr)
    cv2.imwrite(str(src / "blank.png"), np.zeros((100, 100), np.uint8))
    (src / "broken.jpg").write_bytes(b"no image")
    predict(src, models["run"], "haar", src / "out", log=lambda *_: None)
    result = predict(src, models["run"], "haar", src / "out", log=lambda *_: None)  # skips its own output folder
    assert len(result["items"]) == 3
    saved = json.loads((src / "out" / "predictions.json").read_text())
    assert saved == json.loads(json.dumps(result)) and saved["class_names"] == models["names"]
    items = {i["file"]: i for i in saved["items"]}
    _check_faces(items["hopper.jpg"], models["names"])
    _check_faces(items["blank.png"], models["names"], count=0)
    assert items["broken.jpg"]["status"] == "unreadable"
    annotated = cv2.imread(str(src / "out" / "annotated" / "hopper.jpg"))
    assert annotated.shape == photo_bgr.shape and np.abs(annotated.astype(int) - photo_bgr).max() > 100  # a box drawn
    assert (src / "out" / "annotated" / "blank.png.jpg").is_file()


def test_every_model_format_gives_the_same_probabilities(tmp_path, models, photo_bgr):
    path = tmp_path / "two.jpg"
    cv2.imwrite(str(path), np.hstack([photo_bgr, photo_bgr]))
    results = {}
    for kind in ("run", "keras", "saved_model", "tflite"):
        mode = "unit" if kind in ("saved_model", "tflite") else None  # no name or config to tell it
        item = predict(path, models[kind], "haar", input_mode=mode, log=lambda *_: None,
                       trusted=kind == "saved_model")["items"][0]  # a SavedModel runs its ops: our own, trusted
        _check_faces(item, models["names"] if kind in ("run", "saved_model") else CLASS_NAMES, count=2)
        results[kind] = np.array([list(f["probabilities"].values()) for f in item["faces"]])
    for kind, probs in results.items():
        assert np.abs(probs - results["run"]).max() < 1e-4, kind


def test_quantised_tflite_handles_changing_batch_sizes(models, photo_bgr):
    """The dynamic-range model is re-built, not resized, when the batch changes (resizing crashes TF 2.19)."""
    float_model = Classifier(models["run"])
    quantised = Classifier(models["tflite_dynamic"], input_mode="unit")
    crops = np.stack([cv2.resize(photo_bgr, quantised.input_shape[:2])[..., :1]] * 3)
    for batch in (1, 3, 2):
        probs = quantised(crops[:batch])
        assert probs.shape == (batch, 7)
        assert np.abs(probs - float_model(crops[:batch])).max() < 0.1


def test_classifier_input_mode_and_class_names(models):
    assert Classifier(models["keras"]).mode == "unit"  # from the model's name: dcnn
    with pytest.raises(ConfigError, match="input_mode"):
        Classifier(models["tflite"])
    with pytest.raises(ConfigError, match="7 outputs but 3 class names"):
        Classifier(models["keras"], class_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="no such file"):
        Classifier(models["run"] / "missing.keras")
    (models["run"].parent / "bad.keras").write_bytes(b"not a model")
    with pytest.raises(FerKerasError, match="bad.keras: cannot load"):
        Classifier(models["run"].parent / "bad.keras")


def test_video_every_other_frame_csv_and_annotated_video(tmp_path, models, photo_bgr):
    frame = cv2.resize(photo_bgr, (320, 376))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 376))
    for i in range(8):
        writer.write(frame if i < 6 else np.zeros_like(frame))  # the face leaves for the last two frames
    writer.release()
    result = predict(video, models["keras"], "haar", tmp_path / "out", fmt="csv", every=2, log=lambda *_: None)
    assert [(i["frame"], i["time"], i["status"]) for i in result["items"]] == [
        (0, 0.0, "ok"), (2, 0.2, "ok"), (4, 0.4, "ok"), (6, 0.6, "no_face")]
    with open(tmp_path / "out" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[0]["label"] in CLASS_NAMES and rows[3]["status"] == "no_face"
    assert [r["id"] for r in rows] == ["0", "0", "0", ""]  # the same face keeps its id from frame to frame
    assert abs(sum(float(rows[0][c]) for c in CLASS_NAMES) - 1) < 1e-3
    capture = cv2.VideoCapture(str(tmp_path / "out" / "annotated" / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4 and capture.get(cv2.CAP_PROP_FPS) == 5.0
    capture.release()
    assert not list((tmp_path / "out").rglob(".*"))  # no hidden half-written files left


def test_command_line(tmp_path, models, photo_bgr, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run that wrongly succeeds writes its default out folder here, not in the repo
    from fer_keras.cli import COMMANDS, main

    assert {"predict", "preprocess"} <= set(COMMANDS)
    cv2.imwrite(str(tmp_path / "a.jpg"), photo_bgr)
    main(["predict", str(tmp_path / "a.jpg"), "--model", str(models["run"]), "--detector", "haar",
          "--out", str(tmp_path / "out"), "--no-annotate"])
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["items"][0]["status"] == "ok"
    assert not (tmp_path / "out" / "annotated").exists()
    assert "1 faces" in capsys.readouterr().err  # progress and summary go to stderr
    main(["predict", str(tmp_path / "a.jpg"), "--model", str(models["run"]), "--detector", "haar",
          "--out", str(tmp_path / "flip"), "--no-annotate", "--tta", "flip"])
    plain, flipped = (json.loads((tmp_path / d / "predictions.json").read_text()) for d in ("out", "flip"))
    assert (plain["tta"], flipped["tta"]) == ("none", "flip")
    assert flipped["items"][0]["faces"][0]["box"] == plain["items"][0]["faces"][0]["box"]
    assert flipped["items"][0]["faces"][0]["probabilities"] != plain["items"][0]["faces"][0]["probabilities"]
    capsys.readouterr()
    for argv, message in ((["predict", str(tmp_path / "nothing.jpg"), "--model", str(models["run"])], "no such file"),
                          (["predict", str(tmp_path / "a.jpg"), "--model", str(models["tflite"]), "--detector",
                            "haar"], "input_mode"),
                          (["predict", str(tmp_path / "a.jpg"), "--model", str(models["run"]), "--detector", "haar",
                            "--detector-weights", "x.onnx"], "retinaface")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("error:") and message in error[0]


def test_face_tracker_keeps_ids_for_moving_faces_and_gives_new_ones():
    from fer_keras.faces import FaceTracker

    tracker = FaceTracker(max_missed=1)
    assert tracker.update([(0, 0, 10, 10), (50, 0, 10, 10)]) == [0, 1]
    assert tracker.update([(52, 1, 10, 10), (2, 0, 10, 10), (100, 100, 5, 5)]) == [1, 0, 2]  # order-free, new one
    assert tracker.update([(0, 0, 10, 10)]) == [0]
    assert tracker.update([]) == [] and tracker.update([]) == []
    assert tracker.update([(0, 0, 10, 10)]) == [3]  # dropped after max_missed frames unseen: a new id


def test_command_line_boxes_and_pre_cropped_faces(tmp_path, models, photo_bgr, capsys, monkeypatch):
    from fer_keras.cli import main

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), photo_bgr)
    cv2.imwrite(str(folder / "face.png"), cv2.resize(photo_bgr[60:300, 100:340], (48, 48)))
    (tmp_path / "boxes.json").write_text(json.dumps({"a.jpg": [[10, 20, 100, 120], [200, 30, 80, 80]]}))
    main(["predict", str(folder), "--model", str(models["run"]), "--detector", "haar", "--boxes", "boxes.json",
          "--out", "p"])
    items = {i["file"]: i for i in json.loads((tmp_path / "p" / "predictions.json").read_text())["items"]}
    assert [f["box"] for f in items["a.jpg"]["faces"]] == [[10, 20, 100, 120], [200, 30, 80, 80]]
    assert items["a.jpg"]["faces"][0]["score"] == 1.0
    main(["predict", str(folder / "face.png"), "--model", str(models["run"]), "--detector", "none", "--out", "q"])
    faces = json.loads((tmp_path / "q" / "predictions.json").read_text())["items"][0]["faces"]
    assert [f["box"] for f in faces] == [[0, 0, 48, 48]]
    (tmp_path / "bad.json").write_text(json.dumps({"nothere.jpg": [[0, 0, 5, 5]]}))
    with pytest.raises(SystemExit):
        main(["predict", str(folder), "--model", str(models["run"]), "--detector", "haar", "--boxes", "bad.json",
              "--out", "r"])
    assert "--boxes names 1 image(s) that are not among the inputs, e.g. 'nothere.jpg'" in capsys.readouterr().err
    assert not (tmp_path / "r" / ".lock").exists()  # a failed predict frees its --out folder too
