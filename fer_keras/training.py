"""Compile and fit a model (plain or NSL-wrapped): exact resume, time budget, progress log.

A run folder's ``checkpoints/`` holds the last two end-of-epoch TensorFlow checkpoints (model,
optimizer with its step count and learning rate, and the layers' random-generator states) and
``state.json``, written after each checkpoint, naming the checkpoint and the epoch-end state of
the callbacks (early stopping, reduce-LR, best validation value). With the batches a pure
function of ``(seed, epoch)`` (:class:`~fer_keras.data.pipeline.TrainingStream`), a run killed at
any point and resumed from its folder finishes with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from fer_keras.adversarial import base_model
from fer_keras.config import LR_SCHEDULES, OPTIMIZERS
from fer_keras.data.pipeline import TrainingStream, as_xy
from fer_keras.distribute import any_worker, is_distributed, split_batches
from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.files import atomic_write_text, write_json
from fer_keras.runs import CHECKPOINT_DIR, HISTORY_FILE, STATE_FILE, read_history

#: Folder inside ``checkpoints/`` with the best validation epoch's weights.
BEST_DIR = "best"


class OutOfSpaceError(FerKerasError, OSError):
    """The disk filled up while writing a checkpoint or model."""


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow ops deterministic."""
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def checkpointed_randomness():
    """Build layers inside this block so their randomness (dropout, noise) is a ``tf.random.Generator``
    variable, saved in checkpoints and restored on resume (tf-keras' legacy random ops restart)."""
    tf.keras.backend.experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        tf.keras.backend.experimental.disable_tf_random_generator()


def learning_rate(lr: float, schedule: str = "constant", total_steps: int | None = None,
                  warmup_steps: int = 0, final_fraction: float = 0.01, drop_steps=()):
    """A learning rate or schedule (per optimizer step).

    ``"cosine"``: linear warm-up over ``warmup_steps``, then cosine decay to ``lr * final_fraction``
    at ``total_steps``. ``"step"``: ``lr``, divided by 10 from each of ``drop_steps`` on (0-based
    optimizer steps: a drop after epoch E is at step E x steps per epoch). A schedule is a
    function of the optimizer's step count, so it resumes exactly.
    """
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"--lr-schedule {schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
    if schedule == "constant":
        return lr
    if not total_steps:
        raise ConfigError(f"a {schedule} schedule needs the number of training steps")
    if schedule == "step":
        drops = [int(d) for d in drop_steps]
        if not drops or any(not 0 < d < total_steps for d in drops):
            raise ConfigError(f"--lr-drops: every drop must fall inside the run's {total_steps} steps (its epochs)")
        # optimizer step k (0-based) trains batch k; PiecewiseConstantDecay keeps a value up to and
        # including its boundary, so the last step before each drop is the boundary
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
            [d - 1 for d in drops], [lr * 0.1 ** i for i in range(len(drops) + 1)])
    warmup = min(int(warmup_steps), int(total_steps) - 1)
    return tf.keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else lr, decay_steps=int(total_steps) - warmup, alpha=final_fraction,
        warmup_target=lr if warmup else None, warmup_steps=warmup)


def schedule_for(optimizer, steps_per_epoch: int, epochs: int):
    """:func:`learning_rate` for an :class:`~fer_keras.config.OptimizerConfig` over ``epochs`` epochs."""
    return learning_rate(optimizer.lr, optimizer.schedule, steps_per_epoch * epochs,
                         int(round(optimizer.warmup_epochs * steps_per_epoch)),
                         drop_steps=[e * steps_per_epoch for e in optimizer.lr_drops])


def make_optimizer(name: str = "adam", lr=1e-3, momentum: float = 0.9):
    """``lr`` is a float or a schedule (:func:`learning_rate`)."""
    if name == "adam":
        return tf.keras.optimizers.Adam(lr)
    if name == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=momentum)
    raise ConfigError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def compile_model(model: tf.keras.Model, optimizer="adam", lr=1e-3, momentum: float = 0.9,
                  jit_compile: bool = False, label_smoothing: float = 0.0) -> tf.keras.Model:
    """Compile with categorical cross-entropy and the metric names NSL's evaluate prints.

    A plain model reports ``loss, categorical_crossentropy, categorical_accuracy``; an NSL
    model adds ``scaled_adversarial_loss``. ``label_smoothing`` applies to the training loss only
    (the reported ``categorical_crossentropy`` metric is against the true one-hot labels).
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, lr, momentum)
    metrics = [tf.keras.metrics.CategoricalAccuracy(name="categorical_accuracy")]
    if not hasattr(model, "base_model"):  # NSL adds its own cross-entropy metric
        metrics.insert(0, tf.keras.metrics.CategoricalCrossentropy(name="categorical_crossentropy"))
    model.compile(optimizer=optimizer,
                  loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
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
        row = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()},
               "lr": _current_lr(self.model),
               "train_seconds": round((self._train_end or now) - self._t0, 3),
               "seconds": round(now - self._t0, 3)}
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, out.getvalue())


def _current_lr(model) -> float:
    """The learning rate of the optimizer's last step (the one the epoch ended with)."""
    opt = model.optimizer
    lr = opt.learning_rate
    if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(tf.maximum(opt.iterations - 1, 0)))
    return float(tf.keras.backend.get_value(lr))


