"""Ensemble: average several trained models' probabilities, weights chosen on validation, test scored once.

    python experiments/ensemble.py --models fer2013-dcnn fer2013-ghostface                      # demo data
    python experiments/ensemble.py --models fer2013-dcnn fer2013-ghostface --data path/to/fer2013 --tta flip
    python experiments/ensemble.py --models runs/<run a> runs/<run b> runs/<run c> --data path/to/fer2013

Members are pretrained names or training run folders trained on the same split (their configs
say which faces they trained on; a bare model file is refused). Writes one run folder under --out:
config.json, metrics.json (weights; validation, test and de-duplicated test figures of each member
and of the ensemble) and table.md (fer_keras/studies/ensemble.py).
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.config import TTA_MODES
from fer_keras.errors import run_main
from fer_keras.runs import TABLE_MD_FILE
from fer_keras.studies.ensemble import EnsembleConfig, run_ensemble


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="pretrained names or training run folders")
    parser.add_argument("--data", default=None, help="the members' data (FER2013 CSV or Kaggle folders); "
                        "omitted: the bundled synthetic demo set")
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="views averaged per face (default: none)")
    parser.add_argument("--out", default="runs", help="folder for the run folder (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.data is None:
        print("No --data: the bundled synthetic demo set (the figures mean nothing for real faces)")
    run = run_ensemble(EnsembleConfig(tuple(args.models), args.data, args.tta, args.out))
    print(run.file(TABLE_MD_FILE).read_text())
    print(f"Results in {run.path} (config.json, metrics.json, table.md)")


if __name__ == "__main__":
    run_main(main)
