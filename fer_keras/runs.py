"""Run folders: the one module that knows their layout.

A training run (``experiments/run_nsl.py``, ``run_ghostface.py``) writes::

    RUN/config.json                  {"config": {...}, "resolved": {...}, "environment": {...}}
    RUN/log.txt                      time-stamped progress lines
    RUN/history.csv                  one row per epoch
    RUN/checkpoints/                 end-of-epoch checkpoints + state.json (resume)
    RUN/metrics.json                 test figures, once finished
    RUN/classification_report.txt
    RUN/figures/*.png
    RUN/model/model.keras            + model/saved_model/, labels.txt, model_info.json (fer_keras.export)
    RUN/label_noise.json, RUN/robustness.json   (label-noise runs; robustness audits)
    RUN/tta_validation.json          test-time augmentation modes scored on validation (select_tta)
    RUN/teacher_probabilities.npy    a distilled run's teacher probabilities of its training faces (N, K)
    RUN/timing.json, RUN/profile.json   /usr/bin/time figures and model cost, added when collected for the docs

A privacy run (``experiments/run_mia.py``) has the same ``config.json`` schema (its config under
``"config"``, what it resolved under ``"resolved"``) plus ``summary.json``, ``table.md``/``.csv``,
``settings/<setting>.json`` and ``models/<setting>.keras``.

A crop-framing measurement (``experiments/measure_framing.py``, :mod:`fer_keras.studies.framing`)
has that schema too, with ``"study": "framing"`` in ``config.json``, plus ``table.md``/``.csv``,
``metrics.json`` and ``figures/framing.png``; it trains nothing.

``config.json["resolved"]`` holds what the run derived from its config: ``epochs``,
``input_shape``, ``input_mode``, ``class_names``, ``dataset_mean``/``dataset_std`` (standardised
models with ``standardize="dataset"``), ``images`` and ``class_counts`` per split, ``splits``,
``distribution`` (the ``--strategy``, its workers and replicas: :mod:`fer_keras.distribute`),
``distil`` (a distilled run's teacher: :mod:`fer_keras.training.distil`).
:class:`RunFolder` reads and writes all of it; every other module asks it. Folders written
before the configs were nested (flat ``config``) load too.
"""
from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fer_keras.config import ExperimentConfig
from fer_keras.data.pipeline import InputSpec
from fer_keras.data.prepare import held_out_split, prepare_data
from fer_keras.errors import ConfigError, DataError
from fer_keras.export.files import KERAS_FILE, SAVED_MODEL_DIR
from fer_keras.files import ensure_writable_dir, lock_folder, read_json, release_lock, write_json
from fer_keras.model_files import load_keras

CONFIG_FILE = "config.json"
LOG_FILE = "log.txt"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
REPORT_FILE = "classification_report.txt"
LABEL_NOISE_FILE = "label_noise.json"
ROBUSTNESS_FILE = "robustness.json"
#: The same attacks on the validation split (``run_robustness.py --split val``): a figure that may choose.
ROBUSTNESS_VAL_FILE = "robustness_val.json"
TTA_FILE = "tta_validation.json"
TEACHER_FILE = "teacher_probabilities.npy"  # a distilled run's teacher, on its training faces
FIGURES_DIR = "figures"
CURVES_FIGURE = "training_curves.png"
CONFUSION_FIGURE = "confusion_matrix.png"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
MODEL_DIR = "model"
BEST_DIR = "best"  # in checkpoints/: the best validation epoch's weights
# added when a run is collected for the docs (fer_keras.studies.report)
TIMING_FILE = "timing.json"
PROFILE_FILE = "profile.json"
# privacy runs
SUMMARY_FILE = "summary.json"
TABLE_MD_FILE, TABLE_CSV_FILE = "table.md", "table.csv"
SETTINGS_DIR = "settings"
MODELS_DIR = "models"
# crop-framing measurements
FRAMING_STUDY = "framing"  # config.json's "study" entry
FRAMING_FIGURE = "framing.png"  # in figures/
# ensembles of trained models (fer_keras.studies.ensemble): config.json, metrics.json, table.md
ENSEMBLE_STUDY = "ensemble"  # config.json's "study" entry


def environment() -> dict[str, Any]:
    """Python, TensorFlow (if imported), machine and usable CPUs: the ``environment`` entry."""
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "machine": platform.machine(), "cpus": len(os.sched_getaffinity(0))}


