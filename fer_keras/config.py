"""Experiment settings as nested dataclasses, saved as ``config.json`` in every run folder.

An :class:`ExperimentConfig` is made of small sections, one per step of the data's path:
:class:`DataConfig` (what data, which split), :class:`ModelConfig`, :class:`AugmentConfig`,
:class:`AdversarialConfig` (NSL), :class:`OptimizerConfig`, :class:`TrainingConfig` (epochs,
batch, callbacks, seed handling) and :class:`EvaluationConfig`. The privacy study's config
(:mod:`fer_keras.studies.mia`) reuses the same sections.

Every field carries its command-line flag and help text (:func:`setting`), so the scripts'
flags are generated from here (:mod:`fer_keras.flags`) instead of being written again.
Validation is plain Python and runs no TensorFlow op (the package itself, `fer_keras/__init__.py`, imports
TensorFlow to select Keras 2 first, so importing this module does too).
Run folders written before the sections existed stored one flat dict; :meth:`ExperimentConfig.from_dict`
reads both forms.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from fer_keras.data.dataset import SPLITS
from fer_keras.data.label_noise import NOISE_MODES
from fer_keras.errors import ConfigError

#: Images per class and epochs of the bundled demo set, sized so `run_nsl.py` with no --data
#: finishes in under 3 minutes on 2 CPU cores.
DEMO_IMAGES_PER_CLASS = 60
DEMO_EPOCHS = 8

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step")
STANDARDIZE = ("image", "dataset")
GRAD_NORMS = ("l2", "infinity", "l1")
TTA_MODES = ("none", "flip", "flip+crops")
#: Numeric precisions (:mod:`fer_keras.precision`, which imports TensorFlow; this list does not).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
#: tf.distribute strategies for training (:mod:`fer_keras.distribute`, which imports TensorFlow; this list does not).
STRATEGIES = ("none", "mirrored", "multiworker")


def check_tta(tta: str) -> str:
    """``tta`` if it is one of :data:`TTA_MODES`, else a one-line ConfigError."""
    if tta not in TTA_MODES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")
    return tta


def view_count(mode: str) -> int:
    """Model calls per face in TTA ``mode`` (the views :func:`fer_keras.tta.views` makes): 1, 2 or 12."""
    return {"none": 1, "flip": 2, "flip+crops": 12}[check_tta(mode)]


#: The single augmentation parts, in the order they are applied (see :mod:`fer_keras.augment`).
AUGMENT_PARTS = ("basic", "flip", "crop", "randaugment", "erase", "mixup")
#: The augmentation settings the scripts suggest (any '+' combination of AUGMENT_PARTS is valid).
AUGMENTS = ("none", "basic", "randaugment", "mixup", "randaugment+mixup", "basic+randaugment",
            "basic+mixup", "basic+randaugment+mixup", "basic+flip+crop")


def setting(default: Any, help: str, *, flag: str | None = None, choices=None, type=None,
            metavar: str | None = None, cli: bool = True) -> Any:
    """A config field with its command-line flag: ``flag`` (default ``--field-name``), ``help``
    (``%(default)s`` allowed), ``choices`` (or a function returning them), an argparse ``type`` for
    text values and ``metavar``.
    ``cli=False`` keeps the field off the command line."""
    meta = {"help": help, "flag": flag, "choices": choices, "type": type, "metavar": metavar, "cli": cli}
    return dataclasses.field(default=default, metadata=meta)


def registered_models() -> tuple[str, ...]:
    """The model registry's names (imported only when asked: building a config needs no models)."""
    from fer_keras.models import model_names

    return model_names()


