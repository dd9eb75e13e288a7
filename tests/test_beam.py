"""Batch inference on Apache Beam (fer_keras/beam.py, `fer-keras beam`) on the DirectRunner.

The Beam records must carry the probabilities `fer-keras predict` (or classify_faces) gives for the
same faces with the same model and detector; bad files and rows become status records; user mistakes
are one line. The model is a tiny CNN (tests/tiny_models.py) exported as a run folder and a .tflite file;
faces are found with the Haar cascade in a real photo (matplotlib's Grace Hopper).
"""
import gzip
import sys

import cv2
import numpy as np
import pytest

import fer_keras
from fer_keras.classifier import load_classifier
from fer_keras.data.fer2013 import read_fer2013_csv
from fer_keras.data.images import read_image
from fer_keras.faces import WholeImage
from fer_keras.recognizer import classify_faces

from tiny_models import tiny_run

try:
    import apache_beam  # noqa: F401
except ImportError:
    apache_beam = None
needs_beam = pytest.mark.skipif(apache_beam is None, reason='apache_beam not installed (pip install -e ".[beam]")')


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("model") / "run", tflite=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """hopper.jpg and sub/small.png (one face each for Haar), face.png (48x48: no face for Haar),
    bad.jpg (not an image) and notes.txt (not an image file name: left out)."""
    import matplotlib.cbook

    root = tmp_path_factory.mktemp("photos")
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    cv2.imwrite(str(root / "hopper.jpg"), photo)
    (root / "sub").mkdir()
    cv2.imwrite(str(root / "sub" / "small.png"), cv2.resize(photo, (300, 350)))
    cv2.imwrite(str(root / "face.png"), cv2.resize(cv2.cvtColor(photo[60:320, 120:380], cv2.COLOR_BGR2GRAY), (48, 48)))
    (root / "bad.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def _records(prefix):
    from fer_keras.beam import read_records

    return read_records(str(prefix))


def _probabilities(record, names):
    return np.array([record["probabilities"][c] for c in names])


@needs_beam
def test_image_folder_gives_predicts_faces_and_statuses(tmp_path, run, photos):
    from fer_keras import beam
    from fer_keras.predict import predict

    logged = []
    result = beam.run(str(photos), str(tmp_path / "out") + "/", str(run), detector="haar", log=logged.append)
    records = _records(result["prefix"])
    assert result["prefix"] == str(tmp_path / "out" / "faces")
    assert result["counts"] == {"inputs": 4, "ok": 2, "no_face": 1, "unreadable": 1}
    assert logged == [f"4 images, 2 faces, 1 without a face, 1 unreadable -> {result['prefix']}-*.jsonl"]

    expected = predict(photos, str(run), "haar", log=lambda _: None)
    names = expected["class_names"]
    assert result["class_names"] == names
    by_file = {r["file"]: r for r in records}
    assert sorted(by_file) == sorted(i["file"] for i in expected["items"]) == [
        "bad.jpg", "face.png", "hopper.jpg", "sub/small.png"]
    for item in expected["items"]:
        record = by_file[item["file"]]
        assert record["status"] == item["status"] and record.get("reason") == item.get("reason")
        if item["faces"]:
            (face,) = item["faces"]
            assert (record["face"], record["box"], record["score"], record["label"]) == (
                0, face["box"], face["score"], face["label"])
            assert np.allclose(_probabilities(record, names), _probabilities(face, names), atol=1e-5)
    assert list(by_file["hopper.jpg"])[:3] == ["file", "status", "face"]  # where it comes from, first


@needs_beam
def test_csv_rows_are_faces_and_bad_rows_are_status_lines(tmp_path, run):
    from fer_keras import beam

    rng = np.random.default_rng(0)
    rows = [f"{label},{' '.join(map(str, rng.integers(0, 256, 2304)))},PublicTest" for label in (0, 3, 6)]
    text = "emotion,pixels,Usage\n" + "\n".join([rows[0], "9," + rows[1][2:], rows[1], "3," + "x" * 2000 + ",Training",
                                                 "", rows[2]]) + "\n"
    (tmp_path / "good.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    with gzip.open(tmp_path / "fer.csv.gz", "wt") as f:
        f.write(text)
    result = beam.run(str(tmp_path / "fer.csv.gz"), str(tmp_path / "out"), str(run / "model" / "model.tflite"),
                      log=lambda _: None)
    by_line = {r["line"]: r for r in _records(tmp_path / "out")}
    assert sorted(by_line) == [2, 3, 4, 5, 7]  # line 6 is blank
    assert by_line[3]["status"] == by_line[5]["status"] == "unreadable"
    assert by_line[3]["reason"].startswith("unknown emotion '9'")
    assert by_line[5]["reason"].startswith("non-numeric pixel value")

    data = read_fer2013_csv(tmp_path / "good.csv")
    expected = classify_faces(list(data.images), WholeImage(), load_classifier(run / "model" / "model.tflite"))
    for line, truth, pairs in zip((2, 4, 7), ("anger", "happiness", "neutral"), expected):
        record = by_line[line]
        assert (record["file"], record["status"], record["usage"], record["true_label"], record["box"]) == (
            "fer.csv.gz", "ok", "PublicTest", truth, [0, 0, 48, 48])
        assert np.allclose(_probabilities(record, result["class_names"]), pairs[0][1], atol=1e-5)


@needs_beam
def test_command_line_glob_tflite_and_pre_cropped_faces(tmp_path, run, photos, capsys, monkeypatch):
    from fer_keras.cli import main

    monkeypatch.chdir(tmp_path)
    model = run / "model" / "model.tflite"
    main(["beam", str(photos / "*.png"), "--model", str(model), "--detector", "none", "--out", "cli/faces",
          "--batch-size", "2", "--direct_num_workers", "1"])  # a Beam option passes through
    assert "1 images, 1 faces" in capsys.readouterr().err
    (record,) = _records(tmp_path / "cli" / "faces")
    (pairs,) = classify_faces([read_image(photos / "face.png")], WholeImage(), load_classifier(model))
    assert record["file"] == "face.png" and record["box"] == [0, 0, 48, 48]
    assert np.allclose(_probabilities(record, list(record["probabilities"])), pairs[0][1], atol=1e-5)


def _one_line_error(main, argv, capsys, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error:") and message in error[0], error


@needs_beam
def test_command_line_mistakes_are_one_line(tmp_path, run, photos, capsys, monkeypatch):
    from fer_keras.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    model = ["--model", str(run), "--detector", "haar"]
    for argv, message in (([str(tmp_path / "nothing"), *model], "nothing: no such file, or nothing matches; pass"),
                          ([str(tmp_path / "*.jpg"), *model], "nothing matches"),
                          ([str(photos / "sub" / "small.png"), *model, "--out", "file/faces"],
                           "/file: cannot write there"),
                          ([str(photos), *model, "--runer", "DataflowRunner"], "unknown option(s) --runer"),
                          ([str(photos), "--model", str(tmp_path / "no.keras")], "no.keras: no such file"),
                          ([str(photos / "bad.jpg"), *model], "nothing could be read (1 unreadable)")):
        _one_line_error(main, ["beam", *argv], capsys, message)
    with pytest.raises(SystemExit):  # the other commands still refuse flags they do not know
        main(["predict", str(photos), "--runner", "DirectRunner"])


def test_without_beam_the_command_says_how_to_install_it(photos, capsys, monkeypatch):
    from fer_keras.cli import main

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam now fails
    monkeypatch.delitem(sys.modules, "fer_keras.beam", raising=False)
    monkeypatch.delattr(fer_keras, "beam", raising=False)
    _one_line_error(main, ["beam", str(photos)], capsys, 'pip install "fer_keras[beam]"')


@needs_beam
def test_sources_and_output_prefixes():
    from fer_keras.beam import is_csv, output_prefix, source_pattern

    assert source_pattern("gs://b/photos/") == ("gs://b/photos/**", "gs://b/photos/", True)
    assert source_pattern("gs://b/photos/*/x*.jpg") == ("gs://b/photos/*/x*.jpg", "gs://b/photos/", False)
    assert source_pattern("gs://b/a.jpg") == ("gs://b/a.jpg", "gs://b/", False)
    assert is_csv("gs://b/fer2013.CSV") and is_csv("x/*.csv.gz") and not is_csv("x/*.jpg")
    assert output_prefix("gs://b/out/") == "gs://b/out/faces" and output_prefix("gs://b/p") == "gs://b/p"


@needs_beam
def test_mixed_precision_on_the_workers_matches_float32_closely(tmp_path, run):
    from fer_keras import beam
    from fer_keras.errors import ConfigError

    rng = np.random.default_rng(1)
    rows = [f"{label},{' '.join(map(str, rng.integers(0, 256, 2304)))},PublicTest" for label in (0, 3, 6)]
    (tmp_path / "faces.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    got = {}
    for precision in ("float32", "mixed_bfloat16"):
        result = beam.run(str(tmp_path / "faces.csv"), str(tmp_path / precision), str(run), precision=precision,
                          log=lambda _: None)
        got[precision] = np.stack([_probabilities(r, result["class_names"])
                                   for r in sorted(_records(tmp_path / precision), key=lambda r: r["line"])])
    assert got["float32"].shape == (3, len(result["class_names"]))
    difference = np.abs(got["float32"] - got["mixed_bfloat16"]).max()
    assert 0 < difference < 0.05  # computed in bf16 on the workers (~3 significant digits), not float32
    with pytest.raises(ConfigError, match="precision"):
        beam.run(str(tmp_path / "faces.csv"), str(tmp_path / "tfl"), str(run / "model" / "model.tflite"),
                 precision="mixed_bfloat16", log=lambda _: None)
