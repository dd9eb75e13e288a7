"""Batch inference on Apache Beam: image files or FER2013 CSV rows in, one JSON line per face out.

    fer-keras beam photos/ --model fer2013-dcnn --out preds/faces                # DirectRunner, this machine
    fer-keras beam gs://BUCKET/photos/ --out gs://BUCKET/preds/faces --runner DataflowRunner \\
        --project PROJECT --region REGION --temp_location gs://BUCKET/tmp       # any Beam runner and its options

Needs the ``beam`` extra (``pip install ".[beam]"``; ``".[beam-gcp]"`` for gs:// and Dataflow). The
pipeline: the files of SOURCE (a folder: every image below it; a file; a glob; on any Beam file
system) -> decode -> detect and crop the faces as ``fer-keras predict`` does
(:func:`fer_keras.recognizer.face_crops`; a FER2013 CSV's rows are one 48x48 face each, not searched)
-> ``RunInference`` with :class:`FerModelHandler` (any model form of
:func:`~fer_keras.classifier.load_classifier`, batches of up to ``batch_size`` faces) -> JSON lines in
``PREFIX-00000-of-0000N.jsonl``.

Each line is one face: ``file`` (relative to the folder, as predictions.json names it), ``status``
``ok``, ``face`` (its index in the image, left to right), ``box`` [x, y, w, h] pixels, detector
``score``, ``landmarks`` (when the detector gives them), ``label`` and ``probabilities`` {class: p,
5 decimals}; CSV rows add ``line`` (the header is line 1), ``usage`` and ``true_label``. An image
without a face, a file that cannot be read and a CSV row that cannot be parsed are one line each,
with ``status`` ``no_face`` or ``unreadable`` and (unreadable) a ``reason``: none stops the pipeline.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Callable

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from fer_keras import pretrained
from fer_keras.classifier import Classifier, load_classifier
from fer_keras.config import check_tta
from fer_keras.data.fer2013 import MAX_LINE_BYTES, csv_header, parse_csv_row
from fer_keras.data.images import IMAGE_EXTENSIONS, MAX_PIXELS, decode_image
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError, DataError
from fer_keras.faces import CROP_MARGIN, WholeImage, get_detector
from fer_keras.files import ensure_writable_dir
from fer_keras.recognizer import face_crops, probability_dict

#: Beam metrics namespace of the record counters (``inputs``: files and CSV rows read; one per status).
NAMESPACE = "fer_keras"
_STATUS = "status"  # tag of the records that go around the model


def _not_beams_memory_warning(record: logging.LogRecord) -> bool:
    """Beam 2.75's RunInference warns on every run that it cannot measure memory when torch is not
    installed (its model manager imports torch, and the resource module goes with it): noise, hidden."""
    return not record.getMessage().startswith("Resource module is not available for current platform")


logging.getLogger().addFilter(_not_beams_memory_warning)


class FerModelHandler(ModelHandler):
    """RunInference's model: uint8 face crops (H, W, C) of the model's input shape in, one
    ``PredictionResult(crop, probabilities)`` each out, probabilities float32 (K,) in the order of
    the model's class names.

    Each worker loads the model with :func:`~fer_keras.classifier.load_classifier` (a pretrained
    name, run folder, .keras, SavedModel or .tflite: a path the workers can read); files that can
    run code load only with ``trusted``. Beam's BatchElements gives the model batches of
    ``min_batch_size`` to ``batch_size`` crops (:meth:`batch_elements_kwargs`). ``tta`` as
    :meth:`Classifier.__call__ <fer_keras.classifier.Classifier.__call__>`; ``precision`` as
    :func:`~fer_keras.classifier.load_classifier`'s (a Keras model computed in mixed precision).
    """

    def __init__(self, model=None, *, input_mode: str | None = None, class_names=None, trusted: bool = False,
                 tta: str = "none", batch_size: int = 64, min_batch_size: int = 1, precision: str = "float32"):
        if not 1 <= min_batch_size <= batch_size:
            raise ConfigError(f"batch sizes must satisfy 1 <= min_batch_size <= batch_size, not {min_batch_size} "
                              f"and {batch_size}")
        super().__init__(min_batch_size=min_batch_size, max_batch_size=batch_size)
        self.model, self.input_mode, self.trusted, self.tta = model, input_mode, trusted, check_tta(tta)
        self.class_names = list(class_names) if class_names else None
        self.precision = precision

    def load_model(self) -> Classifier:
        return load_classifier(self.model, self.input_mode, self.class_names, trusted=self.trusted,
                               precision=self.precision)

    def run_inference(self, batch, model: Classifier, inference_args=None) -> list[PredictionResult]:
        probabilities = model(np.stack(batch), tta=self.tta)
        return [PredictionResult(crop, p) for crop, p in zip(batch, probabilities)]

    def get_metrics_namespace(self) -> str:  # RunInference's inference counts and latencies
        return NAMESPACE + ".model"


def source_pattern(source: str) -> tuple[str, str, bool]:
    """``(Beam file pattern, prefix the records' file names are relative to, images only)`` of SOURCE:
    a folder (a local one, or any ending in ``/``) matches every file below it, images only; a file
    or a glob (``*`` within a folder, ``**`` across folders) matches as it is."""
    if "://" not in source:
        source = os.path.abspath(source) + ("/" if source.endswith("/") else "")
    if source.endswith("/") or ("://" not in source and os.path.isdir(source)):
        root = source.rstrip("/") + "/"
        return root + "**", root, True
    wildcard = min((i for i in (source.find(c) for c in "*?[") if i >= 0), default=len(source))
    return source, source[:source.rfind("/", 0, wildcard) + 1], False


def is_csv(pattern: str) -> bool:
    """Whether the files of ``pattern`` are FER2013 CSVs (``.csv``, or compressed ``.csv.gz`` / ``.csv.bz2``)."""
    return pattern.lower().removesuffix(".gz").removesuffix(".bz2").endswith(".csv")


def _is_image(metadata) -> bool:
    return os.path.splitext(metadata.path)[1].lower() in IMAGE_EXTENSIONS


def _name(path: str, root: str) -> str:
    return path[len(root):] if path.startswith(root) else path.rsplit("/", 1)[-1]


def _status(record: dict, status: str, reason: str | None = None):
    return beam.pvalue.TaggedOutput(_STATUS, {**record, "status": status, **({"reason": reason} if reason else {})})


class _ImageFaces(beam.DoFn):
    """An image file (``ReadableFile``) -> ``(record, crop)`` per face, crop uint8 ``input_shape``; or a
    ``no_face`` / ``unreadable`` record on the status output."""

    def __init__(self, root: str, input_shape, detector: tuple[str, dict], margin: float, align: bool,
                 max_pixels: int | None):
        self.root, self.input_shape, self.detector_spec = root, tuple(input_shape), detector
        self.margin, self.align, self.max_pixels = margin, align, max_pixels
        self.inputs = Metrics.counter(NAMESPACE, "inputs")

    def setup(self):
        name, kwargs = self.detector_spec
        self.detector = get_detector(name, **kwargs)

    def process(self, file):
        self.inputs.inc()
        record = {"file": _name(file.metadata.path, self.root)}
        try:
            data = file.read()
        except OSError as exc:  # gone since it was matched, or not readable by this process
            yield _status(record, "unreadable", f"cannot read: {exc.strerror or exc}")
            return
        image, reason = decode_image(data, self.max_pixels)
        if image is None:
            yield _status(record, "unreadable", reason)
            return
        (faces,), crops = face_crops([image], self.detector, self.input_shape, margin=self.margin, align=self.align)
        if not faces:
            yield _status(record, "no_face")
        for i, (face, crop) in enumerate(zip(faces, crops)):
            yield {**record, "face": i, **face.to_dict()}, crop


class _CsvFaces(beam.DoFn):
    """A FER2013 CSV file (``ReadableFile``; .gz / .bz2 decompressed) -> ``(record, crop)`` per row, the
    row's 48x48 face cropped as ``--detector none`` crops a 48x48 image; a row (or a file) that cannot be
    parsed -> an ``unreadable`` record naming its line."""

    def __init__(self, root: str, input_shape):
        self.root, self.input_shape = root, tuple(input_shape)
        self.inputs = Metrics.counter(NAMESPACE, "inputs")

    def process(self, file):
        name, path = _name(file.metadata.path, self.root), file.metadata.path
        try:
            with file.open(mime_type="application/octet-stream") as handle:
                header = None
                for number, line in _lines(handle):
                    if header is None:
                        if line is None or b"\0" in line:
                            yield _status({"file": name, "line": number}, "unreadable",
                                          "not a FER2013 CSV text file (emotion,pixels,Usage)")
                            return
                        header = csv_header(line, path)
                        continue
                    if line is not None and not line.strip():
                        continue
                    self.inputs.inc()
                    record = {"file": name, "line": number}
                    if line is None:
                        yield _status(record, "unreadable", f"longer than {MAX_LINE_BYTES:,} bytes, far longer "
                                      "than a FER2013 row")
                        continue
                    try:
                        emotion, face, usage = parse_csv_row(line, header, path, number)
                    except DataError as exc:
                        yield _status(record, "unreadable", str(exc).removeprefix(f"{path} line {number}: "))
                        continue
                    (found,), crops = face_crops([face], WholeImage(), self.input_shape)
                    yield ({**record, "usage": usage, "true_label": CLASS_NAMES[emotion], "face": 0,
                            **found[0].to_dict()}, crops[0])
                if header is None:
                    yield _status({"file": name}, "unreadable", "empty file")
        except DataError as exc:  # the header
            yield _status({"file": name, "line": 1}, "unreadable", str(exc).removeprefix(f"{path}: "))
        except OSError as exc:  # not readable, or a broken .gz
            yield _status({"file": name}, "unreadable", f"cannot read: {exc.strerror or exc}")


def _lines(handle, chunk: int = 1 << 16):
    """``(line number, line without its newline)`` from 1 of a binary file object (only ``read(n)`` is
    used: Beam's compressed files have no ``readline(limit)``); ``None`` for a line over
    :data:`MAX_LINE_BYTES`, which is never held in memory whole."""
    number, pending, too_long = 0, b"", False
    while data := handle.read(chunk):
        *complete, pending = (pending + data).split(b"\n")
        for line in complete:
            number += 1
            yield number, None if too_long or len(line) > MAX_LINE_BYTES else line
            too_long = False
        if len(pending) > MAX_LINE_BYTES:
            pending, too_long = b"", True
    if pending or too_long:
        yield number + 1, None if too_long else pending


def _face_record(keyed, class_names) -> dict:
    record, result = keyed
    probabilities = result.inference
    return {**record, "status": "ok", "label": class_names[int(np.argmax(probabilities))],
            "probabilities": probability_dict(class_names, probabilities)}


def _ordered(record: dict) -> dict:
    """Status first after where the record comes from, then the face (as predictions.json orders them)."""
    head = {k: record[k] for k in ("file", "line", "usage", "true_label", "status", "reason") if k in record}
    return {**head, **record}


class _Json(beam.DoFn):
    """A record -> its JSON line, counted by status."""

    def __init__(self):
        self.counters = {}

    def process(self, record):
        status = record["status"]
        if status not in self.counters:
            self.counters[status] = Metrics.counter(NAMESPACE, status)
        self.counters[status].inc()
        yield json.dumps(_ordered(record), default=lambda v: v.item())


class FaceRecords(beam.PTransform):
    """Pipeline begin -> one record (a dict, see the module docstring) per face, and per image or CSV row
    without a classified face.

    Args:
        source: a folder, a file, a glob (``*`` within a folder, ``**`` across), local or on any Beam
            file system (``gs://`` needs ``apache-beam[gcp]``); ``.csv`` files are FER2013 CSVs.
        handler: the model (:class:`FerModelHandler`); ``class_names`` and ``input_shape`` (H, W, C) its own.
        detector: ``(backend name, get_detector kwargs)``, loaded on each worker; not used for CSV rows.
        margin, align: crop margin (a share of the face box on each side) and eye levelling, as predict's.
        max_pixels: images with more pixels (width x height, from their header) are ``unreadable``.
    """

    def __init__(self, source: str, handler: FerModelHandler, class_names, input_shape, *,
                 detector: tuple[str, dict] = ("haar", {}), margin: float = CROP_MARGIN, align: bool = True,
                 max_pixels: int | None = MAX_PIXELS):
        super().__init__()
        self.source, self.handler, self.class_names, self.input_shape = source, handler, list(class_names), input_shape
        self.detector, self.margin, self.align, self.max_pixels = detector, margin, align, max_pixels

    def expand(self, begin):
        pattern, root, images_only = source_pattern(self.source)
        files = begin | "Match" >> fileio.MatchFiles(pattern)
        if images_only:
            files = files | "Images" >> beam.Filter(_is_image)
        read = files | "Spread files" >> beam.Reshuffle() | "Read" >> fileio.ReadMatches()
        if is_csv(pattern):
            faces, statuses = read | "Rows" >> beam.ParDo(_CsvFaces(root, self.input_shape)).with_outputs(
                _STATUS, main="faces")
            faces = faces | "Spread rows" >> beam.Reshuffle()
        else:
            faces, statuses = read | "Faces" >> beam.ParDo(_ImageFaces(
                root, self.input_shape, self.detector, self.margin, self.align, self.max_pixels)).with_outputs(
                _STATUS, main="faces")
        classified = (faces | "Classify" >> RunInference(KeyedModelHandler(self.handler))
                      | "Record" >> beam.Map(_face_record, self.class_names))
        return (classified, statuses) | "Together" >> beam.Flatten()


def output_prefix(out: str) -> str:
    """The WriteToText prefix of ``--out``: a folder (an existing local one, or any ending in ``/``) gets
    ``faces`` inside it; a local folder is created and must be writable."""
    if "://" in out:
        return out + "faces" if out.endswith("/") else out
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        out = os.path.join(out, "faces")
    out = os.path.abspath(out)
    ensure_writable_dir(os.path.dirname(out), "--out")
    return out


def pipeline_options(beam_args) -> PipelineOptions:
    """Beam's options from ``beam_args`` (``--runner DataflowRunner``, ``--project P``, ...; none: the
    DirectRunner); an argument that is no Beam option is a ConfigError (a typo would be dropped)."""
    options = PipelineOptions(list(beam_args))
    logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = logger.level
    logger.setLevel(logging.ERROR)  # Beam warns of the unknown ones; they are said below, in one line
    try:
        known = options.get_all_options(drop_default=True)
        unknown = [k for k in options.get_all_options(drop_default=True, retain_unknown_options=True)
                   if k not in known]
    finally:
        logger.setLevel(level)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join('--' + k for k in unknown)}: neither fer-keras beam's "
                          "(fer-keras beam --help) nor a Beam pipeline option")
    return options


def _check_source(pattern: str, source: str, images_only: bool) -> None:
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except ValueError as exc:  # no file system for the scheme (gs:// without apache-beam[gcp])
        raise ConfigError(f"{source}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:  # Beam's BeamIOError: a local folder that is not there; a bucket out of reach
        if "://" in pattern:
            raise DataError(f"{source}: cannot list it ({str(exc).splitlines()[0][:200]})") from None
        matched = []
    if images_only:
        matched = [m for m in matched if _is_image(m)]
    if not matched:
        raise DataError(f"{source}: " + ("no images in it" if images_only else "no such file, or nothing matches")
                        + "; pass an image, a folder of images, a glob ('photos/*.jpg') or a FER2013 CSV")


def run(source: str, out: str, model=None, *, detector: str = "auto", detector_kwargs: dict | None = None,
        margin: float = CROP_MARGIN, align: bool = True, batch_size: int = 64, tta: str = "none",
        input_mode: str | None = None, class_names=None, trusted: bool = False, max_pixels: int | None = MAX_PIXELS,
        beam_args=(), classifier: Classifier | None = None, precision: str = "float32", log: Callable = print) -> dict:
    """Classify every face of ``source`` on Beam and write JSON lines to ``out`` (a prefix or folder,
    :func:`output_prefix`); wait for the pipeline to finish.

    The model, the detector (resolved here, so ``auto`` means the same backend on every worker), the
    source and the output are checked before the pipeline starts, each mistake a one-line
    FerKerasError. ``beam_args``: Beam pipeline options (:func:`pipeline_options`). ``classifier``:
    ``model`` already loaded by the caller (it is not loaded again here; the workers load ``model``,
    a pretrained name or a path they can read). Other arguments as
    :func:`fer_keras.predict.predict`'s. Returns ``{"prefix", "class_names", "counts": {inputs, ok,
    no_face, unreadable}}`` (counts from Beam's metrics; empty on a runner that reports none).
    """
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    check_tta(tta)
    options = pipeline_options(beam_args)
    pattern, _, images_only = source_pattern(source)
    _check_source(pattern, source, images_only)
    classifier = classifier or load_classifier(model, input_mode, class_names, trusted=trusted, precision=precision)
    kwargs = detector_kwargs or {}
    detector = "none" if is_csv(pattern) else get_detector(detector, **kwargs).name  # "auto" -> a backend
    prefix = output_prefix(out)
    on_workers = model if model is None or pretrained.is_name(model) else os.path.abspath(model)
    handler = FerModelHandler(on_workers, input_mode=input_mode, class_names=class_names, trusted=trusted, tta=tta,
                              batch_size=batch_size, precision=precision)
    pipeline = beam.Pipeline(options=options)
    _ = (pipeline | FaceRecords(source, handler, classifier.class_names, classifier.input_shape,
                                detector=(detector, kwargs), margin=margin, align=align, max_pixels=max_pixels)
         | "Json" >> beam.ParDo(_Json()) | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))
    result = pipeline.run()
    result.wait_until_finish()
    counts = {}
    try:
        for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
            value = counter.committed if counter.committed is not None else counter.attempted
            counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + (value or 0)
    except NotImplementedError:  # a runner without metrics
        pass
    if counts:
        log(f"{counts.get('inputs', 0)} {'rows' if is_csv(pattern) else 'images'}, {counts.get('ok', 0)} faces, "
            f"{counts.get('no_face', 0)} without a face, {counts.get('unreadable', 0)} unreadable "
            f"-> {prefix}-*.jsonl")
    return {"prefix": prefix, "class_names": list(classifier.class_names), "counts": counts}


def read_records(prefix: str) -> list[dict]:
    """Every record the pipeline wrote under ``prefix`` (all shards, on any Beam file system)."""
    records = []
    for metadata in FileSystems.match([prefix + "-*-of-*.jsonl"])[0].metadata_list:
        with FileSystems.open(metadata.path) as handle:
            records.extend(json.loads(line) for line in handle.read().decode().splitlines() if line.strip())
    return records
