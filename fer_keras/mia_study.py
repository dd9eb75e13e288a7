"""Study B's privacy comparison: train one model per defence setting, audit each, one table.

A *setting* is ``none`` or ``+``-joined parts (e.g. ``noise1+basic``, the study's rows):

| part | what |
| --- | --- |
| ``noise1``, ``noise2`` | 1 or 2 ``GaussianNoise(0.1)`` layers (small_cnn and ghostface only) |
| ``basic``, ``randaugment``, ``mixup`` | training augmentation from :mod:`fer_keras.augment` (MixUp on 100% of images, as the study's privacy runs) |
| ``dp`` | DP-SGD with tensorflow-privacy's DP Keras optimizer (:func:`fer_keras.privacy.compile_dp`) |

Run folder (``runs/<stamp>-mia-<model>/``): ``config.json``, ``table.csv``, ``table.md``,
``summary.json`` (per setting: accuracy, AUC, and AUC lowered per accuracy point lost relative
to ``none``), ``roc.png`` (loss-threshold attack, every setting), ``roc_<attack>.png``,
``settings/<setting>.json`` (training, test accuracy, epsilon, the full audit with ROC curves)
and ``models/<setting>.keras`` (reused with ``--model-dir``).
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from fer_keras import privacy
from fer_keras.errors import ConfigError
from fer_keras.runs import CONFIG_FILE, atomic_write_text, new_run_dir, read_json, write_json

DEFAULT_SETTINGS = ("none", "noise1", "noise2", "basic", "randaugment", "mixup", "dp")
NOISE_PARTS = {"noise1": 1, "noise2": 2}
AUGMENT_PARTS = ("basic", "randaugment", "mixup")
SETTING_PARTS = (*NOISE_PARTS, *AUGMENT_PARTS, "dp")
#: Models the grid can train: the fast audit CNN and the studies' models.
MIA_MODELS = ("small_cnn", "dcnn", "ghostface")
#: Demo-set size and epochs: enough for the small CNN to overfit, the grid done in minutes.
DEMO_IMAGES_PER_CLASS = 60
DEMO_EPOCHS = 30


@dataclasses.dataclass
class MIAConfig:
    """Everything that defines a privacy-comparison run (saved as ``config.json``)."""

    data: str | None = None           # FER2013 CSV / Kaggle folder; None = synthetic demo set
    labels: str = "all"
    split: str = "usage"
    model: str = "small_cnn"
    input_size: int | None = None     # square side; None = 48 (small_cnn, dcnn) / 224 (ghostface)
    settings: tuple[str, ...] = DEFAULT_SETTINGS
    epochs: int | None = None         # None: DEMO_EPOCHS on the demo set, 30 on real data
    batch_size: int = 32
    lr: float = 3e-3                  # Adam; higher than Study A so the small CNN fits its training set
    train_size: int | None = None     # train on a stratified sample of this many images
    eval_limit: int | None = None     # at most this many validation and test images each
    audit_size: int = 2000            # members and non-members each (Study B: 2,000 + 2,000)
    attacks: tuple[str, ...] = privacy.DEFAULT_ATTACKS
    target_fpr: float = privacy.DEFAULT_TARGET_FPR
    dp_clip: float = 1.0
    dp_noise: float = 1.1
    dp_microbatches: int | None = None
    mixup_fraction: float = 1.0
    seed: int = 42
    demo_images_per_class: int = DEMO_IMAGES_PER_CLASS
    out: str = "runs"

    def __post_init__(self):
        self.settings = tuple(self.settings)
        self.attacks = tuple(self.attacks)
        if self.model not in MIA_MODELS:
            raise ConfigError(f"--model {self.model!r}: use one of {', '.join(MIA_MODELS)}")
        for s in self.settings:
            parse_setting(s, self.model)
        for a in self.attacks:
            privacy._attack_type(a)
        for field in ("epochs", "batch_size", "train_size", "eval_limit", "audit_size", "input_size"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise ConfigError(f"--{field.replace('_', '-')} must be at least 1 (got {value})")
        if not 0 < self.target_fpr < 1:
            raise ConfigError(f"--target-fpr must be between 0 and 1 (got {self.target_fpr})")
        privacy.DPSettings(self.dp_clip, self.dp_noise, self.dp_microbatches)

    @property
    def resolved_epochs(self) -> int:
        return self.epochs or (DEMO_EPOCHS if self.data is None else 30)

    def input_shape(self) -> tuple[int, int, int]:
        from fer_keras.models import default_input_shape

        if self.model == "small_cnn":
            return (self.input_size or 48,) * 2 + (1,)
        side, _, channels = default_input_shape(self.model)
        return (self.input_size or side,) * 2 + (channels,)

    def experiment_config(self):
        """The ExperimentConfig whose ``prepare_data`` gives this run's data."""
        from fer_keras.config import ExperimentConfig

        return ExperimentConfig(data=self.data, labels=self.labels, split=self.split,
                                limit=self.train_size, eval_limit=self.eval_limit, seed=self.seed,
                                demo_images_per_class=self.demo_images_per_class, out=self.out)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "MIAConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def parse_setting(name: str, model: str = "small_cnn") -> dict:
    """``"noise1+basic"`` -> ``{"noise_layers": 1, "augment": "basic", "dp": False}``."""
    parts = [] if name == "none" else name.split("+")
    unknown = [p for p in parts if p not in SETTING_PARTS]
    if unknown or len(set(parts)) != len(parts) or not name:
        raise ConfigError(f"--settings {name!r}: use none or parts joined with + from "
                          f"{', '.join(SETTING_PARTS)} (e.g. noise1+basic)")
    noise = [NOISE_PARTS[p] for p in parts if p in NOISE_PARTS]
    if len(noise) > 1:
        raise ConfigError(f"--settings {name!r}: choose noise1 or noise2, not both")
    if noise and model == "dcnn":
        raise ConfigError(f"--settings {name!r}: noise layers exist in small_cnn and ghostface, not dcnn")
    augment = "+".join(p for p in AUGMENT_PARTS if p in parts) or "none"
    return {"noise_layers": noise[0] if noise else 0, "augment": augment, "dp": "dp" in parts}


