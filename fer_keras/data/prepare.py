"""From a :class:`~fer_keras.config.DataConfig` to train / val / test :class:`FaceData`.

load (or draw the demo set) -> keep the chosen classes -> split -> drop training copies of
held-out images (optional) -> limit (stratified samples) -> flip training labels (label-noise
study, optional). Every step that draws at random is seeded.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from fer_keras.data import load_dataset
from fer_keras.data.dataset import FaceData, describe_split, split, stratified_indices
from fer_keras.data.demo import make_demo
from fer_keras.data.hygiene import duplicates_of
from fer_keras.data.label_noise import flip_labels
from fer_keras.data.labels import parse_labels

#: The seed of the train / validation split itself, fixed so every run of a data set validates on
#: the same images whatever its ``seed``.
SPLIT_SEED = 42


def prepare_data(data, seed: int = 42, log: Callable = print, return_extras: bool = False, faces=None):
    """Load, subset, split and limit the data as ``data`` (a DataConfig) says; returns
    ``{"train", "val", "test"}`` FaceData. ``faces``: the data set of ``data.path``, when the caller
    has already loaded it (it is not read again).

    With ``data.label_noise`` > 0 a fraction of the *training* labels is flipped
    (:func:`fer_keras.data.label_noise.flip_labels`, seeded by ``seed``); validation and test
    keep their labels. ``return_extras=True`` returns ``(parts, extras)``: ``extras["noise"]`` is
    ``{"indices", "true_labels", "noisy_labels"}`` of the flipped training rows (None without
    noise) and ``extras["test_in_training"]`` is a bool mask of the test images whose pixels also
    occur in the training data as loaded (Training rows of train and val, before
    ``drop_test_duplicates``), for the de-duplicated test figures.
    """
    if faces is not None:
        pass
    elif data.path is None:
        faces = make_demo(data.demo_images_per_class, seed=0)
        log(f"No --data given: using the bundled synthetic demo set ({len(faces)} drawn 48x48 faces, "
            f"7 classes). Pass --data PATH for FER2013 (CSV or Kaggle folders).")
    else:
        start = time.time()
        faces = load_dataset(data.path, log=log)
        log(f"Loaded {len(faces):,} images from {data.path} in {time.time() - start:.1f} s")
    faces = faces.with_classes(parse_labels(data.labels))
    parts = split(faces, data.split, seed=SPLIT_SEED, val_fraction=data.val_fraction)
    parts["train"].check_classes_present(f"{data.path or 'demo'} (training split)")
    val_training = parts["val"].usage == "Training"
    training_pixels = np.concatenate([parts["train"].images, parts["val"].images[val_training]])
    if data.drop_test_duplicates:
        held_out = np.concatenate([parts["val"].images, parts["test"].images])
        copies = duplicates_of(parts["train"], held_out)
        parts["train"] = parts["train"].take(~copies)
        log(f"Dropped {int(copies.sum()):,} training images whose pixels also occur in validation or test")
    if data.limit:
        parts["train"] = parts["train"].take(stratified_indices(parts["train"].labels, data.limit, seed))
    if data.eval_limit:
        for name in ("val", "test"):
            parts[name] = parts[name].take(stratified_indices(parts[name].labels, data.eval_limit, seed))
    if describe_split(parts)["test_in_selection"]:
        log(f"Note: with --split {data.split} the validation images (early stopping, LR schedule, "
            "best epoch) include test images, so the test figures are not held-out figures.")
    noise = None
    if data.label_noise:
        train = parts["train"]
        noisy, flipped = flip_labels(train.labels, data.label_noise, data.label_noise_mode,
                                     train.num_classes, seed, train.class_names)
        idx = np.flatnonzero(flipped)
        noise = {"indices": idx, "true_labels": train.labels[idx], "noisy_labels": noisy[idx]}
        parts["train"] = train.take(np.arange(len(train)))
        parts["train"].labels = noisy
        log(f"Label noise: flipped {len(idx):,} of {len(train):,} training labels "
            f"({data.label_noise_mode}, {data.label_noise:.0%})")
    extras = {"noise": noise, "test_in_training": duplicates_of(parts["test"], training_pixels)}
    return (parts, extras) if return_extras else parts


def held_out_split(data, seed: int = 42, limit: int | None = None, part: str = "test") -> FaceData:
    """The held-out split ``part`` ("test" or "val") that ``data`` (a DataConfig) makes (label noise
    never touches it), or a stratified sample of ``limit`` of its images."""
    held_out = prepare_data(dataclasses.replace(data, label_noise=0.0), seed, log=lambda *a: None)[part]
    if limit:
        held_out = held_out.take(stratified_indices(held_out.labels, limit, seed))
    return held_out
