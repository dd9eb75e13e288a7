"""fer_keras.data.hygiene and ``fer-keras hygiene``: exact counts on a small hand-built set."""
import csv
import json

import numpy as np
import pytest

from fer_keras.data import FaceData, load_fer2013, write_fer2013_csv
from fer_keras.data.hygiene import check_hygiene, duplicate_groups, duplicates_of, uniformity


def _faces():
    """17 faces: A x3 (Training, anger); B (disgust) once in Training and twice in PublicTest;
    C twice in Training (fear, happiness); D in Training (sadness) and PrivateTest (surprise);
    a blank face, one at 99.6% one value (std ~8), one with std 0.5 (two values); 4 unique faces."""
    rng = np.random.default_rng(0)
    face = lambda: rng.integers(0, 256, (48, 48, 1), dtype=np.uint8)  # noqa: E731
    a, b, c, d = face(), face(), face(), face()
    blank = np.zeros((48, 48, 1), np.uint8)
    mostly = np.full((48, 48, 1), 128, np.uint8)
    mostly.reshape(-1)[:10] = 255                        # 2294/2304 = 99.6% one value, std 8.4
    two = np.full((48, 48, 1), 100, np.uint8)
    two.reshape(-1)[::2] = 101                           # std 0.5, 50% one value
    rows = [  # (image, label, usage)
        (a, 0, "Training"), (a, 0, "Training"), (a, 0, "Training"),
        (b, 1, "Training"), (c, 2, "Training"), (c, 3, "Training"), (d, 4, "Training"),
        (blank, 6, "Training"), (mostly, 6, "Training"), (two, 6, "Training"),
        (face(), 0, "Training"), (face(), 1, "Training"),
        (b, 1, "PublicTest"), (b, 1, "PublicTest"), (face(), 2, "PublicTest"),
        (d, 5, "PrivateTest"), (face(), 3, "PrivateTest"),
    ]
    images, labels, usage = zip(*rows)
    return FaceData(np.stack(images), np.array(labels), usage=np.array(usage))


def test_exact_counts_on_a_hand_built_set():
    data = _faces()
    report = check_hygiene(data)
    c = report.counts
    assert c["splits"] == ["Training", "PublicTest", "PrivateTest"]
    assert (c["duplicate_groups"], c["duplicate_images"], c["redundant_copies"]) == (4, 10, 6)
    assert c["within_split"] == {
        "Training": {"duplicate_groups": 2, "duplicate_images": 5, "redundant_copies": 3},
        "PublicTest": {"duplicate_groups": 1, "duplicate_images": 2, "redundant_copies": 1},
        "PrivateTest": {"duplicate_groups": 0, "duplicate_images": 0, "redundant_copies": 0}}
    x = c["cross_split"]
    assert (x["PublicTest_in_Training"], x["PublicTest_in_Training_label_differs"]) == (2, 0)
    assert x["Training_in_PublicTest"] == 1
    assert (x["PrivateTest_in_Training"], x["PrivateTest_in_Training_label_differs"]) == (1, 1)
    assert x["PublicTest_in_PrivateTest"] == 0 and x["PrivateTest_in_PublicTest"] == 0
    assert c["groups_spanning_splits"] == 2
    assert (c["conflicting_label_groups"], c["conflicting_label_images"]) == (2, 4)
    assert c["conflicting_label_groups_within_split"] == 1 and c["conflicting_label_groups_across_splits_only"] == 1
    assert c["uniform_images"] == 3 and c["uniform_per_split"] == {"Training": 3, "PublicTest": 0, "PrivateTest": 0}
    assert c["uniform_and_duplicated"] == 0
    assert np.flatnonzero(report.uniform).tolist() == [7, 8, 9]

    # group ids follow first occurrence; unique rows are -1
    assert report.group.tolist() == [0, 0, 0, 1, 2, 2, 3, -1, -1, -1, -1, -1, 1, 1, -1, 3, -1]
    assert [g["group"] for g in report.groups(conflicting_only=True)] == [2, 3]
    assert report.groups(conflicting_only=True)[0]["labels"] == ["fear", "happiness"]
    assert [r["source"] for r in report.cross_split("PublicTest", "Training")] == ["#12", "#13"]
    rows = report.duplicate_rows()
    assert len(rows) == 10 and rows[0] == {"group": 0, "split": "Training", "source": "#0", "label": "anger"}
    assert json.loads(json.dumps(report.to_dict()))["counts"] == c  # JSON-ready


