"""Study A: train a DCNN (or any fer_keras model) on FER2013 with NSL adversarial regularisation.

    python experiments/run_nsl.py --multiplier 0.3 --step 0.12            # demo data
    python experiments/run_nsl.py --data path/to/fer2013 --epochs 30      # real FER2013
    python experiments/run_nsl.py --data fer2013.csv --labels 3class      # happiness/sadness/neutral
    python experiments/run_nsl.py --no-adversarial ...                     # same model, plain training
    python experiments/run_nsl.py --preset shipped-fer2013 --data path/to/fer2013   # a named recipe
    python experiments/run_nsl.py --resume runs/<run folder>               # continue an interrupted run
    python experiments/run_nsl.py --augment randaugment+mixup --mixup-fraction 0.25 --randaugment-magnitude 2,4

The defaults are Study A's (DCNN, NSL multiplier 0.3 and step 0.12, Adam 1e-3, batch 50, 30 epochs,
rotation and zoom). Writes one run folder under --out (config, history, metrics, report, figures, model).
"""
import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.training.command_line import train_from_command_line


def main(argv=None):
    return train_from_command_line("A", __doc__, argv)


if __name__ == "__main__":
    run_main(main)