def parse_augment(name: str | None) -> tuple[str, ...]:
    """``"mixup+randaugment"`` -> ``("randaugment", "mixup")`` in application order; ``"none"`` -> ``()``."""
    name = (name or "none").strip().lower()
    if name == "none":
        return ()
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in AUGMENT_PARTS]
    if unknown or len(set(parts)) != len(parts):
        raise ConfigError(f"--augment {name!r}: use none or a '+'-joined combination of "
                          f"{', '.join(AUGMENT_PARTS)} (e.g. randaugment+mixup)")
    return tuple(p for p in AUGMENT_PARTS if p in parts)


def epoch_list(text: str, flag: str) -> tuple[int, ...]:
    """``"20,26"`` -> ``(20, 26)``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give comma-separated epoch numbers, e.g. 20,26") from None


def magnitude_range(text: str) -> tuple[float, float]:
    """``"2,4"`` -> ``(2.0, 4.0)`` (argparse type of ``--randaugment-magnitude``)."""
    try:
        low, high = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--randaugment-magnitude {text!r}: give LOW,HIGH, e.g. 2,4") from None
    return low, high


def _at_least_one(section, *fields: str) -> None:
    for field in fields:
        value = getattr(section, field)
        if value is not None and value < 1:
            raise ConfigError(f"--{field.replace('_', '-')} must be at least 1 (got {value})")


@dataclasses.dataclass
class DataConfig:
    """What data to load and how to split it (see :func:`fer_keras.data.prepare.prepare_data`)."""

    path: str | None = setting(None, "FER2013 CSV or Kaggle folder (train/, test/), or RAF-DB root; "
                               "omitted: the bundled synthetic demo set", flag="--data")
    labels: str = setting("all", "classes to keep: all, 3class, or names/ids like happiness,sadness,neutral "
                          "(default: %(default)s)")
    split: str = setting("usage", "usage (default): FER2013's Usage column; without PrivateTest, validation "
                         "is a stratified --val-fraction of Training and test is PublicTest. publictest-val: "
                         "validation = test = PublicTest", choices=SPLITS)
    val_fraction: float = setting(0.1, "share of Training held out for validation when there is no "
                                  "PrivateTest (default: %(default)s)")
    drop_test_duplicates: bool = setting(False, "drop training images whose pixels also occur in the "
                                         "validation or test images")
    limit: int | None = setting(None, "use at most N training images (stratified sample)")
    eval_limit: int | None = setting(None, "use at most N validation and N test images")
    label_noise: float = setting(0.0, "fraction of training labels flipped (label-noise study; default: %(default)s)")
    label_noise_mode: str = setting("uniform", "label noise: uniform (any other class) or class (a similar "
                                    "class; see fer_keras.data.label_noise)", choices=NOISE_MODES)
    demo_images_per_class: int = setting(DEMO_IMAGES_PER_CLASS, "images per class of the synthetic demo set",
                                         cli=False)

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ConfigError(f"--split {self.split!r}: use one of {', '.join(SPLITS)}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction {self.val_fraction:g}: must be between 0 and 1")
        _at_least_one(self, "limit", "eval_limit", "demo_images_per_class")
        if not 0 <= self.label_noise < 1:
            raise ConfigError(f"--label-noise {self.label_noise:g}: the fraction of flipped labels must be in [0, 1)")
        if self.label_noise_mode not in NOISE_MODES:
            raise ConfigError(f"--label-noise-mode {self.label_noise_mode!r}: use one of {', '.join(NOISE_MODES)}")


@dataclasses.dataclass
class ModelConfig:
    """Which registered model (:mod:`fer_keras.models`) and its input."""

    name: str = setting("dcnn", "registered model (default: %(default)s)", flag="--model", choices=registered_models)
    input_size: int | None = setting(None, "square input side (default: the model's own, 48 for DCNN, "
                                     "224 for GhostFace)", metavar="PIXELS")
    noise_layers: int = setting(0, "Gaussian-noise layers (std 0.1) for the privacy study, in models "
                                "that have them (default: %(default)s)", choices=(0, 1, 2))
    standardize: str = setting("image", "for standardised models: mean 0 / std 1 per image, or with the "
                               "training set's statistics (default: %(default)s)", choices=STANDARDIZE)
    init_from: str | None = setting(None, "start from the weights of this model (a pretrained name, run folder or "
                                    ".keras file of the same architecture) instead of a random initialisation: "
                                    "fine-tuning", metavar="MODEL")

    def __post_init__(self):
        _at_least_one(self, "input_size")
        if self.noise_layers not in (0, 1, 2):
            raise ConfigError(f"--noise-layers must be 0, 1 or 2 (got {self.noise_layers})")
        if self.standardize not in STANDARDIZE:
            raise ConfigError(f"--standardize {self.standardize!r}: use image or dataset")


@dataclasses.dataclass
class AugmentConfig:
    """Training augmentation (see :mod:`fer_keras.augment`)."""

    name: str = setting("basic", "training augmentation: none, basic, flip, crop, randaugment, erase, mixup or a '+' "
                        "combination such as basic+randaugment+mixup (default: %(default)s)", flag="--augment",
                        metavar="|".join(AUGMENTS[:5]))
    mixup_fraction: float = setting(0.25, "share of training images MixUp mixes (default: %(default)s)")
    mixup_alpha: float = setting(0.2, "MixUp Beta(alpha, alpha) (default: %(default)s)")
    randaugment_max_ops: int = setting(3, "RandAugment applies 0..N operations per image, uniformly "
                                       "(default: %(default)s)")
    randaugment_magnitude: tuple[float, float] = setting((2.0, 4.0), "RandAugment magnitude range on the 0..10 "
                                                         "scale (default: 2,4)", type=magnitude_range,
                                                         metavar="LOW,HIGH")

    def __post_init__(self):
        self.name = "+".join(parse_augment(self.name)) or "none"
        low, high = (float(v) for v in self.randaugment_magnitude)
        self.randaugment_magnitude = (low, high)
        if not 0 <= self.randaugment_max_ops <= 10:
            raise ConfigError(f"--randaugment-max-ops must be 0..10 (got {self.randaugment_max_ops})")
        if not 0 <= low <= high <= 10:
            raise ConfigError(f"--randaugment-magnitude {low:g},{high:g}: need 0 <= low <= high <= 10")
        if not 0 <= self.mixup_fraction <= 1:
            raise ConfigError(f"--mixup-fraction must be between 0 and 1 (got {self.mixup_fraction})")
        if self.mixup_alpha <= 0:
            raise ConfigError(f"--mixup-alpha must be positive (got {self.mixup_alpha})")

    @property
    def parts(self) -> tuple[str, ...]:
        return parse_augment(self.name)


@dataclasses.dataclass
class AdversarialConfig:
    """Neural Structured Learning adversarial regularisation (see :mod:`fer_keras.nsl`)."""

    enabled: bool = setting(True, "NSL adversarial regularisation (--no-adversarial: the same model, "
                            "trained plainly)", flag="--adversarial")
    multiplier: float = setting(0.3, "NSL adversarial loss weight (default: %(default)s; Study A's prose: 0.12)")
    step: float = setting(0.12, "NSL adversarial step size, model input units (default: %(default)s; "
                          "Study A's prose: 0.01)")
    grad_norm: str = setting("l2", "NSL gradient norm (default: %(default)s)", choices=GRAD_NORMS)

    def __post_init__(self):
        if self.grad_norm not in GRAD_NORMS:
            raise ConfigError(f"--grad-norm {self.grad_norm!r}: use one of {', '.join(GRAD_NORMS)}")
        if self.multiplier < 0 or self.step <= 0:
            raise ConfigError(f"--multiplier must be >= 0 and --step > 0 (got {self.multiplier}, {self.step})")


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer and learning-rate schedule (see :func:`fer_keras.training.learning_rate`)."""

    name: str = setting("adam", "default: %(default)s", flag="--optimizer", choices=OPTIMIZERS)
    lr: float = setting(1e-3, "learning rate (default: %(default)s)")
    momentum: float = setting(0.9, "SGD momentum (default: %(default)s)")
    nesterov: bool = setting(False, "SGD with Nesterov momentum (--no-nesterov: classical momentum)")
    ema: float = setting(0.0, "keep an exponential moving average of the weights with this momentum per step "
                         "(e.g. 0.999); validation, the best epoch and the final model use the average "
                         "(default: off)", metavar="MOMENTUM")
    schedule: str = setting("constant", "cosine: decay to lr/100 at the last step; step: divide by 10 after each "
                            "of --lr-drops (default: %(default)s)", flag="--lr-schedule", choices=LR_SCHEDULES)
    warmup_epochs: float = setting(0.0, "cosine: linear warm-up epochs (default: %(default)s)")
    lr_drops: tuple[int, ...] = setting((), "step: the epochs after which the learning rate is divided by 10, "
                                        "e.g. 20,26", flag="--lr-drops", type=lambda text: epoch_list(text, "--lr-drops"),
                                        metavar="EPOCH,EPOCH")

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.name!r}: use adam or sgd")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive (got {self.lr})")
        if self.nesterov and self.name != "sgd":
            raise ConfigError("--nesterov is a setting of --optimizer sgd")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"--ema {self.ema:g}: give a momentum in [0, 1), e.g. 0.999 (0: off)")
        if self.schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule {self.schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"--warmup-epochs must be >= 0 (got {self.warmup_epochs:g})")
        self.lr_drops = tuple(int(e) for e in self.lr_drops)
        if (self.schedule == "step") != bool(self.lr_drops):
            raise ConfigError("--lr-schedule step needs --lr-drops (e.g. 20,26), and --lr-drops needs --lr-schedule step")
        if any(e < 1 for e in self.lr_drops) or list(self.lr_drops) != sorted(set(self.lr_drops)):
            raise ConfigError(f"--lr-drops {','.join(map(str, self.lr_drops))}: give increasing epochs, 1 or more")


