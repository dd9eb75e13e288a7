"""Study B's privacy comparison: train one model per defence setting, audit each, one table.

A *setting* is ``none`` or ``+``-joined parts (e.g. ``noise1+basic``, the study's rows):

| part | what |
| --- | --- |
| ``noise1``, ``noise2`` | 1 or 2 ``GaussianNoise(0.1)`` layers (models registered with noise layers: small_cnn, ghostface) |
| ``basic``, ``randaugment``, ``mixup`` | training augmentation from :mod:`fer_keras.augment` (MixUp on 100% of images, as the study's privacy runs) |
| ``dp`` | DP-SGD with tensorflow-privacy's DP Keras optimizer (:func:`fer_keras.privacy.compile_dp`) |

The config (:class:`MIAConfig`) reuses the training sections of :mod:`fer_keras.config` (data,
model, optimizer, training, augment) plus :class:`AuditConfig`. The run folder
(``runs/<stamp>-mia-<model>/``, layout in :mod:`fer_keras.runs`): ``config.json``, ``table.csv``,
``table.md``, ``summary.json`` (per setting: accuracy, AUC, and AUC lowered per accuracy point
lost relative to ``none``), ``roc.png`` (loss-threshold attack, every setting), ``roc_<attack>.png``,
``settings/<setting>.json`` (training, test accuracy, epsilon, the full audit with ROC curves)
and ``models/<setting>.keras`` (reused with ``--model-dir``).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from fer_keras import markdown, plots, privacy
from fer_keras.augment import make_augmenter
from fer_keras.config import (AugmentConfig, DataConfig, ModelConfig, OptimizerConfig, TrainingConfig, build_config,
                              setting)
from fer_keras.data.dataset import FaceData
from fer_keras.data.pipeline import InputSpec, as_xy, make_dataset
from fer_keras.data.prepare import prepare_data
from fer_keras.errors import ConfigError
from fer_keras.files import atomic_write_text, write_json
from fer_keras.model_files import load_keras
from fer_keras.models import get_spec
from fer_keras.runs import MODELS_DIR, SETTINGS_DIR, SUMMARY_FILE, TABLE_CSV_FILE, TABLE_MD_FILE, RunFolder
from fer_keras.training import compile_model, schedule_for, set_seed

DEFAULT_SETTINGS = ("none", "noise1", "noise2", "basic", "randaugment", "mixup", "dp")
NOISE_PARTS = {"noise1": 1, "noise2": 2}
SETTING_AUGMENTS = ("basic", "randaugment", "mixup")
SETTING_PARTS = (*NOISE_PARTS, *SETTING_AUGMENTS, "dp")
#: Demo-set epochs: enough for the small CNN to overfit, the grid done in minutes.
MIA_DEMO_EPOCHS = 30
#: Fields of the shared sections that the grid does not take from the command line: each setting
#: chooses its noise layers and augmentation; training runs without validation callbacks.
NOT_FLAGS = ("data__label_noise", "data__label_noise_mode", "model__noise_layers", "augment__name",
             "training__early_stopping", "training__reduce_lr", "training__restore_best", "training__jit_compile")


def _names(text) -> tuple[str, ...]:
    """``"none,noise1"`` -> ``("none", "noise1")``."""
    if isinstance(text, str):
        return tuple(p.strip() for p in text.split(",") if p.strip())
    return tuple(text)


@dataclasses.dataclass
class AuditConfig:
    """The grid of settings and the attack."""

    settings: tuple[str, ...] = setting(DEFAULT_SETTINGS, "comma-separated settings; each none or parts joined "
                                        "by + from noise1, noise2, basic, randaugment, mixup, dp (default: "
                                        + ",".join(DEFAULT_SETTINGS) + ")", type=_names)
    audit_size: int = setting(2000, "members and non-members each (default: %(default)s)")
    attacks: tuple[str, ...] = setting(privacy.DEFAULT_ATTACKS, "tensorflow-privacy attacks: threshold, "
                                       "threshold-entropy, lr, mlp, rf, knn (default: "
                                       + ",".join(privacy.DEFAULT_ATTACKS) + ")", type=_names)
    target_fpr: float = setting(privacy.DEFAULT_TARGET_FPR, "FPR of the per-class population thresholds "
                                "(default: %(default)s)")
    dp_clip: float = setting(1.0, "DP-SGD per-example L2 clip (default: %(default)s)")
    dp_noise: float = setting(1.1, "DP-SGD noise multiplier (default: %(default)s)")
    dp_microbatches: int | None = setting(None, "DP-SGD microbatches per batch (default: one per example)")

    def __post_init__(self):
        self.settings, self.attacks = _names(self.settings), _names(self.attacks)
        for a in self.attacks:
            privacy.attack_type(a)
        if self.audit_size < 1:
            raise ConfigError(f"--audit-size must be at least 1 (got {self.audit_size})")
        if not 0 < self.target_fpr < 1:
            raise ConfigError(f"--target-fpr must be between 0 and 1 (got {self.target_fpr})")
        privacy.DPSettings(self.dp_clip, self.dp_noise, self.dp_microbatches)


@dataclasses.dataclass
class MIAConfig:
    """Everything that defines a privacy-comparison run (saved as ``config.json``)."""

    seed: int = setting(42, "default: %(default)s")
    out: str = setting("runs", "folder for run folders (default: %(default)s)")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=lambda: ModelConfig(name="small_cnn"))
    augment: AugmentConfig = dataclasses.field(default_factory=lambda: AugmentConfig(name="none", mixup_fraction=1.0))
    optimizer: OptimizerConfig = dataclasses.field(default_factory=lambda: OptimizerConfig(lr=3e-3))
    training: TrainingConfig = dataclasses.field(default_factory=lambda: TrainingConfig(batch_size=32))
    audit: AuditConfig = dataclasses.field(default_factory=AuditConfig)

    def __post_init__(self):
        get_spec(self.model.name)
        for s in self.audit.settings:
            parse_setting(s, self.model.name)

    @property
    def resolved_epochs(self) -> int:
        return self.training.epochs or (MIA_DEMO_EPOCHS if self.data.path is None else self.training.full_epochs)

    def input_spec(self, class_names) -> InputSpec:
        spec = get_spec(self.model.name)
        return InputSpec(spec.input_shape_for(self.model.input_size), spec.input_mode, self.model.standardize,
                         class_names=class_names)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MIAConfig":
        """From :meth:`to_dict`'s form or the flat form of earlier privacy run folders."""
        if not isinstance(values.get("audit"), dict):
            values = nest_flat_mia(values)
        return build_config(cls, values)


