"""Any saved expression model as one callable: uint8 face crops -> class probabilities.

``load_classifier(model)`` takes a pretrained model's name (:mod:`fer_keras.pretrained`; None =
the default one), a run folder (``config.json`` + ``model/``), a ``.keras`` file, a SavedModel
folder (signature ``serving_default``: ``image`` float32 (B, H, W, C) -> ``probabilities``) or a
``.tflite`` file, and returns a :class:`Classifier` that prepares crops the way the model was
trained. How to prepare them (:class:`~fer_keras.data.pipeline.InputSpec`) comes from, in turn:
the arguments, the run folder's ``config.json``, the pretrained model's card, the
``model_info.json`` written beside an export, the model registry (a model saved under a
registered name). Files are loaded by :mod:`fer_keras.model_files`: HDF5 files, SavedModels and
TFLite files with custom ops only with ``trusted=True`` (``--trust-model``).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras import model_files, pretrained
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.data.pipeline import InputSpec
from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.export import TFLiteModel, export_checked, read_model_info
from fer_keras.models import REGISTRY
from fer_keras.precision import resolve_precision, with_precision
from fer_keras.runs import RunFolder, resolve_model
from fer_keras.tta import average_probabilities


class DemoModelWarning(UserWarning):
    """The model was trained on the synthetic demo set: its outputs mean nothing for real faces."""


class Classifier:
    """A loaded expression model: ``classifier(crops)`` -> probabilities.

    ``crops``: uint8 (N, H, W, C) faces, 0..255, any size and 1 or 3 channels (resized and matched
    to :attr:`input_shape`); returns float32 (N, K), rows summing to 1, in the order of
    :attr:`class_names`. ``path`` is a model file or folder (not a pretrained name; see
    :func:`load_classifier`); ``input_mode`` ... ``std`` override what its files say.
    ``precision``: a Keras model computes in ``float32`` (default), ``mixed_bfloat16`` (fast on
    CPUs with AMX), ``mixed_float16`` (GPUs) or ``auto`` (:mod:`fer_keras.precision`); its
    probabilities stay float32.
    """

    def __init__(self, path: str | os.PathLike, input_mode: str | None = None, class_names=None,
                 standardize: str | None = None, mean: float | None = None, std: float | None = None,
                 trusted: bool = False, precision: str = "float32"):
        self.path, self.trusted = Path(path), trusted
        if not self.path.exists():
            raise ConfigError(f"model {path}: no such file or folder; pass a run folder, .keras, SavedModel or .tflite")
        run = RunFolder.find(self.path)
        self.model_path = resolve_model(self.path)  # a run folder -> its Keras model, never its SavedModel
        kind = model_files.model_format(self.model_path)
        name = run.config.model.name if run is not None and run.kind == "train" else None
        self.precision = resolve_precision(precision)
        if self.precision != "float32" and kind != "keras":
            raise ConfigError(f"--precision {precision}: only a Keras model (a pretrained name, run folder or .keras) "
                              f"can compute in another precision; {self.model_path} is a {kind} file")
        if kind == "tflite":
            self._run = TFLiteModel(self.model_path, trusted=trusted)
            shape = self._run.input_shape
        elif kind == "saved_model":
            loaded = model_files.load_saved_model(self.model_path, trusted)
            try:
                self._signature = loaded.signatures["serving_default"]
                shape = self._signature.structured_input_signature[1]["image"].shape[1:]
            except (KeyError, IndexError, TypeError):
                raise FerKerasError(f"model {self.model_path}: cannot load (no serving_default signature taking "
                                    "'image')") from None
            self._run = lambda x: self._signature(image=tf.constant(x))["probabilities"].numpy()
        else:
            model = model_files.load_keras(self.model_path, trusted)
            shape, name = model.input_shape[1:], name or model.name
            if self.precision != "float32":
                model = with_precision(model, self.precision)
            self._run = lambda x: model(x, training=False).numpy()
        saved = _saved_input(run, self.model_path)
        mode = input_mode or saved.get("mode") or (REGISTRY[name].input_mode if name in REGISTRY else None)
        if mode is None:
            raise ConfigError(f"model {path}: cannot tell how it expects its input; pass input_mode "
                              "(--input-mode unit for pixels/255, standardize for mean 0 / std 1)")
        self.input_spec = InputSpec(tuple(int(v) for v in shape), mode,
                                    standardize or saved.get("standardize") or "image",
                                    mean if mean is not None else saved.get("mean"),
                                    std if std is not None else saved.get("std"),
                                    tuple(class_names or saved.get("class_names") or CLASS_NAMES))
        probe = self(np.zeros((1, *self.input_shape), np.uint8))
        if probe.shape[1] != len(self.class_names):
            raise ConfigError(f"model {path} has {probe.shape[1]} outputs but {len(self.class_names)} class names; "
                              "pass the class names (--classes a,b,c)")

    input_shape = property(lambda self: self.input_spec.shape)
    mode = property(lambda self: self.input_spec.mode)
    class_names = property(lambda self: self.input_spec.class_names)

    def export(self, out_dir: str | os.PathLike, tflite: bool = True, check_images: int = 32, seed: int = 0) -> dict:
        """Write this model's SavedModel (``serving_default`` and ``serving_uint8``), ``.keras``,
        TFLite files, labels and ``model_info.json`` into ``out_dir``
        (:func:`fer_keras.export.export_model`), with its input preparation and class names, and
        check every export on ``check_images`` random faces. Needs a Keras model (a pretrained name,
        run folder or ``.keras``). Returns ``{"paths": {...}, "check": {export: max abs difference}}``."""
        if model_files.model_format(self.model_path) != "keras":
            raise ConfigError(f"model {self.path}: export needs a Keras model (a pretrained name, run folder or "
                              f".keras file), not a {model_files.model_format(self.model_path)} file")
        return export_checked(model_files.load_keras(self.model_path, self.trusted), out_dir, self.input_spec, tflite,
                              check_images, seed)

    def __call__(self, crops: np.ndarray, tta: str = "none", batch_size: int | None = None) -> np.ndarray:
        """Probabilities (N, K) of ``crops``; ``tta`` "flip" / "flip+crops" averages over 2 / 12
        views of each crop (:mod:`fer_keras.tta`), at 2 / 12 times the model time. ``batch_size``:
        prepare and run at most that many crops at a time (bounds the memory of a large set)."""
        if batch_size is not None and len(crops) > batch_size:
            return np.concatenate([self(crops[i:i + batch_size], tta) for i in range(0, len(crops), batch_size)])
        return average_probabilities(self._run, self.input_spec.prepare(crops).numpy(), tta)


def _saved_input(run: RunFolder | None, model_path: Path) -> dict:
    """What the model's files say about its input (``mode``, ``standardize``, ``mean``, ``std``,
    ``class_names``; any may be missing): its run folder's config.json, else the model_info.json
    (or pretrained card) beside an export."""
    if run is not None and run.kind == "train":
        r = run.resolved
        return {"mode": r.get("input_mode"), "standardize": run.config.model.standardize,
                "mean": r.get("dataset_mean"), "std": r.get("dataset_std"), "class_names": r.get("class_names")}
    info = read_model_info(model_path)
    return {**info["input"], "class_names": info["class_names"]} if info else {}


def load_classifier(model=pretrained.DEFAULT_MODEL, input_mode: str | None = None, class_names=None, **kwargs):
    """A :class:`Classifier` for ``model``: a pretrained name, a run folder, ``.keras``, SavedModel,
    ``.tflite`` or a Classifier (returned as is). ``None`` = :data:`fer_keras.pretrained.DEFAULT_MODEL`.

    ``kwargs`` go to the Classifier (``standardize``, ``mean``, ``std``, ``trusted``, ``precision``). Warns
    (:class:`DemoModelWarning`) for a run trained on the synthetic demo set.
    """
    if isinstance(model, Classifier):
        return model
    model = pretrained.DEFAULT_MODEL if model is None else model
    if pretrained.is_name(model):
        spec = pretrained.input_spec(model)
        return Classifier(pretrained.path(model, "keras"), input_mode or spec.mode, class_names or spec.class_names,
                          **{"standardize": spec.standardize, "mean": spec.mean, "std": spec.std, **kwargs})
    file = Path(model)
    if not file.exists():
        raise ConfigError(f"model {model}: no such file or folder, and no pretrained model of that name "
                          f"(installed: {', '.join(pretrained.available()) or 'none'}); pass a run folder, "
                          ".keras, SavedModel or .tflite")
    run = RunFolder.find(file)
    if run is not None and run.kind == "train" and run.config.data.path is None:
        warnings.warn(f"model {model} was trained on the synthetic demo set (its config.json has data null): "
                      "its predictions mean nothing for real faces", DemoModelWarning, stacklevel=2)
    return Classifier(file, input_mode, class_names, **kwargs)
