"""Faces in, emotions out: detect faces in images or videos and classify each face's expression.

``predict("photo.jpg", "runs/<run>")`` returns, per image or video frame, every face's box, the
class probabilities and the top label, and (with ``out=``) writes ``predictions.json`` or
``predictions.csv`` and annotated copies (``annotated/<name>.jpg``, ``annotated/<name>.mp4``).

The model is anything :func:`fer_keras.classifier.load_classifier` takes: a pretrained name, a
run folder, a ``.keras`` file, a SavedModel folder or a ``.tflite`` file, each prepared the way
it was trained; untrusted files never run code (``trusted=True`` / ``--trust-model`` to allow).
"""
from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import cv2
import numpy as np

from tqdm.auto import tqdm

from fer_keras.classifier import Classifier, load_classifier
from fer_keras.config import check_tta
from fer_keras.data.images import IMAGE_EXTENSIONS, MAX_PIXELS, image_problem, read_image
from fer_keras.errors import ConfigError, DataError
from fer_keras.faces import CROP_MARGIN, Detector, Face, FaceTracker, get_detector
from fer_keras.files import (atomic_write_bytes, atomic_write_text, ensure_writable_dir, lock_folder, release_lock,
                             write_json)
from fer_keras.recognizer import classify_faces, probability_dict

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
_CHUNK_FRAMES = 16  # frames detected before their faces are classified in one batch


class _Frame(NamedTuple):
    """One image or video frame to classify; ``image`` None = nothing to classify, for ``status``
    (``unreadable`` or ``no_frames``) and ``reason``."""

    name: str
    file: Path
    index: int | None  # video frame index
    seconds: float | None  # video frame time
    image: np.ndarray | None  # uint8 RGB (H, W, 3)
    fps: float  # of the frames yielded
    status: str | None = None
    reason: str | None = None


def _frame_total(source: Path, every: int, skip: Path | None) -> int:
    """About how many images and video frames :func:`_frames` yields (video lengths from their headers),
    for the progress bar."""
    skip = skip.resolve() if skip is not None else None
    files = [source] if source.is_file() else [
        p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        and not (skip and Path(os.path.realpath(p)).is_relative_to(skip))]
    total = 0
    for file in files:
        if file.suffix.lower() in VIDEO_EXTENSIONS:
            capture = cv2.VideoCapture(str(file))
            total += max(1, -(-int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 1) // every))
            capture.release()
        else:
            total += 1
    return total


def _frames(source: Path, every: int, skip: Path | None = None, max_pixels: int | None = MAX_PIXELS
            ) -> Iterator[_Frame]:
    """Every image and (every ``every``-th) video frame below ``source``, in name order.

    Files below ``skip`` (the output folder, when it is inside ``source``) are left out. Images
    over ``max_pixels`` and links that loop or lead nowhere are ``unreadable`` (never decoded).
    """
    skip = skip.resolve() if skip is not None else None
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if (p.is_file() or p.is_symlink())
        and p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        and not (skip and Path(os.path.realpath(p)).is_relative_to(skip)))  # realpath: no error on a loop
    if not files:
        raise DataError(f"{source}: no images or videos found")
    for file in files:
        name = file.name if file == source else file.relative_to(source).as_posix()
        if not file.is_file():  # a symbolic link that loops or leads nowhere
            yield _Frame(name, file, None, None, None, 0.0, "unreadable", "a symbolic link that loops or leads nowhere")
            continue
        if file.suffix.lower() not in VIDEO_EXTENSIONS:
            reason = image_problem(file, max_pixels)
            image = None if reason else read_image(file, max_pixels)
            yield _Frame(name, file, None, None, image, 0.0, None if image is not None else "unreadable",
                         reason or (None if image is not None else "not a readable image"))
            continue
        capture = cv2.VideoCapture(str(file))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        if not capture.isOpened():
            yield _Frame(name, file, None, None, None, fps, "unreadable", "not a readable video")
            continue
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % every == 0:
                    yield _Frame(name, file, index, round(index / fps, 3), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB),
                                 fps / every)
                index += 1
        finally:
            capture.release()
        if index == 0:  # opens, but holds no frame
            yield _Frame(name, file, None, None, None, fps, "no_frames", "the video has no frames")