#: Flat keys of earlier privacy run folders -> (section, field).
FLAT_MIA_KEYS = {
    "data": ("data", "path"), "labels": ("data", "labels"), "split": ("data", "split"),
    "train_size": ("data", "limit"), "eval_limit": ("data", "eval_limit"),
    "demo_images_per_class": ("data", "demo_images_per_class"), "model": ("model", "name"),
    "input_size": ("model", "input_size"), "epochs": ("training", "epochs"), "batch_size": ("training", "batch_size"),
    "lr": ("optimizer", "lr"), "mixup_fraction": ("augment", "mixup_fraction"), "settings": ("audit", "settings"),
    "audit_size": ("audit", "audit_size"), "attacks": ("audit", "attacks"), "target_fpr": ("audit", "target_fpr"),
    "dp_clip": ("audit", "dp_clip"), "dp_noise": ("audit", "dp_noise"), "dp_microbatches": ("audit", "dp_microbatches"),
}


def nest_flat_mia(flat: dict[str, Any]) -> dict[str, Any]:
    defaults = MIAConfig().to_dict()
    nested = {k: flat[k] for k in ("seed", "out") if k in flat}
    for section in ("model", "augment", "optimizer", "training"):  # the grid's own defaults
        nested[section] = defaults[section]
    for key, value in flat.items():
        if key in FLAT_MIA_KEYS:
            section, field = FLAT_MIA_KEYS[key]
            nested.setdefault(section, {})[field] = value
    return nested


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
    if noise and not get_spec(model).noise_layers:
        with_noise = [n for n in ("small_cnn", "ghostface") if get_spec(n).noise_layers]
        raise ConfigError(f"--settings {name!r}: model {model} has no noise layers (models that do: "
                          f"{', '.join(with_noise)}); use settings without noise1/noise2")
    augment = "+".join(p for p in SETTING_AUGMENTS if p in parts) or "none"
    return {"noise_layers": noise[0] if noise else 0, "augment": augment, "dp": "dp" in parts}


