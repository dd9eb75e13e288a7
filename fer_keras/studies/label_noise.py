"""Label-noise study: flip a fraction of the training labels, train with and without
de-memorisation augmentation, and measure clean test accuracy and memorisation (how many of the
flipped training images the model still predicts with their true label).

The flipping is :func:`fer_keras.data.label_noise.flip_labels` (``DataConfig.label_noise``), the
memorisation count :func:`fer_keras.evaluation.memorisation`; this module runs the grid.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from fer_keras import markdown, plots
from fer_keras.config import parse_augment
from fer_keras.errors import ConfigError
from fer_keras.files import atomic_write_text, write_json
from fer_keras.runs import RunFolder
from fer_keras.training.experiment import run_experiment

SWEEP_FIELDS = ("noise", "mode", "augment", "test_accuracy", "macro_f1", "flipped_images",
                "fraction_true", "fraction_noisy", "run")


def run_sweep(base, noise_levels, augments, out, log=print) -> dict:
    """Train one run per (noise fraction, augmentation setting) from ``base`` (an ExperimentConfig)
    into a new folder ``out/<stamp>-label-noise/``, then write ``label_noise.csv``/``.md``,
    ``label_noise.png`` and ``sweep.json`` there (the table is rewritten after every run).

    Returns ``{"folder": Path, "rows": [...]}``; each row has the clean test accuracy and how the
    flipped training images are predicted (:func:`fer_keras.evaluation.memorisation`).
    """
    noise_levels = [float(f) for f in noise_levels]
    augments = ["+".join(parse_augment(a)) or "none" for a in augments]
    for f in noise_levels:
        if not 0 <= f < 1:
            raise ConfigError(f"--noise {f:g}: each fraction must be in [0, 1)")
    folder = RunFolder.create(out, "label-noise").path
    rows = []
    mode = base.data.label_noise_mode
    for augment in augments:
        for f in noise_levels:
            log(f"=== label noise {f:.0%} ({mode}), augment {augment} ===")
            run = run_experiment(base.replace(augment__name=augment, data__label_noise=f, out=str(folder)), log=log)
            metrics = run.metrics()
            memo = metrics.get("label_noise", {})
            rows.append({"noise": f, "mode": mode, "augment": augment,
                         "test_accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "flipped_images": memo.get("flipped_images", 0),
                         "fraction_true": memo.get("fraction_true", float("nan")),
                         "fraction_noisy": memo.get("fraction_noisy", float("nan")), "run": run.name})
            write_sweep(rows, folder, base)
    return {"folder": folder, "rows": rows}


def write_sweep(rows: list[dict], folder, base=None) -> None:
    """The sweep's table (CSV + Markdown), plot and JSON in ``folder``."""
    folder = Path(folder)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SWEEP_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "label_noise.csv", buf.getvalue())

    def pct(v):
        return "-" if v != v else f"{v:.1%}"  # NaN (no flipped images) -> "-"

    md = markdown.table(
        ["noise", "mode", "augment", "test accuracy", "macro F1", "flipped train images", "predicted true label",
         "predicted noisy label", "run"],
        [[f"{r['noise']:.0%}", r["mode"], r["augment"], f"{r['test_accuracy']:.4f}", f"{r['macro_f1']:.4f}",
          r["flipped_images"], pct(r["fraction_true"]), pct(r["fraction_noisy"]), r["run"]] for r in rows])
    if base is not None:
        md += ["", f"{base.model.name}, {'NSL' if base.adversarial.enabled else 'plain'} training, "
               f"{base.resolved_epochs} epochs, --limit {base.data.limit}, --eval-limit {base.data.eval_limit}, "
               f"seed {base.seed}. Flipped images are predicted without augmentation."]
    atomic_write_text(folder / "label_noise.md", "\n".join(md) + "\n")
    write_json(folder / "sweep.json", {"rows": rows, "config": base.to_dict() if base is not None else None})
    plots.label_noise_curves(rows, folder / "label_noise.png")
