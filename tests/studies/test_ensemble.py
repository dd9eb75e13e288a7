"""Ensembles: weights chosen on validation only, members on one split, a run folder from real models."""
import json

import numpy as np
import pytest

from fer_keras import pretrained
from fer_keras.errors import ConfigError
from fer_keras.studies.ensemble import EnsembleConfig, choose_weights, run_ensemble


def _one_hot(labels, k=3, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    p = np.eye(k)[labels] + noise * rng.random((len(labels), k))
    return p / p.sum(1, keepdims=True)


def test_weights_favour_the_member_that_is_right():
    labels = np.random.default_rng(1).integers(0, 3, 60)
    right = _one_hot(labels, noise=0.5)
    wrong = _one_hot((labels + 1) % 3)
    weights = choose_weights([wrong, right], labels)
    assert weights.sum() == pytest.approx(1) and weights[1] > 0.5
    assert np.mean(np.tensordot(weights, np.stack([wrong, right]), 1).argmax(1) == labels) == 1.0


def test_equal_members_get_equal_weights_and_many_members_are_searched_too():
    labels = np.random.default_rng(2).integers(0, 3, 30)
    same = _one_hot(labels)
    assert choose_weights([same, same], labels) == pytest.approx([0.5, 0.5])
    weights = choose_weights([_one_hot((labels + 1) % 3)] * 3 + [same], labels)  # 4 members: coordinate ascent
    assert weights.sum() == pytest.approx(1) and weights.argmax() == 3


def test_members_must_say_which_faces_they_trained_on(tmp_path):
    with pytest.raises(ConfigError, match="give at least two"):
        EnsembleConfig(("fer2013-dcnn",))
    bare = tmp_path / "model.keras"
    bare.write_bytes(b"x")
    with pytest.raises(ConfigError, match="a bare model file"):
        run_ensemble(EnsembleConfig(("fer2013-dcnn", str(bare)), out=str(tmp_path / "runs")), log=lambda *_: None)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_two_shipped_models_on_the_demo_set(tmp_path):
    run = run_ensemble(EnsembleConfig(("fer2013-dcnn", "fer2013-ghostface"), out=str(tmp_path)), log=lambda *_: None)
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert sum(metrics["weights"].values()) == pytest.approx(1)
    assert set(metrics["results"]) == {"fer2013-dcnn", "fer2013-ghostface", "ensemble"}
    # the chosen weights are at least as good as either member on validation, the split that chose them
    val = {k: v["val"]["accuracy"] for k, v in metrics["results"].items()}
    assert val["ensemble"] >= max(val["fer2013-dcnn"], val["fer2013-ghostface"])
    assert run.kind == "ensemble" and "| ensemble | - |" in (run.path / "table.md").read_text()
    members, tta = run.ensemble_members()
    assert members == metrics["weights"] and tta == "none"
    recorded = run.resolved["members"]["fer2013-ghostface"]
    assert (recorded["version"], recorded["source_run"]) == (
        pretrained.card("fer2013-ghostface").get("version", 1), pretrained.card("fer2013-ghostface")["source_run"])


def test_a_shipped_member_that_changed_since_the_ensemble_is_refused(tmp_path, monkeypatch):
    run = run_ensemble(EnsembleConfig(("fer2013-dcnn", "fer2013-ghostface"), out=str(tmp_path)), log=lambda *_: None)
    card = pretrained.card

    def newer(name):
        return {**card(name), "source_run": "a-later-run"} if name == "fer2013-ghostface" else card(name)

    monkeypatch.setattr(pretrained, "card", newer)
    with pytest.raises(ConfigError, match="member fer2013-ghostface is now another model .*run the ensemble again"):
        run.ensemble_members()
