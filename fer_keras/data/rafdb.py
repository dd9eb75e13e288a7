"""RAF-DB basic (Real-world Affective Faces): 15,339 RGB faces, 12,271 train / 3,068 test.

Official layout::

    root/EmoLabel/list_patition_label.txt   lines "train_00001.jpg 5" (CRLF), labels 1..7
    root/Image/aligned/train_00001_aligned.jpg   100x100 aligned crops
    root/Image/original/train_00001.jpg          the original photographs

RAF-DB's labels 1..7 (surprise, fear, disgust, happiness, sadness, anger, neutral) become project
ids with :data:`fer_keras.data.labels.RAFDB_TO_PROJECT` (0 anger, 1 disgust, 2 fear, 3 happiness,
4 sadness, 5 surprise, 6 neutral). ``train_*`` rows get Usage ``Training``, ``test_*`` rows
``PublicTest`` (RAF-DB has no separate validation split).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fer_keras.data.dataset import FaceData
from fer_keras.data.images import MAX_PIXELS, read_images
from fer_keras.data.labels import CLASS_NAMES, RAFDB_TO_PROJECT
from fer_keras.errors import DataError

LABEL_FILE = os.path.join("EmoLabel", "list_patition_label.txt")  # sic: RAF-DB's own spelling
_NAME = re.compile(r"(train|test)_\d+\.jpg")
_USAGE = {"train": "Training", "test": "PublicTest"}


class RafdbLabels(NamedTuple):
    """Parsed label file: parallel arrays, one entry per line."""

    names: np.ndarray  # str, e.g. "train_00001.jpg"
    labels: np.ndarray  # int32 project ids 0..6
    usage: np.ndarray  # str, "Training" or "PublicTest"
    line_numbers: np.ndarray  # int, 1-based line of each entry in the file


def read_rafdb_labels(path: str | os.PathLike) -> RafdbLabels:
    """Parse ``list_patition_label.txt`` (LF or CRLF; blank lines ignored).

    Raises :class:`DataError` naming the file and line for a missing file, a line that is not
    ``<train|test>_<digits>.jpg <label>``, or a label outside 1..7.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: RAF-DB label file not found; pass the RAF-DB 'basic' folder "
                        "(holding EmoLabel/ and Image/)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the RAF-DB label file ({exc})") from None
    names, labels, usage, numbers = [], [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not _NAME.fullmatch(fields[0]) or not fields[1].isdigit():
            raise DataError(f"{path} line {number}: expected '<train|test>_<number>.jpg <label 1..7>', "
                            f"got {line.strip()[:60]!r}")
        label = int(fields[1])
        if label not in RAFDB_TO_PROJECT:
            raise DataError(f"{path} line {number}: label {label} is outside 1..7 (surprise, fear, "
                            "disgust, happiness, sadness, anger, neutral)")
        names.append(fields[0])
        labels.append(RAFDB_TO_PROJECT[label])
        usage.append(_USAGE[fields[0].split("_", 1)[0]])
        numbers.append(number)
    if not names:
        raise DataError(f"{path}: no labels in the RAF-DB label file")
    return RafdbLabels(np.array(names), np.array(labels, np.int32), np.array(usage), np.array(numbers))


def rafdb_image_path(root: str | os.PathLike, name: str, aligned: bool = True) -> str:
    """Path of image ``name`` (as in the label file) in the aligned or original folder."""
    if aligned:
        return os.path.join(root, "Image", "aligned", name[: -len(".jpg")] + "_aligned.jpg")
    return os.path.join(root, "Image", "original", name)


def load_rafdb(root: str | os.PathLike, image_size: int | None = 100, aligned: bool = True,
               max_pixels: int | None = MAX_PIXELS) -> FaceData:
    """Load RAF-DB basic into a :class:`FaceData` of RGB uint8 ``(N, image_size, image_size, 3)``.

    Args:
        root: the RAF-DB ``basic`` folder (or a folder holding ``basic/``).
        image_size: side of the square images returned (area interpolation); 100 is the aligned
            crops' own size. ``None`` keeps the files' sizes (they must all match).
        aligned: read ``Image/aligned/*_aligned.jpg`` (True) or ``Image/original/*.jpg`` (False).

    ``sources`` holds each image's path. Raises :class:`DataError` (one line) for a missing or
    malformed label file, missing images (how many, and the first with its label-file line) and
    unreadable images.
    """
    root = Path(root)
    if not (root / LABEL_FILE).exists() and (root / "basic" / LABEL_FILE).exists():
        root = root / "basic"
    label_file = root / LABEL_FILE
    entries = read_rafdb_labels(label_file)
    files = [rafdb_image_path(root, name, aligned) for name in entries.names]
    missing = [i for i, f in enumerate(files) if not os.path.isfile(f)]
    if missing:
        first = missing[0]
        folder = root / "Image" / ("aligned" if aligned else "original")
        raise DataError(f"{folder}: {len(missing)} of {len(files)} images listed in {label_file} are "
                        f"missing, the first {files[first]} (line {entries.line_numbers[first]})")
    images = read_images(files, image_size, color="rgb", max_pixels=max_pixels)
    return FaceData(images, entries.labels, CLASS_NAMES, entries.usage, np.array(files))
