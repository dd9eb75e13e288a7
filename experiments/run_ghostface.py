"""Study B: train GhostFace (Fused-MBConv + Ghost bottlenecks with triplet attention).

The study's recipe is the default: SGD 0.1 (momentum 0.9), batch 16, 100 epochs with early
stopping (patience 10) and reduce-LR-on-plateau (patience 5), basic augmentation (flip, rotation,
shift), inputs resized to 224x224x3 and standardised per image.

    python experiments/run_ghostface.py                                   # demo data
    python experiments/run_ghostface.py --data path/to/rafdb               # RAF-DB (EmoLabel/ + Image/)
    python experiments/run_ghostface.py --data path/to/fer2013 --input-size 112
    python experiments/run_ghostface.py --adversarial --multiplier 0.3 --step 0.12   # + NSL
    python experiments/run_ghostface.py --resume runs/<run folder>
    python experiments/run_ghostface.py --augment basic+randaugment      # the study's "+ RandAugment" row
    python experiments/run_ghostface.py --augment basic+mixup --mixup-fraction 0.25 --mixup-alpha 0.2

Writes one run folder under --out (config, history, metrics, report, figures, model).
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.adversarial import GRAD_NORMS
from fer_keras.cli import add_training_flags, check_resume_flags, config_from_args, run_main, train_and_report
from fer_keras.config import ExperimentConfig

STUDY_B = ExperimentConfig(name="ghostface", model="ghostface", adversarial=False, optimizer="sgd",
                           lr=0.1, momentum=0.9, batch_size=16, full_epochs=100, early_stopping=10,
                           reduce_lr=5, augment="basic", standardize="image")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adversarial", action="store_true", help="wrap GhostFace with NSL, as run_nsl.py does the DCNN")
    parser.add_argument("--multiplier", type=float, default=STUDY_B.multiplier, help="NSL loss weight (default: %(default)s)")
    parser.add_argument("--step", type=float, default=STUDY_B.step, help="NSL step size, standardised units (default: %(default)s)")
    parser.add_argument("--grad-norm", default=STUDY_B.grad_norm, choices=GRAD_NORMS)
    parser.add_argument("--noise-layers", type=int, default=0, choices=(0, 1, 2),
                        help="Gaussian-noise layers (std 0.1) for the privacy study")
    parser.add_argument("--standardize", default=STUDY_B.standardize, choices=("image", "dataset"),
                        help="mean 0 / std 1 per image or with the training set's statistics")
    add_training_flags(parser, STUDY_B)
    args = parser.parse_args()
    check_resume_flags(parser)
    config = config_from_args(args, ExperimentConfig, name="ghostface", adversarial=args.adversarial,
                              multiplier=args.multiplier, step=args.step, grad_norm=args.grad_norm,
                              noise_layers=args.noise_layers, standardize=args.standardize,
                              full_epochs=STUDY_B.full_epochs)
    train_and_report(config, args)


if __name__ == "__main__":
    run_main(main)
