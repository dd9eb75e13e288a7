"""One call from Python: EmotionRecognizer on arrays (RGB, gray, float), PIL images, paths and
batches; no face -> []; the fer package's names; the module-level shortcuts with the default model.

The model is a tiny untrained CNN (fixed random weights); faces are found with the Haar cascade."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

import fer_keras
from fer_keras import pretrained, recognizer
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError, DataError
from fer_keras.pretrained.packaging import package_run
from fer_keras.recognizer import FER_NAMES, DemoModelWarning, EmotionRecognizer, display_names, load_classifier

from tiny_models import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("recognizer") / "run")


@pytest.fixture(scope="module")
def photo():
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def rgb(photo):
    return cv2.cvtColor(cv2.imread(photo), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def rec(run):
    return EmotionRecognizer(run, detector="haar")


def _one_face(faces, names=CLASS_NAMES):
    assert len(faces) == 1
    face = faces[0]
    assert list(face)[:5] == ["box", "score", "landmarks", "label", "probabilities"]
    x, y, w, h = face["box"]
    assert 100 < x + w / 2 < 400 and w > 100 and face["landmarks"] is None  # Haar: no landmarks
    assert list(face["probabilities"]) == list(names) and abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    return face


def test_path_array_and_pil_give_the_same_faces(rec, photo, rgb):
    from PIL import Image

    by_path = _one_face(rec.detect_emotions(photo))
    assert _one_face(rec.detect_emotions(rgb)) == by_path
    assert _one_face(rec.detect_emotions(Image.open(photo))) == by_path
    floats = _one_face(rec.detect_emotions(rgb.astype(np.float32) / 255))  # 0..1 floats
    assert floats["box"] == by_path["box"]
    assert max(abs(floats["probabilities"][c] - by_path["probabilities"][c]) for c in CLASS_NAMES) < 1e-3
    assert _one_face(rec.detect_emotions(rgb.astype(np.float64)))["box"] == by_path["box"]  # 0..255 floats


def test_gray_and_rgba_input(rec, rgb):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    _one_face(rec.detect_emotions(gray))
    _one_face(rec.detect_emotions(gray[..., None]))
    _one_face(rec.detect_emotions(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])))


def test_no_face(rec):
    assert rec.detect_emotions(np.zeros((120, 160, 3), np.uint8)) == []
    assert rec.top_emotion(np.full((64, 64), 200, np.uint8)) == (None, None)


def test_batch_classifies_all_faces_in_one_model_call(rec, photo, rgb, monkeypatch):
    calls = []
    real = type(rec.classifier).__call__
    monkeypatch.setattr(type(rec.classifier), "__call__",
                        lambda self, x, tta="none": calls.append(len(x)) or real(self, x, tta))
    pair = np.hstack([rgb, rgb])
    results = rec.detect_emotions_batch([photo, np.zeros((50, 50), np.uint8), pair])
    assert [len(r) for r in results] == [1, 0, 2] and calls == [3]
    monkeypatch.undo()
    for got, want in zip(results, [rec.detect_emotions(photo), [], rec.detect_emotions(pair)]):  # as one by one
        assert [f["box"] for f in got] == [f["box"] for f in want]
        for a, b in zip(got, want):
            assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in CLASS_NAMES) < 1e-4
    assert rec.detect_emotions_batch([]) == []


def test_top_emotion(rec, photo):
    face = _one_face(rec.detect_emotions(photo))
    assert rec.top_emotion(photo) == (face["label"], face["probabilities"][face["label"]])


def test_fer_names(run, photo):
    assert display_names(CLASS_NAMES, "fer") == FER_NAMES == (
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert display_names(["happiness", "sadness", "neutral"], "fer") == ("happy", "sad", "neutral")
    assert display_names(["happy", "class9"], "fer") == ("happy", "class9")  # aliases; unknown names kept
    rec = EmotionRecognizer(run, detector="haar", names="fer")
    face = _one_face(rec.detect_emotions(photo), FER_NAMES)
    assert face["emotions"] == face["probabilities"] and rec.top_emotion(photo)[0] in FER_NAMES
    with pytest.raises(ConfigError, match="names must be one of project, fer"):
        EmotionRecognizer(run, detector="haar", names="deepface")


def test_bad_images(rec, tmp_path):
    with pytest.raises(DataError, match="no such image file"):
        rec.detect_emotions(tmp_path / "missing.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        rec.detect_emotions(str(tmp_path / "broken.jpg"))
    with pytest.raises(DataError, match=r"shape \(4, 4, 2\)"):
        rec.detect_emotions(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DataError, match="0..255"):
        rec.detect_emotions(np.full((8, 8), 300, np.int32))


def test_model_forms_and_demo_warning(tmp_path, run):
    assert load_classifier(run / "model" / "model.keras").class_names == CLASS_NAMES
    three = tiny_run(tmp_path / "three", class_names=("happiness", "sadness", "neutral"), tflite=True)
    tflite = load_classifier(three / "model" / "model_dynamic.tflite")  # mode and names from model_info.json
    assert tflite.class_names == ("happiness", "sadness", "neutral") and tflite.mode == "unit"
    with pytest.warns(DemoModelWarning, match="synthetic demo set"):
        load_classifier(tiny_run(tmp_path / "demo", data=None))
    with pytest.raises(ConfigError, match="no pretrained model of that name"):
        load_classifier(tmp_path / "nowhere.keras")


def test_module_shortcuts_use_the_default_pretrained_model(tmp_path, run, photo, monkeypatch):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")
    monkeypatch.setattr(recognizer, "_DEFAULT", None)
    with pytest.raises(ConfigError, match="'fer2013-dcnn' is not installed"):
        fer_keras.detect_emotions(photo)
    package_run(run, "fer2013-dcnn", log=lambda *_: None)
    monkeypatch.setattr(recognizer.EmotionRecognizer.__init__, "__defaults__",
                        (pretrained.DEFAULT_MODEL, "haar", "project"))  # Haar: no optional detector needed
    faces = fer_keras.detect_emotions(photo)
    _one_face(faces)
    assert fer_keras.top_emotion(photo)[0] == faces[0]["label"]
    assert fer_keras.EmotionRecognizer is EmotionRecognizer


def test_import_loads_no_model():
    code = ("import sys, fer_keras; assert 'fer_keras.recognizer' not in sys.modules; "
            "assert callable(fer_keras.detect_emotions); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().endswith("ok"), done.stderr[-1000:]


def test_flip_tta_averages_each_face_with_its_mirror_image(run, rec, photo, rgb):
    flipped = EmotionRecognizer(run, detector="haar", tta="flip")
    crops = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)
    expected = (rec.classifier(crops) + rec.classifier(crops[:, :, ::-1])) / 2
    np.testing.assert_allclose(flipped.classifier(crops, tta="flip"), expected, atol=1e-6)
    assert not np.allclose(expected, rec.classifier(crops), atol=1e-4)  # the mirror image changes the output
    face, plain = _one_face(flipped.detect_emotions(photo)), _one_face(rec.detect_emotions(photo))
    assert face["box"] == plain["box"] and face["probabilities"] != plain["probabilities"]
    assert "tta='flip'" in repr(flipped)
    twelve = flipped.classifier(crops, tta="flip+crops")  # 12 views: the model sees the crops too
    assert twelve.shape == expected.shape and not np.allclose(twelve, expected, atol=1e-4)
    np.testing.assert_allclose(twelve.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match=r"tta must be one of none, flip, flip\+crops, not 'crop'"):
        EmotionRecognizer(run, detector="haar", tta="crop")


def test_pre_cropped_faces_and_caller_given_boxes(run, rgb):
    """detector=None classifies each image as one face, uncut; face_rectangles skips detection
    (as the fer package's argument): the same crop by either way gives the same probabilities."""
    crop = rgb[80:330, 80:330]
    whole = EmotionRecognizer(run, detector=None)
    faces = whole.detect_emotions(crop)
    assert len(faces) == 1 and faces[0]["box"] == [0, 0, 250, 250]
    rec = EmotionRecognizer(run, detector="haar")
    given = rec.detect_emotions(rgb, face_rectangles=[(80, 80, 250, 250)])
    assert given[0]["box"] == [80, 80, 250, 250] and given[0]["score"] == 1.0
    assert given[0]["probabilities"] == pytest.approx(faces[0]["probabilities"], abs=2e-3)
    assert rec.detect_emotions(rgb, face_rectangles=[]) == []
    with pytest.raises(ConfigError, match="width and height must be positive"):
        rec.detect_emotions(rgb, face_rectangles=[(0, 0, 0, 5)])