def _augmenter(augment: str, config: MIAConfig):
    """The training augmenter for a setting; a clear error if fer_keras.augment lacks it."""
    from fer_keras import augment as aug

    if augment == "none":
        return None
    parts = augment.split("+")
    offered = getattr(aug, "PARTS", ("basic",))
    missing = [p for p in parts if p not in offered]
    if missing:
        raise ConfigError(f"augmentation {'+'.join(missing)} is not available in this fer_keras "
                          f"(fer_keras.augment offers {', '.join(offered)})")
    kwargs = {}
    if "mixup" in parts:
        kwargs["mixup"] = aug.MixUpSettings(fraction=config.mixup_fraction)
    family = "ghostface" if config.model == "ghostface" else "dcnn"
    return aug.make_augmenter(augment, family, config.seed, **kwargs)


def _build(setting: dict, config: MIAConfig, shape, num_classes: int) -> tf.keras.Model:
    if config.model == "small_cnn":
        from fer_keras.models.small_cnn import small_cnn

        return small_cnn(shape, num_classes, noise_layers=setting["noise_layers"])
    from fer_keras.models import build_model

    kwargs = {"noise_layers": setting["noise_layers"]} if setting["noise_layers"] else {}
    return build_model(config.model, shape, num_classes, **kwargs)


def _pipeline(config: MIAConfig, shape) -> dict:
    from fer_keras.models import input_mode

    return {"input_shape": shape, "mode": "unit" if config.model == "small_cnn" else input_mode(config.model)}


def train_setting(name: str, config: MIAConfig, parts: dict, log: Callable = print):
    """Train the model of setting ``name`` on ``parts["train"]``; returns (model, info)."""
    from fer_keras.data.pipeline import as_xy, make_dataset
    from fer_keras.training import compile_model

    setting = parse_setting(name, config.model)
    augment = _augmenter(setting["augment"], config)
    shape = config.input_shape()
    tf.keras.utils.set_random_seed(config.seed)
    model = _build(setting, config, shape, parts["train"].num_classes)
    epochs = config.resolved_epochs
    info = {"setting": name, **setting, "epochs": epochs, "train_images": len(parts["train"])}
    if setting["dp"]:
        privacy.compile_dp(model, config.dp_clip, config.dp_noise, config.dp_microbatches, config.lr)
        info["dp_accounting"] = privacy.dp_epsilon(len(parts["train"]), config.batch_size, epochs, config.dp_noise,
                                        num_microbatches=config.dp_microbatches)
        info["dp_accounting"]["l2_norm_clip"] = config.dp_clip
    else:
        compile_model(model, "adam", config.lr)
    train = make_dataset(parts["train"], shape, config.batch_size, training=True, augment=augment,
                         seed=config.seed, **{k: v for k, v in _pipeline(config, shape).items() if k != "input_shape"})
    start = time.time()
    history = model.fit(as_xy(train), epochs=epochs, verbose=0)
    info["seconds"] = round(time.time() - start, 1)
    info["final"] = {k: float(v[-1]) for k, v in history.history.items()}
    return model, info


