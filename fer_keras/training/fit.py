"""``fit``: train with a checkpoint every epoch (resumed exactly), a time budget, history and a progress log."""
from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import Callable

import tensorflow as tf

from fer_keras.data.pipeline import TrainingStream, as_xy
from fer_keras.distribute import any_worker, is_distributed, split_batches
from fer_keras.files import atomic_write_text, write_json
from fer_keras.runs import RunFolder, read_history
from fer_keras.training.checkpoints import (BestWeights, Checkpointer, ResumableEarlyStopping, ResumableReduceLROnPlateau,
                                          layer_generators, read_state, restore_checkpoint)
from fer_keras.training.schedule import current_lr


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow ops deterministic."""
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


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
        row = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()},
               "lr": current_lr(self.model),
               "train_seconds": round((self._train_end or now) - self._t0, 3),
               "seconds": round(now - self._t0, 3)}
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, out.getvalue())


class TimeBudget(tf.keras.callbacks.Callback):
    """Stops at an epoch boundary when another epoch would not fit in ``minutes``; never after the
    last of ``epochs`` (the run then goes on to its evaluation). ``agree(flag) -> flag`` makes the
    decision common to all workers of a multi-worker run (:func:`fer_keras.distribute.any_worker`:
    one whose budget runs out stops them all at the same epoch); it is asked every epoch."""

    def __init__(self, minutes: float | None, epochs: int | None = None, log: Callable = print,
                 agree: Callable[[bool], bool] | None = None):
        super().__init__()
        self.seconds = None if minutes is None else float(minutes) * 60
        self.epochs, self.log, self.reached, self.agree = epochs, log, False, agree

    def on_train_begin(self, logs=None):
        self.start, self.epochs_done = time.time(), 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done += 1
        if self.epochs is not None and epoch + 1 >= self.epochs or self.seconds is None and self.agree is None:
            return
        used = time.time() - self.start
        over = self.seconds is not None and used + used / self.epochs_done > self.seconds
        if self.agree is not None:
            over = self.agree(over)
        if over:
            self.reached = True
            self.model.stop_training = True


class ProgressLog(tf.keras.callbacks.Callback):
    """One line per epoch (metrics, images/s, time, ETA) and a line every ``every`` seconds within
    an epoch, through ``log`` (a run's log also goes to ``RUN/log.txt``)."""

    def __init__(self, epochs: int, steps: int, images: int, log: Callable = print, every: float = 60.0):
        super().__init__()
        self.epochs, self.steps, self.images, self.log, self.every = epochs, steps, images, log, every

    def on_train_begin(self, logs=None):
        self.start, self.first = time.time(), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.t0 = epoch, time.time()
        self.last = self.t0
        if self.first is None:
            self.first = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            done = (batch + 1) / self.steps
            rate = done * self.images / (now - self.t0)
            self.log(f"  epoch {self.epoch + 1}/{self.epochs}: batch {batch + 1}/{self.steps}, "
                     f"{rate:.0f} images/s, epoch ETA {_clock((now - self.t0) * (1 - done) / done)}")

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        done = epoch + 1 - self.first
        eta = (now - self.start) / done * (self.epochs - epoch - 1)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items()
                          if k in ("loss", "categorical_accuracy", "val_loss", "val_categorical_accuracy"))
        self.log(f"epoch {epoch + 1}/{self.epochs}: {shown}; lr {current_lr(self.model):.2e}; "
                 f"{self.images / (now - self.t0):.0f} images/s incl. validation; "
                 f"{_clock(now - self.t0)}; ETA {_clock(eta)}")


class _Averaged:
    """The raw weights while the moving average of an optimizer with ``use_ema`` stands in for them."""

    def __init__(self):
        self.raw = None


class SwapInAverage(tf.keras.callbacks.Callback):
    """At validation, puts the optimizer's moving average of the weights into the model (the raw
    weights are kept), so validation, callbacks that read its figures and the best-epoch weights
    judge the average; :class:`SwapBackRaw` puts the raw weights back before the checkpoint."""

    def __init__(self, state: _Averaged):
        super().__init__()
        self.state = state

    def on_test_begin(self, logs=None):
        if self.state.raw is None:
            variables = self.model.trainable_variables
            self.state.raw = [v.numpy() for v in variables]
            self.model.optimizer.finalize_variable_values(variables)  # = the average, with use_ema


class SwapBackRaw(tf.keras.callbacks.Callback):
    """Puts the raw weights back at the end of an epoch (before the checkpoint, which keeps them)."""

    def __init__(self, state: _Averaged):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        if self.state.raw is not None:
            for variable, value in zip(self.model.trainable_variables, self.state.raw):
                variable.assign(value)
            self.state.raw = None


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class FitResult(dict):
    """``history`` rows plus how training ended: ``status`` is ``"finished"``, ``"early_stopped"``
    or ``"time_budget"`` (resume later), and ``best_epoch`` if best weights were restored."""