class _Resumable:
    """Mix-in: a callback whose epoch-end state is saved in ``state.json`` and restored on resume."""

    STATE: tuple[str, ...] = ()
    KEY = ""

    def __init__(self, *args, resume_state: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._resume_state = resume_state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the state ...
        for key, value in (self._resume_state or {}).items():  # ... which a resume puts back
            setattr(self, key, value)

    def state(self) -> dict:
        return {k: _plain(getattr(self, k)) for k in self.STATE}


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return value  # json writes Infinity, which json reads back
    return value


class ResumableEarlyStopping(_Resumable, tf.keras.callbacks.EarlyStopping):
    STATE = ("wait", "best", "best_epoch", "stopped_epoch")
    KEY = "early_stopping"


class ResumableReduceLROnPlateau(_Resumable, tf.keras.callbacks.ReduceLROnPlateau):
    STATE = ("wait", "best", "cooldown_counter")
    KEY = "reduce_lr"


class BestWeights(_Resumable, tf.keras.callbacks.Callback):
    """Keeps the base model's weights of the epoch with the best ``monitor`` value in ``path``."""

    STATE = ("best", "best_epoch")
    KEY = "best_weights"

    def __init__(self, path: Path, monitor: str = "val_loss", **kwargs):
        super().__init__(**kwargs)
        self.path, self.monitor = Path(path), monitor
        self.mode = "min" if "loss" in monitor else "max"
        self.best, self.best_epoch = None, None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch = None, None
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best, self.best_epoch = value, int(epoch)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            with _space_check(self.path.parent):
                base_model(self.model).save_weights(str(tmp / "weights"))
                shutil.rmtree(self.path, ignore_errors=True)
                tmp.rename(self.path)

    def restore(self, model) -> int | None:
        """Load the best weights into ``model``'s base model; return their epoch (None if none)."""
        if self.best_epoch is None or not (self.path / "weights.index").exists():
            return None
        base_model(model).load_weights(str(self.path / "weights")).expect_partial()
        return self.best_epoch


class Checkpointer(tf.keras.callbacks.Callback):
    """End-of-epoch checkpoint + ``state.json``; must come after every callback it records."""

    def __init__(self, directory: Path, checkpoint: tf.train.Checkpoint, resumables: list):
        super().__init__()
        self.directory = Path(directory)
        self.manager = tf.train.CheckpointManager(checkpoint, str(self.directory), max_to_keep=2)
        self.resumables = resumables

    def on_epoch_end(self, epoch, logs=None):
        with _space_check(self.directory):
            path = self.manager.save(checkpoint_number=epoch + 1)
            write_json(self.directory / STATE_FILE, {
                "epoch": epoch + 1, "checkpoint": Path(path).name,
                "stop_training": bool(self.model.stop_training),
                "callbacks": {cb.KEY: cb.state() for cb in self.resumables}})


@contextlib.contextmanager
def _space_check(folder: Path):
    """Turn a full disk into one line, after removing half-written checkpoint files."""
    try:
        yield
    except (tf.errors.ResourceExhaustedError, tf.errors.UnknownError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.ENOSPC:
            raise
        if not isinstance(exc, OSError) and "space" not in str(exc).lower():
            raise
        for tmp in list(folder.glob("*_temp*")) + list(folder.glob(".*.tmp")):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        then = ("run again with --resume to continue from the last finished epoch" if (folder / STATE_FILE).is_file()
                else "start the run again (no epoch was checkpointed yet)")
        raise OutOfSpaceError(errno.ENOSPC, f"no space left on the device while writing {folder} "
                              f"(a checkpoint needs ~{_checkpoint_mb(folder):.0f} MB); free space, then {then}"
                              ) from None


def _checkpoint_mb(folder: Path) -> float:
    sizes = [f.stat().st_size for f in folder.glob("ckpt-*.data-*")]
    return max(sizes, default=0) / 2**20 or 30.0


def read_state(run_dir: str | Path) -> dict | None:
    """The run's ``checkpoints/state.json`` (None before the first finished epoch); a damaged one
    is a one-line ConfigError."""
    path = Path(run_dir) / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        int(state["epoch"]), str(state["checkpoint"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(f"{path}: damaged ({type(exc).__name__}); the run cannot be resumed exactly: start a new "
                          "run (its history.csv shows how far it got)") from None
    return state


def _restore(checkpoint: tf.train.Checkpoint, ckpt_dir: Path, state: dict, model) -> None:
    """Restore the checkpoint ``state`` names, or a one-line ConfigError: a damaged file (naming the
    last intact checkpoint, if any) or one made for another model than the run's config builds."""
    name = state["checkpoint"]
    try:
        checkpoint.restore(str(ckpt_dir / name)).assert_existing_objects_matched()
    except (ValueError, AssertionError, IndexError, tf.errors.OpError) as exc:
        text = str(exc).replace("\n", " ")
        if "shape" in text.lower() or isinstance(exc, AssertionError):
            raise ConfigError(f"--resume {ckpt_dir.parent}: its checkpoint {name} does not fit the model its "
                              f"config.json builds ({base_model(model).name}: {text[:120]}); was config.json "
                              "edited? Put it back, or start a new run") from None
        intact = [p.stem for p in sorted(ckpt_dir.glob("ckpt-*.index")) if p.stem != name]
        earlier = f"; the earlier checkpoint {intact[-1]} is kept but the run's state is {name}'s" if intact else ""
        raise ConfigError(f"--resume {ckpt_dir.parent}: checkpoint {name} is damaged ({type(exc).__name__}: "
                          f"{text[:80]}){earlier}; start a new run, or put back an intact copy of "
                          f"{CHECKPOINT_DIR}/") from None


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
        self.log(f"epoch {epoch + 1}/{self.epochs}: {shown}; lr {_current_lr(self.model):.2e}; "
                 f"{self.images / (now - self.t0):.0f} images/s incl. validation; "
                 f"{_clock(now - self.t0)}; ETA {_clock(eta)}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def layer_generators(model: tf.keras.Model) -> dict[str, tf.random.Generator]:
    """Layer name -> the ``tf.random.Generator`` of each random layer (dropout, noise) of the base model.

    tf-keras keeps these out of its checkpoints; :func:`fit` adds them so resume is exact. Layers
    built outside :func:`checkpointed_randomness` use legacy random ops and have none.
    """
    out = {}
    for layer in base_model(model).submodules:
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if isinstance(generator, tf.random.Generator):
            out[layer.name] = generator
    return out


class FitResult(dict):
    """``history`` rows plus how training ended: ``status`` is ``"finished"``, ``"early_stopped"``
    or ``"time_budget"`` (resume later), and ``best_epoch`` if best weights were restored."""


def fit(model: tf.keras.Model, train: TrainingStream | tf.data.Dataset, val: tf.data.Dataset | None,
        epochs: int, run_dir: str | Path, early_stopping: int | None = None, reduce_lr: int | None = None,
        restore_best: bool | None = None, time_budget: float | None = None, verbose: int | None = None,
        log: Callable = print, monitor: str | None = None) -> FitResult:
    """Fit on ``{"image", "label"}`` batches, checkpointing every epoch in ``run_dir/checkpoints``.

    Calling again with the same ``run_dir`` (and the same model, data and settings) after an
    interruption resumes from the last finished epoch. With a :class:`TrainingStream` the resumed
    run is exact; a plain dataset is re-read from its start.

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
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / CHECKPOINT_DIR
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
    state = read_state(run_dir)
    start = 0
    if state is not None:
        _restore(checkpoint, ckpt_dir, state, model)
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
    best = BestWeights(ckpt_dir / BEST_DIR, monitor, resume_state=saved.get(BestWeights.KEY)) if restore_best else None
    if best is not None:
        resumables.append(best)
    result = FitResult(history=read_history(run_dir / HISTORY_FILE), status="finished", best_epoch=None)
    if start >= epochs or (state or {}).get("stop_training") and not (state or {}).get("time_budget"):
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
    callbacks = [HistoryWriter(run_dir / HISTORY_FILE), *resumables, budget]
    if verbose == 0 and stream is not None:
        callbacks.append(ProgressLog(epochs, steps, images, log))
    callbacks.append(Checkpointer(ckpt_dir, checkpoint, resumables))
    model.fit(data, validation_data=val, epochs=epochs, initial_epoch=start, steps_per_epoch=steps,
              callbacks=callbacks, verbose=verbose)
    if budget.reached:
        state = read_state(run_dir)
        state["time_budget"] = True
        write_json(ckpt_dir / STATE_FILE, state)
        result["status"] = "time_budget"
    elif early_stopping and resumables[0].stopped_epoch:
        result["status"] = "early_stopped"
    if best is not None and result["status"] != "time_budget":
        result["best_epoch"] = best.restore(model)
    result["history"] = read_history(run_dir / HISTORY_FILE)
    return result
