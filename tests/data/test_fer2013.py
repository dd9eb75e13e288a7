"""FER2013 CSV and folder loaders, label subsets, splits, the demo set and tf.data pipelines."""
import numpy as np
import pytest

from fer_keras.data import (FaceData, load_fer2013, make_demo, parse_labels, read_fer2013_csv, split,
                            write_fer2013_csv)
from fer_keras.data.dataset import describe_split
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.data.pipeline import as_xy, make_dataset
from fer_keras.errors import ConfigError, DataError

HEADER = "emotion,pixels,Usage\n"


def _row(label=3, usage="Training", pixels=None):
    pixels = pixels if pixels is not None else " ".join(str(i % 256) for i in range(2304))
    return f"{label},{pixels},{usage}\n"


def test_csv_round_trip(tmp_path, demo_small):
    path = write_fer2013_csv(demo_small, tmp_path / "fer2013.csv")
    back = read_fer2013_csv(path)
    np.testing.assert_array_equal(back.images, demo_small.images)
    np.testing.assert_array_equal(back.labels, demo_small.labels)
    np.testing.assert_array_equal(back.usage, demo_small.usage)
    assert back.sources[0] == "fer2013.csv:2"
    assert load_fer2013(tmp_path).images.shape == (len(demo_small), 48, 48, 1)  # folder with fer2013.csv


def test_csv_values_parse_exactly(tmp_path):
    values = np.arange(2304) % 256
    (tmp_path / "a.csv").write_text("Usage,emotion,pixels\r\n" + "PublicTest,6," + " ".join(map(str, values)) + "\r\n")
    data = read_fer2013_csv(tmp_path / "a.csv")  # any column order, CRLF
    np.testing.assert_array_equal(data.images.reshape(-1), values)
    assert data.labels.tolist() == [6] and data.usage.tolist() == ["PublicTest"]


