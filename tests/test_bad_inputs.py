"""The bad-input corpus (tests/bad_inputs.py): each user mistake gives one line ``error: ...`` and
exit status 2, or, for a file among others in ``fer-keras predict`` / ``preprocess``, a recorded
status while the rest goes on; nothing half-written is left behind.

Commands run in-process (``fer_keras.cli.main``, ``fer_keras.errors.run_main``), not as
subprocesses: each of those would spend seconds importing TensorFlow.
"""
import csv
import errno
import json
import os

import numpy as np
import pytest

import bad_inputs as bad
from fer_keras.cli import main
from fer_keras.data import load_fer2013
from fer_keras.errors import run_main

from toys import exit_2_one_line

QUOTE = 200  # characters of offending input a message may quote


def _files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return bad.run_folder(tmp_path_factory.mktemp("run") / "run", saved_model=False)


# ------------------------------------------------------------------------------- data sets

@pytest.mark.parametrize("case, make, says", [
    ("malformed row", lambda d: bad.malformed_csv(d / "f.csv"), "line 3: non-numeric pixel value 'xxxx"),
    ("header missing", lambda d: bad.headerless_csv(d / "f.csv"), "missing column 'emotion' (header is '3,7 7 7"),
    ("binary garbage", lambda d: bad.garbage_file(d / "f.csv"), "binary data, not a CSV text file"),
    ("overlong line", lambda d: bad.long_line_csv(d / "f.csv"), "line 3: longer than 65,536 bytes, far longer than"),
    ("missing file", lambda d: d / "nothing.csv", "no such file or folder"),
    ("unknown label folder", lambda d: bad.kaggle_folder(d / "k", extra_class="confused"),
     "unknown class folder 'confused'"),
    ("symlink loop", lambda d: bad.kaggle_folder(d / "k", loop=True), "loop.png: a symbolic link loop"),
])
def test_data_set_mistakes_give_one_short_line(tmp_path, capsys, case, make, says):
    path = make(tmp_path)
    line = exit_2_one_line(capsys, lambda: run_main(lambda: load_fer2013(path)))
    assert says in line, line
    assert len(line) < len(str(path)) + QUOTE + 150, (case, len(line))  # quotes at most ~200 characters


def test_evaluate_reads_a_file_whose_name_is_not_utf8(tmp_path, run, capsys):
    """OpenCV's imread crashed (segmentation fault) on such a name; files are now read by Python."""
    data = bad.kaggle_folder(tmp_path / "k", non_utf8=True)
    assert load_fer2013(data).images.shape == (3, 48, 48, 1)
    main(["evaluate", str(data), "--model", str(run), "--out", str(tmp_path / "eval")])
    assert "on 3 faces" in capsys.readouterr().out


def test_evaluate_refuses_an_image_over_max_pixels_before_decoding_it(tmp_path, run, capsys):
    data = bad.kaggle_folder(tmp_path / "k", big=(30000, 30000))  # 2.6 GB decoded in 3 channels, ~1 MB on disk
    line = exit_2_one_line(capsys, lambda: main(["evaluate", str(data), "--model", str(run),
                                                 "--out", str(tmp_path / "eval")]))
    assert "big.png: unreadable image (900,000,000 pixels, over the 40,000,000-pixel limit (--max-pixels))" in line
    assert not (tmp_path / "eval").exists()
    data = bad.kaggle_folder(tmp_path / "k2", big=(8000, 6000))
    exit_2_one_line(capsys, lambda: main(["evaluate", str(data), "--model", str(run), "--out", str(tmp_path / "eval")]))
    main(["evaluate", str(data), "--model", str(run), "--out", str(tmp_path / "eval"), "--max-pixels", "50000000"])
    assert "on 3 faces" in capsys.readouterr().out


def test_a_message_prints_a_non_utf8_file_name(tmp_path, capsys):
    from fer_keras.data.images import read_images

    name = os.fsdecode(os.fsencode(tmp_path) + b"/x\xff.png")
    open(name, "wb").write(b"not an image")
    line = exit_2_one_line(capsys, lambda: run_main(lambda: read_images([name], 48)))
    assert "x\\xff.png: unreadable image" in line


def test_csv_with_a_utf8_bom_loads(tmp_path):
    data = load_fer2013(bad.good_csv(tmp_path / "bom.csv", rows=4, bom=True))
    assert len(data) == 4 and list(data.labels) == [0, 1, 2, 3] and data.images.shape == (4, 48, 48, 1)


