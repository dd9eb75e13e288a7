"""The ``fer-keras`` command (also ``python -m fer_keras``): one sub-command per task.

    fer-keras preprocess PHOTOS OUT [--detector auto] [--size 48] [--color gray]
    fer-keras predict SOURCE [--model RUN_OR_MODEL] [--out predictions] [--format json]
    fer-keras evaluate DATA [--model RUN_OR_MODEL] [--usage PublicTest] [--tta flip] [--out evaluation]
    fer-keras export RUN [--out DIR] [--no-tflite]
    fer-keras hygiene DATA [--out hygiene] [--std-threshold 1.0] [--mode-share 0.99]
    fer-keras beam SOURCE [--model RUN_OR_MODEL] [--out PREFIX] [Beam options: --runner DataflowRunner ...]

A sub-command is registered with :func:`register` (name, help, a function adding its flags to an
``argparse`` parser, and a function running it from the parsed flags; ``pass_through=True`` hands
the flags it does not know to it as ``args.passed_through``). User mistakes print one line and exit
with status 2 (see :func:`fer_keras.errors.run_main`).
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from fer_keras import pretrained
from fer_keras.classifier import load_classifier
from fer_keras.config import PRECISIONS, TTA_MODES
from fer_keras.data import load_dataset
from fer_keras.data.face_crops import crop_folder
from fer_keras.data.hygiene import check_hygiene, summary_lines, write_hygiene
from fer_keras.data.images import MAX_PIXELS
from fer_keras.errors import ConfigError, DataError, FerKerasError, run_main
from fer_keras.evaluation import evaluate_model_on_data
from fer_keras.faces import BACKENDS, CROP_MARGIN, get_detector
from fer_keras.files import ensure_writable_dir
from fer_keras.model_files import TRUST_HELP
from fer_keras.predict import predict, progress_to_stderr
from fer_keras.runs import RunFolder

#: name -> (help, add_arguments(parser), run(args))
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]] = {}


#: Sub-commands that take flags they do not define (``args.passed_through``), e.g. Beam's pipeline options.
PASS_THROUGH: set[str] = set()


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], object], pass_through: bool = False) -> None:
    """Add sub-command ``name``; ``run(args)`` does the work (raise FerKerasError for user mistakes).
    ``pass_through``: flags the command does not define are not an error but ``args.passed_through``."""
    COMMANDS[name] = (help, add_arguments, run)
    if pass_through:
        PASS_THROUGH.add(name)


def _detector_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--detector", default="auto", choices=("auto", *BACKENDS, "none"),
        help="face detector; auto = the best installed of " + ", ".join(BACKENDS) + "; none = the images are "
        "faces already cropped, one per image (default: %(default)s)")
    add("--min-score", type=float, default=None, help="drop faces the detector scores below this "
        "(RetinaFace, MTCNN; default 0.9)")
    add("--detector-weights", default=None, metavar="ONNX", help="RetinaFace weights file to use instead of "
        "the shipped ones")
    add("--margin", type=float, default=CROP_MARGIN, help="crop margin on each side, as a share of the face box "
        "(default: %(default)s)")
    add("--no-align", action="store_true", help="do not rotate faces so the eyes are level")
    add("--detect-side", type=int, default=None, metavar="PIXELS", help="search frames shrunk so the longer "
        "side is at most PIXELS (default 1280; 320 is ~7x faster for faces that fill a webcam frame)")


def _detector(args: argparse.Namespace):
    name, kwargs = _detector_spec(args)
    return get_detector(name, **kwargs)


def _detector_spec(args: argparse.Namespace) -> tuple[str, dict]:
    """(backend name, get_detector kwargs) of the detector flags."""
    kwargs = {}
    if args.min_score is not None:
        kwargs["min_score"] = args.min_score
    if args.detect_side is not None:
        kwargs["max_side"] = args.detect_side
    if args.detector_weights is not None:
        if args.detector not in ("auto", "retinaface"):
            raise ConfigError("--detector-weights is for --detector retinaface")
        args.detector, kwargs["weights"] = "retinaface", args.detector_weights
    return args.detector, kwargs


def _preprocess_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("photos", help="folder of photos; class sub-folders (happy/, sad/, ...) become labels")
    add("out", help="output folder: OUT/<split>/<class>/*.png, crop_report.csv, crop_summary.json")
    _detector_flags(parser)
    add("--size", type=int, default=48, help="crop side in pixels (default: %(default)s; GhostFace: 224)")
    add("--color", default="gray", choices=("gray", "rgb"), help="default: %(default)s")
    add("--all-faces", action="store_true", help="keep every face of a photo, not only the largest")
    add("--split", default="train", help="split folder for photos not below train/ or test/ (default: %(default)s)")
    add("--no-cache", action="store_true", help="redo every photo, ignoring OUT/.crop_cache.json")
    _max_pixels_flag(parser)


def _max_pixels_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N", help="report images with more "
                        "pixels (width x height) as unreadable, without decoding them (default: %(default)s)")


def _precision_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="float32", choices=PRECISIONS, help="compute a Keras model in "
                        "float32, mixed_bfloat16 (CPUs with AMX), mixed_float16 (GPUs) or auto (what this machine "
                        "does fastest); probabilities stay float32 (default: %(default)s)")


def _trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)


def _preprocess(args: argparse.Namespace):
    return crop_folder(args.photos, args.out, _detector(args), size=args.size, color=args.color,
                       margin=args.margin, align=not args.no_align, keep="all" if args.all_faces else "largest",
                       split=args.split, use_cache=not args.no_cache, log=progress_to_stderr,
                       max_pixels=args.max_pixels)


def _predict_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("source", help="an image, a video (.mp4, .avi, ...) or a folder of them")
    _model_flag(parser)
    add("--out", default="predictions", help="folder for predictions.json/csv and annotated/ (default: %(default)s)")
    add("--format", default="json", choices=("json", "csv"), help="default: %(default)s")
    _detector_flags(parser)
    add("--every", type=int, default=1, metavar="N", help="classify every N-th video frame (default: 1)")
    add("--batch-size", type=int, default=64, help="faces per model call (default: %(default)s)")
    add("--no-annotate", action="store_true", help="do not write annotated images/videos")
    _tta_flag(parser)
    _input_flags(parser)
    add("--boxes", default=None, metavar="JSON", help="your own face boxes instead of detection: a JSON file "
        "{\"image name as predictions.json names it\": [[x, y, width, height], ...]}; images it does not name are "
        "detected as usual")
    _max_pixels_flag(parser)
    _precision_flag(parser)
    _trust_flag(parser)


def _input_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--input-mode", default=None, choices=("unit", "standardize"),
        help="model input: unit = pixels/255, standardize = mean 0/std 1 per image "
        "(default: from the run folder or the model's name)")
    add("--classes", default=None, help="comma-separated class names in output order (default: from the run "
        "folder, else the seven FER2013 classes)")


def _classes(args: argparse.Namespace) -> list[str] | None:
    return [c.strip() for c in args.classes.split(",")] if args.classes else None


def _predict(args: argparse.Namespace):
    classifier = _classifier(args, input_mode=args.input_mode, class_names=_classes(args))
    result = predict(args.source, classifier, _detector(args), args.out, fmt=args.format, every=args.every,
                     batch_size=args.batch_size, margin=args.margin, align=not args.no_align,
                     annotate=not args.no_annotate, log=progress_to_stderr, trusted=args.trust_model,
                     max_pixels=args.max_pixels, tta=args.tta, boxes=_read_boxes(args.boxes))
    read = [i for i in result["items"] if i["status"] not in ("unreadable", "no_frames")]
    if not read:
        first = result["items"][0] if result["items"] else None
        raise DataError(f"{args.source}: nothing could be read" + (
            f" ({len(result['items'])} unreadable, e.g. {first['file']}: {first.get('reason', first['status'])})"
            if first else " (no images or videos in it)") + f"; statuses in {args.out}")
    return result


def _read_boxes(path: str | None) -> dict | None:
    """``--boxes``: {image name: [[x, y, w, h], ...]} from a JSON file, or a one-line error."""
    if path is None:
        return None
    try:
        boxes = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"--boxes {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--boxes {path}: not a JSON file ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(boxes, dict) or not all(isinstance(v, list) for v in boxes.values()):
        raise ConfigError(f"--boxes {path}: give an object mapping image names to lists of [x, y, width, height]")
    return boxes


def _tta_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="flip = average each face's probabilities "
                        "with its mirror image's (twice the model time); flip+crops = over 12 views, the face, "
                        "five 90%% crops and their mirrors (12 times; default: %(default)s)")


def _model_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="pretrained model name, run folder, model .keras file, "
                        f"SavedModel folder or .tflite file (default: the pretrained {pretrained.DEFAULT_MODEL})")


#: Warnings of the running command, printed (one line each) after it succeeds: an error is one line alone.
_WARNINGS: list[str] = []


def _classifier(args: argparse.Namespace, **kwargs):
    """The model of ``--model`` (default: the pretrained one, said on stderr); its warnings are
    printed when the command has succeeded (:func:`main`), never beside an error."""
    if args.trust_model:
        kwargs["trusted"] = True
    if getattr(args, "precision", "float32") != "float32":
        kwargs["precision"] = args.precision
    if args.model is None:
        try:
            where = pretrained.path(pretrained.DEFAULT_MODEL, "keras")
        except FerKerasError as exc:
            raise FerKerasError(f"no --model given and {exc}") from None
        print(f"using the pretrained model {pretrained.DEFAULT_MODEL} ({where}); --model chooses another",
              file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = load_classifier(args.model, **kwargs)
    _WARNINGS.extend(str(warning.message) for warning in caught)
    return classifier


def _evaluate_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("data", help="labelled face crops: FER2013 CSV or Kaggle folder (train/, test/), or RAF-DB root")
    _model_flag(parser)
    add("--usage", default=None, help="only rows of this Usage, e.g. PublicTest (Kaggle test/ folder) "
        "(default: all rows)")
    _tta_flag(parser)
    add("--batch-size", type=int, default=256, help="faces per model call (default: %(default)s)")
    add("--out", default="evaluation", help="folder for evaluation.json, classification_report.txt and "
        "confusion_matrix.png (default: %(default)s)")
    _max_pixels_flag(parser)
    _precision_flag(parser)
    _trust_flag(parser)


def _evaluate(args: argparse.Namespace):
    result = evaluate_model_on_data(_classifier(args), args.data, usage=args.usage, tta=args.tta,
                                    batch_size=args.batch_size, out=args.out, log=progress_to_stderr,
                                    max_pixels=args.max_pixels)
    print(result["report"].rstrip())
    print(f"accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} on {result['images']:,} faces"
          + (f" ({result['skipped']:,} of classes the model lacks skipped)" if result["skipped"] else "")
          + f"{'' if args.tta == 'none' else f', {args.tta} TTA'}; {result['images_per_second']:,.0f} faces/s")
    return result


def _export_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("model", help="a pretrained model name (e.g. fer2013-dcnn), a finished run folder or a .keras file")
    add("--out", default=None, help="output folder (default for a run folder: RUN/model; needed otherwise)")
    add("--no-tflite", action="store_true", help="skip model.tflite and model_dynamic.tflite")
    add("--input-mode", default=None, choices=("unit", "standardize"), help="for a bare .keras file whose input "
        "preparation its files do not say: unit = pixels/255, standardize = mean 0 / std 1 per image")
    add("--classes", default=None, help="comma-separated class names in output order (default: from the model's "
        "files, else the seven FER2013 classes)")
    _trust_flag(parser)


def _export(args: argparse.Namespace):
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    classifier = _classifier(args, input_mode=args.input_mode, class_names=classes)
    run = RunFolder.find(args.model) if os.path.isdir(args.model) else None
    if args.out is None and run is None:
        raise ConfigError(f"export {args.model}: give --out DIR (only a run folder has a default, RUN/model)")
    result = classifier.export(args.out or run.model_dir, tflite=not args.no_tflite)
    for name, path in result["paths"].items():
        print(f"{name:15s} {path}")
    print("max |probability difference| vs the Keras model on 32 random faces: " + ", ".join(
        f"{k.replace('_max_abs_diff', '')} {v:.2g}" for k, v in result["check"].items()))
    return result


def _hygiene_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("data", help="FER2013 CSV or Kaggle folder (train/ and test/), or a RAF-DB folder")
    add("--out", default="hygiene", help="folder for hygiene.json and duplicates.csv (default: %(default)s)")
    add("--std-threshold", type=float, default=1.0, help="near-uniform if the pixel std (0..255) is below "
        "this (default: %(default)s)")
    add("--mode-share", type=float, default=0.99, help="near-uniform if one grey value covers at least this "
        "share of the pixels (default: %(default)s)")


def _hygiene(args: argparse.Namespace):



    if not 0 < args.mode_share <= 1 or args.std_threshold < 0:
        raise ConfigError("--mode-share must be in (0, 1] and --std-threshold >= 0")
    if not os.path.exists(args.data):
        raise DataError(f"{args.data}: no such file or folder; pass the FER2013 CSV or the Kaggle folder "
                        "(with train/ and test/)")
    out = ensure_writable_dir(args.out)
    start = time.time()
    progress_to_stderr(f"reading {args.data}")
    data = load_dataset(args.data, log=progress_to_stderr)
    root = os.path.abspath(args.data) + os.sep  # sources relative to DATA, so the lists do not name this machine
    data.sources = np.array([os.path.abspath(s)[len(root):] if os.path.abspath(s).startswith(root) else s
                             for s in data.sources])
    report = check_hygiene(data, args.std_threshold, args.mode_share, log=progress_to_stderr)
    paths = write_hygiene(report, out)
    for line in summary_lines(report):
        print(line)
    print(f"wrote {paths['json']} and {paths['csv']} in {time.time() - start:.1f} s")
    return report


def _beam_flags(parser: argparse.ArgumentParser) -> None:
    parser.allow_abbrev = False  # Beam's options pass through: none may be read as an abbreviation of ours
    parser.epilog = ("Any other option goes to Beam, after SOURCE: --runner DataflowRunner --project P --region R "
                     "--temp_location gs://B/tmp (needs the beam-gcp extra), --runner FlinkRunner --flink_master "
                     "HOST:PORT, --direct_num_workers 2 --direct_running_mode multi_processing, ... "
                     "(default: the DirectRunner, on this machine)")
    add = parser.add_argument
    add("source", help="a folder (every image below it), an image, a glob ('photos/*.jpg'; '**' across folders) "
        "or a FER2013 CSV (each row one 48x48 face, not searched); local or on a Beam file system (gs://...)")
    _model_flag(parser)
    add("--out", default="beam-predictions/", help="output prefix: PREFIX-00000-of-0000N.jsonl, one JSON line per "
        "face; a folder (ending in /) gets faces-*.jsonl (default: %(default)s)")
    _detector_flags(parser)
    add("--batch-size", type=int, default=64, help="most faces per model call (Beam sizes batches up to it; "
        "default: %(default)s)")
    _tta_flag(parser)
    _precision_flag(parser)
    _input_flags(parser)
    _max_pixels_flag(parser)
    _trust_flag(parser)


def _beam(args: argparse.Namespace):
    try:
        from fer_keras import beam
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "apache_beam":
            raise
        raise ConfigError("fer-keras beam needs Apache Beam: pip install \"fer_keras[beam]\" (from a clone: "
                          "pip install -e \".[beam]\", or bash install.sh)") from None
    classifier = _classifier(args, input_mode=args.input_mode, class_names=_classes(args))
    name, kwargs = _detector_spec(args)
    summary = []
    result = beam.run(args.source, args.out, args.model, classifier=classifier, detector=name,
                      detector_kwargs=kwargs, margin=args.margin, align=not args.no_align, batch_size=args.batch_size,
                      tta=args.tta, input_mode=args.input_mode, class_names=_classes(args), trusted=args.trust_model,
                      max_pixels=args.max_pixels, beam_args=args.passed_through, precision=args.precision,
                      log=summary.append)
    counts = result["counts"]
    if counts and counts.get("inputs") and counts.get("unreadable", 0) >= counts["inputs"]:
        raise DataError(f"{args.source}: nothing could be read ({counts['unreadable']} unreadable); reasons in "
                        f"{result['prefix']}-*.jsonl")
    for line in summary:
        progress_to_stderr(line)
    return result


register("preprocess", "crop the faces of a folder of photos into a labelled data set", _preprocess_flags, _preprocess)
register("predict", "detect faces in images/videos and classify their expressions", _predict_flags, _predict)
register("export", "write a run's SavedModel (float and uint8 signatures) and TFLite (float, int8 weights)",
         _export_flags, _export)
register("evaluate", "score a model on labelled face crops (no face detection): accuracy, macro F1, "
         "confusion matrix", _evaluate_flags, _evaluate)
register("hygiene", "find exact duplicate, label-conflicting and blank faces in a data set; write the lists",
         _hygiene_flags, _hygiene)
register("beam", "classify the faces of image files or FER2013 CSV rows on Apache Beam (any runner); write "
         "JSON lines", _beam_flags, _beam, pass_through=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-keras", description="Facial expression recognition with Keras 2.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in PASS_THROUGH:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passed_through = extra
    _WARNINGS.clear()

    def command():
        result = COMMANDS[args.command][2](args)
        for warning in _WARNINGS:
            print(f"warning: {warning}", file=sys.stderr)
        return result

    run_main(command)
