"""Package a finished run folder as a shipped pretrained model (fer_keras/pretrained/NAME/).

Writes model.keras, the int8 TFLite file, labels.txt, card.json and MODEL_CARD.md; with --data
the card also holds both forms' accuracy on the --usage rows (with and without flip TTA). The
training command on the card is the run's preset plus the flags it changed (the full settings
are in the card's config), and its wall time / CPU share come from the run's collected
timing.json (docs/runs/<run>/timing.json, see experiments/report.py --collect). A run trained
--init-from another run or pretrained model gets that training on its card too, and the sums.

    python experiments/package_model.py runs/<run> --name fer2013-dcnn --data path/to/fer2013
    python experiments/package_model.py runs/<run> --name my-model --root /tmp/models --description "..."
"""
import argparse
import json
from pathlib import Path

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import ConfigError, run_main
from fer_keras.pretrained.packaging import package_run, started_from
from fer_keras.runs import TIMING_FILE
from fer_keras.studies.report import load_run
from fer_keras.training.presets import preset_command


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished training run folder")
    parser.add_argument("--name", required=True, help="the pretrained model's name, e.g. fer2013-dcnn")
    parser.add_argument("--data", default=None, help="labelled face crops to score both forms on (default: none)")
    parser.add_argument("--usage", default="PublicTest", help="rows of --data to score (default: %(default)s)")
    parser.add_argument("--description", default=None, help="one sentence for the card (default: model and data)")
    parser.add_argument("--timing", default=None, metavar="JSON", help="the run's timing.json (default: "
                        "docs/runs/<run folder name>/timing.json if it exists)")
    parser.add_argument("--root", default=None, help="folder to package into (default: fer_keras/pretrained)")
    parser.add_argument("--compare-with", default="", metavar="NAME,NAME", help="shipped models whose accuracy and "
                        "cost (measured now) the card sets beside this one's, e.g. fer2013-dcnn")
    parser.add_argument("--changes", default=None, help="what this version changes from the model of that name it "
                        "replaces (needed when replacing one; said on the card)")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    if run["kind"] != "train" or not run.get("metrics"):
        raise ConfigError(f"{args.run}: not a finished training run (no metrics.json); finish it with --resume first")
    timing_file = Path(args.timing) if args.timing else Path("docs/runs") / run["name"] / TIMING_FILE
    if args.timing and not timing_file.is_file():
        raise ConfigError(f"--timing {timing_file}: no such file; collect the run first (experiments/report.py --collect)")
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else None
    train_command = preset_command(run["config"])  # --data path/to/...: the card is read elsewhere
    source, started = run["config"].model.init_from, None
    if source:  # the card gives that training too, and both summed
        source_timing = Path("docs/runs") / Path(source).name / TIMING_FILE
        source_command = preset_command(load_run(source)["config"]) if Path(source).is_dir() else None
        started = started_from(source, command=source_command,
                               timing=json.loads(source_timing.read_text()) if source_timing.is_file() else None,
                               recorded=run["resolved"].get("init_from"))
    folder = package_run(args.run, args.name, root=args.root, data=args.data, usage=args.usage,
                         description=args.description, command=train_command, timing=timing, started=started,
                         compare_with=tuple(n for n in args.compare_with.split(",") if n), changes=args.changes)
    print(f"Packaged {run['name']} as {args.name!r}: {folder} (training command: {train_command or 'see card.json'}; "
          f"timing: {timing_file if timing else 'none'})")


if __name__ == "__main__":
    run_main(main)
