"""Membership-inference audit: can an attacker tell a model's training images from its outputs?

The audit asks of a trained model: from its outputs on an image, can an attacker tell whether the
image was in the training set? It uses tensorflow-privacy's membership-inference attacks
(``tensorflow_privacy.privacy.privacy_tests.membership_inference_attack``) on
``members`` (training images) and ``nonmembers`` (held-out images), 2,000 + 2,000 by default as in
Study B, drawn reproducibly and with the same class mix on both sides (:func:`sample_members_nonmembers`).

Attacks (names as in tensorflow-privacy's ``AttackType``):

* ``"threshold"``: loss threshold: low cross-entropy loss -> member (membership score = -loss);
* ``"threshold-entropy"``: threshold on the (label-aware, "modified") prediction entropy;
* ``"lr"`` (and ``"mlp"``, ``"rf"``, ``"knn"``): a trained attacker on the logits and the loss;
  tensorflow-privacy scores every image with an attacker that did not see it (2-fold
  cross-validation), so its ROC is an out-of-sample one.

Figures per attack (:func:`audit`): AUC, attacker advantage (max TPR - FPR), TPR at 1% and 0.1%
FPR (from the ROC curve), and the attack's confusion matrix TP/FP/TN/FN as **percentages of all
audited images** (Study B's table) at two documented operating points, computed from the
membership scores tensorflow-privacy returns (``membership_scores_train/test``; an image is called
a member when its score is above the threshold):

``at_target_fpr`` (default ``target_fpr`` = 10%)
    Study B's "population attack" (ML Privacy Meter): a **per-class threshold** set so that a
    fraction ``target_fpr`` of *population* images of that class would be called members. For the
    loss and entropy attacks the population is ``reference``: held-out images that are *not*
    among the audited non-members (so the FPR on the non-members is measured, not imposed); if
    there is no reference set, or a class has fewer than ``min_reference`` reference images, that
    class's threshold is calibrated on the audited non-members themselves (an oracle choice; the
    result's ``calibration`` says which). Trained attacks' scores exist only for audited images,
    so their per-class thresholds are always calibrated on the audited non-members.
``best_accuracy``
    the single threshold on the membership score with the highest attack accuracy
    (TP + TN) over all audited images (with equal members and non-members this is
    50% + advantage / 2).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf
from scipy.special import logsumexp, softmax

from fer_keras._compat import import_tf_privacy
from fer_keras.data.dataset import FaceData
from fer_keras.data.pipeline import InputSpec, images_only
from fer_keras.errors import ConfigError, DataError
from fer_keras.models.registry import softmax_head
from fer_keras.nsl import base_model

MIA_PACKAGE = "privacy.privacy_tests.membership_inference_attack"
#: Attacks run by default: the loss threshold, the entropy threshold and logistic regression.
DEFAULT_ATTACKS = ("threshold", "threshold-entropy", "lr")
#: False-positive rate at which the per-class (population) thresholds are set.
DEFAULT_TARGET_FPR = 0.10
#: The low-FPR points reported from each ROC curve.
LOW_FPRS = (0.01, 0.001)
CONFUSION_KEYS = ("tp", "fp", "tn", "fn")


def _mia():
    return import_tf_privacy(f"{MIA_PACKAGE}.membership_inference_attack")


def _mia_data():
    return import_tf_privacy(f"{MIA_PACKAGE}.data_structures")


# ---------------------------------------------------------------------------------------------
# Sampling members and non-members


@dataclasses.dataclass
class AuditSets:
    """The images an audit uses: ``members`` (from training), ``nonmembers`` (held out, same
    per-class counts as ``members``), and ``reference`` (the held-out images not chosen as
    non-members; population data for the per-class thresholds; may be empty)."""

    members: FaceData
    nonmembers: FaceData
    reference: FaceData

    def __iter__(self):  # members, nonmembers = sample_members_nonmembers(...)
        return iter((self.members, self.nonmembers))


def balanced_counts(available: np.ndarray, n: int) -> np.ndarray:
    """Per-class counts summing to ``min(n, available.sum())``, as equal as ``available`` allows.

    Water-filling: every class gets the same share; a class with fewer images gives all it has
    and its shortfall is shared among the others. Remainders go to the classes with most images.
    """
    available = np.asarray(available, dtype=np.int64)
    n = int(min(n, available.sum()))
    counts = np.zeros_like(available)
    left = n
    open_ = available > 0
    while left > 0 and open_.any():
        share = left // open_.sum()
        if share == 0:  # fewer images left than open classes: one more each, largest classes first
            room = np.where(open_, available - counts, -1)
            for c in np.argsort(-room, kind="stable")[:left]:
                counts[c] += 1
            break
        add = np.where(open_, np.minimum(share, available - counts), 0)
        counts += add
        left -= int(add.sum())
        open_ = counts < available
    return counts


def sample_members_nonmembers(train: FaceData, held_out: FaceData, n: int = 2000,
                              seed: int = 0) -> AuditSets:
    """Draw ``n`` members from ``train`` and ``n`` non-members from ``held_out``, reproducibly.

    Both sides get the same per-class counts, as equal across classes as the data allow
    (:func:`balanced_counts` on the per-class minimum of the two sets); if either set has fewer
    than ``n`` images, both get fewer. The held-out images not drawn are returned as ``reference``.
    """
    if n < 1:
        raise ConfigError(f"--audit-size must be at least 1 (got {n})")
    if train.class_names != held_out.class_names:
        raise DataError("members and non-members have different class lists")
    k = train.num_classes
    avail = np.minimum(np.bincount(train.labels, minlength=k), np.bincount(held_out.labels, minlength=k))
    if avail.sum() == 0:
        raise DataError("no class has images in both the training and the held-out set; cannot audit")
    counts = balanced_counts(avail, n)
    rng = np.random.default_rng(seed)

    def draw(labels):
        idx = [rng.choice(np.flatnonzero(labels == c), counts[c], replace=False) for c in range(k)]
        return np.sort(np.concatenate(idx)).astype(np.int64)

    member_idx, nonmember_idx = draw(train.labels), draw(held_out.labels)
    rest = np.setdiff1d(np.arange(len(held_out)), nonmember_idx)
    return AuditSets(train.take(member_idx), held_out.take(nonmember_idx), held_out.take(rest))


# ---------------------------------------------------------------------------------------------
# Model outputs -> AttackInputData


def model_logits(model: tf.keras.Model, data: FaceData, inputs: InputSpec | None = None,
                 batch_size: int = 100) -> np.ndarray:
    """(N, K) float64 logits of ``model`` (plain or NSL-wrapped) on ``data``, its faces prepared as
    ``inputs`` says (default: the model's input shape, pixels / 255).

    fer_keras models end in a softmax Dense layer (:func:`fer_keras.models.softmax_head`): then the
    exact pre-softmax logits are computed in float64 from the features it takes and its weights (no
    loss of precision where the softmax saturates, as it does on memorised images). For any other
    model the logits are ``log(probabilities)`` (equal to the logits up to a per-image constant,
    which changes neither the softmax, the loss nor the entropy).
    """
    model = base_model(model)
    inputs = inputs or InputSpec(model.input_shape[1:], "unit")
    ds = images_only(inputs.dataset(data, batch_size, cache=False))
    try:
        head = softmax_head(model)
    except ConfigError:
        head = None
    if head is not None:
        features = tf.keras.Model(model.inputs, head.input).predict(ds, verbose=0).astype(np.float64)
        kernel, bias = (w.astype(np.float64) for w in head.get_weights())
        return features @ kernel + bias
    probs = model.predict(ds, verbose=0).astype(np.float64)
    return np.log(np.clip(probs, 1e-300, None))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image categorical cross-entropy (natural log) from logits and integer labels."""
    logits = np.asarray(logits, dtype=np.float64)
    return logsumexp(logits, axis=1) - logits[np.arange(len(labels)), labels]


def _entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """tensorflow-privacy's label-aware ("modified") entropy, computed from probabilities."""
    return _mia_data().AttackInputData._get_entropy(softmax(logits, axis=1), labels)


def make_attack_input(logits_in, labels_in, logits_out, labels_out):
    """tensorflow-privacy ``AttackInputData`` from logits and integer labels of members (``in``)
    and non-members (``out``): logits, labels (per-class slicing), losses and entropies."""
    labels_in, labels_out = np.asarray(labels_in, np.int64), np.asarray(labels_out, np.int64)
    return _mia_data().AttackInputData(
        logits_train=np.asarray(logits_in, np.float64), logits_test=np.asarray(logits_out, np.float64),
        labels_train=labels_in, labels_test=labels_out,
        loss_train=cross_entropy(logits_in, labels_in), loss_test=cross_entropy(logits_out, labels_out),
        entropy_train=_entropy(logits_in, labels_in), entropy_test=_entropy(logits_out, labels_out))


def attack_inputs(model: tf.keras.Model, members: FaceData, nonmembers: FaceData,
                  inputs: InputSpec | None = None):
    """``AttackInputData`` for ``model`` on ``members`` / ``nonmembers`` (faces prepared as ``inputs``
    says, see :func:`model_logits`)."""
    return make_attack_input(model_logits(model, members, inputs), members.labels,
                             model_logits(model, nonmembers, inputs), nonmembers.labels)


# ---------------------------------------------------------------------------------------------
# Operating points


def confusion_percentages(tp: int, fp: int, tn: int, fn: int) -> dict:
    """TP/FP/TN/FN as percentages of all audited images (exact floats) plus the counts."""
    total = tp + fp + tn + fn
    pct = {k: 100.0 * v / total for k, v in zip(CONFUSION_KEYS, (tp, fp, tn, fn))}
    if abs(sum(pct.values()) - 100.0) > 1e-9:  # pragma: no cover - arithmetic invariant
        raise AssertionError(f"TP+FP+TN+FN = {sum(pct.values())}%, not 100%")
    return {**pct, "counts": {k: int(v) for k, v in zip(CONFUSION_KEYS, (tp, fp, tn, fn))},
            "accuracy": (tp + tn) / total, "tpr": tp / max(tp + fn, 1), "fpr": fp / max(fp + tn, 1)}




def best_accuracy_point(scores_in: np.ndarray, scores_out: np.ndarray) -> dict:
    """The single threshold (member iff score >= threshold) with the highest attack accuracy."""
    s = np.concatenate([scores_in, scores_out]).astype(np.float64)
    y = np.concatenate([np.ones(len(scores_in)), np.zeros(len(scores_out))])
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    ends = np.r_[s[1:] != s[:-1], True]  # cut only between different scores
    tp = np.r_[0, np.cumsum(y)[ends]]
    fp = np.r_[0, np.cumsum(1 - y)[ends]]
    thresholds = np.r_[np.inf, s[ends]]
    n_in, n_out = len(scores_in), len(scores_out)
    best = int(np.argmax(tp + (n_out - fp)))
    tp, fp = int(tp[best]), int(fp[best])
    return {**confusion_percentages(tp, fp, n_out - fp, n_in - tp), "threshold": float(thresholds[best])}


def _upper_threshold(scores: np.ndarray, fpr: float) -> float:
    """A threshold t with at most a fraction ``fpr`` of ``scores`` above it (score > t)."""
    return float(np.quantile(scores, 1.0 - fpr, method="higher"))


def per_class_point(scores_in, labels_in, scores_out, labels_out, target_fpr: float,
                    calib_scores=None, calib_labels=None, min_reference: int = 20) -> dict:
    """Confusion at per-class thresholds set at ``target_fpr`` on calibration scores.

    Class c's threshold is the (1 - target_fpr) quantile of the calibration scores of class c
    (the ``calib_*`` population when it has at least ``min_reference`` images of that class,
    else the non-members of that class); an image is called a member when its score is above it.
    """
    classes = np.union1d(labels_in, labels_out)
    thresholds, sources = {}, {}
    for c in classes:
        if calib_scores is not None and np.sum(calib_labels == c) >= min_reference:
            thresholds[int(c)], sources[int(c)] = _upper_threshold(calib_scores[calib_labels == c], target_fpr), "reference"
        else:
            pool = scores_out[labels_out == c]
            if len(pool) == 0:
                pool = scores_out
            thresholds[int(c)], sources[int(c)] = _upper_threshold(pool, target_fpr), "non-members"
    t_in = np.array([thresholds[int(c)] for c in labels_in])
    t_out = np.array([thresholds[int(c)] for c in labels_out])
    tp, fp = int(np.sum(scores_in > t_in)), int(np.sum(scores_out > t_out))
    used = set(sources.values())
    return {**confusion_percentages(tp, fp, len(scores_out) - fp, len(scores_in) - tp),
            "target_fpr": target_fpr, "thresholds": thresholds,
            "calibration": used.pop() if len(used) == 1 else "mixed", "calibration_per_class": sources}


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, at: float) -> float:
    """Highest TPR on the ROC curve whose FPR is at most ``at``."""
    ok = np.asarray(fpr) <= at + 1e-12
    return float(np.max(np.asarray(tpr)[ok])) if ok.any() else 0.0


