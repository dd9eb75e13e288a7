"""Named experiment presets: the studies' recipes and the shipped model's, by name.

Each preset *is* a command line: the flags that, on its study's base config (Study A's DCNN +
NSL, run by ``experiments/run_nsl.py``; Study B's GhostFace, by ``experiments/run_ghostface.py``),
give the recipe. :func:`preset_config` builds the config by parsing exactly those flags,
so the commands shown in the docs and in ``docs/RESULTS.md`` (:func:`command`) cannot drift from
what the scripts run. The scripts take ``--preset NAME`` as their starting point.

    python experiments/run_nsl.py --preset study-a --data path/to/fer2013
    python experiments/run_nsl.py --preset shipped-fer2013 --data path/to/fer2013
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

from fer_keras import pretrained
from fer_keras.config import ExperimentConfig
from fer_keras.errors import ConfigError
from fer_keras.flags import add_config_flags, changed_flags, config_from_args

#: Study A's script's base config: the DCNN with NSL (multiplier 0.3, step 0.12), Adam 1e-3,
#: batch 50, 30 epochs on real data, basic augmentation (rotation and zoom).
STUDY_A_BASE = ExperimentConfig(name="nsl")
#: Study B's script's base config: GhostFace, SGD 0.1 (momentum 0.9), batch 16, 100 epochs with
#: early stopping (patience 10) and reduce-LR-on-plateau (patience 5), basic augmentation (flip,
#: rotation, shift), 224x224x3 inputs standardised per image.
STUDY_B_BASE = ExperimentConfig(name="ghostface").replace(
    model__name="ghostface", adversarial__enabled=False, optimizer__name="sgd", optimizer__lr=0.1,
    optimizer__momentum=0.9, training__batch_size=16, training__full_epochs=100, training__early_stopping=10,
    training__reduce_lr=5)
#: Study -> its base config, and the script in experiments/ that trains it.
BASES = {"A": STUDY_A_BASE, "B": STUDY_B_BASE}
SCRIPTS = {"A": "run_nsl.py", "B": "run_ghostface.py"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A recipe: ``flags`` on the base config of ``study`` ("A" or "B"), for ``data`` (fer2013 or rafdb)."""

    name: str
    title: str
    study: str
    flags: str
    data: str = "fer2013"

    @property
    def script(self) -> str:
        """The training script in experiments/ that runs it."""
        return SCRIPTS[self.study]


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, title: str, study: str, flags: str, data: str = "fer2013") -> Preset:
    if name in PRESETS:
        raise ValueError(f"preset {name!r} is registered twice")
    if study not in BASES:
        raise ValueError(f"preset {name!r}: study {study!r} is not one of {', '.join(BASES)}")
    PRESETS[name] = Preset(name, title, study, flags, data)
    return PRESETS[name]


_THREE = "--labels happiness,sadness,neutral"
register_preset("study-a", "Study A, 7 classes, 30 epochs", "A", "--multiplier 0.3 --step 0.12 --epochs 30")
register_preset("study-a-100", "Study A, 7 classes, 100 epochs", "A", "--epochs 100")
register_preset("study-a-3class", "Study A, 3 classes, 30 epochs", "A", f"{_THREE} --epochs 30")
register_preset("study-a-3class-100", "Study A, 3 classes, 100 epochs", "A", f"{_THREE} --epochs 100")
register_preset("study-a-plain", "Study A, plain DCNN (comparison), 30 epochs", "A",
                "--no-adversarial --epochs 30")
register_preset("study-a-prose", "Study A, its prose's NSL setting (multiplier 0.12, step 0.01), 30 epochs",
                "A", "--multiplier 0.12 --step 0.01 --epochs 30")
for _aug, _suffix in (("basic", ""), ("basic+randaugment", "-randaugment"), ("basic+mixup", "-mixup"),
                      ("basic+randaugment+mixup", "-randaugment-mixup")):
    register_preset(f"study-b{_suffix}", f"Study B, GhostFace {_aug}, 100 epochs", "B",
                    f"--augment {_aug}", data="rafdb")
