"""Optimizer, learning-rate schedule and compilation (plain or NSL-wrapped models)."""
from __future__ import annotations


import tensorflow as tf

from fer_keras.config import LR_SCHEDULES, OPTIMIZERS
from fer_keras.errors import ConfigError


def learning_rate(lr: float, schedule: str = "constant", total_steps: int | None = None,
                  warmup_steps: int = 0, final_fraction: float = 0.01, drop_steps=()):
    """A learning rate or schedule (per optimizer step).

    ``"cosine"``: linear warm-up over ``warmup_steps``, then cosine decay to ``lr * final_fraction``
    at ``total_steps``. ``"step"``: ``lr``, divided by 10 from each of ``drop_steps`` on (0-based
    optimizer steps: a drop after epoch E is at step E x steps per epoch). A schedule is a
    function of the optimizer's step count, so it resumes exactly.
    """
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"--lr-schedule {schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
    if schedule == "constant":
        return lr
    if not total_steps:
        raise ConfigError(f"a {schedule} schedule needs the number of training steps")
    if schedule == "step":
        drops = [int(d) for d in drop_steps]
        if not drops or any(not 0 < d < total_steps for d in drops):
            raise ConfigError(f"--lr-drops: every drop must fall inside the run's {total_steps} steps (its epochs)")
        # optimizer step k (0-based) trains batch k; PiecewiseConstantDecay keeps a value up to and
        # including its boundary, so the last step before each drop is the boundary
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
            [d - 1 for d in drops], [lr * 0.1 ** i for i in range(len(drops) + 1)])
    warmup = min(int(warmup_steps), int(total_steps) - 1)
    return tf.keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else lr, decay_steps=int(total_steps) - warmup, alpha=final_fraction,
        warmup_target=lr if warmup else None, warmup_steps=warmup)


def schedule_for(optimizer, steps_per_epoch: int, epochs: int):
    """:func:`learning_rate` for an :class:`~fer_keras.config.OptimizerConfig` over ``epochs`` epochs."""
    return learning_rate(optimizer.lr, optimizer.schedule, steps_per_epoch * epochs,
                         int(round(optimizer.warmup_epochs * steps_per_epoch)),
                         drop_steps=[e * steps_per_epoch for e in optimizer.lr_drops])


def make_optimizer(name: str = "adam", lr=1e-3, momentum: float = 0.9, nesterov: bool = False, ema: float = 0.0):
    """``lr`` is a float or a schedule (:func:`learning_rate`); ``momentum`` and ``nesterov`` are SGD's;
    ``ema`` > 0 keeps a moving average of the weights with that momentum per step (Keras' ``use_ema``;
    :func:`~fer_keras.training.fit` validates and ends with the average)."""
    average = {"use_ema": True, "ema_momentum": ema} if ema else {}
    if name == "adam":
        return tf.keras.optimizers.Adam(lr, **average)
    if name == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=momentum, nesterov=nesterov, **average)
    raise ConfigError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def compile_model(model: tf.keras.Model, optimizer="adam", lr=1e-3, momentum: float = 0.9,
                  jit_compile: bool = False, label_smoothing: float = 0.0, nesterov: bool = False,
                  ema: float = 0.0) -> tf.keras.Model:
    """Compile with categorical cross-entropy and the metric names NSL's evaluate prints.

    A plain model reports ``loss, categorical_crossentropy, categorical_accuracy``; an NSL
    model adds ``scaled_adversarial_loss``. ``label_smoothing`` applies to the training loss only
    (the reported ``categorical_crossentropy`` metric is against the true one-hot labels).
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, lr, momentum, nesterov, ema)
    metrics = [tf.keras.metrics.CategoricalAccuracy(name="categorical_accuracy")]
    if not hasattr(model, "base_model"):  # NSL adds its own cross-entropy metric
        metrics.insert(0, tf.keras.metrics.CategoricalCrossentropy(name="categorical_crossentropy"))
    model.compile(optimizer=optimizer,
                  loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=metrics, jit_compile=jit_compile)
    return model


def current_lr(model) -> float:
    """The learning rate of the optimizer's last step (the one the epoch ended with)."""
    opt = model.optimizer
    lr = opt.learning_rate
    if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(tf.maximum(opt.iterations - 1, 0)))
    return float(tf.keras.backend.get_value(lr))
