"""RAF-DB basic: label parsing, the official folder layout, and one-line errors."""
import os
from pathlib import Path

import numpy as np
import pytest

import fer_keras  # noqa: F401
from fer_keras.data.labels import CLASS_NAMES, RAFDB_TO_PROJECT
from fer_keras.data.rafdb import load_rafdb, rafdb_image_path, read_rafdb_labels
from fer_keras.errors import DataError

SHARED_DATA = Path(os.environ.get("FER_KERAS_SHARED_DATA",
                                  Path(__file__).resolve().parents[3] / "shared" / "data"))
REAL_LABELS = SHARED_DATA / "rafdb" / "EmoLabel" / "list_patition_label.txt"
# name, RAF-DB label (1 surprise .. 7 neutral), RGB colour of the fake face
ROWS = [("train_00001.jpg", 5, (255, 0, 0)), ("train_00002.jpg", 1, (0, 255, 0)),
        ("train_00003.jpg", 4, (0, 0, 255)), ("train_00004.jpg", 7, (200, 200, 0)),
        ("test_0001.jpg", 6, (0, 200, 200)), ("test_0002.jpg", 2, (90, 90, 90)),
        ("test_0003.jpg", 3, (255, 255, 255))]


def write_labels(root: Path, lines) -> Path:
    path = root / "EmoLabel" / "list_patition_label.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())  # CRLF, as the real file
    return path


def make_rafdb(root: Path, rows=ROWS, side=32) -> Path:
    import cv2

    write_labels(root, [f"{name} {label}" for name, label, _ in rows])
    for name, _, rgb in rows:
        image = np.zeros((side, side, 3), np.uint8) + np.array(rgb[::-1], np.uint8)  # BGR on disk
        for aligned in (True, False):
            path = Path(rafdb_image_path(root, name, aligned))
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
    return root


@pytest.fixture()
def rafdb(tmp_path):
    return make_rafdb(tmp_path / "basic")


def test_read_labels_maps_to_project_ids(rafdb):
    entries = read_rafdb_labels(rafdb / "EmoLabel" / "list_patition_label.txt")
    assert list(entries.names) == [r[0] for r in ROWS]
    assert list(entries.labels) == [RAFDB_TO_PROJECT[r[1]] for r in ROWS]
    assert CLASS_NAMES[entries.labels[0]] == "sadness" and CLASS_NAMES[entries.labels[1]] == "surprise"
    assert list(entries.usage) == ["Training"] * 4 + ["PublicTest"] * 3
    assert list(entries.line_numbers) == list(range(1, 8))


@pytest.mark.parametrize("aligned", [True, False])
def test_load_rafdb(rafdb, aligned):
    data = load_rafdb(rafdb, image_size=24, aligned=aligned)
    assert data.images.shape == (7, 24, 24, 3) and data.images.dtype == np.uint8
    assert list(data.labels) == [RAFDB_TO_PROJECT[r[1]] for r in ROWS]
    assert data.class_names == CLASS_NAMES
    assert list(data.usage) == ["Training"] * 4 + ["PublicTest"] * 3
    suffix = "Image/aligned/train_00001_aligned.jpg" if aligned else "Image/original/train_00001.jpg"
    assert data.sources[0].replace("\\", "/").endswith(suffix)
    np.testing.assert_allclose(data.images[:, 12, 12], [r[2] for r in ROWS], atol=8)  # RGB order kept


def test_parent_folder_and_own_size(rafdb):
    data = load_rafdb(rafdb.parent, image_size=None)  # the folder holding basic/
    assert data.image_shape == (32, 32, 3)


@pytest.mark.parametrize("line, message", [
    ("train_00009.jpg", "line 8: expected"),
    ("train_00009.png 3", "line 8: expected"),
    ("train_00009.jpg happy", "line 8: expected"),
    ("train_00009.jpg 8", "line 8: label 8 is outside 1..7"),
    ("test_0009.jpg 0", "line 8: label 0 is outside 1..7"),
])
def test_malformed_label_lines(tmp_path, line, message):
    path = write_labels(tmp_path, [f"{n} {label}" for n, label, _ in ROWS] + [line])
    with pytest.raises(DataError, match=message) as info:
        read_rafdb_labels(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_label_file(tmp_path):
    with pytest.raises(DataError, match="list_patition_label.txt: RAF-DB label file not found"):
        load_rafdb(tmp_path)


def test_missing_images_are_counted_and_the_first_named(rafdb):
    for name in ("train_00003.jpg", "test_0002.jpg"):
        Path(rafdb_image_path(rafdb, name)).unlink()
    with pytest.raises(DataError, match=r"2 of 7 images .* missing, the first .*train_00003_aligned.jpg "
                                        r"\(line 3\)"):
        load_rafdb(rafdb)


def test_unreadable_image(rafdb):
    Path(rafdb_image_path(rafdb, "test_0001.jpg")).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="test_0001_aligned.jpg: unreadable image"):
        load_rafdb(rafdb)


@pytest.mark.real_data
@pytest.mark.skipif(not REAL_LABELS.is_file(), reason=f"RAF-DB label file not present at {REAL_LABELS}")
def test_real_label_file():
    entries = read_rafdb_labels(REAL_LABELS)
    assert len(entries.names) == 15_339
    assert (entries.usage == "Training").sum() == 12_271 and (entries.usage == "PublicTest").sum() == 3_068
    train = np.bincount(entries.labels[entries.usage == "Training"], minlength=7)
    # anger, disgust, fear, happiness, sadness, surprise, neutral (RAF-DB's published counts)
    assert list(train) == [705, 717, 281, 4772, 1982, 1290, 2524]
    assert entries.names[0] == "train_00001.jpg" and entries.names[-1] == "test_3068.jpg"
