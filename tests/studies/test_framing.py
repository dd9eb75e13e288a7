"""The crop-framing measurement: photos of known framing, the grid through classify_faces, the rule
that picks the defaults, the run folder and the script's one-line errors.

Faces: 14 drawn demo faces; model: a tiny untrained CNN (tests/tiny_models.py); detector: Haar."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fer_keras.data import make_demo
from fer_keras.errors import ConfigError
from fer_keras.faces import crop_face
from fer_keras.runs import RunFolder
from fer_keras.studies.framing import FramingConfig, choose_defaults, frame_faces, measure, run_study
from fer_keras.studies.report import find_runs

from tiny_models import tiny_run

ROOT = Path(__file__).resolve().parents[2]
QUIET = dict(log=lambda *a: None)


@pytest.fixture(scope="module")
def faces():
    return make_demo(images_per_class=2, seed=0)  # 14 faces, 2 per class


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from fer_keras.classifier import load_classifier

    return load_classifier(tiny_run(tmp_path_factory.mktemp("framing") / "run"))


def test_photos_hold_the_face_where_the_known_box_says(faces):
    config = FramingConfig(rotate=20)
    for framing, tolerance in (("registered", 3), ("jittered", 12)):
        photos, truths = frame_faces(faces.images, framing, config)
        assert all(p.shape == (384, 384) and p.dtype == np.uint8 for p in photos)
        # the true box, levelled by its eye line, gives the crop back (up to resampling)
        back = np.stack([crop_face(p, t, 48, margin=0.0, align=True, gray=True) for p, t in zip(photos, truths)])
        assert np.abs(back.astype(int) - faces.images).mean() < tolerance
    registered = frame_faces(faces.images, "registered", config)[1]
    assert {t.box for t in registered} == {(96, 96, 192, 192)}
    jittered = frame_faces(faces.images, "jittered", config)[1]
    assert jittered == frame_faces(faces.images, "jittered", config)[1]  # seeded
    assert len({t.box for t in jittered}) == len(faces)


def test_grid_reference_rates_and_rows(faces, classifier):
    config = FramingConfig(detectors=("haar",), margins=(0, 0.2), bootstrap=100)
    result = measure(faces, classifier, config, **QUIET)
    direct = (classifier(faces.images).argmax(1) == faces.labels).mean()
    assert result["reference"]["accuracy_all"] == direct and result["reference"]["framing"] == "original crops"
    rows = result["rows"]
    # registered: known and haar, alignment a no-op (level eyes / no landmarks): one n/a row per margin;
    # jittered: known off and on, haar n/a
    assert [(r["framing"], r["detector"], r["align"]) for r in rows[::2]] == [
        ("registered", "known", "n/a"), ("registered", "haar", "n/a"),
        ("jittered", "known", "off"), ("jittered", "known", "on"), ("jittered", "haar", "n/a")]
    assert [r["margin"] for r in rows] == [0.0, 0.2] * 5
    for r in rows:
        assert 0 <= r["detection_rate"] <= 1 and r["images"] == len(faces)
        assert r["accuracy_all"] == pytest.approx(r["detection_rate"] * (r["accuracy_found"] if r["found"] else 0))
    assert all(r["detection_rate"] == 1 and r["box_ratio"] == 1 for r in rows if r["detector"] == "known")
    assert result["align_no_op"] == [["registered", "known"], ["registered", "haar"], ["jittered", "haar"]]
    assert set(result["detection_ms"]) == {"haar"}


def _result(scores: dict, n: int = 400, shifted=()) -> dict:
    """A made-up measurement: ``scores[(detector, align, margin)]`` = share of photos right (both
    framings), the first photos; ``shifted`` settings get theirs right from the middle on instead."""
    correct = {}
    for setting, share in scores.items():
        detector, align, margin = setting
        vector = np.roll((np.arange(n) < round(share * n)).astype(np.int8), n // 2 if setting in shifted else 0)
        for framing in ("registered", "jittered"):
            correct[(framing, detector, align, margin)] = vector
    return {"correct": correct, "align_no_op": []}


def test_rule_changes_a_default_only_for_a_clear_gain():
    config = FramingConfig(detectors=("haar",), margins=(0.1, 0.2), bootstrap=200)
    clear = _result({("haar", True, 0.1): 0.70, ("haar", False, 0.1): 0.6,
                     ("haar", True, 0.2): 0.55, ("haar", False, 0.2): 0.5})
    choice = choose_defaults(clear, config, current=(0.2, True))
    assert (choice["margin"], choice["align"], choice["changed"]) == (0.1, True, True)
    assert choice["gain_over_current"]["gain"] == pytest.approx(0.15) and choice["gain_over_current"]["interval"][0] > 0
    close = _result({("haar", True, 0.1): 0.56, ("haar", False, 0.1): 0.5,
                     ("haar", True, 0.2): 0.55, ("haar", False, 0.2): 0.5}, shifted=[("haar", True, 0.1)])
    choice = choose_defaults(close, config, current=(0.2, True))
    assert choice["best"]["margin"] == 0.1
    assert (choice["margin"], choice["align"], choice["changed"]) == (0.2, True, False)
    tie = _result({("haar", a, m): 0.5 for a in (True, False) for m in (0.1, 0.2)})
    assert choose_defaults(tie, config, current=(0.2, True))["best"] == {"margin": 0.1, "align": True, "score": 0.5}


def test_rule_reorders_detectors_only_for_a_clear_win():
    config = FramingConfig(detectors=("retinaface", "haar"), margins=(0.2,), bootstrap=200)
    scores = {("retinaface", a, 0.2): 0.5 for a in (True, False)}
    ahead = _result({**scores, **{("haar", a, 0.2): 0.7 for a in (True, False)}})
    assert choose_defaults(ahead, config, current=(0.2, True))["detector_order"] == ["haar", "retinaface"]
    level = _result({**scores, **{("haar", a, 0.2): 0.52 for a in (True, False)}},
                    shifted=[("haar", a, 0.2) for a in (True, False)])
    assert choose_defaults(level, config, current=(0.2, True))["detector_order"] == ["retinaface", "haar"]


def test_run_folder(tmp_path, classifier):
    config = FramingConfig(out=str(tmp_path), limit=14, detectors=("haar",), margins=(0, 0.2), bootstrap=100)
    run = run_study(config, classifier=classifier, **QUIET)
    assert RunFolder.open(run.path).kind == "framing" and find_runs([tmp_path / "*"]) == []  # not a report run
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["margins"] == [0.0, 0.2] and saved["resolved"]["images"] == 14
    assert "demo set" in saved["resolved"]["faces"] and saved["study"] == "framing"
    with open(run / "table.csv") as f:
        assert len(list(csv.DictReader(f))) == 11  # the original crops + 10 settings
    md = (run / "table.md").read_text()
    assert md.count("\n| ") == 12 and "**Rule** (fixed before measuring)" in md and "**Result**" in md
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"margin", "align", "detector_order", "rule"} <= set(metrics["choice"]) and len(metrics["rows"]) == 10
    assert (run / "figures" / "framing.png").stat().st_size > 10_000


@pytest.mark.parametrize("flags, message", [
    (["--detectors", "dlib"], "--detectors 'dlib': give distinct names of retinaface, mtcnn, haar"),
    (["--margins", "0.2,-1"], "--margins '0.2,-1': give distinct margins between 0 and 2"),
    (["--framings", "tilted"], "--framings 'tilted': give registered, jittered or both"),
])
def test_bad_settings_are_one_line(flags, message, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import measure_framing
    from fer_keras.errors import run_main

    with pytest.raises(SystemExit) as exit_:
        run_main(lambda: measure_framing.main(flags))
    assert exit_.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {message}")
    with pytest.raises(ConfigError, match="give distinct margins"):
        FramingConfig(margins=(0.1, 0.1))
