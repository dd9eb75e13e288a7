"""Package a finished run folder as a shipped pretrained model (see :mod:`fer_keras.pretrained`).

    from fer_keras.pretrained.packaging import package_run
    package_run("runs/<run>", "fer2013-dcnn", data="path/to/fer2013",
                command="python experiments/run_nsl.py ...", timing={"wall_seconds": ..., "cpu_percent": ...})

The card (``card.json`` and ``MODEL_CARD.md``) says what the model is and how it was made and
measured: architecture and input, the data and its splits (where validation and test came from),
the run's test figures (accuracy with and without test-time flip, macro F1, per-class F1, the same
on the test images that do not also occur in Training), the training command, epochs, wall time,
CPU share and machine (for a model trained ``--init-from`` another, that training too and the
sums), and, given labelled ``data``, both shipped forms (Keras, int8 TFLite) scored the way
``fer-keras evaluate`` scores them. Every card has the model's cost (:func:`model_cost`: MACs,
file sizes, int8 TFLite latency at batch 1), and ``compare_with`` other shipped models puts
theirs beside it, measured in the same process.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_keras import markdown, pretrained
from fer_keras.classifier import Classifier
from fer_keras.config import TTA_MODES
from fer_keras.errors import ConfigError
from fer_keras.evaluation import evaluate_model_on_data
from fer_keras.export import TFLiteModel, export_model
from fer_keras.files import atomic_write_text, write_json
from fer_keras.pretrained import _NAME, CARD_FILE, FORMS, KERAS_FILE, LABELS_FILE, MODEL_CARD_FILE, TFLITE_FILE
from fer_keras.runs import RunModel

LICENSE = "Apache-2.0 (code and weights); trained on FER2013, whose terms are research / non-commercial use"


def _test_figures(metrics: dict) -> dict:
    """The run's test figures, for the card: full test set and without its copies of Training images."""
    out = {}
    for key, m in (("test", metrics), ("test_deduplicated", metrics.get("test_deduplicated"))):
        if m:
            out[key] = {"images": m.get("images"), "accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1"),
                        "f1": {c: v.get("f1") for c, v in m.get("per_class", {}).items()}}
    if "test_deduplicated" in out:
        out["test_deduplicated"]["removed"] = metrics["test_deduplicated"].get("removed")
    if metrics.get("tta", "none") != "none":
        out["tta"] = metrics["tta"]
        out["test"]["accuracy_without_tta"] = metrics.get("without_tta", {}).get("accuracy")
    return out


def _validation(run) -> dict:
    """The validation accuracy of the tested weights (the best epoch's, else the last), for the card."""
    history, best = run.history(), ((run.metrics() or {}).get("training") or {}).get("best_epoch")
    row = next((h for h in history if int(h["epoch"]) == best), None) if best is not None else None
    row = row or (history[-1] if history else {})
    accuracy = row.get("val_categorical_accuracy")
    return {"validation": {"accuracy": float(accuracy), "epoch": int(row["epoch"]) + 1}} if accuracy is not None else {}


def started_from(source: str, *, command: str | None = None, timing: dict | None = None,
                 recorded: dict | None = None) -> dict:
    """How the model a run was initialised from (``--init-from``: a pretrained name or a run
    folder) was trained, for the card: ``{"source", "epochs", "command", "wall_seconds",
    "cpu_percent"}`` (``command`` and ``timing`` as for :func:`package_run`; a pretrained source's
    come from its own card, including where *it* started from).

    ``recorded`` is the ``{"version", "source_run"}`` the run wrote when it started (its
    ``resolved.init_from``): when the name ships another model since, the record of the one the run
    started from is found in the current card's chain, or only its identity is kept.
    """
    if pretrained.is_name(source):
        keep = ("command", "epochs", "wall_seconds", "cpu_percent", "cpu_percent_of", "started_from")
        info = pretrained.card(source)
        training = info.get("training", {})
        record = {"source": source, **pretrained.identity(source, info),
                  **{k: training[k] for k in keep if training.get(k) is not None}}
        if not recorded or _same_model(record, recorded):
            return record
        while record.get("started_from"):  # an older version of the name, cited by a newer one
            record = record["started_from"]
            if record.get("source") == source and _same_model(record, recorded):
                return record
        return {"source": source, **{k: recorded.get(k) for k in ("version", "source_run")},
                "note": "no longer shipped under this name; its training record was not found"}
    if not Path(source).is_dir():  # a bare model file: nothing is known of its training
        return {"source": Path(source).name}
    run = RunModel(source)
    epochs = (run.run.metrics() or {}).get("training", {}).get("epochs")
    return {"source": run.run_dir.name, "epochs": epochs, "command": command,
            **({k: timing.get(k) for k in ("wall_seconds", "cpu_percent")} if timing else {}),
            **({"cpu_percent_of": timing["cpu_percent_of"]} if timing and timing.get("cpu_percent_of") else {})}


