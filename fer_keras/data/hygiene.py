"""Data hygiene: exact duplicate images within and across splits, duplicates whose labels
disagree, and blank / near-uniform images.

Images are compared by a hash (BLAKE2b, 128 bits) of their decoded pixel bytes and shape, so only
*exact* pixel copies are found. The Kaggle FER2013 JPEGs are re-encodings of the CSV pixels:
byte-identical files decode to identical pixels, so hashing decoded pixels finds the same copies
as hashing the CSV rows. Near-duplicates (a copy re-encoded differently, shifted, cropped,
brightened or flipped) are **not** found.

A face is *near-uniform* when its pixel standard deviation is below ``std_threshold`` (0..255
units, default 1.0) or when one grey value covers at least ``mode_share`` of its pixels (default
0.99). An all-black FER2013 face (std 0) is both.

    from fer_keras.data.hygiene import check_hygiene, duplicates_of
    report = check_hygiene(data)                       # counts + lists; report.counts is a dict
    train = train.take(~duplicates_of(train, test))    # drop Training copies of test faces
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import numpy as np

from fer_keras.data.dataset import USAGES, FaceData
from fer_keras.files import atomic_write_text, write_json

STD_THRESHOLD = 1.0
MODE_SHARE = 0.99
_CHUNK = 4096


def _images(x: FaceData | np.ndarray) -> np.ndarray:
    return x.images if isinstance(x, FaceData) else np.asarray(x)


def image_hashes(images: FaceData | np.ndarray) -> np.ndarray:
    """One 16-byte digest per image (dtype ``S16``, shape (N,)) of its pixel bytes and shape.

    Args:
        images: a FaceData or an array (N, H, W[, C]) of any dtype (normally uint8 0..255).
    """
    images = np.ascontiguousarray(_images(images))
    shape = repr(images.shape[1:]).encode() + images.dtype.str.encode()
    out = np.empty(len(images), dtype="S16")
    for i, image in enumerate(images):
        h = hashlib.blake2b(shape, digest_size=16)
        h.update(image.tobytes())
        out[i] = h.digest()
    return out


def duplicates_of(data: FaceData | np.ndarray, reference: FaceData | np.ndarray) -> np.ndarray:
    """bool (len(data),): True where the row's pixels occur exactly in some image of ``reference``.

    E.g. ``train.take(~duplicates_of(train, test))`` drops Training copies of test faces, and
    ``test.take(~duplicates_of(test, train))`` is "test minus faces that also occur in Training".
    Exact pixel equality only (see the module docstring).
    """
    if len(_images(data)) == 0 or len(_images(reference)) == 0:
        return np.zeros(len(_images(data)), bool)
    return np.isin(image_hashes(data), image_hashes(reference))


def duplicate_groups(data: FaceData | np.ndarray) -> np.ndarray:
    """int64 (N,): a group id per row, shared by rows with identical pixels; -1 for unique rows.

    Groups are numbered 0, 1, ... in the order of their first row.
    """
    hashes = image_hashes(data)
    if len(hashes) == 0:
        return np.zeros(0, np.int64)
    _, first, inverse, counts = np.unique(hashes, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    dup = counts >= 2
    order = np.argsort(first[dup], kind="stable")  # unique ids of duplicated hashes, by first row
    ids = np.full(len(counts), -1, np.int64)
    ids[np.flatnonzero(dup)[order]] = np.arange(int(dup.sum()))
    return ids[inverse]


def uniformity(images: FaceData | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: (pixel std in 0..255 units, float32 (N,); share of pixels at the commonest value,
    float32 (N,) in 0..1). ``images`` are uint8 (N, H, W[, C])."""
    images = _images(images)
    n = len(images)
    flat = images.reshape(n, -1)
    std = np.empty(n, np.float32)
    share = np.empty(n, np.float32)
    for start in range(0, n, _CHUNK):
        block = flat[start:start + _CHUNK]
        std[start:start + len(block)] = block.astype(np.float32).std(axis=1)
        offsets = (np.arange(len(block), dtype=np.int64) * 256)[:, None]
        counts = np.bincount((block.astype(np.int64) + offsets).ravel(), minlength=len(block) * 256)
        share[start:start + len(block)] = counts.reshape(len(block), 256).max(axis=1) / max(flat.shape[1], 1)
    return std, share


