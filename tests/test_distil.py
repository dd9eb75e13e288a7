"""Distillation: soft targets, a student trained from a teacher run's probabilities (kept for an exact
resume), and teachers that trained on the student's held-out faces refused."""
import json

import numpy as np
import pytest

from fer_keras.config import ExperimentConfig
from fer_keras.data.prepare import prepare_data
from fer_keras.errors import ConfigError
from fer_keras.runs import TEACHER_FILE
from fer_keras.training.distil import soft_targets
from fer_keras.training.experiment import run_experiment


def _config(tmp_path, **changes):
    """A tiny demo-set config with ``section__field`` changes."""
    base = ExperimentConfig.from_dict({"demo_images_per_class": 8, "epochs": 2, "batch_size": 16, "model": "small_cnn",
                                       "adversarial": False, "out": str(tmp_path / "runs")})
    return base.replace(**changes)


def test_soft_targets_mix_the_label_with_the_tempered_teacher():
    one_hot = np.eye(3, dtype=np.float32)[[0, 2]]
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    np.testing.assert_allclose(soft_targets(one_hot, teacher, 1.0, 0.5), 0.5 * one_hot + 0.5 * teacher, atol=1e-6)
    np.testing.assert_allclose(soft_targets(one_hot, teacher, 3.0, 1.0), one_hot)
    hot = soft_targets(one_hot, teacher, 1e6, 0.0)  # a very high temperature flattens the teacher
    np.testing.assert_allclose(hot, np.full_like(hot, 1 / 3), atol=1e-5)
    warm = soft_targets(one_hot, teacher, 2.0, 0.0)
    assert np.allclose(warm.sum(1), 1) and warm[0, 0] < 0.7 and warm[0].argmax() == 0  # softer, same order


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    return run_experiment(_config(tmp_path_factory.mktemp("teacher"), training__epochs=3), log=lambda *a: None)


@pytest.mark.filterwarnings("ignore::fer_keras.classifier.DemoModelWarning")
def test_student_trains_on_the_teachers_kept_probabilities_and_resumes_with_them(tmp_path, teacher_run):
    lines = []
    config = _config(tmp_path, distil__teacher=str(teacher_run.path), distil__temperature=2.0)
    assert config.distil.teacher == str(teacher_run.path)
    student = run_experiment(config, log=lines.append, time_budget=1e-6)  # stops after its first epoch
    assert student.name.endswith("-distil")  # the run folder says it was distilled
    kept = np.load(student / TEACHER_FILE)
    train = prepare_data(config.data, config.seed, log=lambda *a: None)["train"]
    assert kept.shape == (len(train), 7) and np.allclose(kept.sum(1), 1, atol=1e-5)
    record = json.loads((student / "config.json").read_text())["resolved"]["distil"]
    assert record["members"] == {str(teacher_run.path): 1.0}
    assert record["train_accuracy"] == round(float(np.mean(kept.argmax(1) == train.labels)), 4)
    assert any("distilled from" in line for line in lines)

    lines.clear()
    run_experiment(ExperimentConfig(), resume=student, log=lines.append)
    assert any("Teacher probabilities read from" in line for line in lines)
    assert len(student.history()) == 2 and (student / "metrics.json").is_file()
    np.testing.assert_array_equal(np.load(student / TEACHER_FILE), kept)

    from fer_keras.pretrained.packaging import package_run  # the card says whom it learnt from
    folder = package_run(student, "student", root=tmp_path / "pretrained", log=lambda *a: None)
    card = json.loads((folder / "card.json").read_text())["training"]["distilled_from"]
    assert card == {"teacher": teacher_run.name, "members": {teacher_run.name: 1.0}, "tta": "none", "temperature": 2.0,
                    "label_weight": 0.5, "train_accuracy": record["train_accuracy"]}  # folder names, no machine paths
    assert f"| distilled from | `{teacher_run.name}`: 1 models" in (folder / "MODEL_CARD.md").read_text()


@pytest.mark.filterwarnings("ignore::fer_keras.classifier.DemoModelWarning")
def test_a_teacher_that_trained_on_held_out_faces_is_refused(tmp_path, teacher_run):
    with pytest.raises(ConfigError, match=r"--teacher member .* trained on \d+ of this run's validation and \d+ of its test"):
        run_experiment(_config(tmp_path, distil__teacher=str(teacher_run.path), data__split="80/10/10"),
                       log=lambda *a: None)
    assert not list((tmp_path / "runs").glob("*"))  # nothing left behind
    with pytest.raises(ConfigError, match="--teacher nowhere/ensemble: no such folder, and no pretrained model"):
        run_experiment(_config(tmp_path, distil__teacher="nowhere/ensemble"), log=lambda *a: None)
    with pytest.raises(ConfigError, match="--distil-label-weight"):
        _config(tmp_path, distil__label_weight=1.5)


@pytest.mark.filterwarnings("ignore::fer_keras.classifier.DemoModelWarning")
def test_a_second_student_of_the_same_teacher_copies_its_probabilities(tmp_path, teacher_run):
    config = _config(tmp_path, distil__teacher=str(teacher_run.path))
    first = run_experiment(config, log=lambda *a: None, time_budget=1e-6)
    lines = []
    second = run_experiment(config.replace(distil__temperature=3.0), log=lines.append, time_budget=1e-6)
    assert any(f"Teacher probabilities copied from {first.path}" in line for line in lines)
    np.testing.assert_array_equal(np.load(second / TEACHER_FILE), np.load(first / TEACHER_FILE))
    assert not any(line.startswith("Teacher ") and "training faces ..." in line for line in lines)  # not run again
    lines.clear()  # other training faces: the teacher runs again
    run_experiment(config.replace(data__demo_images_per_class=9), log=lines.append, time_budget=1e-6)
    assert not any("copied from" in line for line in lines) and any("training faces ..." in line for line in lines)


@pytest.mark.filterwarnings("ignore::fer_keras.classifier.DemoModelWarning")
def test_an_ensemble_whose_shipped_member_changed_teaches_only_through_kept_probabilities(tmp_path, teacher_run,
                                                                                         monkeypatch):
    from fer_keras import pretrained
    from fer_keras.pretrained.packaging import package_run
    from fer_keras.studies.ensemble import EnsembleConfig, run_ensemble

    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "pretrained")
    quiet = dict(log=lambda *a: None)
    package_run(teacher_run, "net", **quiet)
    other = run_experiment(_config(tmp_path / "other"), **quiet)  # 2 epochs, the teacher run 3
    ensemble = run_ensemble(EnsembleConfig(("net", str(other.path)), out=str(tmp_path / "ensembles")), **quiet)
    config = _config(tmp_path, distil__teacher=str(ensemble.path))
    first = run_experiment(config, time_budget=1e-6, **quiet)
    assert json.loads((first / "config.json").read_text())["resolved"]["distil"]["held_out_check"]["net"][
        "source_run"] == teacher_run.name

    package_run(other, "net", changes="another model", **quiet)  # the name ships another model now
    with pytest.raises(ConfigError, match="member net is now another model"):
        ensemble.ensemble_members()
    lines = []  # a second student beside the first: the probabilities the ensemble made then
    second = run_experiment(config, time_budget=1e-6, log=lines.append)
    assert any(f"Teacher probabilities copied from {first.path}" in line for line in lines)
    np.testing.assert_array_equal(np.load(second / TEACHER_FILE), np.load(first / TEACHER_FILE))
    with pytest.raises(ConfigError, match="member net is now another model .*run the ensemble again"):
        run_experiment(config.replace(out=str(tmp_path / "elsewhere")), **quiet)  # nothing kept there: refused
