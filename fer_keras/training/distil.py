"""Knowledge distillation: a student trained on its teacher's probabilities of the training faces.

The teacher is an ensemble run folder (``experiments/ensemble.py``: its members, weighted as
chosen on validation, each viewing the faces with the ensemble's TTA), a pretrained name or a
training run folder. Its probabilities of every training face (un-augmented, computed once and
kept in the run folder so a resumed run trains on the very same targets) are softened with a
temperature ``T`` and mixed with the one-hot label::

    target = w * one_hot + (1 - w) * softmax(log(p_teacher) / T)

The student is trained on these targets with the usual cross-entropy (augmentation, MixUp and
label smoothing apply on top), which is the distillation loss of Hinton et al. with the
temperature on the teacher's side only (our models end in a softmax). No member of the teacher may
have trained on the student's validation or test faces (checked by pixels, as ``--init-from``
is): they would reach the student through its targets.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fer_keras import pretrained
from fer_keras.config import ExperimentConfig
from fer_keras.errors import ConfigError
from fer_keras.files import atomic_open
from fer_keras.runs import ENSEMBLE_STUDY, TEACHER_FILE, RunFolder
from fer_keras.training.held_out import held_out_seen_by


def teacher_members(teacher: str) -> tuple[dict[str, float], str]:
    """``{model: weight}`` and the TTA of ``teacher``: an ensemble run folder's members, or one model."""
    if not pretrained.is_name(teacher) and not Path(teacher).exists():
        raise ConfigError(f"--teacher {teacher}: no such folder, and no pretrained model of that name "
                          f"(installed: {', '.join(pretrained.available()) or 'none'})")
    run = None if pretrained.is_name(teacher) else RunFolder.find(teacher)
    if run is not None and run.kind == ENSEMBLE_STUDY:
        return run.ensemble_members()
    if run is None and not pretrained.is_name(teacher):
        raise ConfigError(f"--teacher {teacher}: give an ensemble run folder, a pretrained name or a training run "
                          "folder (a bare model file does not say which faces it trained on)")
    return {teacher: 1.0}, "none"


def check_held_out(members, config: ExperimentConfig, parts: dict) -> dict:
    """``{member: record}`` of how many of this run's validation and test faces each member trained
    on (:func:`~fer_keras.training.held_out.held_out_seen_by`, by pixels); a one-line ConfigError
    when any did, or when that cannot be known (a bare model file, another data set)."""
    records = {}
    for member in members:
        record = held_out_seen_by(member, config, parts)
        if record.get("not_checked"):
            raise ConfigError(f"--teacher member {member}: cannot check which of this run's faces it trained on "
                              f"({record['not_checked']}); give pretrained names or training run folders")
        seen = record["val_images_it_trained_on"], record["test_images_it_trained_on"]
        if any(seen):
            raise ConfigError(f"--teacher member {member}: it trained on {seen[0]:,} of this run's validation and "
                              f"{seen[1]:,} of its test faces, which would reach the student through its targets; "
                              "use a teacher trained on this run's split (same --seed, --split, --val-fraction, "
                              "--drop-test-duplicates)")
        records[member] = {k: v for k, v in record.items() if k != "source"}
    return records


def teacher_probabilities(teacher: str, config: ExperimentConfig, parts: dict, log=print) -> tuple[np.ndarray, dict]:
    """The teacher's probabilities (N, K) of the raw training faces ``parts["train"]``, and a record of
    how they were made (members, weights, TTA, how many held-out faces each member trained on: none,
    or the run is refused; the teacher's accuracy on the training faces' labels)."""
    from fer_keras.classifier import load_classifier

    members, tta = teacher_members(teacher)
    held_out = check_held_out([m for m, w in members.items() if w > 0], config, parts)
    train = parts["train"]
    total = np.zeros((len(train), len(train.class_names)), np.float64)
    for member, weight in members.items():
        if weight == 0:
            continue
        classifier = load_classifier(member)
        if list(classifier.class_names) != list(train.class_names):
            raise ConfigError(f"--teacher member {member}: classes {', '.join(classifier.class_names)}, this "
                              f"run's are {', '.join(train.class_names)}")
        log(f"Teacher {member} (weight {weight:.2f}, TTA {tta}): {len(train):,} training faces ...")
        total += weight * classifier(train.images, tta, batch_size=256)
    probs = (total / total.sum(axis=1, keepdims=True)).astype(np.float32)
    accuracy = float(np.mean(probs.argmax(1) == train.labels))
    return probs, {"teacher": teacher, "members": members, "tta": tta, "held_out_check": held_out,
                   "train_accuracy": round(accuracy, 4)}


