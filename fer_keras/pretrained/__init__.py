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

:func:`build` makes such a folder from a finished run folder (and, given labelled data, records
the accuracy of both forms on it the way ``fer-keras evaluate`` measures it).
Importing this module loads no model and no TensorFlow.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import tempfile
from pathlib import Path

from fer_keras.errors import ConfigError, DataError

#: Folder holding one sub-folder per shipped model (tests point it elsewhere).
ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = "fer2013-dcnn"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model_int8.tflite"
LABELS_FILE = "labels.txt"
CARD_FILE = "card.json"
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
    from fer_keras.runs import read_json

    file = path(name) / CARD_FILE
    try:
        data = read_json(file)
    except ValueError:
        raise DataError(f"{file}: not valid JSON") from None
    for key in ("class_names", "input"):
        if key not in data:
            raise DataError(f"{file}: no {key!r} entry; the card must give class_names and input")
    return data


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
    if form == "keras":
        from fer_keras.export import load_keras

        return load_keras(file)
    from fer_keras.export import TFLiteModel

    return TFLiteModel(file)


def classifier(name: str = DEFAULT_MODEL, form: str = "keras"):
    """A :class:`fer_keras.predict.Classifier` (uint8 face crops (N, h, w, c) -> probabilities (N, K))
    for pretrained model ``name``, with the card's input preparation and class names."""
    from fer_keras.predict import Classifier

    info = card(name)
    spec = info["input"]
    return Classifier(path(name, form), spec["mode"], info["class_names"], standardize=spec.get("standardize", "image"),
                      mean=spec.get("mean"), std=spec.get("std"))


def build(run_dir: str | os.PathLike, name: str, *, root: str | os.PathLike | None = None,
          data: str | os.PathLike | None = None, usage: str | None = "PublicTest",
          description: str | None = None, extra: dict | None = None, log=print) -> Path:
    """Package a finished run folder as pretrained model ``name`` under ``root`` (default :data:`ROOT`).

    Writes the files of the module docstring (replacing an older folder of that name whole).
    ``data``: labelled face crops (as ``fer-keras evaluate`` takes them); when given, both forms
    are scored on its ``usage`` rows and the figures go into the card's ``evaluation``.
    ``extra``: more card entries (e.g. ``{"data": "...", "license": "..."}``). Returns the folder.
    """
    from fer_keras.export import RunModel, export_model
    from fer_keras.runs import read_json, write_json, atomic_write_text

    if not _NAME.match(name):
        raise ConfigError(f"pretrained model name {name!r}: use letters, digits, '.', '_' and '-'")
    run = RunModel(run_dir)
    root = Path(root) if root is not None else ROOT
    root.mkdir(parents=True, exist_ok=True)
    saved = read_json(run.run_dir / "config.json")
    metrics_file = run.run_dir / "metrics.json"
    metrics = read_json(metrics_file) if metrics_file.is_file() else {}
    config = saved.get("config", {})
    resolved = saved.get("resolved", {})
    if config.get("data") is None:
        log(f"warning: {run.run_dir} was trained on the synthetic demo set; its predictions mean nothing for real faces")
    scaling = run._scaling
    card_data = {
        "name": name,
        "description": description or f"{config.get('model', run.model.name)} trained on "
                                       f"{config.get('data') or 'the synthetic demo set'}",
        "architecture": config.get("model", run.model.name),
        "parameters": int(run.model.count_params()),
        "class_names": list(run.class_names),
        "input": {"shape": list(run.input_shape), "dtype": "float32", "mode": run.input_mode,
                  "standardize": scaling["standardize"], "mean": scaling["mean"], "std": scaling["std"],
                  "pixels": "0..255 before preparation; gray faces for 1 channel, RGB for 3"},
        "output": {"name": "probabilities", "shape": [None, len(run.class_names)], "dtype": "float32"},
        "files": {"keras": KERAS_FILE, "tflite": TFLITE_FILE, "labels": LABELS_FILE},
        "data": config.get("data"),
        "splits": {"how": config.get("split"), "images": resolved.get("images"),
                   "class_counts": resolved.get("class_counts")},
        "training": {k: config.get(k) for k in ("adversarial", "multiplier", "step", "grad_norm", "augment",
                                                "optimizer", "lr", "batch_size", "seed") if k in config}
                    | {"epochs": metrics.get("training", {}).get("epochs", resolved.get("epochs"))},
        "metrics": {k: metrics[k] for k in ("accuracy", "macro_f1", "images", "per_class") if k in metrics},
        "source_run": run.run_dir.name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "license": "Apache-2.0 (code and weights); trained on data whose terms are research / non-commercial use",
        **(extra or {}),
    }
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        tmp = Path(tmp)
        exported = export_model(run.model, tmp / "export", input_mode=run.input_mode, tflite=True,
                                class_names=run.class_names, **scaling)
        folder = tmp / name
        folder.mkdir()
        exported["keras"].replace(folder / KERAS_FILE)
        exported["tflite_dynamic"].replace(folder / TFLITE_FILE)
        atomic_write_text(folder / LABELS_FILE, "".join(f"{c}\n" for c in run.class_names))
        write_json(folder / CARD_FILE, card_data)
        if data is not None:
            from fer_keras.evaluation import evaluate_model_on_data
            from fer_keras.predict import Classifier

            card_data["evaluation"] = {"data": str(data), "usage": usage}
            for form, file in FORMS.items():
                model = Classifier(folder / file, run.input_mode, run.class_names, **scaling)
                result = evaluate_model_on_data(model, data, usage=usage, log=log)
                card_data["evaluation"][form] = {k: result[k] for k in ("images", "accuracy", "macro_f1")}
                log(f"{form}: accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} "
                    f"on {result['images']} images")
            write_json(folder / CARD_FILE, card_data)
        atomic_write_text(folder / MODEL_CARD_FILE, model_card_markdown(card_data))
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        folder.replace(target)
    log(f"pretrained model {name!r} -> {target}")
    return target