@dataclasses.dataclass
class TrainingConfig:
    """Epochs, batches, loss and callbacks (see :func:`fer_keras.training.fit`)."""

    epochs: int | None = setting(None, f"default: --full-epochs on real data, {DEMO_EPOCHS} on the demo set")
    full_epochs: int = setting(30, "epochs on real data when --epochs is not given", cli=False)
    batch_size: int = setting(50, "default: %(default)s")
    label_smoothing: float = setting(0.0, "training loss label smoothing (default: %(default)s)")
    early_stopping: int | None = setting(None, "stop when val loss has not improved for PATIENCE epochs",
                                         metavar="PATIENCE")
    reduce_lr: int | None = setting(None, "halve the learning rate when val loss plateaus for PATIENCE epochs",
                                    metavar="PATIENCE")
    restore_best: bool | None = setting(None, "end with the weights of the best validation-loss epoch "
                                        "(default: when early stopping)")
    deterministic: bool = setting(True, "deterministic TensorFlow ops: the same seed gives the same metrics "
                                  "(--no-deterministic: allow faster non-deterministic ops)")
    jit_compile: bool = setting(False, "compile with XLA (jit_compile); needs --no-deterministic", flag="--jit")
    precision: str = setting("float32", "float32, mixed_bfloat16 (CPUs with AMX), mixed_float16 (GPUs) or auto "
                             "(mixed_float16 on a GPU, mixed_bfloat16 with AMX, else float32); softmax, loss and "
                             "exports stay float32 (default: %(default)s)", choices=PRECISIONS)
    strategy: str = setting("none", "data-parallel training: none (one device), mirrored (every local GPU, else "
                            "every logical CPU device) or multiworker (the machines TF_CONFIG names); --batch-size "
                            "is the global batch, split evenly over the replicas (default: %(default)s)",
                            choices=STRATEGIES)

    def __post_init__(self):
        _at_least_one(self, "epochs", "full_epochs", "batch_size")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing {self.label_smoothing:g}: must be in [0, 1)")
        if self.jit_compile and self.deterministic:
            raise ConfigError("--jit needs --no-deterministic: XLA has no deterministic MaxPool gradient")


