"""FER2013 in either form: the original CSV (``emotion,pixels,Usage``) or the Kaggle image folders.

Both give a :class:`~fer_keras.data.dataset.FaceData` of uint8 48x48x1 faces with project ids
(FER2013's ids are the project's, see :mod:`fer_keras.data.labels`).
"""
from __future__ import annotations

import errno
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from fer_keras.data.dataset import USAGES, FaceData
from fer_keras.data.images import IMAGE_EXTENSIONS, MAX_PIXELS, printable, read_images, resize_all
from fer_keras.data.labels import CLASS_NAMES, NUM_CLASSES, class_id
from fer_keras.errors import ConfigError, DataError
from fer_keras.files import atomic_open

SIDE = 48
#: Folder names of the Kaggle layout and the Usage each implies when a file name carries none.
SPLIT_FOLDERS = {"train": "Training", "training": "Training", "test": "PublicTest",
                 "publictest": "PublicTest", "val": "PublicTest", "validation": "PublicTest",
                 "privatetest": "PrivateTest"}
_ROWS_PER_CHUNK = 2048
_QUOTE = 200  # characters of offending input an error message quotes at most


def _quote(text: str | bytes, limit: int = _QUOTE) -> str:
    """``repr`` of at most ``limit`` characters of ``text``, with ``...`` when cut."""
    if isinstance(text, bytes):
        text = text[:limit * 4].decode("utf-8", "replace")
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def load_fer2013(path: str | os.PathLike, image_size: int = SIDE, max_pixels: int | None = MAX_PIXELS,
                 log: Callable = print) -> FaceData:
    """Load FER2013 from a CSV file, a folder holding ``fer2013.csv``, or the Kaggle folder layout.

    Args:
        path: ``fer2013.csv``; or a folder with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``;
            or a folder of ``<class>/`` sub-folders.
        image_size: side of the square grayscale images returned (48 for FER2013 itself;
            other images are resized with area interpolation).
        max_pixels: image files with more pixels (width x height, from their header) are refused
            in one line before they are decoded.
        log: where the one summary line of skipped files (not images: .gif, .txt, ...) goes.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass the FER2013 CSV or the Kaggle "
                        "folder (with train/ and test/)")
    if path.is_dir() and (path / "fer2013.csv").is_file():
        path = path / "fer2013.csv"
    if path.is_file():
        return read_fer2013_csv(path, image_size)
    return read_image_folders(path, image_size, max_pixels=max_pixels, log=log)


# --------------------------------------------------------------------------------------- CSV


def read_fer2013_csv(path: str | os.PathLike, image_size: int = SIDE) -> FaceData:
    """Parse a FER2013 CSV (header ``emotion,pixels[,Usage]``, any column order), vectorised.

    Pixels are 2,304 space-separated integers 0..255 per row. ``Usage`` is optional; without it
    every row is ``Training``. A UTF-8 byte-order mark is skipped. Errors name the file and its
    line number (header = line 1) and quote at most 200 characters of it.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        head = handle.peek(8192)[:8192]
        if b"\0" in head:
            raise DataError(f"{path}: binary data, not a CSV text file (starts with bytes {head[:12].hex(' ')}); pass "
                            "the FER2013 CSV (emotion,pixels,Usage) or the Kaggle folder")
        lines = list(_bounded_lines(handle, path))
    if not lines:
        raise DataError(f"{path}: empty file; pass the FER2013 CSV (emotion,pixels,Usage) or the Kaggle folder")
    header = csv_header(lines[0], path)

    emotions, pixels, usages, line_numbers = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        emotion, values, usage = csv_row_fields(line, header, path, number)
        emotions.append(emotion)
        pixels.append(values)
        if usage is not None:
            usages.append(usage)
        line_numbers.append(number)
    if not emotions:
        raise DataError(f"{path}: no data rows")

    images = np.empty((len(pixels), SIDE * SIDE), dtype=np.uint8)

    def parse_chunk(start):  # numpy releases the GIL: chunks parse in parallel threads
        chunk = pixels[start:start + _ROWS_PER_CHUNK]
        images[start:start + len(chunk)] = _parse_pixel_rows(chunk, path, line_numbers[start:])

    with ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2))) as pool:
        for done in pool.map(parse_chunk, range(0, len(pixels), _ROWS_PER_CHUNK)):
            pass
    images = images.reshape(-1, SIDE, SIDE, 1)
    if image_size != SIDE:
        images = resize_all(images, image_size)
    usage = np.array(usages) if usages else np.full(len(emotions), "Training")
    sources = np.char.add(f"{path.name}:", np.array(line_numbers).astype(str))
    return FaceData(images, np.array(emotions, np.int32), CLASS_NAMES, usage, sources)


