"""Crop framing: how the face detector, the crop margin and eye alignment change accuracy, on
FER2013 faces made into photos whose framing is known (fer_keras/studies/framing.py says how).

    python experiments/measure_framing.py                                  # demo faces, a minute
    python experiments/measure_framing.py --data path/to/fer2013 --limit 1000 --out runs/framing
    python experiments/measure_framing.py --data path/to/fer2013 --model fer2013-ghostface --framings registered
    python experiments/measure_framing.py --detectors retinaface,haar --margins 0,0.2,0.4

Trains nothing. Writes one run folder under --out: config.json, table.md/.csv, metrics.json (with
the defaults the study's rule picks) and figures/framing.png.
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.flags import add_config_flags, config_from_args
from fer_keras.runs import TABLE_MD_FILE
from fer_keras.studies.framing import FramingConfig, run_study


def main(argv=None):
    defaults = FramingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser, defaults)
    run = run_study(config_from_args(parser.parse_args(argv), defaults))
    print(run.file(TABLE_MD_FILE).read_text())
    print(f"Results in {run.path} (config.json, table.md, table.csv, metrics.json, figures/framing.png)")


if __name__ == "__main__":
    run_main(main)
