"""Test-set figures: Keras/NSL evaluate, per-class precision/recall/F1, confusion matrix."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from fer_keras.adversarial import base_model
from fer_keras.data.pipeline import as_xy, images_only

#: The order in which Study A printed NSL's evaluate figures.
METRIC_ORDER = ("loss", "categorical_crossentropy", "categorical_accuracy", "scaled_adversarial_loss")


def ordered_scores(scores: dict) -> dict:
    """``scores`` with the study's metrics first, in the study's order, then any others."""
    keys = [k for k in METRIC_ORDER if k in scores] + [k for k in scores if k not in METRIC_ORDER]
    return {k: float(scores[k]) for k in keys}


def predict_probabilities(model: tf.keras.Model, ds: tf.data.Dataset) -> np.ndarray:
    """(N, K) class probabilities of the (base) model on a ``{"image", "label"}`` dataset."""
    return base_model(model).predict(images_only(ds), verbose=0)


def evaluate(model: tf.keras.Model, ds: tf.data.Dataset, class_names) -> dict:
    """Evaluate ``model`` (plain or NSL) on ``ds``.

    Returns ``{"evaluate": {name: value}, "accuracy", "wrong", "images", "per_class",
    "macro_f1", "confusion_matrix", "report"}``; ``evaluate`` uses Keras/NSL's own metric
    names (loss, categorical_crossentropy, categorical_accuracy[, scaled_adversarial_loss]).
    """
    from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

    is_nsl = hasattr(model, "base_model")
    scores = model.evaluate(ds if is_nsl else as_xy(ds), verbose=0, return_dict=True)
    labels = np.concatenate([d["label"].numpy() for d in ds]).argmax(1)
    probs = predict_probabilities(model, ds)
    preds = probs.argmax(1)
    k = len(class_names)
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=range(k), zero_division=0)
    return {
        "evaluate": ordered_scores(scores),
        "images": int(len(labels)),
        "accuracy": float((preds == labels).mean()),
        "wrong": int((preds != labels).sum()),
        "macro_f1": float(f.mean()),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(s[i])} for i, name in enumerate(class_names)},
        "confusion_matrix": confusion_matrix(labels, preds, labels=range(k)).tolist(),
        "report": classification_report(labels, preds, labels=range(k), target_names=list(class_names),
                                        digits=4, zero_division=0),
        "_labels": labels, "_probabilities": probs,
    }
