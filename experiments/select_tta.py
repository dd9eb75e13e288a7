"""Choose a finished run's test-time augmentation on its validation split, then score only the
chosen mode on its test split (full, and without the test images that also occur in training).

    python experiments/select_tta.py runs/<run>                          # scores none, flip, flip+crops
    python experiments/select_tta.py runs/<run> --data path/to/fer2013   # the data moved since training

Writes runs/<run>/tta_validation.json (collected by experiments/report.py --collect; the report's
full-data table shows the chosen mode with its validation and test accuracy).
"""
import argparse
from pathlib import Path

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.evaluation import select_tta
from fer_keras.runs import TTA_FILE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished training run folder")
    parser.add_argument("--data", default=None, help="the data's path if it moved since training (default: the run's)")
    args = parser.parse_args(argv)
    result = select_tta(args.run, args.data)
    print(f"Selected {result['selected']!r} on validation ({result['modes'][result['selected']]['accuracy']:.2%}); "
          f"test {result['test']['accuracy']:.2%}; results in {Path(args.run) / TTA_FILE}")


if __name__ == "__main__":
    run_main(main)
