"""Study B: train GhostFace (Fused-MBConv + Ghost bottlenecks with triplet attention).

The study's recipe is the default: SGD 0.1 (momentum 0.9), batch 16, 100 epochs with early
stopping (patience 10) and reduce-LR-on-plateau (patience 5), basic augmentation (flip, rotation,
shift), inputs resized to 224x224x3 and standardised per image.

    python experiments/run_ghostface.py                                   # demo data
    python experiments/run_ghostface.py --data path/to/rafdb               # RAF-DB (EmoLabel/ + Image/)
    python experiments/run_ghostface.py --data path/to/fer2013 --input-size 112
    python experiments/run_ghostface.py --adversarial --multiplier 0.3 --step 0.12   # + NSL
    python experiments/run_ghostface.py --resume runs/<run folder>
    python experiments/run_ghostface.py --preset study-b-randaugment      # the study's "+ RandAugment" row
    python experiments/run_ghostface.py --augment basic+mixup --mixup-fraction 0.25 --mixup-alpha 0.2

Writes one run folder under --out (config, history, metrics, report, figures, model).
"""
import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.training.command_line import train_from_command_line


def main(argv=None):
    return train_from_command_line("B", __doc__, argv)


if __name__ == "__main__":
    run_main(main)