def fit(model: tf.keras.Model, train: TrainingStream | tf.data.Dataset, val: tf.data.Dataset | None,
        epochs: int, run_dir: str | Path | RunFolder, early_stopping: int | None = None, reduce_lr: int | None = None,
        restore_best: bool | None = None, time_budget: float | None = None, verbose: int | None = None,
        log: Callable = print, monitor: str | None = None) -> FitResult:
    """Fit on ``{"image", "label"}`` batches, checkpointing every epoch in the run folder ``run_dir`` (a :class:`~fer_keras.runs.RunFolder` or its path).

    Calling again with the same ``run_dir`` (and the same model, data and settings) after an
    interruption resumes from the last finished epoch. With a :class:`TrainingStream` the resumed
    run is exact; a plain dataset is re-read from its start.

    With an optimizer that keeps a moving average of the weights (``use_ema``, ``--ema``), validation,
    the callbacks that read it and the best-epoch weights use the average, training and checkpoints
    the raw weights, and the model ends with the average (Keras' ``finalize_variable_values``).

    A model built and compiled in a :mod:`tf.distribute` strategy's scope trains under it
    (:mod:`fer_keras.distribute`): each batch is the global batch, split over the replicas, and
    every worker of a multi-worker run calls ``fit`` with its own ``run_dir``.

    Args:
        early_stopping / reduce_lr: patience in epochs on ``monitor`` (val_loss; loss without val).
        restore_best: end with the weights of the epoch with the best ``monitor`` value (default:
            when early stopping is on).
        time_budget: minutes this call may train; stops at an epoch boundary before running over.
    Returns: a :class:`FitResult` with ``history`` (the rows of ``history.csv``), ``status``, ``best_epoch``.
    """
    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    ckpt_dir = run.checkpoint_dir
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    monitor = monitor or ("val_loss" if val is not None else "loss")
    restore_best = bool(early_stopping) if restore_best is None else restore_best
    stream = train if isinstance(train, TrainingStream) else None
    if not hasattr(model, "base_model"):
        val = as_xy(val) if val is not None else None
    strategy = model.distribute_strategy
    sample = next(iter(stream.epochs(0, 1).take(1))) if stream else next(iter(train.take(1)))
    with strategy.scope():  # variables made here belong to the model's strategy
        if not model.built:  # NSL wrappers build lazily; checkpoints need the variables now
            model(sample if hasattr(model, "base_model") else sample["image"] if isinstance(sample, dict) else sample[0])
        model.optimizer.build(model.trainable_variables)

    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                     random=tf.train.Checkpoint(**layer_generators(model)))
    state = read_state(run)
    start = 0
    if state is not None:
        restore_checkpoint(checkpoint, ckpt_dir, state, model)
        start = int(state["epoch"])
        log(f"Resumed from {ckpt_dir / state['checkpoint']} (epoch {start} of {epochs} done)")
    saved = (state or {}).get("callbacks", {})

    resumables = []
    if early_stopping:
        resumables.append(ResumableEarlyStopping(monitor, patience=early_stopping,
                                                 resume_state=saved.get(ResumableEarlyStopping.KEY)))
    if reduce_lr:
        resumables.append(ResumableReduceLROnPlateau(monitor, factor=0.5, patience=reduce_lr,
                                                     resume_state=saved.get(ResumableReduceLROnPlateau.KEY)))
    best = BestWeights(run.best_weights_dir, monitor, resume_state=saved.get(BestWeights.KEY)) if restore_best else None
    if best is not None:
        resumables.append(best)
    result = FitResult(history=read_history(run.history_file), status="finished", best_epoch=None)
    averaged = bool(getattr(model.optimizer, "use_ema", False))
    if start >= epochs or (state or {}).get("stop_training") and not (state or {}).get("time_budget"):
        if averaged:  # as model.fit ends: with the moving average of the weights
            model.optimizer.finalize_variable_values(model.trainable_variables)
        if best is not None:
            best.on_train_begin()  # puts the saved best value and epoch back
            result["best_epoch"] = best.restore(model)
        result["history"] = [r for r in result["history"] if r["epoch"] < start]
        if start < epochs:
            result["status"] = "early_stopped"
        return result

    distributed = is_distributed(strategy)
    budget = TimeBudget(time_budget, epochs, log, agree=(lambda flag: any_worker(strategy, flag)) if distributed else None)
    if stream is not None:
        data, steps, images = stream.epochs(start, epochs), stream.steps_per_epoch, stream.images_per_epoch
        data = data if hasattr(model, "base_model") else as_xy(data)
    else:
        data = train if hasattr(model, "base_model") else as_xy(train)
        steps = None
        images = 0
    if distributed:  # each worker reads its share of every global batch
        data, val = split_batches(data), val if val is None else split_batches(val)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 0
    swap = _Averaged()
    callbacks = [*([SwapInAverage(swap)] if averaged else []), HistoryWriter(run.history_file), *resumables, budget]
    if verbose == 0 and stream is not None:
        callbacks.append(ProgressLog(epochs, steps, images, log))
    if averaged:
        callbacks.append(SwapBackRaw(swap))
    callbacks.append(Checkpointer(ckpt_dir, checkpoint, resumables))
    model.fit(data, validation_data=val, epochs=epochs, initial_epoch=start, steps_per_epoch=steps,
              callbacks=callbacks, verbose=verbose)
    if budget.reached:
        state = read_state(run)
        state["time_budget"] = True
        write_json(run.state_file, state)
        result["status"] = "time_budget"
    elif early_stopping and resumables[0].stopped_epoch:
        result["status"] = "early_stopped"
    if best is not None and result["status"] != "time_budget":
        result["best_epoch"] = best.restore(model)
    result["history"] = read_history(run.history_file)
    return result