@dataclasses.dataclass
class DistilConfig:
    """Knowledge distillation from a teacher (see :mod:`fer_keras.training.distil`)."""

    teacher: str | None = setting(None, "learn from a teacher's probabilities on the training faces: an ensemble "
                                  "run folder (experiments/ensemble.py), a pretrained name or a training run "
                                  "folder, none of whose members trained on this run's validation or test faces",
                                  metavar="MODEL")
    temperature: float = setting(2.0, "the teacher's softmax temperature (default: %(default)s)",
                                 flag="--distil-temperature")
    label_weight: float = setting(0.5, "share of the one-hot label in each training target; the rest is the "
                                  "teacher's (default: %(default)s)", flag="--distil-label-weight")

    def __post_init__(self):
        if self.temperature <= 0:
            raise ConfigError(f"--distil-temperature must be positive (got {self.temperature:g})")
        if not 0 <= self.label_weight <= 1:
            raise ConfigError(f"--distil-label-weight must be between 0 and 1 (got {self.label_weight:g})")


@dataclasses.dataclass
class EvaluationConfig:
    """How the test figures are computed."""

    tta: str = setting("none", "test-time augmentation for the test figures: flip = average with the mirror "
                       "image; flip+crops = also five 90%% crops and their mirrors, 12 views "
                       "(default: %(default)s)", choices=TTA_MODES)

    def __post_init__(self):
        check_tta(self.tta)