def predict(source: str | os.PathLike, model: str | os.PathLike | Classifier, detector: str | Detector = "auto",
            out: str | os.PathLike | None = None, *, fmt: str = "json", every: int = 1, batch_size: int = 64,
            margin: float = CROP_MARGIN, align: bool = True, annotate: bool = True, input_mode: str | None = None,
            class_names=None, log: Callable = print, progress: bool | None = None, trusted: bool = False,
            max_pixels: int | None = MAX_PIXELS, tta: str = "none", boxes: dict | None = None) -> dict:
    """Expressions of every face in an image file, a video file or a folder of them.

    Args:
        model: a :class:`Classifier`, a pretrained model name (:mod:`fer_keras.pretrained`; None = the
            default one) or a path it loads (run folder, .keras, SavedModel, .tflite); see
            :func:`fer_keras.recognizer.load_classifier`.
        detector: face detector backend name or instance (see :mod:`fer_keras.faces`).
        out: folder for ``predictions.<fmt>`` and ``annotated/``; None writes nothing.
        fmt: ``"json"`` or ``"csv"`` (one row per face; a frame without a face gets one empty row).
        every: classify every N-th video frame (the annotated video keeps those frames only).
        batch_size: faces per model call.
        progress: progress bar (tqdm, with ETA) on stderr; None = only when stderr is a terminal.
        trusted: also load model files that can run code (HDF5, SavedModel; see :mod:`fer_keras.model_files`).
        max_pixels: images with more pixels (width x height, from the file header) are ``unreadable``.
        tta: ``"flip"`` / ``"flip+crops"``: average each face's probabilities over 2 / 12 views (:mod:`fer_keras.tta`).
        boxes: ``{image name: [[x, y, width, height], ...]}``, the caller's own face boxes for those images
            (names as the items' ``file``), classified as they are; other images are detected. Not for videos.

    Returns ``{"model", "detector", "class_names", "tta", "items": [...]}``; each item is one image or
    video frame: ``file``, ``frame`` and ``time`` (seconds; video only), ``status`` (``ok``,
    ``no_face``, ``unreadable`` or ``no_frames``: a video without a frame; the last two with a
    ``reason``) and ``faces``: ``box`` [x, y, w, h] pixels, detector ``score``, ``label`` and
    ``probabilities`` {class: p}; in videos also ``id``, the same for the same face from frame to frame
    (:class:`fer_keras.faces.FaceTracker`).
    """
    if fmt not in ("json", "csv"):
        raise ConfigError(f"format must be json or csv, not {fmt!r}")
    if every < 1 or batch_size < 1:
        raise ConfigError("every and batch_size must be at least 1")
    check_tta(tta)
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; pass an image, a video or a folder of them")
    classifier = load_classifier(model, input_mode, class_names, trusted=trusted)
    detector = get_detector(detector)
    out = ensure_writable_dir(out, "output folder") if out is not None else None
    lock = lock_folder(out, "output folder") if out is not None else None  # one predict per --out at a time
    try:
        writers: dict[str, cv2.VideoWriter] = {}
        items, chunk, done = [], [], False
        bar = tqdm(total=_frame_total(source, every, out), unit="frame", desc="predict", file=sys.stderr,
                   mininterval=1.0, disable=None if progress is None else not progress)

        trackers: dict[str, FaceTracker] = {}  # video name -> its face ids
        boxes = dict(boxes or {})

        def flush():
            items.extend(_classify_chunk(chunk, detector, classifier, out if annotate else None, writers,
                                         batch_size, margin, align, tta, boxes, trackers))
            chunk.clear()

        try:
            for frame in _frames(source, every, out, max_pixels):
                chunk.append(frame)
                if len(chunk) == _CHUNK_FRAMES:
                    flush()
                bar.update(1)
                if frame.reason:
                    log(f"{frame.name}: {frame.status} ({frame.reason})")
            flush()
            if boxes:
                unused = sorted(set(boxes) - {i["file"] for i in items if "frame" not in i})
                if unused:
                    raise ConfigError(f"--boxes names {len(unused)} image(s) that are not among the inputs, e.g. "
                                      f"{unused[0]!r}; use the names predictions.json gives (relative to the folder)")
            done = True
        finally:
            bar.close()
            for name, writer in writers.items():  # videos are written under a hidden name, shown when whole
                writer.release()
                path = _annotated_path(out, name, ".mp4")
                if done:
                    os.replace(_hidden(path), path)
                else:
                    _hidden(path).unlink(missing_ok=True)
        result = {"model": str(classifier.path), "detector": detector.name, "class_names": list(classifier.class_names),
                  "tta": tta, "items": items}
        if out is not None:
            target = out / f"predictions.{fmt}"
            if fmt == "json":
                write_json(target, result)
            else:
                atomic_write_text(target, _to_csv(result))
            faces = sum(len(i["faces"]) for i in items)
            log(f"{len(items)} images/frames, {faces} faces, {sum(i['status'] == 'no_face' for i in items)} without a "
                f"face, {sum(i['status'] in ('unreadable', 'no_frames') for i in items)} unreadable -> {target}")
    finally:  # the folder is free again, and left without a .lock file, however predict ends
        if lock is not None:
            release_lock(lock)
    return result


