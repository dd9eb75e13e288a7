"""One training experiment end to end, into one run folder (:class:`fer_keras.runs.RunFolder`).

data (:func:`fer_keras.data.prepare.prepare_data`) -> tf.data -> model from the registry
(-> NSL wrapper) -> fit (checkpointed, exact resume, time budget) -> evaluate -> figures ->
export. The run folder holds everything needed to compare or reproduce it; its layout is
described in :mod:`fer_keras.runs`. With ``data.label_noise`` > 0 it also holds
``label_noise.json`` (which training labels were flipped, and how the trained model predicts
those images); with ``distil.teacher``, the teacher's probabilities of the training faces
(:mod:`fer_keras.training.distil`). Under a ``training.strategy`` other than ``none`` (:mod:`fer_keras.distribute`)
the model is built and trained in the strategy's scope, then evaluated and exported by the
chief alone, from a copy built outside it.
"""
from __future__ import annotations

import shutil
import resource
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from fer_keras import plots, pretrained
from fer_keras.augment import make_augmenter
from fer_keras.config import ExperimentConfig
from fer_keras.data import FaceData
from fer_keras.data.dataset import describe_split
from fer_keras.data.pipeline import InputSpec, TrainingStream, dataset_stats, images_only, to_pixels
from fer_keras.data.prepare import prepare_data
from fer_keras.distribute import (check_batch, describe, is_chief, is_distributed, make_strategy, record,
                                  synchronize_batch_norm, task, weights_digest)
from fer_keras.errors import ConfigError, FerKerasError
from fer_keras.evaluation import evaluate, memorisation, predict_probabilities, scores
from fer_keras.export import check_exports, export_model
from fer_keras.files import atomic_write_text, write_json
from fer_keras.model_files import load_keras
from fer_keras.models import get_spec
from fer_keras.nsl import base_model, wrap_adversarial
from fer_keras.precision import precision_policy, resolve_precision
from fer_keras.runs import CONFUSION_FIGURE, CURVES_FIGURE, LABEL_NOISE_FILE, RunFolder, resolve_model
from fer_keras.training import checkpointed_randomness, compile_model, fit, read_state, schedule_for, set_seed
from fer_keras.training.distil import training_targets
from fer_keras.training.held_out import held_out_seen_by


def _tee(log: Callable, path: Path) -> Callable:
    """``log`` that also appends each message, time-stamped, to ``path`` (a run's log.txt)."""
    def both(message: str = "") -> None:
        log(message)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
    return both


def run_name(config: ExperimentConfig) -> str:
    """The run folder's name after its time stamp, e.g. ``dcnn-nsl``, ``vgg-plain-basic+flip+crop`` or
    ``dcnn-plain-basic+flip-distil`` (trained on a teacher's soft targets)."""
    return (f"{config.model.name}-{'nsl' if config.adversarial.enabled else 'plain'}"
            + (f"-{config.augment.name}" if config.augment.name != "basic" else "")
            + (f"-noise{config.data.label_noise:g}" if config.data.label_noise else "")
            + ("-distil" if config.distil.teacher else ""))


def resume_config(run: RunFolder, extend_epochs: int | None = None) -> ExperimentConfig:
    """The saved config of a run to resume; ``extend_epochs`` raises the epochs of a constant-LR run."""
    config = run.config
    if extend_epochs is not None and extend_epochs != config.resolved_epochs:
        if config.optimizer.schedule != "constant":
            raise ConfigError(f"--epochs {extend_epochs}: the run being resumed has a {config.optimizer.schedule} "
                              f"schedule over {config.resolved_epochs} epochs; start a new run to change it")
        if extend_epochs < len(run.history()):
            raise ConfigError(f"--epochs {extend_epochs}: the run has already trained more epochs")
        config = config.replace(training__epochs=extend_epochs)
    return config


def source_weights(source: str) -> list:
    """The weights of ``source`` (pretrained name, run folder or ``.keras`` file; loaded safely:
    refused in one line when it could run code)."""
    file = pretrained.path(source, "keras") if pretrained.is_name(source) else resolve_model(source)
    return load_keras(file).get_weights()