def test_accuracy(model, data, config: MIAConfig) -> float:
    logits = privacy.model_logits(model, data, **_pipeline(config, config.input_shape()))
    return float(np.mean(logits.argmax(1) == data.labels))


def held_out_pool(parts: dict):
    """Held-out images: the test split, plus the validation split when it holds other images."""
    test, val = parts["test"], parts["val"]
    if set(val.sources) & set(test.sources):
        return test
    from fer_keras.data.dataset import FaceData

    return FaceData(np.concatenate([test.images, val.images]), np.concatenate([test.labels, val.labels]),
                    test.class_names, np.concatenate([test.usage, val.usage]),
                    np.concatenate([test.sources, val.sources]))


def efficiency(summary: dict, attack: str = "threshold") -> dict:
    """Per setting: AUC and accuracy change against ``none`` and AUC lowered per accuracy point lost."""
    if "none" not in summary:
        return {}
    base = summary["none"]
    out = {}
    for name, s in summary.items():
        if name == "none":
            continue
        acc_lost = 100 * (base["test_accuracy"] - s["test_accuracy"])
        auc_drop = base["auc"][attack] - s["auc"][attack]
        out[name] = {"accuracy_points_lost": round(acc_lost, 2), "auc_lowered": round(auc_drop, 4),
                     "auc_lowered_per_accuracy_point": (round(auc_drop / acc_lost, 4) if acc_lost > 0 else None)}
    return out


def run_study(config: MIAConfig, model_dir: str | Path | None = None, log: Callable = print,
              trusted: bool = False) -> Path:
    """Train (or load from ``model_dir``; its models load safely unless ``trusted``, see
    :mod:`fer_keras.model_files`) and audit every setting; write one run folder."""
    from fer_keras.experiment import prepare_data

    loaded = None
    if model_dir is not None:
        config, loaded = _load_source(model_dir, config, trusted)
    parts = prepare_data(config.experiment_config(), log)
    sets = privacy.sample_members_nonmembers(parts["train"], held_out_pool(parts), config.audit_size,
                                             config.seed)
    run_dir = new_run_dir(config.out, f"mia-{config.model}")
    write_json(run_dir / CONFIG_FILE, {"config": config.to_dict(), "model_dir": str(model_dir) if model_dir else None,
                                       "images": {k: len(v) for k, v in parts.items()},
                                       "audit": {"members": len(sets.members), "nonmembers": len(sets.nonmembers),
                                                 "reference": len(sets.reference),
                                                 "members_per_class": sets.members.class_counts()}})
    log(f"Run folder: {run_dir}")
    log(f"Audit: {len(sets.members)} members (training images) + {len(sets.nonmembers)} non-members "
        f"(held out), {len(sets.reference)} held-out reference images for the per-class thresholds")
    (run_dir / "settings").mkdir()
    (run_dir / "models").mkdir()
    rows, summary, curves = [], {}, {a: {} for a in config.attacks}
    shape = config.input_shape()
    for name in (loaded or config.settings):
        if loaded:
            model, info = loaded[name]
        else:
            log(f"[{name}] training {config.model} {shape} on {len(parts['train'])} images, "
                f"{config.resolved_epochs} epochs ...")
            model, info = train_setting(name, config, parts, log)
            _save_model(model, run_dir / "models" / f"{name}.keras")
        acc = test_accuracy(model, parts["test"], config)
        result = privacy.audit(model, sets.members, sets.nonmembers, sets.reference, attacks=config.attacks,
                               target_fpr=config.target_fpr, seed=config.seed, **_pipeline(config, shape))
        epsilon = info.get("dp_accounting", {}).get("epsilon")
        rows += privacy.table_rows(name, acc, result, epsilon)
        summary[name] = {"test_accuracy": acc, "epsilon": epsilon,
                         "auc": {a: r["auc"] for a, r in result["attacks"].items()},
                         "loss_attack_at_target_fpr": {k: result["attacks"]["threshold"]["at_target_fpr"][k]
                                                      for k in privacy.CONFUSION_KEYS}
                         if "threshold" in result["attacks"] else None}
        for a, r in result["attacks"].items():
            curves[a][name] = (r["roc"]["fpr"], r["roc"]["tpr"], r["auc"])
        write_json(run_dir / "settings" / f"{name}.json", {"training": info, "test_accuracy": acc, "audit": result})
        log(f"[{name}] test accuracy {100 * acc:.2f}%; AUC "
            + ", ".join(f"{a} {r['auc']:.3f}" for a, r in result["attacks"].items())
            + (f"; epsilon {epsilon:.2f}" if epsilon is not None else "")
            + (f"; {info['seconds']} s" if "seconds" in info else ""))
    eff = efficiency(summary)
    atomic_write_text(run_dir / "table.csv", privacy.table_csv(rows))
    atomic_write_text(run_dir / "table.md", _markdown(config, sets, rows, eff))
    write_json(run_dir / "summary.json", {"settings": summary, "vs_none_loss_attack": eff})
    for attack, c in curves.items():
        privacy.plot_roc(c, run_dir / ("roc.png" if attack == "threshold" else f"roc_{attack}.png"),
                         title=f"{attack} attack, {len(sets.members)} + {len(sets.nonmembers)} images")
    return run_dir


