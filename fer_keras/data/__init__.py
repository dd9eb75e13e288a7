"""Data in: FER2013 (CSV or Kaggle folders), RAF-DB, the synthetic demo set, splits, tf.data."""
from pathlib import Path

from fer_keras.data.dataset import FaceData, split, stratified_indices
from fer_keras.data.demo import make_demo
from fer_keras.data.fer2013 import load_fer2013, read_fer2013_csv, read_image_folders, write_fer2013_csv
from fer_keras.data.images import MAX_PIXELS
from fer_keras.data.labels import CLASS_NAMES, parse_labels
from fer_keras.data.rafdb import load_rafdb

__all__ = ["CLASS_NAMES", "FaceData", "load_dataset", "load_fer2013", "load_rafdb", "make_demo", "parse_labels",
           "read_fer2013_csv", "read_image_folders", "split", "stratified_indices", "write_fer2013_csv"]


def load_dataset(path, max_pixels: int | None = MAX_PIXELS, log=print) -> FaceData:
    """Load a data set by its layout: RAF-DB (``EmoLabel/`` inside) or FER2013 (CSV or folders);
    image files over ``max_pixels`` (width x height) are refused in one line, never decoded;
    ``log`` gets the line naming skipped non-image files."""
    if (Path(path) / "EmoLabel").is_dir():
        return load_rafdb(path, max_pixels=max_pixels)
    return load_fer2013(path, max_pixels=max_pixels, log=log)
