"""Shared command-line plumbing for the experiment scripts: common flags and error handling."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from fer_keras.errors import ConfigError, FerKerasError


def run_main(main: Callable[[], object]) -> None:
    """Run ``main``; user mistakes (FerKerasError) print one line and exit 2, Ctrl-C exits 130.

    Output is line-buffered even into a file or pipe, so progress shows up as it happens."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    try:
        main()
    except FerKerasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _magnitude_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LOW,HIGH, e.g. 2,4") from None
    return low, high


def float_list(text: str) -> list[float]:
    """argparse type for comma-separated numbers such as ``0,0.2,0.4``."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0,0.2,0.4") from None


def add_training_flags(parser: argparse.ArgumentParser, defaults) -> None:
    """Flags shared by every training script; ``defaults`` is an ExperimentConfig."""
    from fer_keras.augment import AUGMENTS
    from fer_keras.data.dataset import SPLITS
    from fer_keras.models import MODEL_NAMES

    d = defaults
    add = parser.add_argument
    add("--data", default=None, help="FER2013 CSV or Kaggle folder (train/, test/), or RAF-DB root; "
        "omitted: the bundled synthetic demo set")
    add("--labels", default=d.labels, help="classes to keep: all, 3class, or names/ids like "
        "happiness,sadness,neutral (default: %(default)s)")
    add("--split", default=d.split, choices=SPLITS,
        help="usage (default): FER2013's Usage column; without PrivateTest, validation is a stratified "
        "--val-fraction of Training and test is PublicTest. publictest-val: validation = test = PublicTest")
    add("--val-fraction", type=float, default=d.val_fraction, help="share of Training held out for "
        "validation when there is no PrivateTest (default: %(default)s)")
    add("--drop-test-duplicates", action="store_true", help="drop training images whose pixels also "
        "occur in the validation or test images")
    add("--model", default=d.model, choices=MODEL_NAMES, help="default: %(default)s")
    add("--epochs", type=int, default=None,
        help=f"default: {d.full_epochs} on real data, 8 on the demo set")
    add("--input-size", type=int, default=None, metavar="PIXELS",
        help="square input side (default: the model's own, 48 for DCNN, 224 for GhostFace)")
    add("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    add("--optimizer", default=d.optimizer, choices=("adam", "sgd"), help="default: %(default)s")
    add("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    add("--lr-schedule", default=d.lr_schedule, choices=("constant", "cosine"),
        help="cosine: decay to lr/100 at the last step (default: %(default)s)")
    add("--warmup-epochs", type=float, default=d.warmup_epochs, help="cosine: linear warm-up epochs (default: %(default)s)")
    add("--label-smoothing", type=float, default=d.label_smoothing, help="training loss label smoothing (default: %(default)s)")
    add("--tta", default=d.tta, choices=("none", "flip"),
        help="test-time augmentation for the test figures: flip = average with the mirror image (default: %(default)s)")
    add("--momentum", type=float, default=d.momentum, help="SGD momentum (default: %(default)s)")
    add("--augment", default=d.augment, metavar="|".join(AUGMENTS[:5]),
        help="training augmentation: none, basic, randaugment, mixup or a '+' combination "
        "such as basic+randaugment+mixup (default: %(default)s)")
    add("--mixup-fraction", type=float, default=d.mixup_fraction,
        help="share of training images MixUp mixes (default: %(default)s)")
    add("--mixup-alpha", type=float, default=d.mixup_alpha, help="MixUp Beta(alpha, alpha) (default: %(default)s)")
    add("--randaugment-max-ops", type=int, default=d.randaugment_max_ops,
        help="RandAugment applies 0..N operations per image, uniformly (default: %(default)s)")
    add("--randaugment-magnitude", type=_magnitude_range, default=d.randaugment_magnitude, metavar="LOW,HIGH",
        help="RandAugment magnitude range on the 0..10 scale (default: 2,4)")
    add("--early-stopping", type=int, default=d.early_stopping, metavar="PATIENCE",
        help="stop when val loss has not improved for PATIENCE epochs")
    add("--reduce-lr", type=int, default=d.reduce_lr, metavar="PATIENCE",
        help="halve the learning rate when val loss plateaus for PATIENCE epochs")
    add("--restore-best", action=argparse.BooleanOptionalAction, default=d.restore_best,
        help="end with the weights of the best validation-loss epoch (default: when early stopping)")
    add("--limit", type=int, default=None, help="use at most N training images (stratified sample)")
    add("--eval-limit", type=int, default=None, help="use at most N validation and N test images")
    add("--seed", type=int, default=d.seed, help="default: %(default)s")
    add("--no-deterministic", action="store_true", help="allow faster non-deterministic TF ops")
    add("--jit", action="store_true", help="compile with XLA (jit_compile); needs --no-deterministic")
    add("--out", default=d.out, help="folder for run folders (default: %(default)s)")
    add("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run folder exactly "
        "(its saved settings are used; --epochs may extend a constant-LR run; other settings are refused)")
    add("--time-budget", type=float, default=None, metavar="MINUTES", help="stop at an epoch boundary "
        "before training would run over MINUTES (checkpoint kept; continue with --resume)")


#: Flags that may accompany --resume (they do not change what the run trains).
RESUME_FLAGS = {"resume", "time_budget", "epochs", "out"}


def check_resume_flags(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """With --resume, refuse (one line) flags that would change the run being resumed."""
    argv = sys.argv[1:] if argv is None else argv
    given = set()
    for token in argv:
        if token.startswith("--"):
            action = parser._option_string_actions.get(token.split("=", 1)[0])
            if action is not None:
                given.add(action.dest)
    extra = sorted(given - RESUME_FLAGS - {"help"})
    if "resume" in given and extra:
        flags = ", ".join("--" + d.replace("_", "-") for d in extra)
        raise ConfigError(f"--resume continues a run with its saved settings; {flags} would change it. "
                          "Drop them, or start a new run with them")


def train_and_report(config, args: argparse.Namespace):
    """Run (or resume, from ``args.resume``) the experiment of ``config``; print where the results
    are, or how to continue a run the time budget stopped. Returns the run folder."""
    from fer_keras.experiment import run_experiment

    run_dir = run_experiment(config, resume=args.resume, time_budget=args.time_budget,
                             extend_epochs=args.epochs if args.resume else None)
    if (run_dir / "metrics.json").is_file():
        print(f"Results in {run_dir} (metrics.json, history.csv, log.txt, figures/, model/)")
    else:
        print(f"Not finished: continue with --resume {run_dir}")
    return run_dir


def config_from_args(args: argparse.Namespace, cls, **extra):
    """Build an ExperimentConfig (``cls``) from parsed training flags plus ``extra`` fields."""
    from fer_keras.models import default_input_shape

    if args.input_size is not None:
        channels = default_input_shape(args.model)[2]
        extra.setdefault("input_shape", (args.input_size, args.input_size, channels))
    return cls(data=args.data, labels=args.labels, split=args.split, model=args.model,
               epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
               momentum=args.momentum, lr_schedule=args.lr_schedule, warmup_epochs=args.warmup_epochs,
               label_smoothing=args.label_smoothing, tta=args.tta, val_fraction=args.val_fraction,
               drop_test_duplicates=args.drop_test_duplicates, restore_best=args.restore_best,
               augment=args.augment, mixup_fraction=args.mixup_fraction,
               mixup_alpha=args.mixup_alpha, randaugment_max_ops=args.randaugment_max_ops,
               randaugment_magnitude=tuple(args.randaugment_magnitude), early_stopping=args.early_stopping,
               reduce_lr=args.reduce_lr, limit=args.limit, eval_limit=args.eval_limit, seed=args.seed,
               deterministic=not args.no_deterministic, jit_compile=args.jit, out=args.out, **extra)