def csv_header(line: bytes, path) -> list[str]:
    """The lower-case column names of a FER2013 CSV's first line (a UTF-8 byte-order mark, as Excel's
    "CSV UTF-8" writes, skipped); DataError naming ``path`` when ``emotion`` or ``pixels`` is missing."""
    line = line[3:] if line.startswith(b"\xef\xbb\xbf") else line
    header = [h.strip(b' "\r').decode("utf-8", "replace").lower() for h in line.split(b",")]
    for column in ("emotion", "pixels"):
        if column not in header:
            raise DataError(f"{path}: missing column {column!r} (header is {_quote(','.join(header))}); "
                            "a FER2013 CSV has emotion,pixels,Usage")
    return header


def csv_row_fields(line: bytes, header: list[str], path, number: int) -> tuple[int, bytes, str | None]:
    """``(emotion id, pixel text, Usage or None without that column)`` of one data line of a FER2013
    CSV with columns ``header`` (:func:`csv_header`); DataError naming ``path`` and line ``number``."""
    fields = line.rstrip(b"\r").split(b",")
    if len(fields) != len(header):
        raise DataError(f"{path} line {number}: {len(fields)} fields, expected {len(header)} "
                        f"({_quote(','.join(header))})")
    emotion = fields[header.index("emotion")].strip(b' "')
    if not emotion.isdigit() or int(emotion) >= NUM_CLASSES:
        raise DataError(f"{path} line {number}: unknown emotion {_quote(emotion)}; "
                        "expected 0..6 (anger, disgust, fear, happiness, sadness, surprise, neutral)")
    usage = None
    if "usage" in header:
        usage = fields[header.index("usage")].strip(b' "').decode(errors="replace")
        if usage not in USAGES:
            raise DataError(f"{path} line {number}: unknown Usage {_quote(usage)}; expected one of "
                            f"{', '.join(USAGES)}")
    return int(emotion), fields[header.index("pixels")].strip(b' "'), usage


def parse_csv_row(line: bytes, header: list[str], path, number: int) -> tuple[int, np.ndarray, str]:
    """``(emotion id, uint8 (48, 48, 1) face, Usage)`` of one data line (Usage ``Training`` without
    that column), for readers that take rows one at a time (Beam); DataError naming the line."""
    emotion, pixels, usage = csv_row_fields(line, header, path, number)
    return emotion, _parse_pixel_rows([pixels], Path(path), [number]).reshape(SIDE, SIDE, 1), usage or "Training"


#: Longest CSV line read (bytes): a FER2013 row is at most ~9,300 (2,304 values of up to 3 digits).
MAX_LINE_BYTES = 64 * 1024


def _bounded_lines(handle, path: Path):
    """The lines of an open binary file without their newline, each read at most
    :data:`MAX_LINE_BYTES` + 1 bytes at a time: a longer line is a one-line DataError before it is
    held in memory."""
    for number, line in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
        if len(line) > MAX_LINE_BYTES:
            raise DataError(f"{path} line {number}: longer than {MAX_LINE_BYTES:,} bytes, far longer than a FER2013 "
                            f"row (emotion, 2,304 pixel values, Usage); starts {_quote(line[:60])}")
        yield line.rstrip(b"\n")


def _parse_pixel_rows(rows: list[bytes], path: Path, line_numbers: list[int]) -> np.ndarray:
    """(len(rows), 2304) uint8 from single-space-separated integer strings, without a Python loop.

    Anything unusual (other separators, non-digits, too many/few values, values > 255) goes to
    the slow path, which finds the row and says what is wrong.
    """
    n = len(rows)
    buf = np.frombuffer(b" ".join(rows) + b" ", dtype=np.uint8)
    ends = np.flatnonzero(buf == 32).astype(np.int32)  # one space after every value
    if len(ends) != n * SIDE * SIDE:
        return _parse_rows_slowly(rows, path, line_numbers)
    lengths = np.diff(ends, prepend=np.int32(-1)) - 1
    digits = buf - np.uint8(48)  # wraps around for non-digits
    if lengths.min() < 1 or lengths.max() > 3 or np.count_nonzero(digits < 10) != len(buf) - len(ends):
        return _parse_rows_slowly(rows, path, line_numbers)
    values = digits[ends - 1].astype(np.uint16)
    values += np.where(lengths >= 2, digits[ends - 2].astype(np.uint16) * 10, 0).astype(np.uint16)
    values += np.where(lengths == 3, digits[ends - 3].astype(np.uint16) * 100, 0).astype(np.uint16)
    if values.max() > 255:
        return _parse_rows_slowly(rows, path, line_numbers)
    return values.astype(np.uint8).reshape(n, SIDE * SIDE)