def _annotated_path(out: Path, name: str, suffix: str) -> Path:
    """``out/annotated/<name>``, with ``suffix`` added unless ``name`` already ends with it."""
    return out / "annotated" / (name if name.lower().endswith(suffix) else name + suffix)


def _hidden(path: Path) -> Path:
    return path.with_name("." + path.name)


def _classify_chunk(chunk, detector, classifier, out, writers, batch_size, margin, align, tta, boxes,
                    trackers) -> list[dict]:
    given = [boxes.get(frame.name) if frame.index is None else None for frame in chunk]
    found = classify_faces([frame.image for frame in chunk], detector, classifier, margin=margin, align=align,
                           batch_size=batch_size, tta=tta, boxes=given)
    items = []
    for (name, file, index, seconds, image, fps, status, reason), pairs in zip(chunk, found):
        faces = [face for face, _ in pairs]
        ids = trackers.setdefault(name, FaceTracker()).update([f.box for f in faces]) if index is not None else None
        records = [{**face.to_dict(), **({"id": ids[i]} if ids is not None else {}),
                    "label": classifier.class_names[int(p.argmax())],
                    "probabilities": probability_dict(classifier.class_names, p)} for i, (face, p) in enumerate(pairs)]
        item = {"file": name, **({"frame": index, "time": seconds} if index is not None else {}),
                "status": status or ("ok" if faces else "no_face"), **({"reason": reason} if reason else {}),
                "faces": records}
        items.append(item)
        if out is not None and image is not None:
            _write_annotated(out, name, image, faces, records, index is not None, fps, writers)
    return items


def _write_annotated(out: Path, name: str, image: np.ndarray, faces: list[Face], records: list[dict],
                     is_video: bool, fps: float, writers: dict) -> None:
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    thick = max(1, round(max(image.shape[:2]) / 400))
    for face, record in zip(faces, records):
        x, y, w, h = face.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 0), thick)
        text = f"{record['label']} {record['probabilities'][record['label']]:.2f}"
        cv2.putText(canvas, text, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 200, 0), thick)
    path = _annotated_path(out, name, ".mp4" if is_video else ".jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not is_video:
        atomic_write_bytes(path, cv2.imencode(".jpg", canvas)[1].tobytes())
        return
    if name not in writers:
        writers[name] = cv2.VideoWriter(str(_hidden(path)), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                        (image.shape[1], image.shape[0]))
    writers[name].write(canvas)


def _to_csv(result: dict) -> str:
    names = result["class_names"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "frame", "time", "status", "face", "id", "x", "y", "w", "h", "score", "label", *names])
    for item in result["items"]:
        head = [item["file"], item.get("frame", ""), item.get("time", ""), item["status"]]
        if not item["faces"]:
            writer.writerow(head + [""] * (8 + len(names)))
        for i, face in enumerate(item["faces"]):
            writer.writerow(head + [i, face.get("id", ""), *face["box"], face["score"], face["label"],
                                    *(face["probabilities"][c] for c in names)])
    return buffer.getvalue()


def progress_to_stderr(message: str) -> None:
    """A ``log`` for :func:`predict` and :func:`~fer_keras.data.face_crops.crop_folder` that keeps stdout clean."""
    print(message, file=sys.stderr, flush=True)