register_preset("dcnn-cosine-fer2013", "Study A's DCNN, plain, cosine LR, flip + crop, label smoothing 0.1, batch "
                "64, flip TTA, 30 epochs (shipped until the step-LR recipe beat it on validation)", "A", "--no-adversarial --model dcnn --epochs 30 --batch-size 64 "
                "--lr-schedule cosine --warmup-epochs 1 --label-smoothing 0.1 --augment basic+flip+crop --tta flip "
                "--drop-test-duplicates")
register_preset("shipped-fer2013", "The shipped FER2013 model's first stage: Study A's plain DCNN settings (batch 50, "
                "Adam 1e-3, basic augmentation) plus flips and a /10 learning-rate drop after epochs 20 and 26, flip TTA, "
                "30 epochs (the shipped model is 24 more epochs from it: --init-from RUN --epochs 24 --lr-drops 18,22)",
                "A",
                "--no-adversarial --model dcnn --epochs 30 --augment basic+flip --lr-schedule step --lr-drops 20,26 "
                "--tta flip --drop-test-duplicates")
register_preset("compact-vgg-fer2013", "The compact VGG with dcnn-cosine-fer2013's recipe (a quarter of the DCNN's "
                "multiply-adds), 40 epochs", "A", "--no-adversarial --model vgg --epochs 40 --batch-size 64 "
                "--lr-schedule cosine --warmup-epochs 1 --label-smoothing 0.1 --augment basic+flip+crop --tta flip "
                "--drop-test-duplicates")

#: The accuracy issue's recipe ablation: one choice at a time against this base, on validation (last epoch),
#: 20 epochs each (the shipped recipe's first stage shortened: /10 after epochs 12 and 16), no TTA.
register_preset("ablation-fer2013", "Recipe ablation base: Study A's plain DCNN (batch 50, Adam 1e-3, rotation and "
                "zoom) plus flips, /10 after epochs 12 and 16, 20 epochs, no TTA", "A",
                "--no-adversarial --model dcnn --epochs 20 --augment basic+flip --lr-schedule step --lr-drops 12,16 "
                "--drop-test-duplicates")

#: The accuracy issue's students: the shipped model trained 12 more epochs on an ensemble's soft targets
#: (give ``--init-from fer2013-dcnn --teacher runs/<ensemble>``), plainly or with Study A's NSL.
_STUDENT = ("--model dcnn --epochs 12 --augment basic+flip --lr-schedule step --lr-drops 6,9 --tta flip "
            "--drop-test-duplicates")
register_preset("student-fer2013", "A student of an ensemble: the shipped DCNN's recipe, 12 epochs from given weights "
                "(/10 after epochs 6 and 9), plain", "A", f"--no-adversarial {_STUDENT}")
register_preset("student-nsl-fer2013", "A student of an ensemble: the shipped DCNN's recipe, 12 epochs from given "
                "weights (/10 after epochs 6 and 9), NSL (multiplier 0.3, step 0.12)", "A",
                f"--adversarial --multiplier 0.3 --step 0.12 {_STUDENT}")

#: Study B on FER2013 within a CPU budget (RAF-DB's images cannot be had here): 112x112x3 inputs
#: (FER2013's faces are 48x48; a quarter of the 224 px cost), Adam 1e-3 with cosine decay instead
#: of SGD 0.1 at batch 16 (which diverged at batch 50 in a 1-epoch probe), 30 epochs, copies of
#: held-out faces dropped from training, the best validation-loss epoch kept.
_B_FER = ("--input-size 112 --optimizer adam --lr 1e-3 --lr-schedule cosine --warmup-epochs 1 --batch-size 64 "
          "--epochs 30 --reduce-lr 0 --early-stopping 0 --restore-best --drop-test-duplicates --tta flip")
