"""One training experiment end to end, into one run folder.

data -> label subset -> split -> (limit) -> tf.data -> model (-> NSL wrapper) -> fit
-> evaluate -> figures -> export. The run folder holds everything needed to compare or
reproduce it: ``config.json``, ``history.csv``, ``metrics.json``, ``classification_report.txt``,
``figures/*.png``, ``model/model.keras`` + ``model/saved_model/`` and ``checkpoints/`` (resume).
With ``config.label_noise`` > 0 it also holds ``label_noise.json`` (which training labels were
flipped, and how the trained model predicts those images).
"""
from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from fer_keras import plots
from fer_keras.adversarial import base_model, wrap_adversarial
from fer_keras.augment import augmenter_from_config
from fer_keras.config import ExperimentConfig
from fer_keras.data import FaceData, load_dataset, make_demo, parse_labels, split, stratified_indices
from fer_keras.data.pipeline import dataset_stats, images_only, make_dataset, to_pixels
from fer_keras.evaluation import evaluate, predict_probabilities
from fer_keras.export import check_exports, export_model
from fer_keras.label_noise import flip_labels, memorisation
from fer_keras.models import build_model, default_input_shape, input_mode
from fer_keras.runs import CONFIG_FILE, atomic_write_text, existing_run_dir, new_run_dir, read_json, write_json
from fer_keras.training import compile_model, fit, set_seed


def prepare_data(config: ExperimentConfig, log: Callable = print, return_noise: bool = False):
    """Load, subset, split and limit the data as ``config`` says; returns train/val/test.

    With ``config.label_noise`` > 0 a fraction of the *training* labels is flipped
    (:func:`fer_keras.label_noise.flip_labels`, seeded by ``config.seed``); validation and test
    keep their labels. ``return_noise=True`` returns ``(parts, noise)`` where ``noise`` is
    ``{"indices", "true_labels", "noisy_labels"}`` of the flipped training rows (None without noise).
    """
    if config.data is None:
        data = make_demo(config.demo_images_per_class, seed=0)
        log(f"No --data given: using the bundled synthetic demo set ({len(data)} drawn 48x48 faces, "
            f"7 classes). Pass --data PATH for FER2013 (CSV or Kaggle folders).")
    else:
        start = time.time()
        data = load_dataset(config.data)
        log(f"Loaded {len(data):,} images from {config.data} in {time.time() - start:.1f} s")
    data = data.with_classes(parse_labels(config.labels))
    parts = split(data, config.split, seed=42)
    parts["train"].check_classes_present(f"{config.data or 'demo'} (training split)")
    if config.limit:
        parts["train"] = parts["train"].take(stratified_indices(parts["train"].labels, config.limit, config.seed))
    if config.eval_limit:
        for name in ("val", "test"):
            parts[name] = parts[name].take(stratified_indices(parts[name].labels, config.eval_limit, config.seed))
    if config.split == "usage" and not np.any(data.usage == "PrivateTest"):
        log("Note: no PrivateTest rows, so validation and test are both PublicTest.")
    noise = None
    if config.label_noise:
        train = parts["train"]
        noisy, flipped = flip_labels(train.labels, config.label_noise, config.label_noise_mode,
                                     train.num_classes, config.seed, train.class_names)
        idx = np.flatnonzero(flipped)
        noise = {"indices": idx, "true_labels": train.labels[idx], "noisy_labels": noisy[idx]}
        parts["train"] = train.take(np.arange(len(train)))
        parts["train"].labels = noisy
        log(f"Label noise: flipped {len(idx):,} of {len(train):,} training labels "
            f"({config.label_noise_mode}, {config.label_noise:.0%})")
    return (parts, noise) if return_noise else parts


