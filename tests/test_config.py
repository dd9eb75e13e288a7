"""Nested experiment configs: defaults, validation in one line, copies with changes, and the flat
config.json of earlier run folders read into the sections."""
import json

import pytest

from fer_keras.config import (AdversarialConfig, DataConfig, ExperimentConfig, ModelConfig, OptimizerConfig,
                              TrainingConfig, is_flat, nest_flat)
from fer_keras.errors import ConfigError

#: A run folder's config.json "config" as written before the sections existed (abridged).
FLAT = {"name": "nsl", "data": "../shared/data/fer2013", "labels": "all", "split": "usage", "model": "vgg",
        "input_shape": [48, 48, 1], "adversarial": False, "multiplier": 0.3, "step": 0.12, "epochs": 25,
        "batch_size": 64, "optimizer": "adam", "lr": 0.001, "lr_schedule": "cosine", "warmup_epochs": 1.0,
        "label_smoothing": 0.1, "tta": "flip", "augment": "basic+flip+crop", "drop_test_duplicates": True,
        "seed": 42, "out": "/work/runs/full", "randaugment_magnitude": [2.0, 4.0]}


def test_defaults_are_study_a():
    c = ExperimentConfig()
    assert (c.model.name, c.adversarial.enabled, c.adversarial.multiplier, c.adversarial.step) == ("dcnn", True, 0.3, 0.12)
    assert (c.optimizer.name, c.optimizer.lr, c.training.batch_size, c.augment.name) == ("adam", 1e-3, 50, "basic")
    assert c.resolved_epochs == 8 and c.replace(data__path="x").resolved_epochs == 30  # demo set / real data


def test_flat_configs_of_earlier_runs_load_into_the_sections():
    assert is_flat(FLAT) and not is_flat(ExperimentConfig().to_dict())
    c = ExperimentConfig.from_dict(FLAT)
    assert c.data == DataConfig(path="../shared/data/fer2013", drop_test_duplicates=True)
    assert c.model == ModelConfig(name="vgg", input_size=48)
    assert c.adversarial == AdversarialConfig(enabled=False)
    assert c.optimizer == OptimizerConfig(schedule="cosine", warmup_epochs=1.0)
    assert c.training.epochs == 25 and c.training.label_smoothing == 0.1 and c.evaluation.tta == "flip"
    assert c.augment.name == "basic+flip+crop" and c.out == "/work/runs/full"
    assert nest_flat(FLAT)["model"] == {"name": "vgg", "input_size": 48}


def test_round_trip_through_json():
    c = ExperimentConfig.from_dict(FLAT)
    assert ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_replace_validates_and_leaves_the_original():
    c = ExperimentConfig()
    d = c.replace(model__name="vgg", training__epochs=3, seed=7)
    assert (d.model.name, d.training.epochs, d.seed) == ("vgg", 3, 7) and c.model.name == "dcnn"
    with pytest.raises(ConfigError, match="--reduce-lr cannot change a cosine schedule"):
        c.replace(optimizer__schedule="cosine", training__reduce_lr=3)


@pytest.mark.parametrize("build, message", [
    (lambda: DataConfig(split="70/30"), "--split '70/30': use one of"),
    (lambda: DataConfig(val_fraction=1.5), "--val-fraction 1.5"),
    (lambda: DataConfig(limit=0), "--limit must be at least 1"),
    (lambda: ModelConfig(noise_layers=3), "--noise-layers must be 0, 1 or 2"),
    (lambda: OptimizerConfig(name="rmsprop"), "--optimizer 'rmsprop'"),
    (lambda: OptimizerConfig(lr=0), "--lr must be positive"),
    (lambda: OptimizerConfig(schedule="step"), "--lr-schedule step needs --lr-drops"),
    (lambda: OptimizerConfig(lr_drops=(20,)), "--lr-drops needs --lr-schedule step"),
    (lambda: OptimizerConfig(schedule="step", lr_drops=(26, 20)), "--lr-drops 26,20: give increasing epochs"),
    (lambda: ExperimentConfig().replace(optimizer__schedule="step", optimizer__lr_drops=(20, 30), training__epochs=30),
     r"--lr-drops 20,30: every drop must come before the run's last epoch \(30\)"),
    (lambda: AdversarialConfig(grad_norm="l3"), "--grad-norm 'l3'"),
    (lambda: TrainingConfig(label_smoothing=1.0), "--label-smoothing 1"),
    (lambda: ExperimentConfig().replace(augment__name="cutmix"), "--augment 'cutmix'"),
])
def test_bad_settings_are_one_line_naming_the_flag(build, message):
    with pytest.raises(ConfigError, match=message) as info:
        build()
    assert "\n" not in str(info.value)


def test_recipe_options_refuse_what_they_cannot_do():
    from fer_keras.config import ExperimentConfig

    base = ExperimentConfig()
    with pytest.raises(ConfigError, match="--nesterov is a setting of --optimizer sgd"):
        base.replace(optimizer__nesterov=True)
    with pytest.raises(ConfigError, match=r"--ema 1: give a momentum in \[0, 1\)"):
        base.replace(optimizer__ema=1.0)
    with pytest.raises(ConfigError, match="--ema is not supported with --strategy mirrored"):
        base.replace(optimizer__ema=0.999, training__strategy="mirrored")
    assert base.replace(optimizer__name="sgd", optimizer__nesterov=True, optimizer__ema=0.999).optimizer.ema == 0.999