def test_uniformity_thresholds():
    data = _faces()
    std, share = uniformity(data)
    assert std[7] == 0 and share[7] == 1
    assert std[8] > 8 and share[8] == pytest.approx(2294 / 2304)
    assert std[9] == pytest.approx(0.5) and share[9] == pytest.approx(0.5)
    strict = check_hygiene(data, std_threshold=0.1, mode_share=1.0)
    assert np.flatnonzero(strict.uniform).tolist() == [7]


def test_duplicates_of():
    data = _faces()
    train, test = data.take(data.usage == "Training"), data.take(data.usage != "Training")
    assert duplicates_of(test, train).tolist() == [True, True, False, True, False]
    assert duplicates_of(train, test).tolist() == [False] * 3 + [True, False, False, True] + [False] * 5
    assert duplicates_of(train.images, test.images).tolist() == duplicates_of(train, test).tolist()
    assert not duplicates_of(train, test.take(np.zeros(len(test), bool))).any()
    # same bytes, other shape: not a duplicate
    assert not duplicates_of(train.images.reshape(len(train), 24, 96, 1), train).any()
    assert duplicate_groups(np.zeros((0, 48, 48, 1), np.uint8)).shape == (0,)


def test_cli_writes_the_files(tmp_path, capsys):
    from fer_keras.cli import main

    write_fer2013_csv(_faces(), tmp_path / "faces.csv")
    out = tmp_path / "out"
    main(["hygiene", str(tmp_path / "faces.csv"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "PublicTest images also in Training: 2" in printed and "conflicting-label groups: 2" in printed
    saved = json.loads((out / "hygiene.json").read_text())
    assert saved["counts"]["duplicate_images"] == 10 and len(saved["uniform_images"]) == 3
    assert len(saved["cross_split_duplicates"]["PublicTest_in_Training"]) == 2
    with open(out / "duplicates.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and set(rows[0]) == {"group", "split", "source", "label"}
    assert rows[0]["source"] == "faces.csv:2" and rows[0]["label"] == "anger"
    assert sorted(p.name for p in out.iterdir()) == ["duplicates.csv", "hygiene.json"]  # no temporary files


def test_cli_missing_path_is_one_line_exit_2(tmp_path, capsys):
    from fer_keras.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["hygiene", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nope" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.real_data
def test_real_fer2013_hygiene_counts_are_plausible(shared_fer2013):
    data = load_fer2013(shared_fer2013)
    c = check_hygiene(data).counts
    assert 200 <= c["cross_split"]["PublicTest_in_Training"] <= 400  # an outside count found 280
    assert 1000 <= c["within_split"]["Training"]["redundant_copies"] <= 2500
    assert 5 <= c["uniform_images"] <= 30 and c["conflicting_label_groups"] >= 10
    test = data.take(data.usage == "PublicTest")
    assert duplicates_of(test, data.take(data.usage == "Training")).sum() == c["cross_split"]["PublicTest_in_Training"]


def test_prepare_data_splits_a_data_set_the_caller_already_loaded_as_it_would_have_loaded_it(tmp_path):
    from fer_keras.config import DataConfig
    from fer_keras.data.prepare import prepare_data

    rng = np.random.default_rng(0)
    faces = FaceData(rng.integers(0, 256, (140, 48, 48, 1), dtype=np.uint8), np.arange(140) % 7,
                     usage=np.array(["Training"] * 100 + ["PublicTest"] * 40))
    path = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    config = DataConfig(path=str(path), drop_test_duplicates=True)
    read = prepare_data(config, log=lambda *a: None)
    given = prepare_data(config, log=lambda *a: None, faces=load_fer2013(path))
    for name in ("train", "val", "test"):
        assert np.array_equal(read[name].images, given[name].images) and np.array_equal(read[name].labels,
                                                                                        given[name].labels)
