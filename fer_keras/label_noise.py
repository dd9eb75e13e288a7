"""Synthetic label noise for the memorisation study: flip a fraction of the training labels.

``flip_labels(labels, 0.2)`` flips exactly ``round(0.2 * N)`` labels, chosen at random, and
never to the label's own class:

* ``mode="uniform"``: the new class is drawn uniformly from the other ``K - 1`` classes.
* ``mode="class"``: class-dependent noise; every class flips to one fixed "similar" class
  (:data:`SIMILAR`): anger <-> disgust, fear <-> surprise, sadness <-> neutral,
  happiness -> surprise. These are the expression pairs most often confused on FER2013 and
  RAF-DB. When the target is not among the kept classes (e.g. the 3-class subset), or the
  class names are not given, class ``c`` flips to ``(c + 1) mod K``.

Only the training split is ever noised (:func:`fer_keras.experiment.prepare_data` with
``config.label_noise``); the flipped indices, true and noisy labels are kept so a trained
model can be checked for memorisation with :func:`memorisation`.
"""
from __future__ import annotations

import numpy as np

from fer_keras.errors import ConfigError

NOISE_MODES = ("uniform", "class")

#: Class-dependent noise: each expression flips to a visually similar one.
SIMILAR = {"anger": "disgust", "disgust": "anger", "fear": "surprise", "surprise": "fear",
           "sadness": "neutral", "neutral": "sadness", "happiness": "surprise"}


def confusion_target(num_classes: int, class_names=None) -> np.ndarray:
    """The class each class flips to under ``mode="class"`` (never itself)."""
    target = (np.arange(num_classes) + 1) % num_classes
    if class_names is not None:
        names = list(class_names)
        for c, name in enumerate(names):
            if SIMILAR.get(name) in names:
                target[c] = names.index(SIMILAR[name])
    return target


def flip_labels(labels, fraction: float, mode: str = "uniform", num_classes: int | None = None,
                seed: int = 0, class_names=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy_labels, flipped)``: int32 labels with ``round(fraction * N)`` of them changed
    to another class, and the boolean mask of the changed rows."""
    labels = np.asarray(labels, dtype=np.int32)
    if not 0 <= fraction <= 1:
        raise ConfigError(f"--label-noise must be between 0 and 1 (got {fraction})")
    if mode not in NOISE_MODES:
        raise ConfigError(f"--noise-mode {mode!r}: use one of {', '.join(NOISE_MODES)}")
    k = int(num_classes if num_classes is not None else (len(class_names) if class_names is not None
                                                          else labels.max(initial=0) + 1))
    if k < 2:
        raise ConfigError("label noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    n_flip = int(round(fraction * len(labels)))
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), n_flip, replace=False)] = True
    noisy = labels.copy()
    old = labels[flipped]
    if mode == "uniform":  # shift by 1..k-1: uniform over the other classes
        noisy[flipped] = (old + rng.integers(1, k, size=n_flip)) % k
    else:
        noisy[flipped] = confusion_target(k, class_names)[old]
    return noisy, flipped


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


# --------------------------------------------------------------------------- the sweep

SWEEP_FIELDS = ("noise", "mode", "augment", "test_accuracy", "macro_f1", "flipped_images",
                "fraction_true", "fraction_noisy", "run")


def run_sweep(base, noise_levels, augments, out, log=print) -> dict:
    """Train one run per (noise fraction, augmentation setting) from ``base`` (an ExperimentConfig)
    into a new folder ``out/<stamp>-label-noise/``, then write ``label_noise.csv``/``.md``,
    ``label_noise.png`` and ``sweep.json`` there (the table is rewritten after every run).

    Returns ``{"folder": Path, "rows": [...]}``; each row has the clean test accuracy and how the
    flipped training images are predicted (:func:`memorisation`).
    """
    import dataclasses

    from fer_keras.augment import parse_augment
    from fer_keras.experiment import run_experiment
    from fer_keras.runs import new_run_dir, read_json

    noise_levels = [float(f) for f in noise_levels]
    augments = ["+".join(parse_augment(a)) or "none" for a in augments]
    for f in noise_levels:
        if not 0 <= f < 1:
            raise ConfigError(f"--noise {f:g}: each fraction must be in [0, 1)")
    folder = new_run_dir(out, "label-noise")
    rows = []
    for augment in augments:
        for f in noise_levels:
            log(f"=== label noise {f:.0%} ({base.label_noise_mode}), augment {augment} ===")
            config = dataclasses.replace(base, augment=augment, label_noise=f, out=str(folder))
            run = run_experiment(config, log=log)
            metrics = read_json(run / "metrics.json")
            memo = metrics.get("label_noise", {})
            rows.append({"noise": f, "mode": base.label_noise_mode, "augment": augment,
                         "test_accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "flipped_images": memo.get("flipped_images", 0),
                         "fraction_true": memo.get("fraction_true", float("nan")),
                         "fraction_noisy": memo.get("fraction_noisy", float("nan")), "run": run.name})
            write_sweep(rows, folder, base)
    return {"folder": folder, "rows": rows}


def write_sweep(rows: list[dict], folder, base=None) -> None:
    """The sweep's table (CSV + Markdown), plot and JSON in ``folder``."""
    import csv
    import io
    from pathlib import Path

    from fer_keras import plots
    from fer_keras.runs import atomic_write_text, write_json

    folder = Path(folder)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SWEEP_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "label_noise.csv", buf.getvalue())

    def pct(v):
        return "-" if v != v else f"{v:.1%}"  # NaN (no flipped images) -> "-"

    md = ["| noise | mode | augment | test accuracy | macro F1 | flipped train images | "
          "predicted true label | predicted noisy label | run |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    md += [f"| {r['noise']:.0%} | {r['mode']} | {r['augment']} | {r['test_accuracy']:.4f} | "
           f"{r['macro_f1']:.4f} | {r['flipped_images']} | {pct(r['fraction_true'])} | "
           f"{pct(r['fraction_noisy'])} | {r['run']} |" for r in rows]
    if base is not None:
        md += ["", f"{base.model}, {'NSL' if base.adversarial else 'plain'} training, "
               f"{base.resolved_epochs} epochs, --limit {base.limit}, --eval-limit {base.eval_limit}, "
               f"seed {base.seed}. Flipped images are predicted without augmentation."]
    atomic_write_text(folder / "label_noise.md", "\n".join(md) + "\n")
    write_json(folder / "sweep.json", {"rows": rows, "config": base.to_dict() if base is not None else None})
    plots.label_noise_curves(rows, folder / "label_noise.png")
