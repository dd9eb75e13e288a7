"""Ensembles of trained models: their probabilities averaged with weights chosen on validation,
then scored once on test.

Every member must have been trained on the same split (data split, seed, validation share,
dropped copies: read from its run folder's config or its card), so the validation faces that
choose the weights are faces none of them trained on, and the test faces take no part in the
choice. Members may differ in architecture and input (48x48 gray DCNN, 112x112 RGB GhostFace):
each :class:`~fer_keras.classifier.Classifier` prepares the raw crops its own way.

    python experiments/ensemble.py --models fer2013-dcnn fer2013-ghostface --data path/to/fer2013
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Callable

import numpy as np

from fer_keras import markdown, pretrained
from fer_keras.config import ExperimentConfig, check_tta
from fer_keras.data.prepare import prepare_data
from fer_keras.errors import ConfigError
from fer_keras.evaluation import scores
from fer_keras.files import atomic_write_text, write_json
from fer_keras.runs import ENSEMBLE_STUDY, METRICS_FILE, TABLE_MD_FILE, RunFolder
from fer_keras.training.held_out import trained_config

#: Weights are searched on a grid of this step (sums of 1) for up to this many members; with more,
#: one member's weight at a time (coordinate ascent) from equal weights.
WEIGHT_STEP, GRID_MEMBERS = 0.05, 3


def training_config(model: str) -> ExperimentConfig:
    """The config a member was trained with (:func:`~fer_keras.training.held_out.trained_config`),
    or a one-line ConfigError when it is not recorded."""
    config = trained_config(model)
    if config is None:
        raise ConfigError(f"model {model}: give a pretrained name or a training run folder (a bare model file "
                          "does not say which faces it trained on, so validation could not be trusted)")
    return config


def split_key(config: ExperimentConfig) -> tuple:
    """What decides which faces a run trained on: data set (folder or file name), split, validation share,
    classes, de-duplication, limit, seed."""
    d = config.data
    return (Path(d.path).name if d.path else None, d.split, d.val_fraction, d.labels, d.drop_test_duplicates,
            d.limit, config.seed)


def choose_weights(probabilities: list[np.ndarray], labels: np.ndarray, step: float = WEIGHT_STEP) -> np.ndarray:
    """Member weights (summing to 1) with the highest accuracy of the weighted average on ``labels``;
    ties go to the weights nearest equal. ``probabilities``: one (N, K) array per member."""
    k = len(probabilities)
    stacked = np.stack(probabilities)  # (M, N, K)

    def accuracy(w):
        return float(np.mean(np.tensordot(w, stacked, 1).argmax(1) == labels))

    def better(w, best):
        a, b = accuracy(w), accuracy(best)
        return a > b or a == b and np.abs(w - 1 / k).sum() < np.abs(best - 1 / k).sum()

    best = np.full(k, 1 / k)
    if k <= GRID_MEMBERS:
        n = int(round(1 / step))
        for parts in itertools.product(range(n + 1), repeat=k - 1):
            if sum(parts) <= n:
                w = np.array([*parts, n - sum(parts)], dtype=np.float64) / n
                if better(w, best):
                    best = w
        return best
    for _ in range(3):  # coordinate ascent: move weight between one member and the rest
        for i in range(k):
            for value in np.arange(0, 1 + 1e-9, step):
                w = best * (1 - value) / max(1 - best[i], 1e-12)
                w[i] = value
                if better(w, best):
                    best = w
    return best


def _version(model: str) -> dict:
    """A pretrained member's version and source run (a name may later ship another model)."""
    return pretrained.identity(model) if pretrained.is_name(model) else {}