def train_setting(name: str, config: MIAConfig, parts: dict, log: Callable = print):
    """Train the model of setting ``name`` on ``parts["train"]``; returns (model, info)."""
    setting_ = parse_setting(name, config.model.name)
    spec = get_spec(config.model.name)
    inputs = config.input_spec(parts["train"].class_names)
    augment = make_augmenter(config.augment, spec.basic_augment, config.seed, name=setting_["augment"])
    set_seed(config.seed, config.training.deterministic)
    model = spec.build(inputs.shape, parts["train"].num_classes, noise_layers=setting_["noise_layers"])
    epochs, batch, opt = config.resolved_epochs, config.training.batch_size, config.optimizer
    info = {"setting": name, **setting_, "epochs": epochs, "train_images": len(parts["train"])}
    if setting_["dp"]:
        audit = config.audit
        privacy.compile_dp(model, audit.dp_clip, audit.dp_noise, audit.dp_microbatches, opt.lr)
        info["dp_accounting"] = privacy.dp_epsilon(len(parts["train"]), batch, epochs, audit.dp_noise,
                                                   num_microbatches=audit.dp_microbatches)
        info["dp_accounting"]["l2_norm_clip"] = audit.dp_clip
    else:
        steps = -(-len(parts["train"]) // batch)
        lr = schedule_for(opt, steps, epochs)
        compile_model(model, opt.name, lr, opt.momentum, label_smoothing=config.training.label_smoothing,
                      nesterov=opt.nesterov, ema=opt.ema)
    train = make_dataset(parts["train"], inputs.shape, batch, training=True, augment=augment, seed=config.seed,
                         **inputs.scaling)
    start = time.time()
    history = model.fit(as_xy(train), epochs=epochs, verbose=0)
    info["seconds"] = round(time.time() - start, 1)
    info["final"] = {k: float(v[-1]) for k, v in history.history.items()}
    return model, info


def test_accuracy(model, data: FaceData, inputs: InputSpec) -> float:
    logits = privacy.model_logits(model, data, inputs)
    return float(np.mean(logits.argmax(1) == data.labels))


def held_out_pool(parts: dict) -> FaceData:
    """Held-out images: the test split, plus the validation split when it holds other images."""
    test, val = parts["test"], parts["val"]
    if set(val.sources) & set(test.sources):
        return test
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
              trusted: bool = False) -> RunFolder:
    """Train (or load from ``model_dir``; its models load safely unless ``trusted``, see
    :mod:`fer_keras.model_files`) and audit every setting; write one run folder."""
    loaded = None
    if model_dir is not None:
        config, loaded = load_source(model_dir, config, trusted)
    parts = prepare_data(config.data, config.seed, log)
    audit = config.audit
    sets = privacy.sample_members_nonmembers(parts["train"], held_out_pool(parts), audit.audit_size, config.seed)
    inputs = config.input_spec(parts["train"].class_names)
    run = RunFolder.create(config.out, f"mia-{config.model.name}")
    run.write_config(config, {
        "epochs": config.resolved_epochs, "input_shape": list(inputs.shape), "input_mode": inputs.mode,
        "class_names": list(inputs.class_names), "model_dir": str(model_dir) if model_dir else None,
        "images": {k: len(v) for k, v in parts.items()},
        "audit": {"members": len(sets.members), "nonmembers": len(sets.nonmembers), "reference": len(sets.reference),
                  "members_per_class": sets.members.class_counts()}})
    log(f"Run folder: {run.path}")
    log(f"Audit: {len(sets.members)} members (training images) + {len(sets.nonmembers)} non-members "
        f"(held out), {len(sets.reference)} held-out reference images for the per-class thresholds")
    run.settings_dir.mkdir()
    run.models_dir.mkdir()
    rows, summary, curves = [], {}, {a: {} for a in audit.attacks}
    for name in (loaded or audit.settings):
        if loaded:
            model, info = loaded[name]
        else:
            log(f"[{name}] training {config.model.name} {inputs.shape} on {len(parts['train'])} images, "
                f"{config.resolved_epochs} epochs ...")
            model, info = train_setting(name, config, parts, log)
            _save_model(model, run.models_dir / f"{name}.keras")
        acc = test_accuracy(model, parts["test"], inputs)
        result = privacy.audit(model, sets.members, sets.nonmembers, sets.reference, attacks=audit.attacks,
                               target_fpr=audit.target_fpr, seed=config.seed, inputs=inputs)
        member_acc = result["member_accuracy"]  # on training images: how far it memorised
        epsilon = info.get("dp_accounting", {}).get("epsilon")
        rows += privacy.table_rows(name, acc, result, epsilon, member_accuracy=member_acc)
        loss_attack = result["attacks"].get("threshold")
        summary[name] = {"test_accuracy": acc, "member_accuracy": member_acc, "epsilon": epsilon,
                         "loss_attack_tpr_at_low_fpr": {"1%": loss_attack["tpr_at_1%_fpr"],
                                                        "0.1%": loss_attack["tpr_at_0.1%_fpr"]} if loss_attack else None,
                         "auc": {a: r["auc"] for a, r in result["attacks"].items()},
                         "loss_attack_at_target_fpr": {k: result["attacks"]["threshold"]["at_target_fpr"][k]
                                                       for k in privacy.CONFUSION_KEYS}
                         if "threshold" in result["attacks"] else None}
        for a, r in result["attacks"].items():
            curves[a][name] = (r["roc"]["fpr"], r["roc"]["tpr"], r["auc"])
        write_json(run.settings_dir / f"{name}.json", {"training": info, "test_accuracy": acc,
                                                        "member_accuracy": member_acc, "audit": result})
        log(f"[{name}] test accuracy {100 * acc:.2f}%, member (training) accuracy {100 * member_acc:.2f}%; AUC "
            + ", ".join(f"{a} {r['auc']:.3f}" for a, r in result["attacks"].items())
            + (f"; epsilon {epsilon:.2f}" if epsilon is not None else "")
            + (f"; {info['seconds']} s" if "seconds" in info else ""))
    eff = efficiency(summary)
    atomic_write_text(run.file(TABLE_CSV_FILE), privacy.table_csv(rows))
    atomic_write_text(run.file(TABLE_MD_FILE), _markdown(config, inputs, sets, rows, eff))
    write_json(run.file(SUMMARY_FILE), {"settings": summary, "vs_none_loss_attack": eff})
    for attack, c in curves.items():
        plots.membership_roc(c, run.file("roc.png" if attack == "threshold" else f"roc_{attack}.png"),
                             title=f"{attack} attack, {len(sets.members)} + {len(sets.nonmembers)} images")
    return run