def _same_model(record: dict, recorded: dict) -> bool:
    return (record.get("version", 1), record.get("source_run")) == (recorded.get("version", 1),
                                                                     recorded.get("source_run"))


def distilled_from(run: RunModel) -> dict | None:
    """How a distilled run's teacher was made, for the card (None for a run without ``--teacher``):
    ``{"teacher", "members" (name -> weight), "tta", "temperature", "label_weight",
    "train_accuracy"}`` and, while the teacher's run folder is at hand, its ``validation_accuracy``.
    Run folders are written by their names, never the training machine's paths."""
    record = run.run.resolved.get("distil")
    if not record:
        return None
    written = lambda source: source if pretrained.is_name(source) else Path(source).name  # noqa: E731
    info = {"teacher": written(record["teacher"]), "tta": record.get("tta"),
            "members": {written(m): round(w, 4) for m, w in record["members"].items() if w > 0},
            "temperature": run.config.distil.temperature, "label_weight": run.config.distil.label_weight,
            "train_accuracy": record.get("train_accuracy")}
    teacher = Path(record["teacher"]) / "metrics.json"
    if teacher.is_file():
        ensemble = json.loads(teacher.read_text()).get("results", {}).get("ensemble")
        if ensemble:  # an ensemble run; a training run's validation is in its history, not recorded here
            info["validation_accuracy"] = ensemble["val"]["accuracy"]
    return info


def model_cost(folder: str | os.PathLike, runs: int = 200) -> dict:
    """What a packaged model costs to ship and run: ``macs`` (multiply-adds per face at its input
    size, :func:`fer_keras.profiler.count_macs`), ``keras_bytes`` / ``tflite_bytes`` (file sizes)
    and ``tflite_ms_batch1`` (median of ``runs`` int8 TFLite calls on one face, 1 thread, after 10
    warm-up calls; ``machine`` says where)."""
    from fer_keras.model_files import load_keras
    from fer_keras.profiler import count_macs

    folder = Path(folder)
    model = load_keras(folder / KERAS_FILE)
    tflite = TFLiteModel(folder / TFLITE_FILE, num_threads=1)
    face = np.zeros((1, *tflite.input_shape), np.float32)
    times = []
    for i in range(10 + runs):
        start = time.perf_counter()
        tflite(face)
        if i >= 10:
            times.append(time.perf_counter() - start)
    return {"macs": int(count_macs(model)), "keras_bytes": (folder / KERAS_FILE).stat().st_size,
            "tflite_bytes": (folder / TFLITE_FILE).stat().st_size,
            "tflite_ms_batch1": round(1000 * statistics.median(times), 3), "tflite_threads": 1,
            "machine": f"{os.cpu_count()} CPUs {platform.machine()}"}


def _comparison(name: str, card: dict, cost: dict) -> dict:
    test = (card.get("metrics") or {}).get("test") or {}
    evaluation = card.get("evaluation") or {}
    return {"name": name, "parameters": card.get("parameters"), "input": card["input"]["shape"],
            "test_accuracy": test.get("accuracy_without_tta", test.get("accuracy")),
            "keras_on_evaluation": (evaluation.get("keras") or {}).get("accuracy"),
            "tflite_on_evaluation": (evaluation.get("tflite") or {}).get("accuracy"), **cost}


