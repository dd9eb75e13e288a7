"""Label-noise study: flip a fraction of the training labels, train with and without
de-memorisation augmentation, and measure clean test accuracy and memorisation (how many of the
flipped training images the model still predicts with their true label).

    python experiments/run_label_noise.py --data path/to/fer2013 --noise 0,0.2,0.4 --augments basic,mixup
    python experiments/run_label_noise.py --noise 0.3 --noise-mode class --augments basic,randaugment+mixup

--noise-mode uniform flips to any other class; class flips each expression to a similar one
(anger<->disgust, fear<->surprise, sadness<->neutral, happiness->surprise). Every other training
flag (--model, --epochs, --limit, ...) applies to all runs; the default is plain training. Writes
one folder under --out with one run folder per setting, label_noise.csv/.md (the table) and
label_noise.png (the plot).
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.config import ExperimentConfig, parse_augment
from fer_keras.data.label_noise import NOISE_MODES
from fer_keras.errors import run_main
from fer_keras.flags import add_config_flags, config_from_args, float_list
from fer_keras.studies.label_noise import run_sweep


def main(argv=None):
    defaults = ExperimentConfig(name="label-noise").replace(adversarial__enabled=False)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float_list, default=[0.0, 0.2, 0.4],
                        help="fractions of training labels to flip (default: 0,0.2,0.4)")
    parser.add_argument("--noise-mode", default="uniform", choices=NOISE_MODES, help="default: %(default)s")
    parser.add_argument("--augments", default="basic,mixup",
                        help="comma-separated augmentation settings to compare (default: %(default)s)")
    add_config_flags(parser, defaults, skip=("data__label_noise", "data__label_noise_mode", "augment__name"))
    args = parser.parse_args(argv)
    augments = ["+".join(parse_augment(a.strip())) or "none" for a in args.augments.split(",") if a.strip()]
    base = config_from_args(args, defaults, data__label_noise_mode=args.noise_mode)
    result = run_sweep(base, args.noise, augments, base.out)
    print((result["folder"] / "label_noise.md").read_text())
    print(f"Results in {result['folder']} (label_noise.csv/.md, label_noise.png, one run folder per setting)")


if __name__ == "__main__":
    run_main(main)
