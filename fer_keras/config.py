"""One config object per experiment, saved as ``config.json`` in its run folder."""
from __future__ import annotations

import dataclasses
from typing import Any

from fer_keras.errors import ConfigError

#: Images per class and epochs of the bundled demo set, sized so `run_nsl.py` with no --data
#: finishes in under 3 minutes on 2 CPU cores.
DEMO_IMAGES_PER_CLASS = 60
DEMO_EPOCHS = 8


@dataclasses.dataclass
class ExperimentConfig:
    """Everything that defines a training run. ``None`` means "the model's / data's default"."""

    name: str = "nsl"
    data: str | None = None          # FER2013 CSV / Kaggle folder; None = synthetic demo set
    labels: str = "all"              # "all", "3class" or "happiness,sadness,neutral" / "3,4,6"
    split: str = "usage"             # "usage", "publictest-val", "80/10/10" or "90/10" (fer_keras.data.split)
    val_fraction: float = 0.1        # share of Training held out for validation (usage split, no PrivateTest)
    drop_test_duplicates: bool = False  # drop training images whose pixels also occur in val or test
    model: str = "dcnn"
    input_shape: tuple[int, int, int] | None = None  # None: the model's default
    noise_layers: int = 0            # GhostFace's Gaussian-noise layers (privacy study)
    adversarial: bool = True
    multiplier: float = 0.3
    step: float = 0.12
    grad_norm: str = "l2"
    epochs: int | None = None        # full_epochs on real data, DEMO_EPOCHS on the demo set
    full_epochs: int = 30            # the study's epochs, used when --epochs is not given
    batch_size: int = 50
    optimizer: str = "adam"          # "adam" or "sgd"
    lr: float = 1e-3
    lr_schedule: str = "constant"    # "constant" or "cosine" (to lr/100 at the last step)
    warmup_epochs: float = 0.0       # cosine: linear warm-up over this many epochs
    label_smoothing: float = 0.0     # training loss only
    restore_best: bool | None = None  # end with the best-validation-loss epoch; None: when early stopping
    tta: str = "none"                # test-time augmentation: "none" or "flip" (average with the mirror image)
    momentum: float = 0.9            # SGD only
    augment: str = "basic"           # none, basic, randaugment, mixup or a '+' combination
    mixup_fraction: float = 0.25     # share of training images MixUp mixes (Study B: 25%)
    mixup_alpha: float = 0.2         # MixUp's Beta(alpha, alpha)
    randaugment_max_ops: int = 3     # RandAugment: 0..max_ops operations per image
    randaugment_magnitude: tuple[float, float] = (2.0, 4.0)  # on RandAugment's 0..10 scale
    label_noise: float = 0.0         # fraction of training labels flipped (label-noise study)
    label_noise_mode: str = "uniform"  # "uniform" or "class" (see fer_keras.label_noise)
    standardize: str = "image"       # for standardised models: "image" or "dataset"
    early_stopping: int | None = None  # patience in epochs (val loss); None = off
    reduce_lr: int | None = None       # ReduceLROnPlateau patience; None = off
    limit: int | None = None         # at most this many training images (stratified sample)
    eval_limit: int | None = None    # at most this many validation and test images each
    seed: int = 42
    deterministic: bool = True       # TensorFlow op determinism: same seed -> same metrics
    jit_compile: bool = False        # XLA; measured slower than oneDNN on 2-core CPUs
    demo_images_per_class: int = DEMO_IMAGES_PER_CLASS
    out: str = "runs"

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"--optimizer {self.optimizer!r}: use adam or sgd")
        for field in ("batch_size", "limit", "eval_limit", "epochs"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise ConfigError(f"--{field.replace('_', '-')} must be at least 1 (got {value})")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive (got {self.lr})")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"--lr-schedule {self.lr_schedule!r}: use constant or cosine")
        if self.lr_schedule == "cosine" and self.reduce_lr:
            raise ConfigError("--reduce-lr cannot change a cosine schedule; use one or the other")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing {self.label_smoothing:g}: must be in [0, 1)")
        if self.tta not in ("none", "flip"):
            raise ConfigError(f"--tta {self.tta!r}: use none or flip")
        if self.jit_compile and self.deterministic:
            raise ConfigError("--jit needs --no-deterministic: XLA has no deterministic MaxPool gradient")
        from fer_keras.augment import MixUpSettings, RandAugmentSettings, parse_augment
        from fer_keras.label_noise import NOISE_MODES

        self.augment = "+".join(parse_augment(self.augment)) or "none"
        self.randaugment_magnitude = RandAugmentSettings(self.randaugment_max_ops,
                                                         tuple(self.randaugment_magnitude)).magnitude
        MixUpSettings(self.mixup_fraction, self.mixup_alpha)
        if not 0 <= self.label_noise < 1:
            raise ConfigError(f"--noise {self.label_noise:g}: the fraction of flipped labels must be in [0, 1)")
        if self.label_noise_mode not in NOISE_MODES:
            raise ConfigError(f"--noise-mode {self.label_noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
        if self.input_shape is not None:
            self.input_shape = tuple(int(v) for v in self.input_shape)

    @property
    def resolved_epochs(self) -> int:
        return self.epochs or (DEMO_EPOCHS if self.data is None else self.full_epochs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