def _save_model(model, path) -> None:
    """Save the architecture and weights only (a DP optimizer is not serialisable, and an
    audit needs no optimizer)."""
    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.save(path)


def _markdown(config: MIAConfig, inputs: InputSpec, sets, rows, eff) -> str:
    text = [f"# Membership inference: {len(sets.members)} members + {len(sets.nonmembers)} non-members",
            "", f"Model {config.model.name} {inputs.shape}, data {config.data.path or 'demo (synthetic)'}, "
            f"{config.resolved_epochs} epochs. TP/FP/TN/FN are % of all audited images. "
            f"`at_target_fpr`: per-class thresholds at {100 * config.audit.target_fpr:g}% FPR on population "
            "data (see fer_keras/privacy/audit.py); `best_accuracy`: the single most accurate threshold. "
            "test_accuracy in %.", "", privacy.table_markdown(rows)]
    if eff:
        text += ["## Against `none` (loss-threshold attack AUC)", "", *markdown.table(
            ["setting", "accuracy points lost", "AUC lowered", "AUC lowered per accuracy point"],
            [[k, v["accuracy_points_lost"], v["auc_lowered"], "no accuracy lost" if v["auc_lowered_per_accuracy_point"]
              is None else v["auc_lowered_per_accuracy_point"]] for k, v in eff.items()])]
    return "\n".join(text) + "\n"


def load_source(model_dir, config: MIAConfig, trusted: bool = False):
    """Models to audit from an earlier run folder, and the config whose data they were trained on.

    A ``run_mia.py`` folder gives ``models/<setting>.keras`` for its settings (its data, model,
    training and settings); a ``run_nsl.py``/``run_ghostface.py`` folder gives its trained model
    as the setting ``loaded`` (its data, split, limit, model input and seed). Models load safely
    unless ``trusted``."""
    run = RunFolder.open(model_dir, "--model-dir", finished=True)
    if run.kind == "privacy":
        old = MIAConfig.from_dict(run.saved["config"])
        config = dataclasses.replace(config, data=old.data, model=old.model, training=old.training, seed=old.seed,
                                     audit=dataclasses.replace(config.audit, settings=old.audit.settings))
        loaded = {}
        for name in config.audit.settings:
            file = run.models_dir / f"{name}.keras"
            if not file.exists():
                raise ConfigError(f"--model-dir {run.path}: no {MODELS_DIR}/{name}.keras")
            old_info = run.read(f"{SETTINGS_DIR}/{name}.json")
            loaded[name] = (load_keras(file, trusted), old_info["training"] if old_info else {"setting": name})
        return config, loaded
    model = run.load_model(trusted)  # before the settings are checked: a refused model stops at once
    exp = run.config
    config = dataclasses.replace(config, data=exp.data, model=exp.model, seed=exp.seed,  # the grid is not trained here
                                 audit=dataclasses.replace(config.audit, settings=("none",)))
    return config, {"loaded": (model, {"setting": "loaded", "from": str(run.path)})}
