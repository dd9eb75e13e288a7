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
from fer_keras.data.dataset import describe_split
from fer_keras.data.hygiene import duplicates_of
from fer_keras.data.pipeline import TrainingStream, dataset_stats, images_only, make_dataset, to_pixels
from fer_keras.evaluation import evaluate, predict_probabilities, scores
from fer_keras.export import check_exports, export_model
from fer_keras.label_noise import flip_labels, memorisation
from fer_keras.models import build_model, default_input_shape, input_mode
from fer_keras.errors import ConfigError
from fer_keras.runs import CONFIG_FILE, atomic_write_text, existing_run_dir, new_run_dir, read_json, write_json
from fer_keras.training import checkpointed_randomness, compile_model, fit, learning_rate, read_history, set_seed


def prepare_data(config: ExperimentConfig, log: Callable = print, return_extras: bool = False):
    """Load, subset, split and limit the data as ``config`` says; returns train/val/test.

    With ``config.label_noise`` > 0 a fraction of the *training* labels is flipped
    (:func:`fer_keras.label_noise.flip_labels`, seeded by ``config.seed``); validation and test
    keep their labels. ``return_extras=True`` returns ``(parts, extras)``: ``extras["noise"]`` is
    ``{"indices", "true_labels", "noisy_labels"}`` of the flipped training rows (None without
    noise) and ``extras["test_in_training"]`` is a bool mask of the test images whose pixels also
    occur in the training data as loaded (Training rows of train and val, before
    ``--drop-test-duplicates``), for the de-duplicated test figures.
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
    parts = split(data, config.split, seed=42, val_fraction=config.val_fraction)
    parts["train"].check_classes_present(f"{config.data or 'demo'} (training split)")
    val_training = parts["val"].usage == "Training"
    training_pixels = np.concatenate([parts["train"].images, parts["val"].images[val_training]])
    if config.drop_test_duplicates:
        held_out = np.concatenate([parts["val"].images, parts["test"].images])
        copies = duplicates_of(parts["train"], held_out)
        parts["train"] = parts["train"].take(~copies)
        log(f"Dropped {int(copies.sum()):,} training images whose pixels also occur in validation or test")
    if config.limit:
        parts["train"] = parts["train"].take(stratified_indices(parts["train"].labels, config.limit, config.seed))
    if config.eval_limit:
        for name in ("val", "test"):
            parts[name] = parts[name].take(stratified_indices(parts[name].labels, config.eval_limit, config.seed))
    if describe_split(parts)["test_in_selection"]:
        log(f"Note: with --split {config.split} the validation images (early stopping, LR schedule, "
            "best epoch) include test images, so the test figures are not held-out figures.")
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
    extras = {"noise": noise, "test_in_training": duplicates_of(parts["test"], training_pixels)}
    return (parts, extras) if return_extras else parts


def _tee(log: Callable, path: Path) -> Callable:
    """``log`` that also appends each message, time-stamped, to ``path`` (a run's log.txt)."""
    def both(message: str = "") -> None:
        log(message)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
    return both


def run_experiment(config: ExperimentConfig, resume: str | Path | None = None,
                   log: Callable = print, time_budget: float | None = None,
                   extend_epochs: int | None = None) -> Path:
    """Train and evaluate as ``config`` says; return the run folder.

    ``resume`` is an earlier run folder: its saved config is used and training continues exactly
    from its last finished epoch (``extend_epochs`` raises the epoch count of a constant-LR run).
    ``time_budget`` (minutes) stops training at an epoch boundary before it would run over; the
    run folder then has no test figures yet and ``--resume`` continues it (the state is in
    ``RUN/checkpoints/state.json``; progress lines also go to ``RUN/log.txt``).
    """
    if resume is not None:
        run_dir = existing_run_dir(resume)
        saved = read_json(run_dir / CONFIG_FILE)
        config = ExperimentConfig.from_dict(saved["config"])
        if extend_epochs is not None and extend_epochs != config.resolved_epochs:
            if config.lr_schedule != "constant":
                raise ConfigError(f"--epochs {extend_epochs}: the run being resumed has a {config.lr_schedule} "
                                  f"schedule over {config.resolved_epochs} epochs; start a new run to change it")
            if extend_epochs < len(read_history(run_dir / "history.csv")):
                raise ConfigError(f"--epochs {extend_epochs}: the run has already trained more epochs")
            config.epochs = extend_epochs
        log = _tee(log, run_dir / "log.txt")
        log(f"Resuming {run_dir}")
    set_seed(config.seed, config.deterministic)
    parts, extras = prepare_data(config, log, return_extras=True)
    noise = extras["noise"]
    class_names = parts["train"].class_names
    shape = tuple(config.input_shape or default_input_shape(config.model))
    mode = input_mode(config.model)
    mean, std = dataset_stats(parts["train"]) if config.standardize == "dataset" else (None, None)
    if resume is None:
        run_dir = new_run_dir(config.out, f"{config.model}-{'nsl' if config.adversarial else 'plain'}"
                                          + (f"-{config.augment}" if config.augment != "basic" else "")
                                          + (f"-noise{config.label_noise:g}" if config.label_noise else ""))
        log = _tee(log, run_dir / "log.txt")
    epochs = config.resolved_epochs
    splits = describe_split(parts)
    write_json(run_dir / CONFIG_FILE, {
        "config": config.to_dict(),
        "resolved": {"epochs": epochs, "input_shape": list(shape), "input_mode": mode,
                     "class_names": list(class_names), "dataset_mean": mean, "dataset_std": std,
                     "images": {k: len(v) for k, v in parts.items()},
                     "class_counts": {k: v.class_counts() for k, v in parts.items()},
                     "splits": splits},
        "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                        "machine": platform.machine(), "cpus": len(os.sched_getaffinity(0))},
    })
    log(f"Run folder: {run_dir}")
    log("Images: " + ", ".join(f"{k} {len(v):,}" for k, v in parts.items())
        + f"; classes: {', '.join(class_names)}")
    log("Splits: " + "; ".join(f"{k} from " + ", ".join(f"{u} {c:,}" for u, c in splits[k]["usage"].items())
                               for k in ("train", "val", "test")))

    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    if resume is None:
        plots.class_distribution(parts, figures / "class_distribution.png")
        plots.sample_grid(parts["train"], figures / "samples.png", seed=config.seed)

    augment = augmenter_from_config(config)
    if augment is not None and resume is None:
        _augmented_samples(parts["train"], augment, shape, config.seed, figures / "augmented_samples.png")
    common = dict(input_shape=shape, batch_size=config.batch_size, mode=mode,
                  standardize=config.standardize, mean=mean, std=std)
    train_stream = TrainingStream(parts["train"], augment=augment, seed=config.seed, **common)
    val_ds = make_dataset(parts["val"], **common)
    test_ds = make_dataset(parts["test"], **common)

    model_kwargs = {"noise_layers": config.noise_layers} if config.noise_layers else {}
    with checkpointed_randomness():
        model = build_model(config.model, shape, len(class_names), **model_kwargs)
    if config.adversarial:
        model = wrap_adversarial(model, config.multiplier, config.step, config.grad_norm)
    steps = train_stream.steps_per_epoch
    lr = learning_rate(config.lr, config.lr_schedule, steps * epochs, int(round(config.warmup_epochs * steps)))
    compile_model(model, config.optimizer, lr, config.momentum, config.jit_compile, config.label_smoothing)
    how = (f"NSL adversarial regularisation (multiplier {config.multiplier:g}, step {config.step:g}, "
           f"{config.grad_norm})" if config.adversarial else "plain training")
    log(f"Model {config.model}: {base_model(model).count_params():,} parameters; {how}; "
        f"{epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr:g} ({config.lr_schedule})"
        + (f", label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
        + (f", augment {config.augment}" if config.augment != "none" else ""))

    try:
        result = fit(model, train_stream, val_ds, epochs, run_dir, config.early_stopping, config.reduce_lr,
                     restore_best=config.restore_best, time_budget=time_budget, log=log)
    except KeyboardInterrupt:
        log(f"Interrupted. Continue with: --resume {run_dir}")
        raise
    history = result["history"]
    if result["status"] == "time_budget":
        log(f"Time budget of {time_budget:g} min reached after epoch {len(history)} of {epochs}; "
            f"checkpoint saved. Continue with: --resume {run_dir}")
        return run_dir
    if result["best_epoch"] is not None:
        log(f"Restored the weights of epoch {result['best_epoch'] + 1} (best validation loss)")
    plots.training_curves(history, figures / "training_curves.png")

    log("Evaluating on the test split ...")
    results = evaluate(model, test_ds, class_names, tta=config.tta)
    labels, probs = results.pop("_labels"), results.pop("_probabilities")
    atomic_write_text(run_dir / "classification_report.txt", results.pop("report"))
    plots.confusion_matrix(results["confusion_matrix"], class_names, figures / "confusion_matrix.png")
    plots.misclassified_gallery(parts["test"].images, labels, probs, class_names, figures / "misclassified.png")
    in_training = extras["test_in_training"]
    dedup = scores(labels[~in_training], probs[~in_training], class_names)
    dedup.pop("report")
    results["test_deduplicated"] = {"removed": int(in_training.sum()), **dedup}

    paths = export_model(model, run_dir / "model", input_mode=mode, standardize=config.standardize, mean=mean, std=std,
                         class_names=class_names)
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
                     "best_epoch": result["best_epoch"], "status": result["status"],
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
        + f"; accuracy {results['accuracy']:.4f}" + (f" (with {config.tta} TTA)" if config.tta != "none" else "")
        + f"; {results['wrong']} of {results['images']} wrong; macro F1 {results['macro_f1']:.4f}; "
        f"without the {in_training.sum()} test images also in Training: accuracy {dedup['accuracy']:.4f}")
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