def run_experiment(config: ExperimentConfig, resume: str | Path | None = None,
                   log: Callable = print) -> Path:
    """Train and evaluate as ``config`` says; return the run folder.

    ``resume`` is an earlier run folder: its saved config is used and training continues from
    its last finished epoch.
    """
    if resume is not None:
        run_dir = existing_run_dir(resume)
        config = ExperimentConfig.from_dict(read_json(run_dir / CONFIG_FILE)["config"])
        log(f"Resuming {run_dir}")
    set_seed(config.seed, config.deterministic)
    parts, noise = prepare_data(config, log, return_noise=True)
    class_names = parts["train"].class_names
    shape = tuple(config.input_shape or default_input_shape(config.model))
    mode = input_mode(config.model)
    mean, std = dataset_stats(parts["train"]) if config.standardize == "dataset" else (None, None)
    if resume is None:
        run_dir = new_run_dir(config.out, f"{config.model}-{'nsl' if config.adversarial else 'plain'}"
                                          + (f"-{config.augment}" if config.augment != "basic" else "")
                                          + (f"-noise{config.label_noise:g}" if config.label_noise else ""))
    epochs = config.resolved_epochs
    write_json(run_dir / CONFIG_FILE, {
        "config": config.to_dict(),
        "resolved": {"epochs": epochs, "input_shape": list(shape), "input_mode": mode,
                     "class_names": list(class_names), "dataset_mean": mean, "dataset_std": std,
                     "images": {k: len(v) for k, v in parts.items()},
                     "class_counts": {k: v.class_counts() for k, v in parts.items()}},
        "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                        "machine": platform.machine(), "cpus": len(os.sched_getaffinity(0))},
    })
    log(f"Run folder: {run_dir}")
    log("Images: " + ", ".join(f"{k} {len(v):,}" for k, v in parts.items())
        + f"; classes: {', '.join(class_names)}")

    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    plots.class_distribution(parts, figures / "class_distribution.png")
    plots.sample_grid(parts["train"], figures / "samples.png", seed=config.seed)

    augment = augmenter_from_config(config)
    if augment is not None:
        _augmented_samples(parts["train"], augment, shape, config.seed, figures / "augmented_samples.png")
    common = dict(input_shape=shape, batch_size=config.batch_size, mode=mode,
                  standardize=config.standardize, mean=mean, std=std, seed=config.seed)
    train_ds = make_dataset(parts["train"], training=True, augment=augment, **common)
    val_ds = make_dataset(parts["val"], **common)
    test_ds = make_dataset(parts["test"], **common)

    model_kwargs = {"noise_layers": config.noise_layers} if config.noise_layers else {}
    model = build_model(config.model, shape, len(class_names), **model_kwargs)
    if config.adversarial:
        model = wrap_adversarial(model, config.multiplier, config.step, config.grad_norm)
    compile_model(model, config.optimizer, config.lr, config.momentum, config.jit_compile)
    how = (f"NSL adversarial regularisation (multiplier {config.multiplier:g}, step {config.step:g}, "
           f"{config.grad_norm})" if config.adversarial else "plain training")
    log(f"Model {config.model}: {base_model(model).count_params():,} parameters; {how}; "
        f"{epochs} epochs, batch {config.batch_size}")

    try:
        history = fit(model, train_ds, val_ds, epochs, run_dir, config.early_stopping, config.reduce_lr)
    except KeyboardInterrupt:
        log(f"Interrupted. Continue with: --resume {run_dir}")
        raise
    plots.training_curves(history, figures / "training_curves.png")

    log("Evaluating on the test split ...")
    results = evaluate(model, test_ds, class_names)
    labels, probs = results.pop("_labels"), results.pop("_probabilities")
    atomic_write_text(run_dir / "classification_report.txt", results.pop("report"))
    plots.confusion_matrix(results["confusion_matrix"], class_names, figures / "confusion_matrix.png")
    plots.misclassified_gallery(parts["test"].images, labels, probs, class_names, figures / "misclassified.png")

    paths = export_model(model, run_dir / "model", input_mode=mode, standardize=config.standardize, mean=mean, std=std)
    sample = next(iter(images_only(test_ds).take(1))).numpy()
    # the same faces as raw uint8 (test_ds is not shuffled), in the model's channel count
    raw = parts["test"].images[:len(sample)]
    raw = to_pixels(raw, (*raw.shape[1:3], shape[-1])).numpy().round().astype(np.uint8)
    epoch_seconds = sum(r.get("seconds", 0.0) for r in history)
    train_seconds = sum(r.get("train_seconds", r.get("seconds", 0.0)) for r in history)
    metrics = {
        **results,
        "export_check": check_exports(model, paths, sample, pixels=raw,
                                      input_mode=mode, standardize=config.standardize, mean=mean, std=std),
        "training": {"epochs": len(history), "seconds": round(epoch_seconds, 1),
                     # training images per second of training wall time (validation excluded)
                     "images_per_second": round(len(parts["train"]) * len(history) / max(train_seconds, 1e-9), 1),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
    }
    if noise is not None:
        train_eval = make_dataset(parts["train"].take(noise["indices"]), **common)
        memo = memorisation(predict_probabilities(model, train_eval), noise["true_labels"], noise["noisy_labels"])
        metrics["label_noise"] = {"fraction": config.label_noise, "mode": config.label_noise_mode, **memo}
        write_json(run_dir / "label_noise.json", {**metrics["label_noise"], **noise})
        log(f"Flipped training images: {memo['fraction_true']:.1%} predicted as their true label, "
            f"{memo['fraction_noisy']:.1%} as their noisy label")
    write_json(run_dir / "metrics.json", metrics)
    log("Test: " + ", ".join(f"{k} {v:.4f}" for k, v in results["evaluate"].items())
        + f"; {results['wrong']} of {results['images']} wrong; macro F1 {results['macro_f1']:.4f}")
    return run_dir


def _augmented_samples(train: FaceData, augment, shape, seed: int, path, count: int = 16) -> None:
    """Figure: ``count`` training faces before and after one pass of ``augment`` (as one batch)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(train), min(count, len(train)), replace=False))
    before = to_pixels(train.images[idx], shape)
    labels = tf.constant(train.one_hot()[idx])
    after, mixed = augment(before, labels)
    plots.augmented_samples(before.numpy(), after.numpy(), labels.numpy(), mixed.numpy(),
                            train.class_names, path, title=f"Augmentation: {augment.name}")
