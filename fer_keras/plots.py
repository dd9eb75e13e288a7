"""Figures for run folders (matplotlib, Agg backend; PNG, 120 dpi). Each function saves one file."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 120


def _save(fig, path) -> Path:
    from fer_keras.runs import atomic_write_bytes
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def class_distribution(splits: dict, path) -> Path:
    """Grouped bar chart of images per class in each split (``{"train": FaceData, ...}``)."""
    names = next(iter(splits.values())).class_names
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.5))
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
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, color=color)


def sample_grid(data, path, per_class: int = 8, seed: int = 0) -> Path:
    """A row of random faces per class."""
    rng = np.random.default_rng(seed)
    k = data.num_classes
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 1.0), squeeze=False)
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
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3), squeeze=False)
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
    fig, ax = plt.subplots(figsize=(0.8 * k + 2, 0.8 * k + 1.5))
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
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.axis("on")
        _show(ax, images[i], f"true {class_names[labels[i]]}\npred {class_names[preds[i]]} "
                             f"{probabilities[i, preds[i]]:.0%}", color="darkred")
    fig.suptitle(f"Misclassified test faces ({len(np.flatnonzero(preds != labels))} wrong; "
                 f"most confident {len(wrong)} shown)")
    return _save(fig, path)