def package_run(run_dir: str | os.PathLike, name: str, *, root: str | os.PathLike | None = None,
                data: str | os.PathLike | None = None, usage: str | None = "PublicTest",
                description: str | None = None, command: str | None = None, timing: dict | None = None,
                started: dict | None = None, extra: dict | None = None, compare_with: tuple[str, ...] = (),
                changes: str | None = None, log=print) -> Path:
    """Package a finished run folder as pretrained model ``name`` under ``root`` (default
    :data:`fer_keras.pretrained.ROOT`), replacing an older folder of that name whole.

    ``data``: labelled face crops (as ``fer-keras evaluate`` takes them); when given, both forms
    are scored on its ``usage`` rows in every TTA mode into the card's ``evaluation``. The card
    names data sets by their file or folder name, never the training machine's path.
    ``command``: the training command; ``timing``: ``{"wall_seconds", "cpu_percent", "cpu_model"}``
    of the training (e.g. from ``/usr/bin/time -v``) and, when only part of it was timed,
    ``"cpu_percent_of"``: which part (see ``experiments/report.py --collect``). ``started``: for a
    run initialised from another model, :func:`started_from` of it (the card then gives both
    trainings and their sums).
    ``extra``: more card entries. ``compare_with``: shipped pretrained model names whose accuracy
    and cost (measured now, beside this model's) the card sets beside its own. The card's ``version``
    is 1 for a new name and one more than the replaced model's otherwise; replacing a model needs
    ``changes``, what is different from the version it replaces (said on the card). Returns the folder.
    """
    if not _NAME.match(name):
        raise ConfigError(f"pretrained model name {name!r}: use letters, digits, '.', '_' and '-'")
    run = RunModel(run_dir)
    root = Path(root) if root is not None else pretrained.ROOT  # read now: tests point it elsewhere
    root.mkdir(parents=True, exist_ok=True)
    replaced = root / name / CARD_FILE
    version = 1
    if replaced.is_file():
        previous = json.loads(replaced.read_text())
        if previous.get("source_run") != run.run_dir.name and not changes:
            raise ConfigError(f"{name} exists (from {previous.get('source_run')}): say what the new version changes "
                              "(--changes \"...\"); it goes on the card")
        version = int(previous.get("version", 1)) + (previous.get("source_run") != run.run_dir.name)
        changes = changes or previous.get("changes")
    metrics = run.run.metrics() or {}
    config, resolved, inputs = run.config, run.run.resolved, run.input_spec
    if config.data.path is None:
        log(f"warning: {run.run_dir} was trained on the synthetic demo set; its predictions mean nothing for real faces")
    training = metrics.get("training", {})
    card_data = {
        "name": name,
        "description": description or f"{config.model.name} trained on "
                                       f"{config.data.path or 'the synthetic demo set'}",
        "architecture": config.model.name,
        "parameters": int(run.model.count_params()),
        "class_names": list(run.class_names),
        "input": {**inputs.to_dict(), "dtype": "float32",
                  "pixels": "0..255 before preparation; gray faces for 1 channel, RGB for 3"},
        "output": {"name": "probabilities", "shape": [None, len(run.class_names)], "dtype": "float32"},
        "files": {"keras": KERAS_FILE, "tflite": TFLITE_FILE, "labels": LABELS_FILE},
        "data": Path(config.data.path).name if config.data.path else None,  # not the training machine's path
        "splits": {"how": config.data.split, "images": resolved.get("images"),
                   "class_counts": resolved.get("class_counts"), "sources": resolved.get("splits"),
                   "dropped_training_copies_of_held_out_images": config.data.drop_test_duplicates},
        "training": {"command": command, "config": config.to_dict(), "epochs": training.get("epochs"),
                     "fit_seconds": training.get("seconds"), "images_per_second": training.get("images_per_second"),
                     **({k: timing[k] for k in ("wall_seconds", "cpu_percent", "cpu_percent_of", "cpu_model")
                         if timing.get(k) is not None} if timing else {}),
                     "environment": run.run.environment, **({"started_from": started} if started else {}),
                     **({"distilled_from": teacher} if (teacher := distilled_from(run)) else {})},
        "version": version, **({"changes": changes} if changes else {}),
        "metrics": {**_test_figures(metrics), **_validation(run.run)},
        "source_run": run.run_dir.name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "license": LICENSE,
        **(extra or {}),
    }
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        tmp = Path(tmp)
        exported = export_model(run.model, tmp / "export", inputs, tflite=True)
        folder = tmp / name
        folder.mkdir()
        exported["keras"].replace(folder / KERAS_FILE)
        exported["tflite_dynamic"].replace(folder / TFLITE_FILE)
        atomic_write_text(folder / LABELS_FILE, "".join(f"{c}\n" for c in run.class_names))
        write_json(folder / CARD_FILE, card_data)
        if data is not None:
            card_data["evaluation"] = {"data": Path(data).name, "usage": usage}
            for form, file in FORMS.items():
                model = Classifier(folder / file)  # prepared as its card (written above) says
                for tta in TTA_MODES:
                    result = evaluate_model_on_data(model, data, usage=usage, tta=tta, log=log)
                    card_data["evaluation"][form if tta == "none" else f"{form}_{tta.replace('+', '_')}_tta"] = {
                        k: result[k] for k in ("images", "accuracy", "macro_f1")}
                    log(f"{form} (TTA {tta}): accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} "
                        f"on {result['images']} images")
        card_data["cost"] = model_cost(folder)
        if compare_with:
            card_data["compared_with"] = [_comparison(name, card_data, card_data["cost"])] + [
                _comparison(other, pretrained.card(other), model_cost(pretrained.path(other))) for other in compare_with]
        write_json(folder / CARD_FILE, card_data)
        atomic_write_text(folder / MODEL_CARD_FILE, model_card_markdown(card_data))
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        folder.replace(target)
    log(f"pretrained model {name!r} -> {target}")
    return target