def copy_weights(source: str, model: tf.keras.Model, weights: list | None = None) -> None:
    """Set ``model``'s weights to those of ``source`` (``weights``: already read by
    :func:`source_weights`), which must have the same architecture; one-line ConfigError if not."""
    mine, theirs = model.get_weights(), source_weights(source) if weights is None else weights
    if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs)):
        first = next((f"{a.shape} vs {b.shape}" for a, b in zip(mine, theirs) if a.shape != b.shape),
                     f"{len(mine)} vs {len(theirs)} weight arrays")
        raise ConfigError(f"--init-from {source}: its weights do not fit model {model.name} ({first}); "
                          "pass a model of the same architecture, input and classes")
    model.set_weights(theirs)


def _seen_line(record: dict) -> str:
    if record.get("not_checked"):
        return f"not checked whether it trained on this run's validation or test images: {record['not_checked']}"
    val, test = record["val_images_it_trained_on"], record["test_images_it_trained_on"]
    line = f"it trained on {val:,} of this run's validation and {test:,} of its test images"
    return line + ("" if val == test == 0 else " (those figures are not held out)")


def run_experiment(config: ExperimentConfig, resume: str | Path | None = None,
                   log: Callable = print, time_budget: float | None = None,
                   extend_epochs: int | None = None) -> RunFolder | None:
    """Train and evaluate as ``config`` says; return the run folder (None on a multi-worker run's
    non-chief worker, which trains in a temporary folder and leaves the run folder to the chief).

    ``resume`` is an earlier run folder: its saved config is used and training continues exactly
    from its last finished epoch (``extend_epochs`` raises the epoch count of a constant-LR run).
    ``time_budget`` (minutes) stops training at an epoch boundary before it would run over; the
    run folder then has no test figures yet and ``--resume`` continues it (the state is in
    ``RUN/checkpoints/state.json``; progress lines also go to ``RUN/log.txt``).
    Under ``--strategy multiworker`` every worker is given the same arguments (and, resuming, the
    same run folder, on a shared filesystem); the chief alone writes that folder.
    """
    runs: list[RunFolder] = []  # the folder this call writes (and locks), once known
    scratch: list[RunFolder] = []  # a non-chief worker's temporary folder, removed at the end
    try:
        return _run_experiment(config, resume, log, time_budget, extend_epochs, runs, scratch)
    except FerKerasError:
        for run in runs:  # a new run stopped by a user mistake before its first checkpoint leaves no folder
            if resume is None and read_state(run.path) is None:
                run.unlock()
                shutil.rmtree(run.path, ignore_errors=True)
        raise
    finally:
        for run in runs:  # another process (or call) may continue it now
            run.unlock()
        for run in scratch:
            shutil.rmtree(run.path, ignore_errors=True)