def _section(cls):
    return dataclasses.field(default_factory=cls)


def section_types(cls) -> dict[str, type]:
    """Field name -> dataclass, for the fields of config class ``cls`` that are sections."""
    return {name: hint for name, hint in typing.get_type_hints(cls).items() if dataclasses.is_dataclass(hint)}


def build_config(cls, values: dict[str, Any]):
    """``cls`` from a nested dict: sections built from their dicts (lists become tuples),
    unknown keys ignored, every section validated."""
    sections = section_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            continue
        if key in sections and isinstance(value, dict):
            value = build_config(sections[key], value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


@dataclasses.dataclass
class ExperimentConfig:
    """Everything that defines a training run. ``None`` means "the model's / data's default"."""

    name: str = setting("nsl", "experiment name", cli=False)
    seed: int = setting(42, "seeds sampling, augmentation and initialisation (default: %(default)s)")
    out: str = setting("runs", "folder for run folders (default: %(default)s)")
    data: DataConfig = _section(DataConfig)
    model: ModelConfig = _section(ModelConfig)
    augment: AugmentConfig = _section(AugmentConfig)
    adversarial: AdversarialConfig = _section(AdversarialConfig)
    optimizer: OptimizerConfig = _section(OptimizerConfig)
    training: TrainingConfig = _section(TrainingConfig)
    distil: DistilConfig = _section(DistilConfig)
    evaluation: EvaluationConfig = _section(EvaluationConfig)

    def __post_init__(self):
        if self.optimizer.schedule != "constant" and self.training.reduce_lr:
            raise ConfigError(f"--reduce-lr cannot change a {self.optimizer.schedule} schedule; use one or the other")
        if self.optimizer.ema and self.training.strategy != "none":
            raise ConfigError(f"--ema is not supported with --strategy {self.training.strategy}; train with one of them")
        drops = self.optimizer.lr_drops
        if drops and drops[-1] >= self.resolved_epochs:
            raise ConfigError(f"--lr-drops {','.join(map(str, drops))}: every drop must come before the run's last "
                              f"epoch ({self.resolved_epochs}); use smaller epochs or more --epochs")

    @property
    def resolved_epochs(self) -> int:
        """Epochs to train: ``training.epochs``, else the demo's or the full-data default."""
        t = self.training
        return t.epochs or (DEMO_EPOCHS if self.data.path is None else t.full_epochs)

    def replace(self, **changes) -> "ExperimentConfig":
        """A validated copy with ``section__field=value`` (or top-level ``field=value``) changes,
        e.g. ``config.replace(model__name="vgg", seed=1)``."""
        return build_config(type(self), apply_changes(self.to_dict(), changes))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentConfig":
        """From :meth:`to_dict`'s nested form, or the flat form of run folders written before the
        sections existed (unknown keys are ignored)."""
        return build_config(cls, nest_flat(values) if is_flat(values) else values)


def apply_changes(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a nested config dict) with ``section__field`` / ``field`` keys of ``changes`` set."""
    for key, value in changes.items():
        section, _, field = key.rpartition("__")
        target = values.setdefault(section, {}) if section else values
        target[field] = value
    return values


#: Flat config keys of earlier run folders -> (section, field) of the nested config.
FLAT_KEYS = {
    "data": ("data", "path"), "labels": ("data", "labels"), "split": ("data", "split"),
    "val_fraction": ("data", "val_fraction"), "drop_test_duplicates": ("data", "drop_test_duplicates"),
    "limit": ("data", "limit"), "eval_limit": ("data", "eval_limit"), "label_noise": ("data", "label_noise"),
    "label_noise_mode": ("data", "label_noise_mode"), "demo_images_per_class": ("data", "demo_images_per_class"),
    "model": ("model", "name"), "noise_layers": ("model", "noise_layers"), "standardize": ("model", "standardize"),
    "init_from": ("model", "init_from"),
    "augment": ("augment", "name"), "mixup_fraction": ("augment", "mixup_fraction"),
    "mixup_alpha": ("augment", "mixup_alpha"), "randaugment_max_ops": ("augment", "randaugment_max_ops"),
    "randaugment_magnitude": ("augment", "randaugment_magnitude"),
    "adversarial": ("adversarial", "enabled"), "multiplier": ("adversarial", "multiplier"),
    "step": ("adversarial", "step"), "grad_norm": ("adversarial", "grad_norm"),
    "optimizer": ("optimizer", "name"), "lr": ("optimizer", "lr"), "momentum": ("optimizer", "momentum"),
    "lr_schedule": ("optimizer", "schedule"), "warmup_epochs": ("optimizer", "warmup_epochs"),
    "epochs": ("training", "epochs"), "full_epochs": ("training", "full_epochs"),
    "batch_size": ("training", "batch_size"), "label_smoothing": ("training", "label_smoothing"),
    "early_stopping": ("training", "early_stopping"), "reduce_lr": ("training", "reduce_lr"),
    "restore_best": ("training", "restore_best"), "deterministic": ("training", "deterministic"),
    "jit_compile": ("training", "jit_compile"), "tta": ("evaluation", "tta"),
}


def is_flat(values: dict[str, Any]) -> bool:
    """Whether a saved experiment config is in the flat form of earlier run folders."""
    sections = section_types(ExperimentConfig)
    return any(k in values and not isinstance(values[k], dict) for k in sections) or any(
        k in FLAT_KEYS and k not in sections for k in values)


def nest_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """An earlier run folder's flat config dict in the nested form (``input_shape`` [H, W, C]
    becomes ``model.input_size`` H; the channels always were the model's own)."""
    nested: dict[str, Any] = {k: flat[k] for k in ("name", "seed", "out") if k in flat}
    for key, value in flat.items():
        if key in FLAT_KEYS:
            section, field = FLAT_KEYS[key]
            nested.setdefault(section, {})[field] = value
    if flat.get("input_shape"):
        nested.setdefault("model", {})["input_size"] = int(flat["input_shape"][0])
    return nested
