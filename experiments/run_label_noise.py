"""Label-noise study: flip a fraction of the training labels, train with and without
de-memorisation augmentation, and measure clean test accuracy and memorisation (how many of the
flipped training images the model still predicts with their true label).

    python experiments/run_label_noise.py --data path/to/fer2013 --noise 0,0.2,0.4 --augments basic,mixup
    python experiments/run_label_noise.py --noise 0.3 --noise-mode class --augments basic,randaugment+mixup

--noise-mode uniform flips to any other class; class flips each expression to a similar one
(anger<->disgust, fear<->surprise, sadness<->neutral, happiness->surprise). Every other training
flag (--model, --epochs, --limit, ...) applies to all runs. Writes one folder under --out with one
run folder per setting, label_noise.csv/.md (the table) and label_noise.png (the plot).
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.cli import add_training_flags, config_from_args, float_list, run_main
from fer_keras.config import ExperimentConfig
from fer_keras.label_noise import NOISE_MODES, run_sweep


def main():
    defaults = ExperimentConfig(name="label-noise", adversarial=False)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float_list, default=[0.0, 0.2, 0.4],
                        help="fractions of training labels to flip (default: 0,0.2,0.4)")
    parser.add_argument("--noise-mode", default="uniform", choices=NOISE_MODES, help="default: %(default)s")
    parser.add_argument("--augments", default="basic,mixup",
                        help="comma-separated augmentation settings to compare (default: %(default)s)")
    parser.add_argument("--adversarial", action="store_true", help="train with NSL (default: plain)")
    parser.add_argument("--multiplier", type=float, default=defaults.multiplier)
    parser.add_argument("--step", type=float, default=defaults.step)
    add_training_flags(parser, defaults)
    args = parser.parse_args()
    if args.resume:
        parser.error("--resume is not supported for sweeps; resume a single run with run_nsl.py --resume")
    augments = [a.strip() for a in args.augments.split(",") if a.strip()]
    base = config_from_args(args, ExperimentConfig, name="label-noise", adversarial=args.adversarial,
                            multiplier=args.multiplier, step=args.step, label_noise_mode=args.noise_mode)
    for augment in augments:  # check every setting before the first run starts
        ExperimentConfig.from_dict({**base.to_dict(), "augment": augment})
    result = run_sweep(base, args.noise, augments, args.out)
    print((result["folder"] / "label_noise.md").read_text())
    print(f"Results in {result['folder']} (label_noise.csv/.md, label_noise.png, one run folder per setting)")


if __name__ == "__main__":
    run_main(main)