def soft_targets(one_hot: np.ndarray, teacher: np.ndarray, temperature: float, label_weight: float) -> np.ndarray:
    """``label_weight * one_hot + (1 - label_weight) * softmax(log(teacher) / temperature)``; (N, K) float32."""
    logits = np.log(np.clip(teacher.astype(np.float64), 1e-12, 1.0)) / temperature
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    return (label_weight * one_hot + (1 - label_weight) * soft).astype(np.float32)


def _fingerprint(train) -> str:
    """SHA-1 of the training faces' pixels and labels, in order: which faces a teacher labelled."""
    digest = hashlib.sha1(np.ascontiguousarray(train.images).tobytes())
    digest.update(np.ascontiguousarray(train.labels).tobytes())
    return digest.hexdigest()


def _teacher_as_made(teacher: str) -> tuple[dict[str, float], str, dict[str, str | None]]:
    """``teacher``'s members with weights, its TTA, and the source run of each pretrained member as
    the teacher had it: an ensemble's own record (its members may have shipped newer models since),
    a pretrained name's current card."""
    run = None if pretrained.is_name(teacher) else RunFolder.find(teacher)
    if run is None or run.kind != ENSEMBLE_STUDY:
        members, tta = teacher_members(teacher)
        return members, tta, {m: pretrained.identity(m)["source_run"] for m in members if pretrained.is_name(m)}
    members, tta = run.ensemble_members(check_shipped=False)
    recorded = run.resolved.get("members", {})
    return members, tta, {m: recorded.get(m, {}).get("source_run") for m in members if pretrained.is_name(m)}


def _sibling_with_teacher(config: ExperimentConfig, run: RunFolder, faces: str, count: int) -> RunFolder | None:
    """A run folder beside ``run`` that kept the probabilities of this very teacher (same members,
    weights and TTA, and each pretrained member the model it was when the teacher was made) for the
    same training faces (same data settings and seed; and the same pixels, when it recorded their
    fingerprint), else None. So an ensemble whose pretrained member has shipped a newer model since
    can still teach through the probabilities a student kept while the member was the one it used."""
    teacher = None
    for folder in sorted(run.path.parent.iterdir()):
        if folder == run.path or not (folder / TEACHER_FILE).is_file():
            continue
        try:
            other = RunFolder.find(folder)
            record, same_faces = other.resolved.get("distil"), (other.config.data, other.config.seed)
        except (ConfigError, OSError, ValueError):  # a damaged folder is no donor; the teacher is run instead
            continue
        if not record or record.get("teacher") != config.distil.teacher or record.get("train_faces", faces) != faces:
            continue
        if same_faces != (config.data, config.seed):
            continue
        teacher = teacher or _teacher_as_made(config.distil.teacher)
        if (record.get("members"), record.get("tta")) != teacher[:2]:
            continue
        checked = record.get("held_out_check", {})
        if any(checked.get(m, {}).get("source_run") != was for m, was in teacher[2].items()):
            continue
        if np.load(other.file(TEACHER_FILE), mmap_mode="r", allow_pickle=False).shape[0] == count:
            return other
    return None


def training_targets(config: ExperimentConfig, run: RunFolder, parts: dict, log=print) -> tuple[np.ndarray, dict]:
    """The student's training targets (N, K) for ``parts["train"]`` and the teacher's record; the
    teacher's probabilities are read from the run folder when an earlier start of the run kept them,
    else computed and kept."""
    train = parts["train"]
    kept = run.file(TEACHER_FILE)
    record = run.resolved.get("distil") if kept.is_file() else None
    if record is not None:
        probs = np.load(kept, allow_pickle=False)
        if probs.shape != (len(train), len(train.class_names)):
            raise ConfigError(f"{kept}: probabilities of {probs.shape[0]} faces, the run has {len(train)}; "
                              "start a new run")
        log(f"Teacher probabilities read from {kept}")
    else:
        faces = _fingerprint(train)
        donor = _sibling_with_teacher(config, run, faces, len(train))
        if donor is not None:  # the same teacher on the same faces: its probabilities, not hours again
            probs, record = np.load(donor.file(TEACHER_FILE), allow_pickle=False), dict(donor.resolved["distil"])
            log(f"Teacher probabilities copied from {donor.path} (the same teacher on the same training faces)")
        else:
            probs, record = teacher_probabilities(config.distil.teacher, config, parts, log)
        record["train_faces"] = faces
        with atomic_open(kept) as f:
            np.save(f, probs, allow_pickle=False)
        log(f"Teacher accuracy on the training faces: {record['train_accuracy']:.2%}")
    d = config.distil
    return soft_targets(train.one_hot(), probs, d.temperature, d.label_weight), record