@dataclasses.dataclass
class EnsembleConfig:
    """Which models, which data, how each face is viewed (``tta``), where the run folder goes."""

    models: tuple[str, ...]
    data: str | None = None
    tta: str = "none"
    out: str = "runs"
    batch_size: int = 256

    def __post_init__(self):
        self.models = tuple(str(m) for m in self.models)
        if len(self.models) < 2:
            raise ConfigError("--models: give at least two models to ensemble")
        check_tta(self.tta)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_ensemble(config: EnsembleConfig, log: Callable = print) -> RunFolder:
    """Score each member and their weighted average (weights chosen on validation) on validation
    and test; write a run folder (config.json, metrics.json, table.md); return it."""
    from fer_keras.classifier import load_classifier

    configs = [training_config(m) for m in config.models]
    keys = {split_key(c) for c in configs}
    if len(keys) != 1:
        raise ConfigError(f"--models {' '.join(config.models)}: trained on different splits ({sorted(keys)}); "
                          "an ensemble's validation would then hold some member's training faces")
    data_config = dataclasses.replace(configs[0].data, path=config.data, eval_limit=None)
    parts, extras = prepare_data(data_config, configs[0].seed, log, return_extras=True)
    classifiers = [load_classifier(m) for m in config.models]
    names = list(parts["test"].class_names)
    for model, classifier in zip(config.models, classifiers):
        if list(classifier.class_names) != names:
            raise ConfigError(f"model {model}: classes {', '.join(classifier.class_names)}, the data's are "
                              f"{', '.join(names)}")
    run = RunFolder.create(config.out, "ensemble")
    run.lock()
    try:
        run.write_config(config, {"members": {m: {"split": list(split_key(c)), "model": c.model.name, **_version(m)}
                                              for m, c in zip(config.models, configs)},
                                  "images": {k: len(v) for k, v in parts.items() if k != "train"}},
                         study=ENSEMBLE_STUDY)
        probs = {}
        for split in ("val", "test"):
            for model, classifier in zip(config.models, classifiers):
                log(f"{model}: {split} ({len(parts[split]):,} faces, TTA {config.tta}) ...")
                probs[split, model] = classifier(parts[split].images, config.tta, batch_size=config.batch_size)
        weights = choose_weights([probs["val", m] for m in config.models], parts["val"].labels)
        members = {**{m: np.eye(len(config.models))[i] for i, m in enumerate(config.models)}, "ensemble": weights}
        in_training = extras["test_in_training"]
        results = {}
        for name, w in members.items():
            row = {}
            for split in ("val", "test"):
                p = np.tensordot(w, np.stack([probs[split, m] for m in config.models]), 1)
                row[split] = {k: v for k, v in scores(parts[split].labels, p, names).items() if k != "report"}
                if split == "test":
                    dedup = scores(parts[split].labels[~in_training], p[~in_training], names)
                    row["test_deduplicated"] = {"accuracy": dedup["accuracy"], "macro_f1": dedup["macro_f1"],
                                                "images": int((~in_training).sum())}
            results[name] = row
        metrics = {"weights": dict(zip(config.models, map(float, weights))), "tta": config.tta, "results": results}
        write_json(run / METRICS_FILE, metrics)
        header = ["model", "weight", "validation accuracy %", "test accuracy %", "test minus Training copies %",
                  "test macro F1 %"]
        rows = [[name, f"{weights[i]:.2f}" if name != "ensemble" else "-", markdown.pct(r["val"]["accuracy"]),
                 markdown.pct(r["test"]["accuracy"]), markdown.pct(r["test_deduplicated"]["accuracy"]),
                 markdown.pct(r["test"]["macro_f1"])] for i, (name, r) in enumerate(results.items())]
        atomic_write_text(run / TABLE_MD_FILE, "\n".join([
            f"# Ensemble of {len(config.models)} models (TTA {config.tta})", "",
            f"Weights chosen on validation ({len(parts['val']):,} faces none of the members trained on; grid step "
            f"{WEIGHT_STEP}), then test ({len(parts['test']):,} faces) scored once.", "",
            *markdown.table(header, rows)]) + "\n")
        log(f"Weights {', '.join(f'{m} {w:.2f}' for m, w in zip(config.models, weights))}: validation "
            f"{results['ensemble']['val']['accuracy']:.2%}, test {results['ensemble']['test']['accuracy']:.2%}")
    finally:
        run.unlock()
    return run