@dataclasses.dataclass
class HygieneReport:
    """What :func:`check_hygiene` found.

    Attributes:
        counts: summary numbers (see :func:`check_hygiene`), JSON-ready.
        group: int64 (N,), duplicate-group id per row of the checked data, -1 for unique rows.
        uniform: bool (N,), True for blank / near-uniform rows.
        std, mode_share: float32 (N,), each row's pixel std (0..255) and commonest-value share (0..1).
        labels, usage, sources: the checked data's columns (labels as class names).
        settings: the thresholds used.
    """

    counts: dict
    group: np.ndarray
    uniform: np.ndarray
    std: np.ndarray
    mode_share: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    sources: np.ndarray
    settings: dict

    def duplicate_rows(self) -> list[dict]:
        """One dict per image in a duplicate group (group, split, source, label), sorted by group."""
        rows = np.flatnonzero(self.group >= 0)
        rows = rows[np.lexsort((rows, self.group[rows]))]
        return [{"group": int(self.group[i]), "split": str(self.usage[i]), "source": str(self.sources[i]),
                 "label": str(self.labels[i])} for i in rows]

    def groups(self, conflicting_only: bool = False) -> list[dict]:
        """Duplicate groups, by id: ``{"group", "labels" (sorted distinct), "splits",
        "members": [[split, source, label], ...]}``."""
        out = []
        for rows in _group_rows(self.group):
            labels = sorted(set(self.labels[rows].tolist()))
            if conflicting_only and len(labels) < 2:
                continue
            out.append({"group": int(self.group[rows[0]]), "labels": labels,
                        "splits": sorted(set(self.usage[rows].tolist()), key=_split_key),
                        "members": [[str(self.usage[i]), str(self.sources[i]), str(self.labels[i])] for i in rows]})
        return out

    def cross_split(self, split: str, reference: str) -> list[dict]:
        """Rows of ``split`` whose pixels also occur in ``reference``: ``{"source", "label", "group",
        "reference_labels"}``."""
        out = []
        for rows in _group_rows(self.group):
            ref = rows[self.usage[rows] == reference]
            if len(ref) == 0:
                continue
            ref_labels = sorted(set(self.labels[ref].tolist()))
            for i in rows[self.usage[rows] == split]:
                out.append({"source": str(self.sources[i]), "label": str(self.labels[i]),
                            "group": int(self.group[i]), "reference_labels": ref_labels})
        return out

    def uniform_rows(self) -> list[dict]:
        """Blank / near-uniform images: ``{"split", "source", "label", "std", "mode_share", "group"}``."""
        return [{"split": str(self.usage[i]), "source": str(self.sources[i]), "label": str(self.labels[i]),
                 "std": round(float(self.std[i]), 3), "mode_share": round(float(self.mode_share[i]), 4),
                 "group": int(self.group[i])} for i in np.flatnonzero(self.uniform)]

    def to_dict(self) -> dict:
        """JSON-ready: settings, counts, and the lists (conflicting groups, cross-split copies, uniform images)."""
        splits = self.counts["splits"]
        cross = {f"{a}_in_{b}": self.cross_split(a, b) for a in splits for b in splits if a != b}
        return {"settings": self.settings, "counts": self.counts,
                "conflicting_label_groups": self.groups(conflicting_only=True),
                "cross_split_duplicates": {k: v for k, v in cross.items() if v},
                "uniform_images": self.uniform_rows()}


def _split_key(name: str):
    return (USAGES.index(name) if name in USAGES else len(USAGES), name)


def _group_rows(group: np.ndarray) -> list[np.ndarray]:
    """Row indices of each duplicate group, groups in id order, rows ascending."""
    rows = np.flatnonzero(group >= 0)
    if len(rows) == 0:
        return []
    rows = rows[np.lexsort((rows, group[rows]))]
    cuts = np.flatnonzero(np.diff(group[rows])) + 1
    return np.split(rows, cuts)


