"""Training from the command line: a script's flags -> its config -> one run folder.

``experiments/run_nsl.py`` (Study A) and ``experiments/run_ghostface.py`` (Study B) are this
module's :func:`train_from_command_line` with their study's name: the flags come from the config
dataclasses (:mod:`fer_keras.flags`), their defaults from the study's base config or the
``--preset`` named (:mod:`fer_keras.training.presets`), and the run is
:func:`fer_keras.training.experiment.run_experiment`.
"""
from __future__ import annotations

import argparse
import sys

from fer_keras.errors import ConfigError
from fer_keras.flags import add_config_flags, config_from_args
from fer_keras.training.experiment import run_experiment
from fer_keras.training.presets import BASES, PRESETS, SCRIPTS, preset_config

#: Flags that may accompany --resume (they do not change what the run trains).
RESUME_FLAGS = {"resume", "time_budget", "training__epochs", "out"}


def experiment_parser(study: str, description: str, argv: list[str] | None = None, skip=()):
    """The argument parser of ``study``'s training script ("A": run_nsl.py, "B": run_ghostface.py)
    and the config its defaults come from: the study's base, or the preset named by ``--preset``
    in ``argv`` (read first). Returns ``(parser, defaults)``; :func:`fer_keras.flags.config_from_args`
    gives the run's config."""
    argv = sys.argv[1:] if argv is None else argv
    script = SCRIPTS[study]
    names = [n for n, p in PRESETS.items() if p.study == study]
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--preset", default=None)
    chosen = peek.parse_known_args(argv)[0].preset
    if chosen is not None and chosen not in names:
        raise ConfigError(f"--preset {chosen!r}: {script} runs the presets {', '.join(names)}")
    defaults = preset_config(chosen) if chosen else BASES[study]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, choices=names, help="start from a named recipe (its flags: "
                        "fer_keras/training/presets.py); flags given too override it")
    add_config_flags(parser, defaults, skip)
    add_run_flags(parser)
    return parser, defaults


def train_from_command_line(study: str, description: str, argv: list[str] | None = None):
    """The whole of ``study``'s training script: flags (from ``--preset`` or the study's base) ->
    config -> one run folder (or the resumed one); returns the run folder."""
    parser, defaults = experiment_parser(study, description, argv)
    args = parser.parse_args(argv)
    return train_and_report(config_from_args(args, defaults), args, parser, argv)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """``--resume RUN_DIR`` and ``--time-budget MINUTES``, for scripts that train one run."""
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run folder "
                        "exactly (its saved settings are used; --epochs may extend a constant-LR run; other "
                        "settings are refused)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MINUTES", help="stop at an epoch "
                        "boundary before training would run over MINUTES (checkpoint kept; continue with --resume)")


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> set[str]:
    """The dests of the flags written on the command line ``argv`` (default: ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else argv
    given = set()
    for token in argv:
        if token.startswith("--"):
            action = parser._option_string_actions.get(token.split("=", 1)[0])
            if action is not None:
                given.add(action.dest)
    return given


def check_resume_flags(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """With --resume, refuse (one line) flags that would change the run being resumed."""
    given = given_flags(parser, argv)
    extra = sorted(given - RESUME_FLAGS - {"help"})
    if "resume" in given and extra:
        flags = ", ".join(sorted(_flag_of(parser, d) for d in extra))
        raise ConfigError(f"--resume continues a run with its saved settings; {flags} would change it. "
                          "Drop them, or start a new run with them")


def _flag_of(parser: argparse.ArgumentParser, dest: str) -> str:
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return action.option_strings[0]
    return "--" + dest.split("__")[-1].replace("_", "-")


def train_and_report(config, args: argparse.Namespace, parser: argparse.ArgumentParser,
                     argv: list[str] | None = None):
    """Run (or resume, from ``args.resume``) the experiment of ``config``; print where the results
    are, or how to continue a run the time budget stopped. Returns the run folder (None on a
    multi-worker run's non-chief worker)."""
    check_resume_flags(parser, argv)
    extend = args.training__epochs if args.resume and "training__epochs" in given_flags(parser, argv) else None
    run = run_experiment(config, resume=args.resume, time_budget=args.time_budget, extend_epochs=extend)
    if run is None:
        print("This worker's part is done; the chief worker writes the run folder")
    elif run.finished:
        print(f"Results in {run.path} (metrics.json, history.csv, log.txt, figures/, model/)")
    else:
        print(f"Not finished: continue with --resume {run.path}")
    return run