def _cpu_share(timing: dict) -> str:
    """``"157 % CPU"``, saying which part it was measured over when only part of the run was timed."""
    share = f"{timing.get('cpu_percent') or '-'} % CPU"
    return share + (f" (over {timing['cpu_percent_of']})" if timing.get("cpu_percent_of") else "")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _started_rows(training: dict) -> list[str]:
    """Card rows for a model initialised from another: that training, then both summed."""
    rows, epochs, seconds, chain = [], [training.get("epochs")], [training.get("wall_seconds")], training
    while chain.get("started_from"):
        chain = chain["started_from"]
        hours = f"{chain['wall_seconds'] / 3600:.2f} h" if chain.get("wall_seconds") else "wall time not recorded"
        which = f" version {chain['version']} (run {chain.get('source_run')})" if chain.get("version") else ""
        if chain.get("note"):
            rows.append(f"| started from | `{chain['source']}`{which}: {chain['note']} |")
            epochs.append(None)
            break
        rows.append(f"| started from | `{chain['source']}`{which}: {chain.get('epochs')} epochs, {hours}"
                    + (f" at {_cpu_share(chain)}" if chain.get("cpu_percent") else "")
                    + (f", `{chain['command']}`" if chain.get("command") else "") + " |")
        epochs.append(chain.get("epochs"))
        seconds.append(chain.get("wall_seconds"))
    if rows and None not in epochs:
        rows.append(f"| in all | {sum(epochs)} epochs" + (f", {sum(seconds) / 3600:.2f} h" if None not in seconds
                                                         else "") + " |")
    return rows


def _distilled_rows(training: dict) -> list[str]:
    """Card row for a distilled model: its teacher, the teacher's accuracy, the targets' mix."""
    d = training.get("distilled_from")
    if not d:
        return []
    accuracy = f", validation {_pct(d['validation_accuracy'])}" if d.get("validation_accuracy") else ""
    return [f"| distilled from | `{d['teacher']}`: {len(d['members'])} models (TTA {d.get('tta')}{accuracy}; right on "
            f"{_pct(d.get('train_accuracy'))} of the training faces); targets {d['label_weight']:g} label + "
            f"{1 - d['label_weight']:g} teacher at temperature {d['temperature']:g} |"]