def check_hygiene(data: FaceData, std_threshold: float = STD_THRESHOLD, mode_share: float = MODE_SHARE,
                  log: Callable[[str], None] | None = None) -> HygieneReport:
    """Find exact duplicates, label conflicts and near-uniform faces in ``data`` (all its splits).

    ``report.counts`` holds:
        ``images``, ``splits`` (names, Training/PublicTest/PrivateTest first), ``images_per_split``;
        ``duplicate_groups`` / ``duplicate_images`` / ``redundant_copies`` over all splits
        (images in groups of >= 2 identical faces; images minus groups = copies one could drop);
        ``within_split[split]``: the same three numbers counting only copies inside that split;
        ``cross_split["A_in_B"]``: rows of split A whose pixels occur in split B, e.g.
        ``PublicTest_in_Training`` (and ``..._label_differs``: of those, rows whose label is not
        among the B copies' labels); ``groups_spanning_splits``;
        ``conflicting_label_groups`` / ``conflicting_label_images`` (groups with >= 2 distinct
        labels), split into ``..._within_split`` (a split holds copies with different labels) and
        ``..._across_splits_only``;
        ``uniform_images`` (std < ``std_threshold`` 0..255, or one value >= ``mode_share`` of the
        pixels), per split, and how many of them are also duplicates.
    """
    log = log or (lambda message: None)
    n = len(data)
    log(f"hashing {n:,} images")
    group = duplicate_groups(data)
    log("measuring pixel spread")
    std, share = uniformity(data)
    uniform = (std < std_threshold) | (share >= mode_share)
    usage = np.asarray(data.usage).astype(str)
    labels = np.asarray(data.class_names, dtype=object)[data.labels].astype(str) if n else np.zeros(0, str)
    splits = sorted(set(usage.tolist()), key=_split_key)

    def dup_numbers(g: np.ndarray) -> dict:
        ids, counts = np.unique(g[g >= 0], return_counts=True)
        # within a subset, a group needs >= 2 of its rows inside the subset
        ids, counts = ids[counts >= 2], counts[counts >= 2]
        return {"duplicate_groups": int(len(ids)), "duplicate_images": int(counts.sum()),
                "redundant_copies": int(counts.sum() - len(ids))}

    counts = {"images": n, "splits": splits,
              "images_per_split": {s: int((usage == s).sum()) for s in splits}}
    counts.update(dup_numbers(group))
    counts["within_split"] = {s: dup_numbers(group[usage == s]) for s in splits}

    groups = _group_rows(group)
    cross: dict[str, int] = {}
    for a in splits:
        for b in splits:
            if a == b:
                continue
            in_b, differs = 0, 0
            for rows in groups:
                ref = rows[usage[rows] == b]
                mine = rows[usage[rows] == a]
                if len(ref) and len(mine):
                    in_b += len(mine)
                    differs += int(np.sum(~np.isin(labels[mine], labels[ref])))
            cross[f"{a}_in_{b}"] = in_b
            cross[f"{a}_in_{b}_label_differs"] = differs
    counts["cross_split"] = cross
    counts["groups_spanning_splits"] = sum(len(set(usage[r].tolist())) > 1 for r in groups)

    conflicting = [r for r in groups if len(set(labels[r].tolist())) > 1]
    within = [r for r in conflicting
              if any(len(set(labels[r][usage[r] == s].tolist())) > 1 for s in set(usage[r].tolist()))]
    counts["conflicting_label_groups"] = len(conflicting)
    counts["conflicting_label_images"] = int(sum(len(r) for r in conflicting))
    counts["conflicting_label_groups_within_split"] = len(within)
    counts["conflicting_label_groups_across_splits_only"] = len(conflicting) - len(within)
    counts["uniform_images"] = int(uniform.sum())
    counts["uniform_per_split"] = {s: int((uniform & (usage == s)).sum()) for s in splits}
    counts["uniform_and_duplicated"] = int((uniform & (group >= 0)).sum())
    counts["duplicate_groups_of_uniform_images"] = int(len(np.unique(group[uniform & (group >= 0)])))
    settings = {"hash": "blake2b-128 of decoded pixel bytes + shape (exact copies only)",
                "std_threshold": float(std_threshold), "mode_share": float(mode_share)}
    return HygieneReport(counts, group, uniform, std, share, labels, usage,
                         np.asarray(data.sources).astype(str), settings)


def duplicates_csv(report: HygieneReport) -> str:
    """CSV text, header ``group,split,source,label``, one row per image in a duplicate group."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["group", "split", "source", "label"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.duplicate_rows())
    return buffer.getvalue()


def write_hygiene(report: HygieneReport, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``out/hygiene.json`` (:meth:`HygieneReport.to_dict`) and ``out/duplicates.csv``
    atomically; returns their paths. ``out`` must exist and be writable."""
    out = Path(out)
    return {"json": write_json(out / "hygiene.json", report.to_dict()),
            "csv": atomic_write_text(out / "duplicates.csv", duplicates_csv(report))}


def summary_lines(report: HygieneReport) -> list[str]:
    """The counts as short human-readable lines (what ``fer-keras hygiene`` prints)."""
    c = report.counts
    lines = [f"images: {c['images']:,} (" + ", ".join(f"{s} {k:,}" for s, k in c["images_per_split"].items()) + ")",
             f"exact duplicates, all splits: {c['duplicate_images']:,} images in {c['duplicate_groups']:,} groups "
             f"({c['redundant_copies']:,} redundant copies)"]
    for s, d in c["within_split"].items():
        lines.append(f"  within {s}: {d['duplicate_images']:,} images in {d['duplicate_groups']:,} groups "
                     f"({d['redundant_copies']:,} redundant copies)")
    for key, value in c["cross_split"].items():
        if not key.endswith("_label_differs"):
            a, b = key.split("_in_")
            lines.append(f"  {a} images also in {b}: {value:,} "
                         f"({c['cross_split'][key + '_label_differs']:,} labelled unlike every {b} copy)")
    lines.append(f"conflicting-label groups: {c['conflicting_label_groups']:,} "
                 f"({c['conflicting_label_images']:,} images; "
                 f"{c['conflicting_label_groups_within_split']:,} with the conflict inside one split)")
    s = report.settings
    lines.append(f"blank / near-uniform (std < {s['std_threshold']:g} or one value >= {s['mode_share']:.0%}): "
                 f"{c['uniform_images']:,} (" + ", ".join(f"{k} {v}" for k, v in c["uniform_per_split"].items())
                 + f"; {c['uniform_and_duplicated']} of them in "
                 f"{c['duplicate_groups_of_uniform_images']} duplicate group(s))")
    return lines
