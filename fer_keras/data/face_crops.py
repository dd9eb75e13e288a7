"""Raw photos -> a cropped, labelled face data set in the Kaggle folder layout.

``crop_folder("photos/", "faces/")`` finds every image below ``photos/`` (any size, RGB or gray),
detects faces (:mod:`fer_keras.faces`), and writes one crop per photo (the largest face, or every
face with ``keep="all"``) to ``faces/<split>/<class>/<name>.png``, which
:func:`fer_keras.data.load_dataset` reads. The class is the photo's folder name when it names a
class (``happy/``, ``anger/``, ...; see :mod:`fer_keras.data.labels`), the split its grandparent
folder when that is ``train``/``test``/``val`` (else ``split``); photos outside a class folder
go to ``faces/unlabelled/``.

Written beside the crops: ``crop_report.csv`` (one row per photo: status ``ok``, ``no_face``
or ``unreadable``, faces found, crops written), ``crop_summary.json`` (counts, settings, time),
and ``.crop_cache.json``, which makes a second run with the same settings instant: a photo is
redone only when its path, size or modification time changed or a crop went missing (a photo
redone drops its earlier crops). Every file is written atomically.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
from tqdm.auto import tqdm

from fer_keras.data.fer2013 import SPLIT_FOLDERS
from fer_keras.data.images import IMAGE_EXTENSIONS, MAX_PIXELS, image_problem, read_image
from fer_keras.data.labels import CLASS_NAMES, class_id
from fer_keras.errors import ConfigError, DataError
from fer_keras.faces import CROP_MARGIN, Detector, crop_face, get_detector
from fer_keras.files import atomic_write_bytes, atomic_write_text, ensure_writable_dir, read_json, write_json

CACHE_FILE = ".crop_cache.json"
REPORT_FILE = "crop_report.csv"
SUMMARY_FILE = "crop_summary.json"
UNLABELLED = "unlabelled"


def crop_folder(src: str | os.PathLike, out: str | os.PathLike, detector: str | Detector = "auto", *,
                size: int = 48, color: str = "gray", margin: float = CROP_MARGIN, align: bool = True,
                keep: str = "largest", split: str = "train", use_cache: bool = True,
                log: Callable = print, progress: bool | None = None, max_pixels: int | None = MAX_PIXELS) -> dict:
    """Crop the faces of every photo below ``src`` into ``out``; return the summary dict.

    Args:
        detector: backend name (see :data:`fer_keras.faces.BACKENDS`) or a Detector.
        size: side of the square crops, pixels. ``color``: ``"gray"`` or ``"rgb"``.
        margin, align: as :func:`fer_keras.faces.crop_face`.
        keep: ``"largest"`` (one crop per photo, for labelled data) or ``"all"``.
        split: split folder for photos not already below ``train/``, ``test/`` or ``val/``.
        progress: progress bar (tqdm) on stderr; None = only when stderr is a terminal.
        max_pixels: photos with more pixels (width x height, read from the header, never decoded)
            are ``unreadable``; the reason is logged.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder; pass a folder of photos")
    if color not in ("gray", "rgb"):
        raise ConfigError(f"color must be 'gray' or 'rgb', not {color!r}")
    if keep not in ("largest", "all"):
        raise ConfigError(f"keep must be 'largest' or 'all', not {keep!r}")
    if out.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"output folder {out} is inside the photo folder {src}; choose another")
    ensure_writable_dir(out, "output folder")
    photos = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if not photos:
        raise DataError(f"{src}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")

    detector = get_detector(detector)
    settings = {"detector": repr(detector), "size": size,
                "color": color, "margin": margin, "align": align, "keep": keep, "split": split,
                "max_pixels": max_pixels}
    old = _load_cache(out / CACHE_FILE)  # its crops are removed when redone, whatever the settings
    cache = old.get("files", {}) if use_cache and old.get("settings") == settings else {}
    targets = _targets(src, photos, split)
    rows, new_cache, cached, start = [], {}, 0, time.monotonic()
    bar = tqdm(total=len(photos), unit="photo", desc="preprocess", file=sys.stderr, mininterval=1.0,
               disable=None if progress is None else not progress)
    for i, photo in enumerate(photos):
        rel = photo.relative_to(src).as_posix()
        stat = photo.stat()
        key = [stat.st_size, stat.st_mtime_ns]
        entry = cache.get(rel)
        if entry and entry["key"] == key and all((out / o).is_file() for o in entry["outputs"]):
            cached += 1
        else:
            entry = _crop_one(photo, out, targets[rel], detector, size, color, margin, align, keep, max_pixels)
            entry["key"] = key
            if entry.get("reason"):
                log(f"{rel}: {entry['status']} ({entry['reason']})")
            for stale in set(old.get("files", {}).get(rel, {}).get("outputs", [])) - set(entry["outputs"]):
                (out / stale).unlink(missing_ok=True)
        new_cache[rel] = entry
        rows.append({"file": rel, "status": entry["status"], "faces": entry["faces"],
                     "outputs": ";".join(entry["outputs"])})
        bar.update(1)
        if (i + 1) % 500 == 0:  # an interrupted run keeps most of its work
            write_json(out / CACHE_FILE, {"settings": settings, "files": {**cache, **new_cache}})
    bar.close()
    log(f"{len(photos)} photos ({cached} from cache), {time.monotonic() - start:.0f} s")
    write_json(out / CACHE_FILE, {"settings": settings, "files": new_cache})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["file", "status", "faces", "outputs"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / REPORT_FILE, buffer.getvalue())
    statuses = [r["status"] for r in rows]
    summary = {"photos": len(rows), "ok": statuses.count("ok"), "no_face": statuses.count("no_face"),
               "unreadable": statuses.count("unreadable"), "crops": sum(len(e["outputs"]) for e in new_cache.values()),
               "from_cache": cached, "seconds": round(time.monotonic() - start, 2),
               "source": str(src), "settings": settings}
    write_json(out / SUMMARY_FILE, summary)
    log(f"{summary['ok']} photos cropped, {summary['no_face']} without a face, {summary['unreadable']} unreadable "
        f"(see {out / REPORT_FILE})")
    return summary


