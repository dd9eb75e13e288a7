"""Compile and fit a model (plain or NSL-wrapped) with checkpoints, resume and history."""
from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import tensorflow as tf

from fer_keras.data.pipeline import as_xy
from fer_keras.errors import ConfigError
from fer_keras.runs import atomic_write_text

HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow ops deterministic."""
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(name: str = "adam", lr: float = 1e-3, momentum: float = 0.9):
    if name == "adam":
        return tf.keras.optimizers.Adam(lr)
    if name == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=momentum)
    raise ConfigError(f"unknown optimizer {name!r}; use adam or sgd")


def compile_model(model: tf.keras.Model, optimizer="adam", lr: float = 1e-3, momentum: float = 0.9,
                  jit_compile: bool = False) -> tf.keras.Model:
    """Compile with categorical cross-entropy and the metric names NSL's evaluate prints.

    A plain model reports ``loss, categorical_crossentropy, categorical_accuracy``; an NSL
    model adds ``scaled_adversarial_loss``.
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, lr, momentum)
    metrics = [tf.keras.metrics.CategoricalAccuracy(name="categorical_accuracy")]
    if not hasattr(model, "base_model"):  # NSL adds its own cross-entropy metric
        metrics.insert(0, tf.keras.metrics.CategoricalCrossentropy(name="categorical_crossentropy"))
    model.compile(optimizer=optimizer, loss=tf.keras.losses.CategoricalCrossentropy(),
                  metrics=metrics, jit_compile=jit_compile)
    return model


class HistoryWriter(tf.keras.callbacks.Callback):
    """Writes ``history.csv`` atomically after every epoch; on resume, keeps earlier epochs' rows."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict] = []
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:  # first epoch of this fit(): keep only rows before it
            self._started = True
            self.rows = [r for r in read_history(self.path) if int(r["epoch"]) < epoch]
        self._t0 = time.time()
        self._train_end = None

    def on_test_begin(self, logs=None):  # validation starts: the epoch's training part is over
        if self._train_end is None:
            self._train_end = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()},
               "train_seconds": round((self._train_end or now) - self._t0, 3),
               "seconds": round(now - self._t0, 3)}
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, out.getvalue())


def read_history(path: str | Path) -> list[dict]:
    """Rows of a ``history.csv`` (empty if missing), values as floats."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def fit(model: tf.keras.Model, train: tf.data.Dataset, val: tf.data.Dataset | None, epochs: int,
        run_dir: str | Path, early_stopping: int | None = None, reduce_lr: int | None = None,
        verbose: int | None = None) -> list[dict]:
    """Fit on ``{"image", "label"}`` datasets, with per-epoch checkpoints in ``run_dir/checkpoints``.

    NSL models take the feature dicts as they are; plain models get ``(features, label)`` pairs.

    Calling again with the same ``run_dir`` after an interruption resumes from the last finished
    epoch. Returns the history rows (as in ``history.csv``).
    """
    run_dir = Path(run_dir)
    history = HistoryWriter(run_dir / HISTORY_FILE)
    callbacks = [history, tf.keras.callbacks.BackupAndRestore(str(run_dir / CHECKPOINT_DIR),
                                                              delete_checkpoint=False)]
    monitor = "val_loss" if val is not None else "loss"
    if early_stopping:
        callbacks.append(tf.keras.callbacks.EarlyStopping(monitor, patience=early_stopping,
                                                          restore_best_weights=True))
    if reduce_lr:
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5, patience=reduce_lr))
    if not hasattr(model, "base_model"):
        train, val = as_xy(train), (as_xy(val) if val is not None else None)
    if not model.built:  # NSL wrappers build lazily; BackupAndRestore needs the variables now
        model(next(iter(train.take(1))))
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose)
    return read_history(run_dir / HISTORY_FILE)
