"""Study A: train a DCNN (or any fer_keras model) on FER2013 with NSL adversarial regularisation.

    python experiments/run_nsl.py --multiplier 0.3 --step 0.12            # demo data
    python experiments/run_nsl.py --data path/to/fer2013 --epochs 30      # real FER2013
    python experiments/run_nsl.py --data fer2013.csv --labels 3class      # happiness/sadness/neutral
    python experiments/run_nsl.py --no-adversarial ...                     # same model, plain training
    python experiments/run_nsl.py --resume runs/<run folder>               # continue an interrupted run
    python experiments/run_nsl.py --augment randaugment+mixup --mixup-fraction 0.25 --randaugment-magnitude 2,4

Writes one run folder under --out (config, history, metrics, report, figures, model).
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.adversarial import GRAD_NORMS
from fer_keras.cli import add_training_flags, check_resume_flags, config_from_args, run_main, train_and_report
from fer_keras.config import ExperimentConfig


def main():
    defaults = ExperimentConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multiplier", type=float, default=defaults.multiplier,
                        help="NSL adversarial loss weight (default: %(default)s; the study's prose: 0.12)")
    parser.add_argument("--step", type=float, default=defaults.step,
                        help="NSL adversarial step size, input units (default: %(default)s; the study's prose: 0.01)")
    parser.add_argument("--grad-norm", default=defaults.grad_norm, choices=GRAD_NORMS,
                        help="NSL gradient norm (default: %(default)s)")
    parser.add_argument("--no-adversarial", action="store_true", help="train the same base model plainly")
    add_training_flags(parser, defaults)
    args = parser.parse_args()
    check_resume_flags(parser)
    config = config_from_args(args, ExperimentConfig, name="nsl", adversarial=not args.no_adversarial,
                              multiplier=args.multiplier, step=args.step, grad_norm=args.grad_norm)
    train_and_report(config, args)


if __name__ == "__main__":
    run_main(main)
