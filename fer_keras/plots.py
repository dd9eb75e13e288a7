"""Figures for run folders (PNG, 120 dpi). Each function saves one file.

Figures are drawn on :class:`matplotlib.figure.Figure` objects, not through ``pyplot``: nothing
here changes matplotlib's backend or pyplot's state, so plots in a notebook stay inline.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from fer_keras.files import atomic_write_bytes

DPI = 120


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, squeeze: bool = True):
    """A new Figure (outside pyplot) and its axes, as ``plt.subplots`` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def _save(fig, path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def class_distribution(splits: dict, path) -> Path:
    """Grouped bar chart of images per class in each split (``{"train": FaceData, ...}``)."""
    names = next(iter(splits.values())).class_names
    fig, ax = _subplots(figsize=(1.2 * len(names) + 2, 3.5))
    width = 0.8 / len(splits)
    for i, (split, data) in enumerate(splits.items()):
        counts = np.bincount(data.labels, minlength=len(names))
        bars = ax.bar(np.arange(len(names)) + i * width, counts, width, label=f"{split} ({len(data):,})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(names)) + width * (len(splits) - 1) / 2, names, rotation=20)
    ax.set_ylabel("images")
    ax.set_title("Images per class")
    ax.legend()
    return _save(fig, path)


def _show(ax, image, title=None, color="black"):
    """Show a face with pixels 0..255 (gray (H, W, 1) or RGB (H, W, 3), any dtype)."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:  # imshow ignores vmin/vmax for RGB: it wants uint8 or floats in [0, 1]
        ax.imshow(np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, color=color)


def sample_grid(data, path, per_class: int = 8, seed: int = 0) -> Path:
    """A row of random faces per class."""
    rng = np.random.default_rng(seed)
    k = data.num_classes
    fig, axes = _subplots(k, per_class, figsize=(per_class * 0.9, k * 1.0), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(data.labels == c)
        picks = rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            if j < len(picks):
                _show(ax, data.images[picks[j]])
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(data.class_names[c], fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("Sample faces per class")
    return _save(fig, path)


def training_curves(history: list[dict], path) -> Path:
    """Accuracy, loss, adversarial loss and cross-entropy per epoch, train and validation."""
    panels = [("categorical_accuracy", "accuracy"), ("loss", "loss"),
              ("scaled_adversarial_loss", "adversarial loss (scaled)"),
              ("categorical_crossentropy", "cross-entropy")]
    panels = [p for p in panels if any(p[0] in r for r in history)]
    fig, axes = _subplots(1, len(panels), figsize=(3.6 * len(panels), 3), squeeze=False)
    epochs = [int(r["epoch"]) + 1 for r in history]
    for ax, (key, title) in zip(axes[0], panels):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [r.get(prefix + key, np.nan) for r in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o", ms=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def confusion_matrix(matrix, class_names, path, title="Confusion matrix (test)") -> Path:
    """Row-normalised confusion matrix with counts."""
    matrix = np.asarray(matrix)
    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    k = len(class_names)
    fig, ax = _subplots(figsize=(0.8 * k + 2, 0.8 * k + 1.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=35, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def misclassified_gallery(images, labels, probabilities, class_names, path, count: int = 24) -> Path:
    """The most confidently wrong predictions: true label, predicted label and its probability."""
    preds = probabilities.argmax(1)
    wrong = np.flatnonzero(preds != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, preds[wrong]])][:count]
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = _subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.axis("on")
        _show(ax, images[i], f"true {class_names[labels[i]]}\npred {class_names[preds[i]]} "
                             f"{probabilities[i, preds[i]]:.0%}", color="darkred")
    fig.suptitle(f"Misclassified test faces ({len(np.flatnonzero(preds != labels))} wrong; "
                 f"most confident {len(wrong)} shown)")
    return _save(fig, path)


def _label_text(row, class_names) -> str:
    """``happiness`` for a one-hot row; ``0.83 happiness / 0.17 sadness`` for a mixed one."""
    order = np.argsort(-row)
    if row[order[0]] > 1 - 1e-6:
        return class_names[order[0]]
    return "\n".join(f"{row[i]:.2f} {class_names[i]}" for i in order[:2] if row[i] > 1e-3)


def augmented_samples(before, after, labels_before, labels_after, class_names, path,
                      title="Augmented training samples", cols: int = 8) -> Path:
    """Pairs of rows: training faces (0..255) before augmentation, and the same faces after it,
    with their labels (MixUp's mixed labels shown as weights of the two classes)."""
    n = len(before)
    blocks = int(np.ceil(n / cols))
    fig, axes = _subplots(2 * blocks, cols, figsize=(cols * 1.25, blocks * 3.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        changed = not np.allclose(before[i], after[i], atol=0.5)
        relabelled = not np.allclose(labels_before[i], labels_after[i], atol=1e-6)
        for ax, img, text, color in (
                (axes[r, c], before[i], _label_text(labels_before[i], class_names), "black"),
                (axes[r + 1, c], after[i], _label_text(labels_after[i], class_names),
                 "darkred" if relabelled else ("black" if changed else "gray"))):
            ax.axis("on")
            _show(ax, np.clip(img, 0, 255), text, color=color)
        axes[r, 0].set_ylabel("original", fontsize=8)
        axes[r + 1, 0].set_ylabel("augmented", fontsize=8)
    mixed = not np.allclose(labels_before, labels_after, atol=1e-6)
    fig.suptitle(f"{title}\n(rows in pairs: original / augmented; "
                 + ("red label = mixed by MixUp, " if mixed else "") + "gray = left unchanged)", fontsize=9)
    return _save(fig, path)


def robustness_curves(results: dict, path, title="Accuracy under attack (test)") -> Path:
    """Accuracy vs epsilon for FGSM, PGD and NSL's perturbation, one line style per attack and
    one colour per model. ``results``: ``{model label: evaluate_robustness() dict}``."""
    fig, ax = _subplots(figsize=(6.2, 4))
    styles = {"fgsm": ("o", "-"), "pgd": ("s", "--"), "nsl": ("^", ":")}
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for m, (label, res) in enumerate(results.items()):
        eps = res["epsilons"]
        for attack, (marker, ls) in styles.items():
            if attack in res:
                ax.plot(eps, res[attack], marker=marker, ls=ls, ms=4, color=colors[m % len(colors)],
                        label=f"{label} {attack.upper()}")
    ax.set_xlabel(f"epsilon ({next(iter(results.values())).get('units', 'input units')})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def label_noise_curves(rows: list[dict], path, title="Label noise: test accuracy and memorisation") -> Path:
    """Two panels against the noise fraction, one line per augmentation setting: clean test
    accuracy, and the share of flipped training images predicted as their true / noisy label."""
    fig, axes = _subplots(1, 2, figsize=(10, 3.8))
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, augment in enumerate(dict.fromkeys(r["augment"] for r in rows)):
        rs = sorted((r for r in rows if r["augment"] == augment), key=lambda r: r["noise"])
        noise = [r["noise"] for r in rs]
        color = colors[i % len(colors)]
        axes[0].plot(noise, [r["test_accuracy"] for r in rs], marker="o", color=color, label=augment)
        noisy = [r for r in rs if r["noise"] > 0]
        axes[1].plot([r["noise"] for r in noisy], [r["fraction_true"] for r in noisy], marker="o",
                     color=color, label=f"{augment}: true label")
        axes[1].plot([r["noise"] for r in noisy], [r["fraction_noisy"] for r in noisy], marker="x",
                     ls="--", color=color, label=f"{augment}: noisy label")
    axes[0].set_title("clean test accuracy")
    axes[1].set_title("flipped training images predicted as ...")
    for ax in axes:
        ax.set_xlabel("fraction of training labels flipped")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def gradcam_grid(images, heatmaps, titles, path, title="Grad-CAM", cols: int = 8, alpha: float = 0.45) -> Path:
    """Faces (N, h, w, c) 0..255 with their Grad-CAM heatmaps (N, H, W) in [0, 1] overlaid
    (viridis, ``alpha``; stretched over the face). ``titles``: per face ``text`` or
    ``(text, colour)``, e.g. given and predicted label. An empty set draws a "none" note."""
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = _subplots(rows, cols, figsize=(cols * 1.3, rows * 1.6 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        text, color = titles[i] if isinstance(titles[i], tuple) else (titles[i], "black")
        _show(ax, images[i], text, color)
        h, w = images[i].shape[:2]
        ax.imshow(heatmaps[i], cmap="viridis", vmin=0, vmax=1, alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                  interpolation="bilinear")
        ax.axis("on")
    if n == 0:
        axes[0, 0].text(0, 0.5, "no faces", fontsize=10)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def membership_roc(curves: dict, path, title: str = "Membership inference ROC") -> Path:
    """ROC curves ``{label: (fpr, tpr, auc)}``: linear axes and log-log (low-FPR) side by side."""
    fig, axes = _subplots(1, 2, figsize=(11, 4.8))
    for label, (fpr, tpr, auc) in curves.items():
        for ax in axes:
            ax.plot(fpr, tpr, lw=1.2, label=f"{label} (AUC {auc:.3f})")
    for ax in axes:
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
        ax.set_xlabel("false-positive rate (non-members called members)")
        ax.set_ylabel("true-positive rate")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlim(1e-3, 1)
    axes[1].set_ylim(1e-3, 1)
    axes[0].set_title(title)
    axes[1].set_title("low-FPR region (log-log)")
    axes[0].legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def learning_curves(histories: dict[str, list[dict]], path,
                    title: str = "Full-data runs: validation accuracy per epoch") -> Path:
    """Validation (solid) and training (dotted) accuracy per epoch of several runs (name -> history rows)."""
    fig, ax = _subplots(figsize=(8, 4.5))
    for i, (name, history) in enumerate(histories.items()):
        epochs = [int(r["epoch"]) + 1 for r in history]
        color = f"C{i % 10}"
        ax.plot(epochs, [100 * float(r["val_categorical_accuracy"]) for r in history], color=color, label=name)
        ax.plot(epochs, [100 * float(r["categorical_accuracy"]) for r in history], color=color, ls=":", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy %")
    ax.set_title(title + " (dotted: training, on augmented batches)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def accuracy_vs_cost(points: list[dict], path, title: str = "Test accuracy against model cost") -> Path:
    """One marker per run: ``{"label", "macs" (per image), "accuracy" (fraction), "full" (bool)}``;
    full-data runs filled, reduced-scale runs hollow; MACs on a log axis."""
    fig, ax = _subplots(figsize=(8, 4.5))
    best = {}
    for p in points:
        x, y = p["macs"] / 1e6, 100 * p["accuracy"]
        ax.scatter([x], [y], s=40, facecolors="C0" if p["full"] else "none", edgecolors="C0" if p["full"] else "C7")
        if p["full"] and y > best.get(p["label"], (0, -1))[1]:
            best[p["label"]] = (x, y)
    for label, (x, y) in best.items():  # each model named once, at its best full-data run
        ax.annotate(f"{label} {y:.1f}%", (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("multiply-adds per image (millions, log scale)")
    ax.set_ylabel("test accuracy %")
    ax.set_title(title + " (filled: full data; hollow: reduced-scale runs)")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def ablation_changes(rows: list[dict], keep_points: float, path,
                     title: str = "Recipe ablation: one change at a time") -> Path:
    """Two bar panels, one bar per change (``{"change", "validation_gain" (points over the base),
    "fgsm" (accuracy fraction at 1/255, or None), "base_fgsm"}``): the validation gain with the keep
    threshold ``keep_points`` marked, and the FGSM accuracy with the base's marked."""
    fig, (gain, fgsm) = _subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.8))
    y = np.arange(len(rows))
    gains = [r["validation_gain"] for r in rows]
    gain.barh(y, gains, color=["C2" if g >= keep_points else "C7" for g in gains])
    gain.axvline(0, color="black", lw=0.8)
    gain.axvline(keep_points, color="C3", ls="--", lw=1, label=f"kept from +{keep_points:g}")
    gain.set_yticks(y, [r["change"] for r in rows], fontsize=8)
    gain.invert_yaxis()
    gain.set_xlabel("validation accuracy over the base (points)")
    gain.legend(fontsize=7, loc="lower right")
    shown = [100 * (r["fgsm"] or 0) for r in rows]
    fgsm.barh(y, shown, color=["C0" if r["fgsm"] is not None else "none" for r in rows])
    if rows and rows[0].get("base_fgsm") is not None:
        fgsm.axvline(100 * rows[0]["base_fgsm"], color="black", ls=":", lw=1, label="base")
        fgsm.legend(fontsize=7, loc="lower right")
    fgsm.set_yticks(y, [""] * len(rows))
    fgsm.invert_yaxis()
    fgsm.set_xlabel("test accuracy under FGSM at 1/255 (%)")
    for ax in (gain, fgsm):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def framing_curves(rows: list[dict], reference: float, path,
                   title: str = "Accuracy (misses counted wrong) against crop margin") -> Path:
    """One panel per framing, accuracy counting misses as wrong against the crop margin: one colour
    per detector, align on solid, off dashed (``n/a``, alignment a no-op: solid, square markers);
    the model on the original crops (``reference``, a fraction) as a grey line. ``rows`` as
    :func:`fer_keras.studies.framing.measure` makes them."""
    framings = list(dict.fromkeys(r["framing"] for r in rows))
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    fig, axes = _subplots(1, len(framings), figsize=(5.5 * len(framings), 4.2), squeeze=False)
    for ax, framing in zip(axes[0], framings):
        for i, detector in enumerate(detectors):
            for align, style, marker in (("on", "-", "o"), ("off", "--", "x"), ("n/a", "-", "s")):
                rs = sorted((r for r in rows if r["framing"] == framing and r["detector"] == detector
                             and r["align"] == align), key=lambda r: r["margin"])
                if rs:
                    ax.plot([r["margin"] for r in rs], [100 * r["accuracy_all"] for r in rs], ls=style, marker=marker,
                            color="black" if detector == "known" else f"C{i % 10}", label=f"{detector}, align {align}")
        ax.axhline(100 * reference, color="0.6", lw=1, label="original 48x48 crops")
        ax.set_title(framing)
        ax.set_xlabel("crop margin (share of the face box on each side)")
        ax.set_ylabel("accuracy, misses wrong %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    values = [100 * r["accuracy_all"] for r in rows] + [100 * reference]
    for ax in axes[0]:  # one scale for every panel
        ax.set_ylim(min(values) - 2, max(values) + 2)
    fig.suptitle(title)
    return _save(fig, path)
