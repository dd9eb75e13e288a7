"""Test-set figures: Keras/NSL evaluate, per-class precision/recall/F1, confusion matrix, memorisation
of flipped labels, and any saved model scored on labelled face crops."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support
from tqdm.auto import tqdm

from fer_keras import plots
from fer_keras.classifier import load_classifier
from fer_keras.config import TTA_MODES, check_tta, view_count
from fer_keras.data import load_dataset
from fer_keras.data.images import MAX_PIXELS
from fer_keras.data.labels import class_id
from fer_keras.data.pipeline import as_xy, images_only
from fer_keras.errors import ConfigError, DataError
from fer_keras.files import atomic_write_text, ensure_writable_dir, write_json
from fer_keras.nsl import base_model
from fer_keras.runs import CONFUSION_FIGURE, TTA_FILE, RunFolder
from fer_keras.tta import average_probabilities

#: The order in which Study A printed NSL's evaluate figures.
METRIC_ORDER = ("loss", "categorical_crossentropy", "categorical_accuracy", "scaled_adversarial_loss")


def ordered_scores(scores: dict) -> dict:
    """``scores`` with the study's metrics first, in the study's order, then any others."""
    keys = [k for k in METRIC_ORDER if k in scores] + [k for k in scores if k not in METRIC_ORDER]
    return {k: float(scores[k]) for k in keys}


def predict_probabilities(model: tf.keras.Model, ds: tf.data.Dataset, tta: str = "none") -> np.ndarray:
    """(N, K) class probabilities of the (base) model on a ``{"image", "label"}`` dataset.

    ``tta`` ("none", "flip", "flip+crops") averages over views of each image (:mod:`fer_keras.tta`).
    """
    net = base_model(model)
    if check_tta(tta) == "none":
        return net.predict(images_only(ds), verbose=0)
    return np.concatenate([average_probabilities(net.predict_on_batch, x, tta)
                           for x in images_only(ds)])


def scores(labels: np.ndarray, probs: np.ndarray, class_names) -> dict:
    """Accuracy, wrong count, macro F1, per-class precision/recall/F1, confusion matrix and the
    text report for integer ``labels`` (N,) and probabilities ``probs`` (N, K)."""
    preds = probs.argmax(1)
    k = len(class_names)
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=range(k), zero_division=0)
    return {
        "images": int(len(labels)),
        "accuracy": float((preds == labels).mean()),
        "wrong": int((preds != labels).sum()),
        "macro_f1": float(f.mean()),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(s[i])} for i, name in enumerate(class_names)},
        "confusion_matrix": confusion_matrix(labels, preds, labels=range(k)).tolist(),
        "report": classification_report(labels, preds, labels=range(k), target_names=list(class_names),
                                        digits=4, zero_division=0),
    }


def evaluate(model: tf.keras.Model, ds: tf.data.Dataset, class_names, tta: str = "none") -> dict:
    """Evaluate ``model`` (plain or NSL) on ``ds``.

    Returns ``{"evaluate": {name: value}, "accuracy", "wrong", "images", "per_class",
    "macro_f1", "confusion_matrix", "report", "tta"}``; ``evaluate`` uses Keras/NSL's own metric
    names (loss, categorical_crossentropy, categorical_accuracy[, scaled_adversarial_loss]) and
    never uses test-time augmentation; the other figures use ``tta`` (:data:`fer_keras.config.TTA_MODES`;
    with TTA, ``without_tta`` holds accuracy and macro F1 without it).
    """
    is_nsl = hasattr(model, "base_model")
    keras_scores = model.evaluate(ds if is_nsl else as_xy(ds), verbose=0, return_dict=True)
    labels = np.concatenate([d["label"].numpy() for d in ds]).argmax(1)
    probs = predict_probabilities(model, ds, tta)
    out = {"evaluate": ordered_scores(keras_scores), **scores(labels, probs, class_names), "tta": tta}
    if tta != "none":  # the same figures without test-time augmentation, for comparison
        plain = scores(labels, predict_probabilities(model, ds), class_names)
        out["without_tta"] = {"accuracy": plain["accuracy"], "macro_f1": plain["macro_f1"]}
    return {**out, "_labels": labels, "_probabilities": probs}


# ------------------------------------------------------------- any saved model on labelled face crops

EVALUATION_FILE = "evaluation.json"


def evaluate_model_on_data(model, data, *, usage: str | None = None, tta: str = "none", batch_size: int = 256,
                           out=None, progress: bool | None = None, log=print,
                           max_pixels: int | None = MAX_PIXELS) -> dict:
    """Score a saved model on labelled face crops, without face detection.

    Args:
        model: pretrained name, run folder, .keras, SavedModel, .tflite or a
            :class:`fer_keras.classifier.Classifier` (:func:`fer_keras.classifier.load_classifier`).
        data: a :class:`~fer_keras.data.FaceData` or a path :func:`fer_keras.data.load_dataset` reads
            (FER2013 CSV or Kaggle folders, RAF-DB); crops of any size are resized to the model input.
        usage: keep only rows of this Usage (``"PublicTest"``, ...); None keeps all.
        tta: ``"none"``, ``"flip"`` or ``"flip+crops"`` (average over views of each face, :mod:`fer_keras.tta`).
        batch_size: faces per model call.
        out: folder for ``evaluation.json``, ``classification_report.txt`` and ``confusion_matrix.png``.
        progress: progress bar on stderr; None = only when stderr is a terminal.
        max_pixels: image files over this many pixels are refused (one line) before decoding.

    Data classes are matched to the model's by name (aliases allowed, e.g. ``happy`` = ``happiness``);
    rows of classes the model lacks are skipped and counted in ``skipped``.
    Returns ``{"model", "data", "usage", "tta", "class_names", "images", "skipped", "accuracy", "macro_f1",
    "wrong", "per_class", "confusion_matrix", "report", "seconds", "images_per_second"}``.
    """
    check_tta(tta)
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    source = data
    if not hasattr(data, "images"):
        data = load_dataset(data, max_pixels, log)
    if usage is not None:
        keep = data.usage == usage
        if not keep.any():
            raise DataError(f"{source}: no rows with Usage {usage!r} (it has: {', '.join(sorted(set(data.usage)))})")
        data = data.take(keep)
    classifier = load_classifier(model)
    names = list(classifier.class_names)
    to_model = _class_map(data.class_names, names)
    targets = to_model[data.labels]
    rows = targets >= 0
    if not rows.any():
        raise DataError(f"{source}: none of its classes ({', '.join(data.class_names)}) is one of the model's "
                        f"({', '.join(names)})")
    images, labels = data.images[rows], targets[rows]
    start = time.monotonic()
    probs = []
    with tqdm(total=len(images), unit="face", desc="evaluate", file=sys.stderr, mininterval=1.0,
              disable=(not sys.stderr.isatty()) if progress is None else not progress) as bar:
        for i in range(0, len(images), batch_size):
            batch = images[i:i + batch_size]
            probs.append(classifier(batch, tta=tta))
            bar.update(len(batch))
    seconds = time.monotonic() - start
    probs = np.concatenate(probs)
    shown = model if isinstance(model, (str, os.PathLike)) else getattr(classifier, "path", model)
    result = {"model": str(shown), "data": str(source), "usage": usage, "tta": tta,
              "class_names": names, "skipped": int((~rows).sum()), **scores(labels, probs, names),
              "seconds": round(seconds, 2), "images_per_second": round(len(images) / max(seconds, 1e-9), 1)}
    if out is not None:
        out = ensure_writable_dir(out, "--out")
        write_json(out / EVALUATION_FILE, {k: v for k, v in result.items() if k != "report"})
        atomic_write_text(out / "classification_report.txt", result["report"])
        title = f"Confusion matrix ({usage or 'all rows'}{'' if tta == 'none' else f', {tta} TTA'})"
        plots.confusion_matrix(result["confusion_matrix"], names, Path(out) / CONFUSION_FIGURE, title=title)
        log(f"wrote {out / EVALUATION_FILE}, classification_report.txt, confusion_matrix.png")
    return result


def select_tta(run_dir, data=None, *, modes=TTA_MODES, log=print) -> dict:
    """Score each test-time augmentation mode on a finished run's *validation* split, select the
    most accurate (ties: the one with fewer views), then score only the selected mode on the test
    split (all of it, and without its images that also occur in the training data); writes
    ``RUN/tta_validation.json``.

    Args:
        run_dir: a finished training run folder.
        data: the data's path, if it moved since training.
        modes: the modes to score, cheapest first (default: all of :data:`fer_keras.config.TTA_MODES`).

    Returns ``{"run", "split": {"part", "images", "usage"}, "modes": {mode: {"accuracy", "macro_f1",
    "views", "seconds"}}, "selected", "test": {"tta", "images", "accuracy", "macro_f1",
    "deduplicated": {"images", "accuracy", "macro_f1"}}}``.
    """
    run = RunFolder.open(run_dir, "run", finished=True)
    parts, extras = run.prepared_data(data)
    val, test = parts["val"], parts["test"]
    if len(val) == 0:
        raise ConfigError(f"{run.path}: its validation split is empty, so there is nothing to select TTA on")
    classifier = load_classifier(run.path)
    scored = {}
    for mode in modes:
        result = evaluate_model_on_data(classifier, val, tta=mode, log=log)
        scored[mode] = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
                        "views": view_count(mode), "seconds": result["seconds"]}
        log(f"{run.name}: validation accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} "
            f"with TTA {mode} ({result['images']:,} images)")
    best = max(scored, key=lambda m: (scored[m]["accuracy"], -scored[m]["views"]))
    out = {"run": run.name, "split": {"part": "val", "images": len(val),
                                      "usage": {u: int(n) for u, n in zip(*np.unique(val.usage, return_counts=True))}},
           "modes": scored, "selected": best}
    log(f"Selected TTA {best!r} on validation; scoring it once on the test split")
    full = evaluate_model_on_data(classifier, test, tta=best, log=log)
    out["test"] = {"tta": best, **{k: full[k] for k in ("images", "accuracy", "macro_f1")}}
    clean = ~extras["test_in_training"]
    if not clean.all() and clean.any():
        dedup = evaluate_model_on_data(classifier, test.take(clean), tta=best, log=log)
        out["test"]["deduplicated"] = {k: dedup[k] for k in ("images", "accuracy", "macro_f1")}
    write_json(run / TTA_FILE, out)
    log(f"Test accuracy {full['accuracy']:.4f} with TTA {best} ({full['images']:,} images); wrote {run / TTA_FILE}")
    return out


def _class_map(data_names, model_names) -> np.ndarray:
    """int (len(data_names),): the model's index of each data class, -1 when the model lacks it."""
    try:
        model_ids = [class_id(n) for n in model_names]
        data_ids = [class_id(n) for n in data_names]
    except ConfigError:  # names that are no FER2013 class: they must be the same names
        if list(map(str, data_names)) == list(map(str, model_names)):
            return np.arange(len(data_names))
        raise ConfigError(f"cannot match the data's classes ({', '.join(data_names)}) to the model's "
                          f"({', '.join(model_names)})") from None
    return np.array([model_ids.index(i) if i in model_ids else -1 for i in data_ids], dtype=np.int64)


def memorisation(probabilities: np.ndarray, true_labels, noisy_labels) -> dict:
    """How a model trained on noisy labels predicts the flipped training images.

    ``probabilities``: (M, K) predictions on the M flipped images. Returns counts and fractions
    predicted as their true label (the model resisted the noise), as their noisy training label
    (it memorised the flip), or as something else.
    """
    pred = np.asarray(probabilities).argmax(1)
    true_labels, noisy_labels = np.asarray(true_labels), np.asarray(noisy_labels)
    m = len(pred)
    as_true, as_noisy = int((pred == true_labels).sum()), int((pred == noisy_labels).sum())
    return {"flipped_images": m, "predicted_true": as_true, "predicted_noisy": as_noisy,
            "predicted_other": m - as_true - as_noisy,
            "fraction_true": as_true / m if m else float("nan"),
            "fraction_noisy": as_noisy / m if m else float("nan")}
