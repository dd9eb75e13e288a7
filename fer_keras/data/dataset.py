"""`FaceData`, the in-memory form of every data set, and the studies' splits."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from fer_keras.data.labels import CLASS_NAMES, class_id
from fer_keras.errors import ConfigError, DataError

USAGES = ("Training", "PublicTest", "PrivateTest")
SPLITS = ("usage", "publictest-val", "80/10/10", "90/10")
#: Share of Training held out for validation when the data has no PrivateTest (``split="usage"``).
VAL_FRACTION = 0.1


@dataclasses.dataclass
class FaceData:
    """Face images with labels.

    Attributes:
        images: uint8 array (N, H, W, C), C = 1 (grayscale) or 3 (RGB).
        labels: int32 array (N,), index into ``class_names``.
        class_names: the names of the classes, in label order.
        usage: str array (N,), the row's split of origin ("Training", "PublicTest", "PrivateTest").
        sources: str array (N,), where each image came from (file path or ``file.csv:row``).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    usage: np.ndarray | None = None
    sources: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.images)
        if self.usage is None:
            self.usage = np.full(n, "Training")
        if self.sources is None:
            self.sources = np.array([f"#{i}" for i in range(n)])
        self.labels = np.asarray(self.labels, dtype=np.int32)
        if not (len(self.labels) == len(self.usage) == len(self.sources) == n):
            raise ValueError("images, labels, usage and sources must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def take(self, index) -> "FaceData":
        """The rows at ``index`` (an index array or boolean mask)."""
        return FaceData(self.images[index], self.labels[index], self.class_names,
                        self.usage[index], self.sources[index])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def one_hot(self) -> np.ndarray:
        """float32 (N, num_classes) one-hot labels."""
        return np.eye(self.num_classes, dtype=np.float32)[self.labels]

    def with_classes(self, classes: Sequence[str | int]) -> "FaceData":
        """Keep rows of the given classes (names or project ids) and re-encode labels to 0..k-1.

        Kept classes are ordered by project id, so ``happiness, sadness, neutral`` become 0, 1, 2.
        """
        wanted = sorted({class_id(c) for c in classes})
        names = [CLASS_NAMES[i] for i in wanted]
        missing = [n for n in names if n not in self.class_names]
        if missing:
            raise ConfigError(f"labels {missing} are not in this data set (it has {list(self.class_names)})")
        old = [self.class_names.index(n) for n in names]
        remap = np.full(self.num_classes, -1, dtype=np.int32)
        remap[old] = np.arange(len(old))
        keep = remap[self.labels] >= 0
        out = self.take(keep)
        out.labels = remap[out.labels]
        out.class_names = tuple(names)
        return out

    def check_classes_present(self, what: str) -> None:
        """Raise :class:`DataError` naming every class with no image in this data."""
        empty = [n for n, c in self.class_counts().items() if c == 0]
        if empty:
            raise DataError(f"{what}: no images for class(es) {', '.join(empty)}; "
                            "add images or drop them with --labels")


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified random sample of ``size`` rows (all rows if fewer)."""
    n = len(labels)
    if size >= n:
        return np.arange(n)
    try:
        idx, _ = train_test_split(np.arange(n), train_size=size, stratify=labels, random_state=seed)
    except ValueError:  # a class too small to stratify: plain random sample
        idx = np.random.default_rng(seed).choice(n, size, replace=False)
    return np.sort(idx)


def split(data: FaceData, how: str = "usage", seed: int = 42, val_fraction: float = VAL_FRACTION) -> dict[str, FaceData]:
    """Split into ``{"train", "val", "test"}``; validation selects, test reports.

    how:
        ``"usage"`` (default): FER2013's Usage column. With PrivateTest rows (the CSV): train =
            Training, val = PublicTest, test = PrivateTest (the field's protocol). Without them
            (the Kaggle folders): val = a stratified, seeded ``val_fraction`` of Training, train =
            the rest of Training, test = PublicTest, so test images never take part in selection.
        ``"publictest-val"``: train = Training, val = test = PublicTest (how the earlier runs and
            much published FER2013 work did it; test then took part in selection, and
            :func:`describe_split` says so).
        ``"80/10/10"``: stratified train/val/test of all rows, ``random_state=seed`` (Study A's
            final split; 28,709 / 3,589 / 3,589 on the 35,887-row CSV).
        ``"90/10"``: stratified train/test of all rows (Study A's first split, 32,298 / 3,589);
            val is the test part, as in the study (test takes part in selection).
    """
    if how not in SPLITS:
        raise ConfigError(f"unknown split {how!r}; use one of {', '.join(SPLITS)}")
    if how in ("usage", "publictest-val"):
        parts = {u: np.flatnonzero(data.usage == u) for u in USAGES}
        if len(parts["Training"]) == 0:
            raise DataError("no rows with Usage 'Training'; use --split 80/10/10 for data without a Usage column")
        if len(parts["PublicTest"]) == 0 and len(parts["PrivateTest"]) == 0:
            raise DataError("no PublicTest or PrivateTest rows; use --split 80/10/10 or 90/10")
        if how == "publictest-val":
            test = parts["PublicTest"] if len(parts["PublicTest"]) else parts["PrivateTest"]
            return {"train": data.take(parts["Training"]), "val": data.take(test), "test": data.take(test)}
        if len(parts["PrivateTest"]) and len(parts["PublicTest"]):
            return {"train": data.take(parts["Training"]), "val": data.take(parts["PublicTest"]),
                    "test": data.take(parts["PrivateTest"])}
        test = parts["PublicTest"] if len(parts["PublicTest"]) else parts["PrivateTest"]
        training = parts["Training"]
        if not 0 < val_fraction < 1:
            raise ConfigError(f"--val-fraction {val_fraction:g}: must be between 0 and 1")
        rest, val = _split_off(training, max(1, int(round(val_fraction * len(training)))), data.labels, seed)
        return {"train": data.take(np.sort(rest)), "val": data.take(np.sort(val)), "test": data.take(test)}

    test_n = int(round(0.1 * len(data)))
    if not 0 < test_n < len(data) - test_n:
        raise DataError(f"--split {how}: {len(data)} images are too few to hold out 10 % for test (and validation)")
    rest, test = _split_off(np.arange(len(data)), test_n, data.labels, seed)
    if how == "90/10":
        return {"train": data.take(np.sort(rest)), "val": data.take(np.sort(test)), "test": data.take(np.sort(test))}
    train, val = _split_off(rest, test_n, data.labels, seed)
    return {"train": data.take(np.sort(train)), "val": data.take(np.sort(val)), "test": data.take(np.sort(test))}


def _split_off(index: np.ndarray, n: int, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, part): ``n`` of ``index`` drawn stratified by ``labels`` (at random when a class is
    too small to stratify), in sklearn's order (callers sort; the 80/10/10 split draws again from ``rest``)."""
    try:
        rest, part = train_test_split(index, test_size=n, stratify=labels[index], random_state=seed)
    except ValueError:  # a class too small to stratify
        rest, part = train_test_split(index, test_size=n, random_state=seed)
    return rest, part


def describe_split(parts: dict[str, FaceData]) -> dict:
    """Where each part came from (its Usage values) and its size, and whether any test image
    also served in validation (model selection): ``{"train": {"usage", "images"}, ..., "test_in_selection"}``."""
    out = {}
    for name, part in parts.items():
        usages, counts = np.unique(part.usage, return_counts=True)
        out[name] = {"usage": {str(u): int(c) for u, c in zip(usages, counts)}, "images": len(part)}
    val_sources, test_sources = set(parts["val"].sources.tolist()), set(parts["test"].sources.tolist())
    out["test_in_selection"] = bool(val_sources & test_sources)
    return out