def model_card_markdown(info: dict) -> str:
    """``MODEL_CARD.md`` text from a card dict."""
    spec = info["input"]
    prep = ("pixels / 255" if spec["mode"] == "unit" else
            "mean 0 / std 1 per image" if spec.get("standardize", "image") == "image" else
            f"(pixels - {spec.get('mean')}) / {spec.get('std')}")
    lines = [f"# {info['name']}", "", info.get("description", ""), "",
             "| | |", "| --- | --- |",
             f"| architecture | {info.get('architecture')} ({info.get('parameters', 0):,} parameters) |",
             f"| classes | {', '.join(info['class_names'])} |",
             f"| input | float32 {tuple(spec['shape'])}, {prep} |",
             f"| data | {info.get('data') or 'synthetic demo set'} |",
             f"| splits | {info.get('splits', {}).get('how')}: {info.get('splits', {}).get('images')} |",
             f"| training | {info.get('training')} |"]
    metrics = info.get("metrics", {})
    if "accuracy" in metrics:
        lines.append(f"| test accuracy (run) | {metrics['accuracy']:.4f} (macro F1 {metrics.get('macro_f1', 0):.4f}, "
                     f"{metrics.get('images')} images) |")
    for form, figures in (info.get("evaluation") or {}).items():
        if isinstance(figures, dict):
            lines.append(f"| {form} on {info['evaluation'].get('usage') or 'all'} of {info['evaluation']['data']} | "
                         f"accuracy {figures['accuracy']:.4f}, macro F1 {figures['macro_f1']:.4f} "
                         f"({figures['images']} images) |")
    lines += [f"| license | {info.get('license')} |", f"| source run | {info.get('source_run')} |", "",
              "```python",
              "import fer_keras",
              f"recognizer = fer_keras.EmotionRecognizer(model={info['name']!r})",
              "print(recognizer.detect_emotions('photo.jpg'))",
              "```", ""]
    return "\n".join(lines)