def _run_experiment(config, resume, log, time_budget, extend_epochs, runs, scratch) -> RunFolder | None:
    source = RunFolder.open(resume, "--resume") if resume is not None else None
    if source is not None:
        config = resume_config(source, extend_epochs)
    strategy = make_strategy(config.training.strategy)  # first: multiworker needs TensorFlow not yet started
    chief, distributed = is_chief(strategy), is_distributed(strategy)
    if not chief:
        log = _prefixed(log, "{} {}: ".format(*task(strategy)))
    check_batch(strategy, config.training.batch_size)
    if source is not None:
        _check_replicas(source, strategy)
        if chief:
            run = RunFolder.open(resume, "--resume", writable=True)
            run.lock("--resume")
            runs.append(run)
        else:
            run = _worker_folder(strategy, source)
            scratch.append(run)
        log = _tee(log, run.log_file)
        log(f"Resuming {source.path}")
    set_seed(config.seed, config.training.deterministic)
    parts, extras = prepare_data(config.data, config.seed, log, return_extras=True)
    noise = extras["noise"]
    class_names = parts["train"].class_names
    spec = get_spec(config.model.name)
    shape = spec.input_shape_for(config.model.input_size)
    standardize = config.model.standardize
    mean, std = dataset_stats(parts["train"]) if standardize == "dataset" else (None, None)
    inputs = InputSpec(shape, spec.input_mode, standardize, mean, std, class_names)
    if config.training.jit_compile and spec.cpu_xla_problem and not tf.config.list_physical_devices("GPU"):
        raise ConfigError(f"--jit: {spec.cpu_xla_problem}; train without --jit (or on a GPU)")
    donor = None
    if config.model.init_from and resume is None:  # read (and refused if unsafe) before any run folder exists
        donor = source_weights(config.model.init_from)
    if resume is None and chief:
        run = RunFolder.create(config.out, run_name(config))
        run.lock()
        runs.append(run)
        log = _tee(log, run.log_file)
    elif resume is None:
        run = _worker_folder(strategy)
        scratch.append(run)
        log = _tee(log, run.log_file)
    epochs = config.resolved_epochs
    splits = describe_split(parts)
    init = None
    if config.model.init_from:  # a resumed run keeps the check made when it started; the chief checks
        init = (source.resolved.get("init_from") if source is not None else
                held_out_seen_by(config.model.init_from, config, parts) if chief else
                {"source": config.model.init_from, "not_checked": "the chief checks it"})
    targets = teacher = None
    if config.distil.teacher:
        targets, teacher = training_targets(config, run, parts, log)
    run.write_config(config, {
        "epochs": epochs, "input_shape": list(shape), "input_mode": spec.input_mode,
        "class_names": list(class_names), "dataset_mean": mean, "dataset_std": std,
        "images": {k: len(v) for k, v in parts.items()},
        "class_counts": {k: v.class_counts() for k, v in parts.items()}, "splits": splits,
        "distribution": record(strategy, config.training.strategy), **({"init_from": init} if init else {}),
        **({"distil": teacher} if teacher else {})})
    log(f"Run folder: {run.path}")
    log("Images: " + ", ".join(f"{k} {len(v):,}" for k, v in parts.items())
        + f"; classes: {', '.join(class_names)}")
    log("Splits: " + "; ".join(f"{k} from " + ", ".join(f"{u} {c:,}" for u, c in splits[k]["usage"].items())
                               for k in ("train", "val", "test")))

    figures = run.figures_dir
    figures.mkdir(exist_ok=True)
    if resume is None and chief:
        plots.class_distribution(parts, figures / "class_distribution.png")
        plots.sample_grid(parts["train"], figures / "samples.png", seed=config.seed)

    augment = make_augmenter(config.augment, spec.basic_augment, config.seed)
    if augment is not None and resume is None and chief:
        _augmented_samples(parts["train"], augment, shape, config.seed, figures / "augmented_samples.png")
    batch = config.training.batch_size
    train_stream = TrainingStream(parts["train"], shape, batch, augment=augment, seed=config.seed, targets=targets,
                                  **inputs.scaling)
    val_ds, test_ds = inputs.dataset(parts["val"], batch), inputs.dataset(parts["test"], batch)

    precision = resolve_precision(config.training.precision)
    adv, opt = config.adversarial, config.optimizer
    lr = schedule_for(opt, train_stream.steps_per_epoch, epochs)
    # layers keep the policy they are built with (compile adds loss scaling), variables their strategy
    with strategy.scope(), precision_policy(precision):
        with checkpointed_randomness():
            model = spec.build(shape, len(class_names), noise_layers=config.model.noise_layers)
        if config.model.init_from and resume is None:  # a resumed run restores its own weights
            copy_weights(config.model.init_from, model, donor)
            log(f"Weights initialised from {config.model.init_from}; " + _seen_line(init))
        if distributed:
            synchronize_batch_norm(model)
        model = _wrap_and_compile(model, config, lr)
    how = (f"NSL adversarial regularisation (multiplier {adv.multiplier:g}, step {adv.step:g}, "
           f"{adv.grad_norm})" if adv.enabled else "plain training")
    log(f"Model {config.model.name}: {base_model(model).count_params():,} parameters; {how}; "
        f"{epochs} epochs, batch {batch}, {opt.name} lr {opt.lr:g} ({opt.schedule}"
        f"{' /10 after epochs ' + ','.join(map(str, opt.lr_drops)) if opt.lr_drops else ''})"
        + (" Nesterov" if opt.nesterov else "") + (f", weight EMA {opt.ema:g}" if opt.ema else "")
        + (f", label smoothing {config.training.label_smoothing:g}" if config.training.label_smoothing else "")
        + (f", distilled from {config.distil.teacher} (T {config.distil.temperature:g}, label weight "
           f"{config.distil.label_weight:g})" if teacher else "")
        + (f", augment {config.augment.name}" if config.augment.name != "none" else "")
        + (f", {precision}" if precision != "float32" else ""))
    if distributed:
        log("Distributed: " + describe(strategy, config.training.strategy, batch))

    t = config.training
    try:
        result = fit(model, train_stream, val_ds, epochs, run, t.early_stopping, t.reduce_lr,
                     restore_best=t.restore_best, time_budget=time_budget, log=log)
    except KeyboardInterrupt:
        log(f"Interrupted. Continue with: --resume {source.path if source is not None else run.path}")
        raise
    history = result["history"]
    if distributed:  # read once, by every worker together: reading batch-norm statistics is a collective op
        weights = base_model(model).get_weights()
        log(f"Trained weights: sha256 {weights_digest(weights)} (the same on every worker)")
    if not chief:
        log("Training done; the chief evaluates, exports and writes the run folder")
        return None
    if result["status"] == "time_budget":
        log(f"Time budget of {time_budget:g} min reached after epoch {len(history)} of {epochs}; "
            f"checkpoint saved. Continue with: --resume {run.path}")
        return run
    if result["best_epoch"] is not None:
        log(f"Restored the weights of epoch {result['best_epoch'] + 1} (best validation loss)")
    plots.training_curves(history, figures / CURVES_FIGURE)
    if distributed:  # evaluated and exported as if trained on one device
        model = _local_copy(weights, config, spec, shape, len(class_names), lr)

    log("Evaluating on the test split ...")
    tta = config.evaluation.tta
    results = evaluate(model, test_ds, class_names, tta=tta)
    labels, probs = results.pop("_labels"), results.pop("_probabilities")
    atomic_write_text(run.report_file, results.pop("report"))
    plots.confusion_matrix(results["confusion_matrix"], class_names, figures / CONFUSION_FIGURE)
    plots.misclassified_gallery(parts["test"].images, labels, probs, class_names, figures / "misclassified.png")
    in_training = extras["test_in_training"]
    dedup = scores(labels[~in_training], probs[~in_training], class_names)
    dedup.pop("report")
    results["test_deduplicated"] = {"removed": int(in_training.sum()), **dedup}

    paths = export_model(model, run.model_dir, inputs)
    sample = next(iter(images_only(test_ds).take(1))).numpy()
    # the same faces as raw uint8 (test_ds is not shuffled), in the model's channel count
    raw = parts["test"].images[:len(sample)]
    raw = to_pixels(raw, (*raw.shape[1:3], shape[-1])).numpy().round().astype(np.uint8)
    epoch_seconds = sum(r.get("seconds", 0.0) for r in history)
    train_seconds = sum(r.get("train_seconds", r.get("seconds", 0.0)) for r in history)
    metrics = {
        **results,
        "export_check": check_exports(model, paths, sample, pixels=raw, inputs=inputs),
        "training": {"epochs": len(history), "seconds": round(epoch_seconds, 1),
                     "best_epoch": result["best_epoch"], "status": result["status"],
                     # training images per second of training wall time (validation excluded)
                     "images_per_second": round(len(parts["train"]) * len(history) / max(train_seconds, 1e-9), 1),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
    }
    if noise is not None:
        train_eval = inputs.dataset(parts["train"].take(noise["indices"]), batch)
        memo = memorisation(predict_probabilities(model, train_eval), noise["true_labels"], noise["noisy_labels"])
        metrics["label_noise"] = {"fraction": config.data.label_noise, "mode": config.data.label_noise_mode, **memo}
        write_json(run.file(LABEL_NOISE_FILE), {**metrics["label_noise"], **noise})
        log(f"Flipped training images: {memo['fraction_true']:.1%} predicted as their true label, "
            f"{memo['fraction_noisy']:.1%} as their noisy label")
    write_json(run.metrics_file, metrics)
    log("Test: " + ", ".join(f"{k} {v:.4f}" for k, v in results["evaluate"].items())
        + f"; accuracy {results['accuracy']:.4f}" + (f" (with {tta} TTA)" if tta != "none" else "")
        + f"; {results['wrong']} of {results['images']} wrong; macro F1 {results['macro_f1']:.4f}; "
        f"without the {in_training.sum()} test images also in Training: accuracy {dedup['accuracy']:.4f}")
    return run


def _wrap_and_compile(model: tf.keras.Model, config: ExperimentConfig, lr) -> tf.keras.Model:
    """``model`` NSL-wrapped if ``config`` says so, compiled as ``config`` trains."""
    adv, opt, t = config.adversarial, config.optimizer, config.training
    if adv.enabled:
        model = wrap_adversarial(model, adv)
    return compile_model(model, opt.name, lr, opt.momentum, t.jit_compile, t.label_smoothing, opt.nesterov, opt.ema)


def _local_copy(weights: list, config: ExperimentConfig, spec, shape, num_classes: int, lr):
    """The model trained in a strategy's scope rebuilt outside it by its builder, with its trained
    ``weights``, wrapped and compiled as for training: the model a chief evaluates and exports,
    the same in form as one trained on a single device."""
    with precision_policy(resolve_precision(config.training.precision)):
        model = spec.build(shape, num_classes, noise_layers=config.model.noise_layers)
        model.set_weights(weights)
        return _wrap_and_compile(model, config, lr)


def _worker_folder(strategy, source: RunFolder | None = None) -> RunFolder:
    """A non-chief worker's own folder for what every worker writes (checkpoints, history), in the
    temporary directory; resuming ``source``, it starts as a copy of its checkpoints and history
    (``source`` is only read: the chief writes it)."""
    kind, index = task(strategy)
    run = RunFolder(tempfile.mkdtemp(prefix=f"fer_keras-{kind}{index}-"))
    if source is not None:
        if source.checkpoint_dir.is_dir():
            shutil.copytree(source.checkpoint_dir, run.checkpoint_dir)
        if source.history_file.is_file():
            shutil.copy2(source.history_file, run.history_file)
    return run


def _check_replicas(source: RunFolder, strategy) -> None:
    """A one-line ConfigError unless ``strategy`` has as many replicas as the run being resumed had
    (another count splits the batches differently, so the resumed run would not be exact)."""
    saved = source.resolved.get("distribution", {}).get("replicas", 1)
    now = strategy.num_replicas_in_sync
    if saved != now:
        raise ConfigError(f"--resume {source.path}: it trained on {saved} replica(s) "
                          f"(--strategy {source.config.training.strategy}) and this machine gives {now}; an exact "
                          f"resume needs the same count (devices, FER_KERAS_CPU_DEVICES, TF_CONFIG's workers)")


def _prefixed(log: Callable, prefix: str) -> Callable:
    """``log`` with ``prefix`` before each message (a non-chief worker's lines)."""
    return lambda message="": log(prefix + message)


def _augmented_samples(train: FaceData, augment, shape, seed: int, path, count: int = 16) -> None:
    """Figure: ``count`` training faces before and after one pass of ``augment`` (as one batch)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(train), min(count, len(train)), replace=False))
    before = to_pixels(train.images[idx], shape)
    labels = tf.constant(train.one_hot()[idx])
    after, mixed = augment(before, labels)
    plots.augmented_samples(before.numpy(), after.numpy(), labels.numpy(), mixed.numpy(),
                            train.class_names, path, title=f"Augmentation: {augment.name}")
