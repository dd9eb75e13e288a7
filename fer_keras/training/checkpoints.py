"""Checkpoints that make a resumed run exact.

A run folder's ``checkpoints/`` holds the last two end-of-epoch TensorFlow checkpoints (model,
optimizer with its step count and learning rate, and the layers' random-generator states) and
``state.json``, written after each checkpoint, naming the checkpoint and the epoch-end state of
the callbacks (early stopping, reduce-LR, best validation value). With the batches a pure
function of ``(seed, epoch)`` (:class:`~fer_keras.data.pipeline.TrainingStream`), a run killed at
any point and resumed from its folder finishes with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.files import write_json
from fer_keras.nsl import base_model
from fer_keras.runs import CHECKPOINT_DIR, STATE_FILE, RunFolder


class OutOfSpaceError(FerKerasError, OSError):
    """The disk filled up while writing a checkpoint or model."""


@contextlib.contextmanager
def checkpointed_randomness():
    """Build layers inside this block so their randomness (dropout, noise) is a ``tf.random.Generator``
    variable, saved in checkpoints and restored on resume (tf-keras' legacy random ops restart)."""
    tf.keras.backend.experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        tf.keras.backend.experimental.disable_tf_random_generator()


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


def read_state(run_dir: str | Path | RunFolder) -> dict | None:
    """The run's ``checkpoints/state.json`` (None before the first finished epoch); a damaged one
    is a one-line ConfigError."""
    path = (run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)).state_file
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        int(state["epoch"]), str(state["checkpoint"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(f"{path}: damaged ({type(exc).__name__}); the run cannot be resumed exactly: start a new "
                          "run (its history.csv shows how far it got)") from None
    return state


def restore_checkpoint(checkpoint: tf.train.Checkpoint, ckpt_dir: Path, state: dict, model) -> None:
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