def test_dataset_images_over_the_pixel_limit_are_named_not_decoded(tmp_path):
    from fer_keras.data.images import read_images
    from fer_keras.errors import DataError

    files = [str(bad.face_png(tmp_path / "a.png")), str(bad.large_png(tmp_path / "b.png", 20000, 20000))]
    with pytest.raises(DataError, match="b.png: unreadable image \\(400,000,000 pixels, over the 1,000,000-pixel"):
        read_images(files, 48, max_pixels=1_000_000)
    huge = str(bad.large_png(tmp_path / "c.png", 40000, 30000))  # over OpenCV's own limit (2^30 pixels)
    with pytest.raises(DataError, match="c.png: unreadable image \\(1,200,000,000 pixels, over the "
                                        "1,073,741,824-pixel limit \\(OpenCV's\\)"):
        read_images([files[0], huge], 48, max_pixels=None)


# ----------------------------------------------------------------------- fer-keras predict

def test_predict_records_a_status_for_each_bad_file_and_goes_on(tmp_path, run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in"
    bad.face_png(src / "blank.png")  # no face
    bad.large_png(src / "big.png", 20000, 20000)  # the 1.2 MB PNG, here header-only
    bad.large_png(src / "huge.png", 40000, 30000)  # over OpenCV's own pixel limit
    bad.large_png(src / "medium.png", 1200, 1000)  # over the --max-pixels given below
    bad.zero_frame_video(src / "empty.avi")
    (src / "loop.png").symlink_to("loop.png")
    (src / "broken.jpg").write_bytes(b"not an image")
    main(["predict", str(src), "--model", str(run), "--detector", "haar", "--out", str(tmp_path / "out"),
          "--max-pixels", "1000000"])
    items = {i["file"]: i for i in json.loads((tmp_path / "out" / "predictions.json").read_text())["items"]}
    statuses = {name: (i["status"], i.get("reason", "")) for name, i in items.items()}
    assert statuses["blank.png"] == ("no_face", "")
    assert statuses["big.png"][0] == "unreadable" and "400,000,000 pixels, over the 1,000,000" in statuses["big.png"][1]
    assert "1,200,000,000 pixels" in statuses["huge.png"][1]
    assert statuses["medium.png"] == ("unreadable", "1200x1000 = 1,200,000 pixels, over the 1,000,000-pixel limit "
                                                    "(--max-pixels)")
    assert statuses["empty.avi"] == ("no_frames", "the video has no frames")
    assert statuses["loop.png"] == ("unreadable", "a symbolic link that loops or leads nowhere")
    assert statuses["broken.jpg"] == ("unreadable", "not a readable image")
    assert "medium.png: unreadable (1200x1000" in capsys.readouterr().err  # also said as it happens
    main(["predict", str(src / "medium.png"), "--model", str(run), "--detector", "haar", "--out",
          str(tmp_path / "out2"), "--format", "csv"])  # under the default limit (40 megapixels): decoded
    with open(tmp_path / "out2" / "predictions.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["no_face"]
    assert not list((tmp_path / "out").rglob(".*"))  # no hidden half-written files


@pytest.mark.parametrize("case, argv, says", [
    ("missing source", ["predict", "{tmp}/nothing.jpg", "--model", "{run}"], "no such file or folder"),
    ("unwritable output folder", ["predict", "{tmp}/face.png", "--model", "{run}", "--detector", "haar",
                                  "--out", "{tmp}/face.png/out"], "cannot write there (Not a directory)"),
    ("malicious model", ["predict", "{tmp}/face.png", "--model", "{tmp}/evil.keras", "--detector", "haar"],
     "legacy Keras HDF5 file"),
    ("preprocess unwritable output", ["preprocess", "{tmp}/photos", "{tmp}/face.png/out", "--detector", "haar"],
     "cannot write there (Not a directory)"),
])
def test_command_mistakes_give_one_line(tmp_path, run, capsys, monkeypatch, case, argv, says):
    monkeypatch.chdir(tmp_path)
    bad.face_png(tmp_path / "face.png")
    bad.face_png(tmp_path / "photos" / "happy" / "a.png")
    bad.hdf5_lambda_as_keras(tmp_path / "evil.keras", tmp_path / "marker")
    before = _files(tmp_path)
    argv = [a.format(tmp=tmp_path, run=run) for a in argv]
    line = exit_2_one_line(capsys, lambda: main(argv))
    assert says in line, line
    assert _files(tmp_path) == before and not (tmp_path / "predictions").exists()  # nothing written


# -------------------------------------------------------------------- fer-keras preprocess

def test_preprocess_reports_bad_photos_and_goes_on(tmp_path, capsys):
    photos = tmp_path / "photos" / "happy"
    bad.face_png(photos / "blank.png")
    bad.large_png(photos / "big.png", 20000, 20000)
    (photos / "loop.png").symlink_to("loop.png")
    main(["preprocess", str(tmp_path / "photos"), str(tmp_path / "faces"), "--detector", "haar"])
    with open(tmp_path / "faces" / "crop_report.csv") as f:
        report = {r["file"]: r["status"] for r in csv.DictReader(f)}
    assert report == {"happy/big.png": "unreadable", "happy/blank.png": "no_face"}
    summary = json.loads((tmp_path / "faces" / "crop_summary.json").read_text())
    assert summary["unreadable"] == 1 and summary["no_face"] == 1
    assert "happy/big.png: unreadable (400,000,000 pixels, over the 40,000,000-pixel limit" in capsys.readouterr().err


# ----------------------------------------------------------------------- export, disk full

@pytest.mark.parametrize("failure", ["OSError", "TensorFlow"])
def test_export_out_of_space_is_one_line_and_leaves_nothing(tmp_path, run, capsys, monkeypatch, failure):
    import shutil

    import tensorflow as tf

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = _files(copy)
    if failure == "OSError":
        import fer_keras.export.write

        def full(path, text):  # labels.txt: half written, then the disk is full
            with open(path, "w") as f:
                f.write(text[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr(fer_keras.export.write, "atomic_write_text", full)
    else:
        def full(obj, export_dir, signatures=None, options=None):
            os.makedirs(export_dir)
            open(os.path.join(export_dir, "saved_model.pb"), "wb").write(b"half")
            raise tf.errors.ResourceExhaustedError(None, None, f"{export_dir}/variables; No space left on device")

        monkeypatch.setattr(tf.saved_model, "save", full)
    line = exit_2_one_line(capsys, lambda: main(["export", str(copy), "--no-tflite"]))
    assert f"{copy / 'model'}: out of disk space while exporting (needs about 1 MB); nothing was written" in line
    assert "--out" in line
    assert _files(copy) == before  # no temporary folder, no half-written file
    line = exit_2_one_line(capsys, lambda: main(["export", str(copy), "--no-tflite", "--out", str(tmp_path / "new")]))
    assert not (tmp_path / "new").exists()  # the folder it made for the export is gone too


# ----------------------------------------------------------------------- written files

def test_atomic_writer_gives_umask_permissions(tmp_path):
    from fer_keras.files import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.txt", "x")
        assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
        (tmp_path / "kept.txt").write_text("x")
        (tmp_path / "kept.txt").chmod(0o640)
        atomic_write_text(tmp_path / "kept.txt", "y")  # a replaced file keeps its permissions
        assert (tmp_path / "kept.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*"))


def test_generator_is_fast_and_small(tmp_path):
    import time

    start = time.time()
    bad.large_png(tmp_path / "big.png", 20000, 20000)
    bad.zero_frame_video(tmp_path / "empty.avi")
    bad.garbage_file(tmp_path / "g.csv")
    assert time.time() - start < 5 and (tmp_path / "big.png").stat().st_size < 200_000
    assert np.frombuffer((tmp_path / "big.png").read_bytes()[:8], np.uint8).tolist()[1:4] == list(b"PNG")


def test_predict_exits_2_when_nothing_could_be_read(tmp_path, run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad.garbage_file(tmp_path / "photo.jpg")
    with pytest.raises(SystemExit) as info:
        main(["predict", str(tmp_path / "photo.jpg"), "--model", str(run), "--detector", "haar"])
    lines = capsys.readouterr().err.strip().splitlines()  # progress lines (each file's status), then the error
    assert info.value.code == 2 and sum(line.startswith("error: ") for line in lines) == 1
    assert "photo.jpg: nothing could be read (1 unreadable, e.g. photo.jpg:" in lines[-1], lines


def test_predict_refuses_an_out_folder_another_predict_is_writing(tmp_path, run, capsys, monkeypatch):
    from fer_keras.files import lock_folder

    monkeypatch.chdir(tmp_path)
    photo = bad.face_png(tmp_path / "face.png")
    (tmp_path / "predictions").mkdir()
    held = lock_folder(tmp_path / "predictions", "output folder")  # another predict holds it
    line = exit_2_one_line(capsys, lambda: main(["predict", str(photo), "--model", str(run), "--detector", "haar"]))
    assert "another process" in line and "is writing this folder" in line, line
    held.close()
    main(["predict", str(photo), "--model", str(run), "--detector", "haar"])
    assert (tmp_path / "predictions" / "predictions.json").is_file()


def test_files_that_are_not_images_are_counted_and_named_in_one_line(tmp_path):
    data = bad.kaggle_folder(tmp_path / "k")
    (data / "train" / "happy" / "wave.gif").write_bytes(b"GIF89a")
    (data / "train" / "sad" / "notes.txt").write_text("x")
    lines = []
    assert len(load_fer2013(data, log=lines.append)) == 2
    assert len(lines) == 1 and "skipped 2 files that are not images (.gif, .txt;" in lines[0], lines