def _save_model(model, path) -> None:
    """Save the architecture and weights only (a DP optimizer is not serialisable, and an
    audit needs no optimizer)."""
    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.save(path)


def _markdown(config: MIAConfig, sets, rows, eff) -> str:
    text = [f"# Membership inference: {len(sets.members)} members + {len(sets.nonmembers)} non-members",
            "", f"Model {config.model} {config.input_shape()}, data {config.data or 'demo (synthetic)'}, "
            f"{config.resolved_epochs} epochs. TP/FP/TN/FN are % of all audited images. "
            f"`at_target_fpr`: per-class thresholds at {100 * config.target_fpr:g}% FPR on population "
            "data (see fer_keras/privacy.py); `best_accuracy`: the single most accurate threshold. "
            "test_accuracy in %.", "", privacy.table_markdown(rows)]
    if eff:
        text += ["## Against `none` (loss-threshold attack AUC)", "",
                 "| setting | accuracy points lost | AUC lowered | AUC lowered per accuracy point |",
                 "| --- | --- | --- | --- |"]
        text += [f"| {k} | {v['accuracy_points_lost']} | {v['auc_lowered']} | "
                 f"{v['auc_lowered_per_accuracy_point'] if v['auc_lowered_per_accuracy_point'] is not None else 'no accuracy lost'} |"
                 for k, v in eff.items()]
    return "\n".join(text) + "\n"


def _load_source(model_dir, config: MIAConfig, trusted: bool = False):
    """Models to audit from an earlier run folder, and the config whose data they were trained on.

    A ``run_mia.py`` folder gives ``models/<setting>.keras`` for its settings (data settings from
    its ``config.json``); a ``run_nsl.py``/``run_ghostface.py`` folder gives ``model/model.keras``
    as the setting ``loaded`` (its data, split, limit and seed). Models load safely unless ``trusted``."""
    from fer_keras import layers as _layers  # noqa: F401  (registers the custom layers)
    from fer_keras.model_files import load_keras

    path = Path(model_dir)
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"--model-dir {path}: not a run folder (no {CONFIG_FILE}); pass a folder "
                          "written by run_mia.py, run_nsl.py or run_ghostface.py")
    saved = read_json(path / CONFIG_FILE)
    if (path / "models").is_dir():
        old = MIAConfig.from_dict(saved["config"])
        keep = dict(data=old.data, labels=old.labels, split=old.split, model=old.model,
                    input_size=old.input_size, train_size=old.train_size, eval_limit=old.eval_limit,
                    seed=old.seed, demo_images_per_class=old.demo_images_per_class, epochs=old.epochs,
                    settings=old.settings)
        config = dataclasses.replace(config, **keep)
        loaded = {}
        for name in config.settings:
            file = path / "models" / f"{name}.keras"
            if not file.exists():
                raise ConfigError(f"--model-dir {path}: no models/{name}.keras")
            old_info = path / "settings" / f"{name}.json"
            info = read_json(old_info)["training"] if old_info.is_file() else {"setting": name}
            loaded[name] = (load_keras(file, trusted), info)
        return config, loaded
    model_file = path / "model" / "model.keras"
    if not model_file.exists():
        raise ConfigError(f"--model-dir {path}: no models/ or model/model.keras in it")
    model = load_keras(model_file, trusted)  # before the settings are checked: a refused model stops at once
    exp = saved["config"]
    resolved = saved.get("resolved", {})
    shape = resolved.get("input_shape") or [None]
    name = exp.get("model", "dcnn")
    if name not in MIA_MODELS:
        raise ConfigError(f"--model-dir {path}: model {name!r} cannot be audited here (use {', '.join(MIA_MODELS)})")
    config = dataclasses.replace(config, data=exp.get("data"), labels=exp.get("labels", "all"),
                                 split=exp.get("split", "usage"), model=name, input_size=shape[0],
                                 train_size=exp.get("limit"), eval_limit=exp.get("eval_limit"),
                                 seed=exp.get("seed", 42),
                                 demo_images_per_class=exp.get("demo_images_per_class", DEMO_IMAGES_PER_CLASS))
    return config, {"loaded": (model, {"setting": "loaded", "from": str(path)})}
