"""Shipped, ready-to-use expression models by name: ``fer_keras.pretrained.load("fer2013-dcnn")``.

Each model is a folder ``fer_keras/pretrained/<name>/`` inside the installed package:

| file | what |
| --- | --- |
| ``model.keras`` | the float32 Keras model (no optimizer state); load it and ``fit`` to fine-tune |
| ``model_int8.tflite`` | dynamic-range quantised TFLite (int8 weights, float32 activations); input prepared float32 (1, H, W, C) |
| ``labels.txt`` | class names, one a line, in output order |
| ``card.json`` | what the model is: ``class_names``, ``input`` (below), ``architecture``, ``data``, ``splits``, ``metrics``, ... |
| ``MODEL_CARD.md`` | the same card, for people |

``card["input"]`` says how to prepare faces: ``shape`` [H, W, C]; ``mode`` ``"unit"`` (pixels / 255)
or ``"standardize"`` (mean 0 / std 1, per image when ``standardize`` is ``"image"``, else with the
training set's ``mean`` / ``std`` in pixel units 0..255). :func:`classifier` and
:class:`fer_keras.EmotionRecognizer` apply it for you.

:func:`fer_keras.pretrained.packaging.package_run` makes such a folder from a finished run folder
(and, given labelled data, records the accuracy of both forms on it the way ``fer-keras
evaluate`` measures it). Nothing is loaded until asked for.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from fer_keras.data.pipeline import InputSpec
from fer_keras.errors import ConfigError, DataError
from fer_keras.export import CARD_FILE, KERAS_FILE, LABELS_FILE, TFLiteModel
from fer_keras.files import read_json
from fer_keras.model_files import load_keras

#: Folder holding one sub-folder per shipped model (tests point it elsewhere).
ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = "fer2013-dcnn"
TFLITE_FILE = "model_int8.tflite"  # beside KERAS_FILE, LABELS_FILE and CARD_FILE (export names)
MODEL_CARD_FILE = "MODEL_CARD.md"
FORMS = {"keras": KERAS_FILE, "tflite": TFLITE_FILE}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOW_TO_GET = ("pass a model you trained (--model runs/<run folder>; train one with "
               "experiments/run_nsl.py --data path/to/fer2013) or install a fer_keras build that ships it")


def is_name(text) -> bool:
    """Whether ``text`` looks like a pretrained model's name rather than a path (no folder, no suffix)."""
    text = os.fspath(text) if isinstance(text, os.PathLike) else text
    return (isinstance(text, str) and bool(_NAME.match(text)) and not os.path.exists(text)
            and Path(text).suffix.lower() not in (".keras", ".tflite", ".h5", ".pb"))


def available() -> list[str]:
    """Names of the installed pretrained models (folders holding a ``card.json``), sorted."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / CARD_FILE).is_file())


def path(name: str = DEFAULT_MODEL, form: str | None = None) -> Path:
    """Folder of pretrained model ``name`` (or, with ``form`` "keras"/"tflite", its model file).

    Raises ConfigError, in one line naming what is missing, when it is not installed.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{name!r} is not a pretrained model name (installed: {_installed()})")
    if form is not None and form not in FORMS:
        raise ConfigError(f"unknown model form {form!r}; use one of {', '.join(FORMS)}")
    folder = ROOT / name
    if not folder.is_dir():
        raise ConfigError(f"pretrained model {name!r} is not installed ({folder} is missing; installed: "
                          f"{_installed()}); {_HOW_TO_GET}")
    needed = [CARD_FILE, LABELS_FILE] + ([FORMS[form]] if form else [])
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"pretrained model {name!r} is incomplete: {', '.join(missing)} missing in {folder}; "
                          f"{_HOW_TO_GET}")
    return folder / FORMS[form] if form else folder


def _installed() -> str:
    return ", ".join(available()) or "none"


def card(name: str = DEFAULT_MODEL) -> dict:
    """The model card (``card.json``) of pretrained model ``name`` as a dict."""
    file = path(name) / CARD_FILE
    try:
        data = read_json(file)
    except ValueError:
        raise DataError(f"{file}: not valid JSON") from None
    for key in ("class_names", "input"):
        if key not in data:
            raise DataError(f"{file}: no {key!r} entry; the card must give class_names and input")
    return data


def identity(name: str = DEFAULT_MODEL, info: dict | None = None) -> dict:
    """Which model the name ``name`` ships now: ``{"version", "source_run"}`` from its card (a name
    may ship another model later, so records that cite a name keep these beside it); ``info``: the
    card already read, if at hand."""
    info = card(name) if info is None else info
    return {"version": info.get("version", 1), "source_run": info.get("source_run")}


def labels(name: str = DEFAULT_MODEL) -> list[str]:
    """Class names of pretrained model ``name``, in output order (``labels.txt``)."""
    return [line.strip() for line in (path(name) / LABELS_FILE).read_text("utf-8").splitlines() if line.strip()]


def load(name: str = DEFAULT_MODEL, form: str = "keras"):
    """Load pretrained model ``name``.

    ``form="keras"``: a ``tf.keras.Model`` taking prepared float32 (B, H, W, C) (see ``card(name)["input"]``)
    and returning probabilities (B, K), fine-tunable. ``form="tflite"``: a
    :class:`fer_keras.export.TFLiteModel`, the same call on the int8 model.
    """
    file = path(name, form)
    return load_keras(file) if form == "keras" else TFLiteModel(file)


def input_spec(name: str = DEFAULT_MODEL) -> InputSpec:
    """How pretrained model ``name`` wants its faces prepared (from its card), with its class names."""
    info = card(name)
    return InputSpec.from_dict(info["input"], info["class_names"])