def model_card_markdown(info: dict) -> str:
    """``MODEL_CARD.md`` text from a card dict."""
    spec = info["input"]
    prep = ("pixels / 255" if spec["mode"] == "unit" else
            "mean 0 / std 1 per image" if spec.get("standardize", "image") == "image" else
            f"(pixels - {spec.get('mean')}) / {spec.get('std')}")
    splits = info.get("splits", {})
    sources = splits.get("sources") or {}
    where = "; ".join(f"{part}: " + " + ".join(f"{u} {n:,}" for u, n in sources[part]["usage"].items())
                      for part in ("train", "val", "test") if part in sources)
    t = info.get("training", {})
    hours = f"{t['wall_seconds'] / 3600:.2f} h" if t.get("wall_seconds") else "-"
    env = t.get("environment") or {}
    lines = [f"# {info['name']}", "", info.get("description", ""), "",
             "| | |", "| --- | --- |",
             f"| version | {info.get('version', 1)}" + (f": {info['changes']}" if info.get("changes") else "") + " |",
             f"| architecture | {info.get('architecture')} ({info.get('parameters', 0):,} parameters) |",
             f"| classes | {', '.join(info['class_names'])} |",
             f"| input | float32 {tuple(spec['shape'])}, {prep} |",
             f"| data | {info.get('data') or 'synthetic demo set'} |",
             f"| splits | {splits.get('how')}: {where or splits.get('images')}"
             + ("; training copies of validation/test images dropped" if splits.get(
                 "dropped_training_copies_of_held_out_images") else "") + " |",
             f"| training command | `{t.get('command') or '-'}` |",
             f"| epochs | {t.get('epochs')} |",
             f"| wall time | {hours} (fit {t.get('fit_seconds') or '-'} s; {t.get('images_per_second') or '-'} "
             f"training images/s), {_cpu_share(t)} |",
             f"| machine | {env.get('cpus', '?')} CPUs {env.get('machine', '')}, {t.get('cpu_model') or 'CPU model not recorded'}; "
             f"TensorFlow {env.get('tensorflow', '?')} |", *_started_rows(t), *_distilled_rows(t)]
    metrics = info.get("metrics", {})
    test, dedup = metrics.get("test"), metrics.get("test_deduplicated")
    if metrics.get("validation"):
        lines.append(f"| validation accuracy (selects; no TTA) | {_pct(metrics['validation']['accuracy'])}, epoch "
                     f"{metrics['validation']['epoch']} |")
    if test:
        tta = (f" ({metrics['tta']} TTA; {_pct(test.get('accuracy_without_tta'))} without)"
               if metrics.get("tta") not in (None, "none") else "")
        lines.append(f"| test accuracy | {_pct(test['accuracy'])}{tta}, macro F1 {_pct(test['macro_f1'])}, "
                     f"{test['images']:,} images |")
    if dedup:
        lines.append(f"| test minus its {dedup.get('removed')} copies of Training images | {_pct(dedup['accuracy'])}, "
                     f"macro F1 {_pct(dedup['macro_f1'])}, {dedup['images']:,} images |")
    evaluation = info.get("evaluation") or {}
    for form, figures in evaluation.items():
        if isinstance(figures, dict):
            lines.append(f"| {form} on {evaluation.get('usage') or 'all'} of {evaluation['data']} | "
                         f"accuracy {_pct(figures['accuracy'])}, macro F1 {_pct(figures['macro_f1'])} "
                         f"({figures['images']:,} images) |")
    cost = info.get("cost")
    if cost:
        lines.append(f"| cost | {cost['macs'] / 1e6:.1f} M multiply-adds per face; model.keras "
                     f"{cost['keras_bytes'] / 2**20:.1f} MiB, int8 TFLite {cost['tflite_bytes'] / 2**20:.1f} MiB, "
                     f"{cost['tflite_ms_batch1']:.2f} ms per face at batch 1 ({cost['tflite_threads']} thread, "
                     f"{cost['machine']}) |")
    lines += [f"| license | {info.get('license')} |", f"| source run | {info.get('source_run')} |", ""]
    if info.get("compared_with"):
        lines += ["Compared with the other shipped models (costs measured in one process, 1 TFLite thread; "
                  "accuracy without TTA):", "", *markdown.table(
                      ["model", "parameters", "input", "test accuracy (own split)",
                       "Keras / int8 TFLite on the evaluation rows", "multiply-adds", "model.keras", "int8 TFLite",
                       "TFLite ms, batch 1"],
                      [[row["name"], f"{row['parameters']:,}", "x".join(map(str, row["input"])),
                        _pct(row["test_accuracy"]), f"{_pct(row['keras_on_evaluation'])} / "
                        f"{_pct(row['tflite_on_evaluation'])}", f"{row['macs'] / 1e6:.1f} M",
                        f"{row['keras_bytes'] / 2**20:.1f} MiB", f"{row['tflite_bytes'] / 2**20:.1f} MiB",
                        f"{row['tflite_ms_batch1']:.2f}"] for row in info["compared_with"]]), ""]
    if test and test.get("f1"):
        names = list(test["f1"])
        rows = [["test", *(f"{100 * test['f1'][c]:.1f}" for c in names)]]
        if dedup and dedup.get("f1"):
            rows.append(["test minus Training copies", *(f"{100 * dedup['f1'].get(c, 0):.1f}" for c in names)])
        lines += ["Per-class F1 (%):", "", *markdown.table(["", *names], rows), ""]
    lines += ["```python", "import fer_keras",
              f"recognizer = fer_keras.EmotionRecognizer(model={info['name']!r})",
              "print(recognizer.detect_emotions('photo.jpg'))", "```", ""]
    return "\n".join(lines)