def read_history(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``history.csv`` (empty if missing), values as floats (``epoch`` as int)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    for row in rows:
        if "epoch" in row:
            row["epoch"] = int(row["epoch"])
    return rows


def resolve_model(path: str | os.PathLike) -> Path:
    """The model file meant by ``path``: a run folder (or an export folder holding a Keras model) ->
    its ``.keras`` file, never its SavedModel; a model file or SavedModel folder -> itself."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"model {path}: no such file or folder; pass a run folder, .keras, SavedModel or .tflite")
    if not path.is_dir() or (path / "saved_model.pb").is_file():
        return path
    for candidate in (path / MODEL_DIR / KERAS_FILE, path / KERAS_FILE):
        if candidate.exists():
            return candidate
    if (path / MODEL_DIR / SAVED_MODEL_DIR).is_dir() or (path / SAVED_MODEL_DIR).is_dir():
        raise ConfigError(f"model {path}: no {MODEL_DIR}/{KERAS_FILE} in it; its SavedModel runs TensorFlow ops when "
                          "loaded: pass that folder itself with --trust-model (Python: trusted=True) only if you "
                          "trust its source")
    raise ConfigError(f"model {path}: a folder without {MODEL_DIR}/{KERAS_FILE}; pass a run folder, .keras, SavedModel "
                      "or .tflite")


class RunFolder:
    """One run folder. Make one with :meth:`create`, open one with :meth:`open` (or :meth:`find`
    from a path inside it); paths are attributes, contents are methods."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._saved: dict | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:  # a RunFolder works wherever a path does
        return str(self.path)

    __str__ = __fspath__

    def __truediv__(self, name) -> Path:
        """``run / "metrics.json"``: a path inside the run folder."""
        return self.path / name

    # ------------------------------------------------------------------ making and opening

    @classmethod
    def create(cls, out: str | os.PathLike, name: str) -> "RunFolder":
        """A new, empty run folder ``out/<YYYYmmdd-HHMMSS>-<name>`` (suffixed if it exists)."""
        out = ensure_writable_dir(out)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = out / f"{stamp}-{name}"
        path, i = base, 1
        while path.exists():
            i += 1
            path = Path(f"{base}-{i}")
        path.mkdir()
        return cls(path)

    def lock(self, what: str = "run folder") -> None:
        """Refuse (one line) a second process writing this run folder while this one lives
        (:func:`fer_keras.files.lock_folder`; released when the process ends, however it ends)."""
        self._lock = lock_folder(self.path, what)

    def unlock(self) -> None:
        """Let go of :meth:`lock` (and remove its ``.lock`` file); nothing if not locked."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            release_lock(lock)
            self._lock = None

    @classmethod
    def open(cls, path: str | os.PathLike, what: str = "--run", *, finished: bool = False,
             writable: bool = False) -> "RunFolder":
        """An existing run folder, or a one-line ConfigError naming ``what`` (the flag it came from).

        ``finished``: it must hold a trained model (:attr:`model_file`, or ``models/`` for a
        privacy run); ``writable``: it must accept new files (to resume or add results)."""
        run = cls(path)
        if not run.config_file.is_file():
            raise ConfigError(f"{what} {run.path}: not a run folder (no {CONFIG_FILE}); pass the folder "
                              "a previous run printed")
        if finished and not (run.model_file.exists() or run.models_dir.is_dir()):
            raise ConfigError(f"{what} {run.path}: not a finished run folder (needs {CONFIG_FILE} and "
                              f"{MODEL_DIR}/{KERAS_FILE})")
        if writable:
            ensure_writable_dir(run.path, what)
        run.saved  # a broken config.json is reported now
        return run

    @classmethod
    def find(cls, path: str | os.PathLike) -> "RunFolder | None":
        """The run folder ``path`` is, or whose ``model/`` holds ``path`` (its Keras model,
        ``RUN/model/saved_model``, ``RUN/model/*.tflite``); None for any other path."""
        path = Path(path)
        folders = [path] if path.is_dir() else []
        if path.parent.name == MODEL_DIR:
            folders.append(path.parent.parent)
        for folder in folders:
            if (folder / CONFIG_FILE).is_file():
                run = cls(folder)
                run.saved
                return run
        return None

    # ------------------------------------------------------------------------------ paths

    @property
    def name(self) -> str:
        return self.path.name

    config_file = property(lambda self: self.path / CONFIG_FILE)
    log_file = property(lambda self: self.path / LOG_FILE)
    history_file = property(lambda self: self.path / HISTORY_FILE)
    metrics_file = property(lambda self: self.path / METRICS_FILE)
    report_file = property(lambda self: self.path / REPORT_FILE)
    figures_dir = property(lambda self: self.path / FIGURES_DIR)
    checkpoint_dir = property(lambda self: self.path / CHECKPOINT_DIR)
    state_file = property(lambda self: self.path / CHECKPOINT_DIR / STATE_FILE)
    best_weights_dir = property(lambda self: self.path / CHECKPOINT_DIR / BEST_DIR)
    model_dir = property(lambda self: self.path / MODEL_DIR)
    model_file = property(lambda self: self.path / MODEL_DIR / KERAS_FILE)
    saved_model_dir = property(lambda self: self.path / MODEL_DIR / SAVED_MODEL_DIR)
    models_dir = property(lambda self: self.path / MODELS_DIR)
    settings_dir = property(lambda self: self.path / SETTINGS_DIR)

    file = __truediv__  # run.file(ROBUSTNESS_FILE) == run / ROBUSTNESS_FILE

    # ---------------------------------------------------------------------------- config

    @property
    def saved(self) -> dict:
        """``config.json`` as written: ``{"config", "resolved", "environment", ...}``."""
        if self._saved is None:
            try:
                saved = read_json(self.config_file)
            except (ValueError, OSError) as exc:
                raise DataError(f"{self.config_file}: not valid JSON ({str(exc)[:200]})") from None
            if not isinstance(saved, dict) or not isinstance(saved.get("config", {}), dict) \
                    or not isinstance(saved.get("resolved", {}), dict):
                raise DataError(f"{self.config_file}: not a run config (needs 'config' and 'resolved' objects)")
            self._saved = saved
        return self._saved

    def write_config(self, config, resolved: dict | None = None, **extra) -> Path:
        """Write ``config.json``: ``config`` (a config dataclass or dict), ``resolved``, this
        machine's ``environment`` and any ``extra`` entries."""
        data = {"config": config if isinstance(config, dict) else config.to_dict(), "resolved": resolved or {},
                "environment": environment(), **extra}
        self._saved = data
        return write_json(self.config_file, data)

    @property
    def kind(self) -> str:
        """``"privacy"`` for a membership-inference run, ``"framing"`` for a crop-framing
        measurement, ``"ensemble"`` for an ensemble's scores, else ``"train"``."""
        if self.saved.get("study") in (FRAMING_STUDY, ENSEMBLE_STUDY):
            return self.saved["study"]
        return "privacy" if (self.path / SUMMARY_FILE).is_file() or self.models_dir.is_dir() else "train"

    @property
    def config(self) -> ExperimentConfig:
        """The training run's :class:`~fer_keras.config.ExperimentConfig` (flat old forms too)."""
        if self.kind != "train":
            raise ConfigError(f"{self.path}: a {self.kind} run folder, not a training run")
        try:
            return ExperimentConfig.from_dict(self.saved["config"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.config_file}: not a run config ({type(exc).__name__}: {str(exc)[:200]})") from None

    @property
    def resolved(self) -> dict:
        return self.saved.get("resolved", {})

    @property
    def environment(self) -> dict:
        return self.saved.get("environment", {})

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.resolved.get("class_names") or ())

    @property
    def input_spec(self) -> InputSpec:
        """The model's :class:`~fer_keras.data.pipeline.InputSpec`, as the run trained and tested it."""
        r = self.resolved
        try:
            return InputSpec(tuple(r["input_shape"]), r["input_mode"], self.config.model.standardize,
                             r.get("dataset_mean"), r.get("dataset_std"), tuple(r["class_names"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"{self.config_file}: 'resolved' lacks the model input ({exc})") from None

    # ---------------------------------------------------------------------------- contents

    def history(self) -> list[dict]:
        return read_history(self.history_file)

    def metrics(self) -> dict | None:
        """``metrics.json`` (None until the run has finished)."""
        return read_json(self.metrics_file) if self.metrics_file.is_file() else None

    def ensemble_members(self, check_shipped: bool = True) -> tuple[dict[str, float], str]:
        """An ensemble run's members with their weights (chosen on validation), and its TTA. A
        pretrained member must still be the model it was (its card's source run, recorded by the
        ensemble): a one-line ConfigError when the name has shipped another model since, unless
        ``check_shipped`` is False (only to match outputs the ensemble's members made back then)."""
        from fer_keras import pretrained

        metrics = self.metrics()
        if self.kind != ENSEMBLE_STUDY or metrics is None or "weights" not in metrics:
            raise ConfigError(f"{self.path}: not a finished ensemble run (its {METRICS_FILE} holds no weights)")
        recorded = self.resolved.get("members", {})
        for member in metrics["weights"]:
            if check_shipped and pretrained.is_name(member):
                was, now = recorded.get(member, {}).get("source_run"), pretrained.card(member).get("source_run")
                if was != now:
                    raise ConfigError(f"{self.path}: its member {member} is now another model (from {now}; the "
                                      f"ensemble used {was or 'an unrecorded version'}); run the ensemble again")
        return {m: float(w) for m, w in metrics["weights"].items()}, metrics.get("tta", "none")

    def read(self, name: str) -> Any:
        """A JSON file of the run (e.g. :data:`ROBUSTNESS_FILE`), or None if it is not there."""
        file = self.path / name
        return read_json(file) if file.is_file() else None

    @property
    def finished(self) -> bool:
        return self.metrics_file.is_file()

    def load_model(self, trusted: bool = False):
        """The trained Keras model (:attr:`model_file`), loaded without running untrusted code
        (:mod:`fer_keras.model_files`)."""
        if not self.model_file.exists():
            raise ConfigError(f"{self.path}: not a finished run folder (needs {MODEL_DIR}/{KERAS_FILE})")
        return load_keras(self.model_file, trusted)

    def held_out_split(self, data: str | None = None, limit: int | None = None, part: str = "test"):
        """The run's test split (``part="val"``: its validation split) re-made from its config (``data``:
        the data's path, if it moved; ``limit``: a stratified sample of that many images)."""
        config = self._config_with_data(data)
        return held_out_split(config.data, config.seed, limit, part)

    def prepared_data(self, data: str | None = None, faces=None):
        """The run's ``(parts, extras)`` re-made from its config, as
        :func:`fer_keras.data.prepare.prepare_data` with ``return_extras=True`` (``data``: the data's
        path, if it moved; ``faces``: that data set, if already loaded)."""
        config = self._config_with_data(data)
        return prepare_data(config.data, config.seed, log=lambda *a: None, return_extras=True, faces=faces)

    def _config_with_data(self, data: str | None) -> ExperimentConfig:
        return self.config if data is None else self.config.replace(data__path=str(data))


class RunModel:
    """A finished run's model with the input preparation it was trained with.

    Attributes: ``run`` (:class:`RunFolder`), ``model`` (Keras), ``config``, ``spec``
    (:class:`~fer_keras.data.pipeline.InputSpec`), ``name`` (the folder's name), ``input_shape``,
    ``input_mode`` and ``class_names`` (from ``spec``). The Keras model loads safely
    unless ``trusted`` (:mod:`fer_keras.model_files`).
    """

    def __init__(self, run_dir: str | os.PathLike | RunFolder, trusted: bool = False, what: str = "--run"):
        self.run = run_dir if isinstance(run_dir, RunFolder) else RunFolder.open(run_dir, what, finished=True)
        self.config = self.run.config
        self.input_spec = self.run.input_spec
        self.model = self.run.load_model(trusted)
        self.name, self.run_dir = self.run.name, self.run.path

    input_shape = property(lambda self: self.input_spec.shape)
    input_mode = property(lambda self: self.input_spec.mode)
    class_names = property(lambda self: self.input_spec.class_names)

    def prepare(self, pixels) -> tf.Tensor:
        """uint8/float pixels 0..255 (B, h, w, c) -> model input float32 (B, H, W, C), as the run's test pipeline."""
        return self.input_spec.prepare(pixels)

    def predict(self, pixels, batch_size: int = 64):
        """Probabilities (N, K) for uint8 faces (N, h, w, c), prepared batch by batch."""
        out = [np.asarray(self.model.predict_on_batch(self.prepare(pixels[i:i + batch_size])))
               for i in range(0, len(pixels), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)