def _parse_rows_slowly(rows, path, line_numbers) -> np.ndarray:
    """Slow path for unusual input: parse row by row, or name the first bad row and what is wrong."""
    for row, number in zip(rows, line_numbers):
        tokens = row.split()
        bad = next((t for t in tokens if not t.isdigit()), None)
        if bad is not None:
            raise DataError(f"{path} line {number}: non-numeric pixel value "
                            f"{bad[:20].decode(errors='replace')!r}")
        if len(tokens) != SIDE * SIDE:
            raise DataError(f"{path} line {number}: {len(tokens)} pixel values, expected "
                            f"{SIDE * SIDE} (48x48)")
        big = next((t for t in tokens if int(t) > 255), None)
        if big is not None:
            raise DataError(f"{path} line {number}: pixel value {int(big)} is outside 0..255")
    return np.array([np.array(row.split(), dtype=np.uint8) for row in rows])


def write_fer2013_csv(data: FaceData, path: str | os.PathLike) -> Path:
    """Write 48x48 grayscale ``data`` as a FER2013 CSV (project ids, its Usage column)."""
    if data.image_shape != (SIDE, SIDE, 1):
        raise ConfigError(f"FER2013 CSV holds 48x48x1 images, not {data.image_shape}")
    ids = np.array([class_id(n) for n in data.class_names])[data.labels]
    flat = data.images.reshape(len(data), -1)
    number = [str(v) for v in range(256)]  # pixel value -> text, looked up (streamed: ~flat memory)
    path = Path(path)
    with atomic_open(path, "w") as out:
        out.write("emotion,pixels,Usage\n")
        for start in range(0, len(data), 2048):
            out.write("".join(f"{e},{' '.join(map(number.__getitem__, row.tolist()))},{u}\n"
                              for e, row, u in zip(ids[start:start + 2048], flat[start:start + 2048],
                                                   data.usage[start:start + 2048])))
    return path


# ----------------------------------------------------------------------------- image folders


def read_image_folders(root: str | os.PathLike, image_size: int = SIDE, color: str = "gray",
                       max_pixels: int | None = MAX_PIXELS, log: Callable = print) -> FaceData:
    """Read ``root/<split>/<class>/*`` (or ``root/<class>/*``) images into a FaceData.

    Usage comes from a FER2013 file-name prefix (``Training_``, ``PublicTest_``,
    ``PrivateTest_``) when present, else from the split folder (train -> Training,
    test/val -> PublicTest); class folders may use any alias in :mod:`fer_keras.data.labels`.
    ``color`` is ``"gray"`` (HxWx1) or ``"rgb"`` (HxWx3). Files in class folders that are not
    images (by extension: .gif, .txt, ...) are left out, counted and named in one ``log`` line.
    """
    root = Path(root)
    files, labels, usages, skipped = [], [], [], []
    split_dirs = [d for d in _entries(root) if d.is_dir() and d.name.lower() in SPLIT_FOLDERS]
    if not split_dirs:
        split_dirs = [root]
    for split_dir in split_dirs:
        default_usage = SPLIT_FOLDERS.get(split_dir.name.lower(), "Training")
        class_dirs = [d for d in _entries(split_dir) if d.is_dir() and not d.name.startswith(".")]
        if not class_dirs:
            raise DataError(f"{split_dir}: no class folders; expected e.g. {split_dir}/happy/*.jpg "
                            "or a FER2013 CSV")
        for class_dir in class_dirs:
            try:
                label = class_id(class_dir.name)
            except ConfigError:
                raise DataError(f"{class_dir}: unknown class folder {class_dir.name!r}; rename it to one "
                                f"of {', '.join(CLASS_NAMES)} (or angry, happy, sad, ...)") from None
            visible = [e for e in _entries(class_dir) if not e.name.startswith(".") and e.is_file()]
            names = sorted(e.name for e in visible if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
            skipped += [e for e in visible if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS]
            if not names:
                raise DataError(f"{class_dir}: empty class folder (no images); add images or remove it")
            for name in names:
                prefix = name.split("_", 1)[0]
                usages.append(prefix if prefix in USAGES else default_usage)
            files += [os.path.join(class_dir, n) for n in names]
            labels += [label] * len(names)
    if skipped:
        kinds = sorted({os.path.splitext(p.name)[1].lower() or "no extension" for p in skipped})
        log(f"{printable(root)}: skipped {len(skipped):,} files that are not images ({', '.join(kinds)[:80]}; "
            f"readable kinds: {', '.join(sorted(IMAGE_EXTENSIONS))}), e.g. {printable(skipped[0])}")
    images = read_images(files, image_size, color, max_pixels)
    return FaceData(images, np.array(labels, np.int32), CLASS_NAMES, np.array(usages), np.array(files))


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; a link that loops (or cannot be followed) is a DataError."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list ({exc.strerror}); check the folder and its permissions") from None
    for entry in entries:
        try:
            entry.stat()
        except FileNotFoundError:
            continue  # a dangling link: not an image, left out
        except OSError as exc:
            what = "a symbolic link loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
            raise DataError(f"{entry}: {what}; remove or fix the link") from None
    return entries