def _targets(src: Path, photos: list[Path], split: str) -> dict[str, str]:
    """Photo (relative posix path) -> output path stem ``<split>/<class>/<name>`` (unique)."""
    targets, taken = {}, set()
    for photo in photos:
        parts = photo.relative_to(src).parts
        try:
            folder = CLASS_NAMES[class_id(parts[-2])] if len(parts) > 1 else None
        except ConfigError:
            folder = None
        if folder is None:
            base = f"{UNLABELLED}/{'_'.join(parts[:-1] + (photo.stem,))}"
        else:
            where = parts[-3].lower() if len(parts) > 2 and parts[-3].lower() in SPLIT_FOLDERS else split
            base = f"{where}/{folder}/{photo.stem}"
        name, n = base, 1
        while name.lower() in taken:  # a.jpg and a.png, or happy/ and happiness/ folders
            n += 1
            name = f"{base}_{n}"
        taken.add(name.lower())
        targets[photo.relative_to(src).as_posix()] = name
    return targets


def _crop_one(photo: Path, out: Path, target: str, detector: Detector, size, color, margin, align, keep,
              max_pixels) -> dict:
    problem = image_problem(photo, max_pixels)
    image = None if problem else read_image(photo, max_pixels)
    if image is None:
        return {"status": "unreadable", "faces": 0, "outputs": [], "reason": problem or "not a readable image"}
    faces = detector.detect(image)
    if not faces:
        return {"status": "no_face", "faces": 0, "outputs": []}
    chosen = faces if keep == "all" else [max(faces, key=lambda f: f.area)]
    outputs = []
    for i, face in enumerate(chosen):
        crop = crop_face(image, face, size, margin, align, gray=color == "gray")
        rel = f"{target}.png" if len(chosen) == 1 else f"{target}_face{i + 1}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        _, data = cv2.imencode(".png", crop if color == "gray" else cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        atomic_write_bytes(out / rel, data.tobytes())
        outputs.append(rel)
    return {"status": "ok", "faces": len(faces), "outputs": outputs}


def _load_cache(path: Path) -> dict:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}