for _aug, _suffix in (("basic", ""), ("basic+randaugment", "-randaugment"), ("basic+mixup", "-mixup"),
                      ("basic+randaugment+mixup", "-randaugment-mixup")):
    register_preset(f"study-b-fer2013{_suffix}", f"Study B's GhostFace on FER2013 at a CPU budget, {_aug}: 112 px, "
                    "Adam 1e-3 cosine, batch 64, 30 epochs, best validation epoch", "B",
                    f"{_B_FER} --augment {_aug}")

#: The presets of the studies' full-scale recipes, in the report's order.
STUDY_RECIPES = ("study-a", "study-a-100", "study-a-3class", "study-a-3class-100", "study-a-plain",
                 "study-b", "study-b-randaugment", "study-b-mixup", "study-b-randaugment-mixup")


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str, data: str | None = None) -> ExperimentConfig:
    """The config preset ``name``'s command line gives (on ``data``, default: none = the demo set)."""
    preset = get_preset(name)
    base = BASES[preset.study]
    parser = argparse.ArgumentParser(prog=preset.script, exit_on_error=False)
    add_config_flags(parser, base)
    try:
        args = parser.parse_args(shlex.split(preset.flags))
    except (argparse.ArgumentError, SystemExit) as exc:  # a mistake in this file, not the user's
        raise ValueError(f"preset {name!r}: flags {preset.flags!r} do not parse: {exc}") from None
    return config_from_args(args, base, data__path=data)


def command(name: str, data_path: str | None = None) -> str:
    """The shell command of preset ``name`` (``--data path/to/<data>`` unless ``data_path``)."""
    preset = get_preset(name)
    return f"python experiments/{preset.script} --data {data_path or 'path/to/' + preset.data} {preset.flags}"


def closest_preset(config: ExperimentConfig) -> tuple[str, list[str]] | None:
    """The preset ``config`` is nearest to, with the flags that turn that preset into ``config``
    (data path, output folder and run name aside; ``[]`` when it is the preset exactly), e.g.
    ``("shipped-fer2013", ["--epochs", "24"])``; None when no preset's flags can express it."""
    best = None
    for name in PRESETS:
        base = preset_config(name, config.data.path)
        flags = changed_flags(config, dataclasses.replace(base, out=config.out, name=config.name), skip={"data__path"})
        if flags is not None and (best is None or len(flags) < len(best[1])):
            best = (name, flags)
    return best


#: Flags whose value may be a run folder on the machine that trained: written ``runs/<its name>``.
RUN_FOLDER_FLAGS = ("--init-from", "--teacher")


def _written(name: str, flags: list[str]) -> str:
    """``--preset NAME FLAGS...``, a run folder given to ``--init-from`` or ``--teacher`` written ``runs/<its name>``."""
    flags = list(flags)
    for flag in RUN_FOLDER_FLAGS:
        if flag in flags:
            at = flags.index(flag) + 1
            if not pretrained.is_name(flags[at]):
                flags[at] = f"runs/{Path(flags[at]).name}"
    return shlex.join(["--preset", name, *flags])


def preset_flags(config: ExperimentConfig) -> str | None:
    """``--preset NAME`` plus the flags by which ``config`` differs from it (:func:`closest_preset`;
    a run folder given to ``--init-from`` or ``--teacher`` is written ``runs/<its name>``), or None."""
    found = closest_preset(config)
    return _written(*found) if found else None


def preset_command(config: ExperimentConfig) -> str | None:
    """The shell command that trains ``config``: its preset's (:func:`command`) when it is one
    exactly, else the script with ``--data path/to/<data>`` and :func:`preset_flags`. None when
    no preset's flags can express it."""
    found = closest_preset(config)
    if found is None:
        return None
    name, flags = found
    if not flags:
        return command(name)
    preset = get_preset(name)
    return f"python experiments/{preset.script} --data path/to/{preset.data} {_written(name, flags)}"