# ---------------------------------------------------------------------------------------------
# The audit


def attack_type(name: str):
    types = {t.value: t for t in _mia_data().AttackType}
    key = name.replace("_", "-")
    if key not in types:
        raise ConfigError(f"--attacks {name!r}: unknown attack; use {', '.join(types)}")
    return types[key]


def audit_outputs(logits_in, labels_in, logits_out, labels_out, *, reference_logits=None,
                  reference_labels=None, attacks: Sequence[str] = DEFAULT_ATTACKS,
                  target_fpr: float = DEFAULT_TARGET_FPR, min_reference: int = 20, seed: int = 0,
                  keep_roc: bool = True) -> dict:
    """Run the attacks on model outputs (logits + integer labels); see the module docstring."""
    if not 0 < target_fpr < 1:
        raise ConfigError(f"--target-fpr must be between 0 and 1 (got {target_fpr})")
    labels_in, labels_out = np.asarray(labels_in), np.asarray(labels_out)
    if len(labels_in) == 0 or len(labels_out) == 0:
        raise DataError("an audit needs at least one member and one non-member")
    mia, ds = _mia(), _mia_data()
    types = [attack_type(a) for a in attacks]
    data = make_attack_input(logits_in, labels_in, logits_out, labels_out)
    ref_scores = {}
    if reference_logits is not None and len(reference_labels):
        reference_labels = np.asarray(reference_labels)
        ref_scores = {"threshold": -cross_entropy(reference_logits, reference_labels),
                      "threshold-entropy": -_entropy(reference_logits, reference_labels)}
    state = np.random.get_state()
    np.random.seed(seed)  # tensorflow-privacy draws the trained attacks' folds with np.random
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # its epsilon lower bound divides by 0
            results = mia.run_attacks(data, ds.SlicingSpec(entire_dataset=True, by_class=False),
                                      attack_types=types)
    finally:
        np.random.set_state(state)
    out = {"members": int(len(labels_in)), "nonmembers": int(len(labels_out)),
           "reference": int(0 if reference_labels is None else len(reference_labels)),
           # the model's accuracy on each side: the gap between them is what the attacks feed on
           "member_accuracy": float(np.mean(np.argmax(logits_in, 1) == labels_in)),
           "nonmember_accuracy": float(np.mean(np.argmax(logits_out, 1) == labels_out)),
           "target_fpr": target_fpr, "attacks": {}}
    for result in results.single_attack_results:
        name = result.attack_type.value
        s_in = np.asarray(result.membership_scores_train, np.float64)
        s_out = np.asarray(result.membership_scores_test, np.float64)
        fpr, tpr = np.asarray(result.roc_curve.fpr), np.asarray(result.roc_curve.tpr)
        # tensorflow-privacy keeps the input order in the scores (the trained attacks score
        # every image out of fold), so the per-class labels apply to every attack.
        if len(s_in) != len(labels_in) or len(s_out) != len(labels_out):  # pragma: no cover
            raise AssertionError(f"{name}: scores for {len(s_in)}/{len(s_out)} images, expected "
                                 f"{len(labels_in)}/{len(labels_out)}")
        point = per_class_point(s_in, labels_in, s_out, labels_out, target_fpr,
                                ref_scores.get(name), reference_labels, min_reference)
        entry = {
            "auc": float(result.get_auc()),
            "advantage": float(result.get_attacker_advantage()),
            **{f"tpr_at_{f * 100:g}%_fpr": tpr_at_fpr(fpr, tpr, f) for f in LOW_FPRS},
            "at_target_fpr": point,
            "best_accuracy": best_accuracy_point(s_in, s_out),
            "scored": {"members": int(len(s_in)), "nonmembers": int(len(s_out))},
        }
        if keep_roc:
            entry["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
        out["attacks"][name] = entry
    return out


def audit(model: tf.keras.Model, members: FaceData, nonmembers: FaceData, reference: FaceData | None = None,
          *, attacks: Sequence[str] = DEFAULT_ATTACKS, target_fpr: float = DEFAULT_TARGET_FPR,
          min_reference: int = 20, seed: int = 0, keep_roc: bool = True, inputs: InputSpec | None = None) -> dict:
    """Membership-inference audit of ``model`` on ``members`` vs ``nonmembers``.

    ``reference`` (optional) is population data for the per-class thresholds of the loss and
    entropy attacks; ``inputs`` says how faces are prepared for the model (:func:`model_logits`).
    Returns ``{"members", "nonmembers", "reference", "member_accuracy", "nonmember_accuracy",
    "target_fpr", "attacks": {name: {"auc",
    "advantage", "tpr_at_1%_fpr", "tpr_at_0.1%_fpr", "at_target_fpr", "best_accuracy", "roc"}}}``;
    each operating point holds ``tp, fp, tn, fn`` (% of all audited images, summing to 100), the
    ``counts``, ``accuracy``, ``tpr`` and ``fpr``.
    """
    ref_logits = ref_labels = None
    if reference is not None and len(reference):
        ref_logits, ref_labels = model_logits(model, reference, inputs), reference.labels
    return audit_outputs(model_logits(model, members, inputs), members.labels,
                         model_logits(model, nonmembers, inputs), nonmembers.labels,
                         reference_logits=ref_logits, reference_labels=ref_labels, attacks=attacks,
                         target_fpr=target_fpr, min_reference=min_reference, seed=seed, keep_roc=keep_roc)
