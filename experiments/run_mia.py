"""Study B's privacy audit: membership inference against each defence, in one table.

For every setting (none, Gaussian-noise layers, augmentations, DP-SGD) a model is trained (or
loaded with --model-dir), then attacked with tensorflow-privacy's membership-inference attacks
(loss threshold, entropy threshold, logistic regression) on members (training images) and
non-members (held-out images), 2,000 + 2,000 by default as in the study.

    python experiments/run_mia.py                                        # demo data, ~3 min
    python experiments/run_mia.py --data path/to/fer2013 --limit 1000 --audit-size 1000
    python experiments/run_mia.py --settings none,noise1+basic,noise2+mixup --model ghostface --input-size 64
    python experiments/run_mia.py --model-dir runs/<earlier run_mia or run_nsl folder>   # audit saved models

Writes one run folder under --out: table.csv, table.md, summary.json, roc*.png,
settings/<setting>.json, models/<setting>.keras.
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.flags import add_config_flags, config_from_args
from fer_keras.model_files import TRUST_HELP
from fer_keras.runs import TABLE_MD_FILE
from fer_keras.studies.mia import NOT_FLAGS, MIAConfig, run_study


def main(argv=None):
    defaults = MIAConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser, defaults, skip=NOT_FLAGS)
    parser.add_argument("--model-dir", default=None, metavar="RUN_DIR", help="audit the models of an earlier "
                        "run_mia.py (or run_nsl.py / run_ghostface.py) folder instead of training")
    parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)
    args = parser.parse_args(argv)
    run = run_study(config_from_args(args, defaults), model_dir=args.model_dir, trusted=args.trust_model)
    print(run.file(TABLE_MD_FILE).read_text())
    print(f"Results in {run.path} (table.csv, table.md, summary.json, roc.png, settings/, models/)")


if __name__ == "__main__":
    run_main(main)