@pytest.mark.parametrize("body, message", [
    (_row() + _row(pixels="1 2 3"), "line 3: 3 pixel values, expected 2304"),
    (_row(pixels="12 x3 " + "0 " * 2302), "line 2: non-numeric pixel value 'x3'"),
    (_row(pixels=" ".join(["300"] * 2304)), "line 2: pixel value 300 is outside 0..255"),
    (_row(label=9), "line 2: unknown emotion '9'"),
    (_row(usage="Holdout"), "line 2: unknown Usage 'Holdout'"),
    ("1,2\n", "line 2: 2 fields, expected 3"),
])
def test_csv_errors_name_the_line(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(DataError, match=message) as info:
        read_fer2013_csv(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_csv_tolerates_irregular_spacing(tmp_path):
    values = np.arange(2304) % 256
    (tmp_path / "a.csv").write_text(HEADER + '4,"  ' + "  ".join(map(str, values)) + ' ",Training\n')
    np.testing.assert_array_equal(read_fer2013_csv(tmp_path / "a.csv").images.reshape(-1), values)


def test_csv_missing_column(tmp_path):
    (tmp_path / "x.csv").write_text("label,pixels\n1,2\n")
    with pytest.raises(DataError, match="missing column 'emotion'"):
        read_fer2013_csv(tmp_path / "x.csv")


def test_missing_path():
    with pytest.raises(DataError, match="no such file or folder"):
        load_fer2013("/nonexistent/fer2013")


def _write_folders(root, demo):
    import cv2

    for i, (image, label, usage) in enumerate(zip(demo.images, demo.labels, demo.usage)):
        split_dir = "train" if usage == "Training" else "test"
        folder = root / split_dir / ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{usage}_{i}.png"), image[..., 0])  # PNG: lossless, exact check


def test_image_folders(tmp_path, demo_small):
    _write_folders(tmp_path, demo_small)
    data = load_fer2013(tmp_path)
    assert len(data) == len(demo_small)
    assert data.class_counts() == demo_small.class_counts()
    assert set(data.usage) == {"Training", "PublicTest", "PrivateTest"}  # from file-name prefixes
    order = np.argsort([int(s.rsplit("_", 1)[1].split(".")[0]) for s in data.sources])
    np.testing.assert_array_equal(data.images[order], demo_small.images)


def test_image_folder_errors(tmp_path, demo_small):
    _write_folders(tmp_path, demo_small.take(np.arange(20)))
    (tmp_path / "train" / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        load_fer2013(tmp_path)
    (tmp_path / "train" / "contempt").rmdir()
    bad = tmp_path / "train" / "happy" / "broken.jpg"
    bad.parent.mkdir(exist_ok=True)
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"broken.jpg: unreadable image"):
        load_fer2013(tmp_path)
    bad.unlink()
    (tmp_path / "train" / "scared").mkdir()
    with pytest.raises(DataError, match="scared: empty class folder"):
        load_fer2013(tmp_path)


def test_label_subsets_reencode(demo_small):
    assert parse_labels("happiness,sadness,neutral") == (3, 4, 6)
    assert parse_labels("sad,happy,6") == (3, 4, 6) == parse_labels("3class")
    assert parse_labels(None) == tuple(range(7))
    with pytest.raises(ConfigError, match="unknown label 'joy'"):
        parse_labels("joy,sad")
    sub = demo_small.with_classes(parse_labels("3class"))
    assert sub.class_names == ("happiness", "sadness", "neutral")
    assert sorted(set(sub.labels)) == [0, 1, 2]
    original = demo_small.labels[np.isin(demo_small.labels, [3, 4, 6])]
    np.testing.assert_array_equal(np.array([3, 4, 6])[sub.labels], original)


def test_study_splits_sizes():
    n = 35887  # the FER2013 CSV: 90/10 -> 32,298 / 3,589; 80/10/10 -> 28,709 / 3,589 / 3,589
    rng = np.random.default_rng(0)
    labels = rng.choice(7, n, p=np.array([4953, 547, 5121, 8989, 6077, 4002, 6198]) / n)
    data = FaceData(np.zeros((n, 1, 1, 1), np.uint8), labels)
    a = split(data, "90/10")
    assert (len(a["train"]), len(a["test"])) == (32298, 3589)
    b = split(data, "80/10/10")
    assert (len(b["train"]), len(b["val"]), len(b["test"])) == (28709, 3589, 3589)
    assert not set(b["train"].sources) & set(b["test"].sources)
    # stratified: class shares agree to within a fraction of a percent
    share = lambda d: np.bincount(d.labels, minlength=7) / len(d)  # noqa: E731
    np.testing.assert_allclose(share(b["train"]), share(b["test"]), atol=0.003)
    assert split(data, "80/10/10")["test"].sources.tolist() == b["test"].sources.tolist()  # random_state=42


def test_study_splits_of_tiny_data_fall_back_or_say_why():
    data = FaceData(np.zeros((42, 1, 1, 1), np.uint8), np.arange(42) % 7)
    parts = split(data, "80/10/10")  # 4 test images cannot hold all 7 classes: drawn at random instead
    assert [len(parts[p]) for p in ("train", "val", "test")] == [34, 4, 4]
    with pytest.raises(DataError, match="--split 90/10: 5 images are too few to hold out 10 % for test"):
        split(data.take(np.arange(5)), "90/10")


def test_usage_split(demo_small):
    parts = split(demo_small, "usage")
    assert set(parts["train"].usage) == {"Training"}
    assert set(parts["val"].usage) == {"PublicTest"} and set(parts["test"].usage) == {"PrivateTest"}
    assert not describe_split(parts)["test_in_selection"]


def test_usage_split_without_private_test_validates_on_held_out_training():
    """Kaggle layout (no PrivateTest): a stratified 10% of Training validates, PublicTest tests."""
    demo = make_demo(images_per_class=40, seed=0)
    no_private = demo.take(demo.usage != "PrivateTest")
    parts = split(no_private, "usage")
    training = int((no_private.usage == "Training").sum())
    assert set(parts["test"].usage) == {"PublicTest"} and set(parts["val"].usage) == {"Training"}
    assert len(parts["val"]) == round(0.1 * training) and len(parts["train"]) + len(parts["val"]) == training
    assert not set(parts["train"].sources) & set(parts["val"].sources)
    assert set(np.unique(parts["val"].labels)) == set(range(7))  # stratified: every class validates
    assert split(no_private, "usage")["val"].sources.tolist() == parts["val"].sources.tolist()  # seeded
    info = describe_split(parts)
    assert info["val"]["usage"] == {"Training": len(parts["val"])} and not info["test_in_selection"]
    old = split(no_private, "publictest-val")
    assert old["val"].sources.tolist() == old["test"].sources.tolist()
    assert describe_split(old)["test_in_selection"]


def test_demo_is_deterministic_and_balanced():
    a, b = make_demo(5, seed=3), make_demo(5, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.dtype == np.uint8 and a.images.shape == (35, 48, 48, 1)
    assert set(a.class_counts().values()) == {5} and a.class_names == CLASS_NAMES
    assert not np.array_equal(a.images, make_demo(5, seed=4).images)


def test_pipeline_shapes_and_scaling(demo_small):
    ds = make_dataset(demo_small, (48, 48, 1), batch_size=10, mode="unit")
    batch = next(iter(ds))
    assert batch["image"].shape == (10, 48, 48, 1) and batch["label"].shape == (10, 7)
    np.testing.assert_allclose(batch["image"].numpy(), demo_small.images[:10] / 255.0, rtol=1e-6)
    x, y = next(iter(as_xy(ds)))
    assert set(x) == {"image"} and y.shape == (10, 7)
    rgb = next(iter(make_dataset(demo_small, (64, 64, 3), batch_size=4, mode="standardize")))["image"].numpy()
    assert rgb.shape == (4, 64, 64, 3)
    np.testing.assert_allclose(rgb.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(rgb.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_training_pipeline_shuffles_and_augments(demo_small):
    from fer_keras.augment import make_augmenter

    aug = make_augmenter("basic", "study_a", seed=1)
    ds = make_dataset(demo_small, (48, 48, 1), batch_size=len(demo_small), training=True, augment=aug)
    batch = next(iter(ds))
    assert not np.allclose(batch["image"].numpy(), demo_small.images / 255.0)
    assert sorted(batch["label"].numpy().argmax(1)) == sorted(demo_small.labels)


@pytest.mark.real_data
def test_real_fer2013_folders(shared_fer2013):
    import time

    start = time.time()
    data = load_fer2013(shared_fer2013)
    parts = split(data, "usage")
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (25838, 2871, 3589)
    assert set(parts["val"].usage) == {"Training"} and set(parts["test"].usage) == {"PublicTest"}
    assert data.class_counts()["happiness"] == 7215 + 895
    print(f"ingest {len(data)} images in {time.time() - start:.2f} s")


def test_atomic_open_leaves_the_old_file_when_writing_fails(tmp_path):
    from fer_keras.files import atomic_open

    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half a file")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_open(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"
