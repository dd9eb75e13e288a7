"""Image files in: which files are images, whether one is safe to decode, and decoding them.

The size of an image is read from its header before its pixels are decoded, so an over-large
file (a "decompression bomb") is refused in one line instead of exhausting memory.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from PIL import Image

from fer_keras.errors import ConfigError, DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a gray (H, W) / (H, W, 1), RGB or RGBA uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ConfigError(f"images must be uint8 (0..255), not {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise ConfigError(f"image shape {image.shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")


#: Default largest image, width x height pixels (40 megapixels: ~120 MB decoded as RGB).
MAX_PIXELS = 40_000_000


def image_problem(path, max_pixels: int | None = MAX_PIXELS) -> str | None:
    """Why ``path`` cannot be read as an image (one short phrase), or None when it looks readable.

    The size is read from the file header (Pillow opens lazily), so an over-large image is refused
    before its pixels are decoded; ``max_pixels`` None keeps only OpenCV's own limit (2^30 pixels).
    """
    limit = min(max_pixels or _CV_MAX_PIXELS, _CV_MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit; its message has the count
        count = re.search(r"\((\d+) pixels\)", str(exc))
        if count and int(count.group(1)) <= limit:  # over Pillow's limit, within the one asked for
            return None
        return f"{int(count.group(1)) if count else 2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, over the " \
               f"{limit:,}-pixel limit" + (" (--max-pixels)" if limit == max_pixels else " (OpenCV's)")
    except OSError:  # a format or header Pillow does not read: OpenCV may still read it
        return None
    if width * height > limit:
        return (f"{width}x{height} = {width * height:,} pixels, over the {limit:,}-pixel limit"
                + (" (--max-pixels)" if limit == max_pixels else " (OpenCV's)"))
    return None


_CV_MAX_PIXELS = 1 << 30  # OpenCV's CV_IO_MAX_IMAGE_PIXELS default


def read_image(path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray | None:
    """uint8 RGB (H, W, 3) from an image file (gray files become RGB), or None if unreadable or
    larger than ``max_pixels`` (see :func:`image_problem`, which says why)."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return decode_image(f.read(), max_pixels)[0]


def decode_image(data: bytes, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray | None, str | None]:
    """``(image, None)`` from an image file's bytes, image uint8 RGB (H, W, 3) (gray files become RGB);
    ``(None, why)`` when they are no image OpenCV decodes or hold more than ``max_pixels`` (read from
    the header before decoding, :func:`image_problem`). For files that are not local paths (Beam)."""
    reason = image_problem(io.BytesIO(data), max_pixels)
    if reason is not None:
        return None, reason
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if len(data) else None
    except cv2.error:  # over OpenCV's own pixel limit, for a format Pillow does not read
        image = None
    return (None, "not a readable image") if image is None else (cv2.cvtColor(image, cv2.COLOR_BGR2RGB), None)


def read_images(files: list[str], image_size: int | None, color: str = "gray",
                max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """uint8 (N, S, S, C) from image files, decoded with OpenCV on two threads.

    ``image_size=None`` keeps the files' own size (all must match). ``max_pixels``: refuse images
    with more pixels (width x height, read from the header before decoding; None = OpenCV's own
    limit, 2^30). Files are read by Python and decoded from their bytes, so any file name works
    (OpenCV's ``imread`` crashes on names that are not valid UTF-8). Raises :class:`DataError`
    naming the first file that cannot be read.
    """
    if color not in ("gray", "rgb"):
        raise ConfigError(f"color must be 'gray' or 'rgb', not {color!r}")
    flag = cv2.IMREAD_GRAYSCALE if color == "gray" else cv2.IMREAD_COLOR

    def decode(file):
        problem = image_problem(file, max_pixels) if max_pixels is not None else None
        if problem is not None:
            return problem
        try:
            data = np.fromfile(file, np.uint8)
        except OSError as exc:
            return f"cannot read: {exc.strerror}"
        try:
            image = cv2.imdecode(data, flag) if data.size else None
        except cv2.error:  # over OpenCV's pixel limit
            return image_problem(file, None) or "over OpenCV's pixel limit"
        if image is None:
            return "not a valid JPEG/PNG"
        if color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image_size is not None and image.shape[:2] != (image_size, image_size):
            image = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_AREA)
        return image

    with ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2))) as pool:
        decoded = list(pool.map(decode, files, chunksize=256))
    for file, image in zip(files, decoded):
        if isinstance(image, str):
            raise DataError(f"{printable(file)}: unreadable image ({image}); delete or replace it")
    if not decoded:
        return np.zeros((0, image_size or 48, image_size or 48, 1 if color == "gray" else 3), np.uint8)
    shapes = {d.shape for d in decoded}
    if len(shapes) > 1:
        raise DataError(f"images differ in size ({sorted(shapes)[:3]}...); pass image_size to resize them")
    images = np.stack(decoded)
    return images[..., None] if images.ndim == 3 else images


def printable(path) -> str:
    """``path`` as text that any terminal prints: bytes that are not UTF-8 shown as ``\\xff``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def resize_all(images: np.ndarray, side: int) -> np.ndarray:
    """uint8 (N, side, side, C) from uint8 (N, H, W, C), by area interpolation."""
    out = np.stack([cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA) for im in images])
    return out[..., None] if out.ndim == 3 else out
