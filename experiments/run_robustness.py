"""Adversarial robustness of trained models: clean, FGSM, PGD and NSL-perturbation accuracy.

Each run folder's model (model/model.keras) is attacked with its own gradients (white-box) on that
run's test split (``--split val``: its validation split, a figure that may choose a model), re-created
from its config.json. Epsilons are in the model's input units:
pixels/255 for the DCNN (so 8/255 = 8 grey levels; adversarial images are clipped to [0, 1]),
standardised units for GhostFace (no clipping). See fer_keras/attacks.py.

    python experiments/run_robustness.py --runs runs/<plain run> runs/<nsl run>
    python experiments/run_robustness.py --runs runs/a runs/b --epsilons 0,2/255,4/255,8/255 --pgd-steps 10
    python experiments/run_robustness.py --runs runs/a --limit 500 --nsl-grad-norm l2
    python experiments/run_robustness.py --runs runs/a --split val --limit 1000   # for a shipping rule

Writes robustness.json and figures/robustness.png (robustness_val.*) into every run folder, and a comparison
(robustness_table.md/.csv, robustness.png, robustness_all.json) into a new folder under --out.
"""
import argparse
from fractions import Fraction
from pathlib import Path

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.attacks import DEFAULT_EPSILONS, PGD_STEPS, parse_epsilons
from fer_keras.config import GRAD_NORMS
from fer_keras.errors import run_main
from fer_keras.files import ensure_writable_dir
from fer_keras.model_files import TRUST_HELP
from fer_keras.runs import RunFolder
from fer_keras.studies.robustness import SPLIT_FILES, evaluate_run, write_comparison


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="RUN_DIR", help="finished run folders")
    parser.add_argument("--epsilons", default=",".join(str(Fraction(e).limit_denominator(255)) for e in DEFAULT_EPSILONS),
                        help="attack sizes in model input units (default: %(default)s)")
    parser.add_argument("--pgd-steps", type=int, default=PGD_STEPS, help="default: %(default)s")
    parser.add_argument("--pgd-step-size", type=float, default=None, help="default: 2.5 * eps / steps")
    parser.add_argument("--nsl-grad-norm", default="infinity", choices=GRAD_NORMS,
                        help="norm of NSL's perturbation (default: %(default)s, as in NSL's tutorial)")
    parser.add_argument("--split", default="test", choices=list(SPLIT_FILES),
                        help="held-out split to attack: test reports, val may choose (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="attack a stratified sample of N of its images")
    parser.add_argument("--batch-size", type=int, default=100, help="default: %(default)s")
    parser.add_argument("--data", default=None, help="data path, if it moved since the runs were trained")
    parser.add_argument("--seed", type=int, default=0, help="PGD random starts (default: %(default)s)")
    parser.add_argument("--out", default="runs", help="folder for the comparison folder (default: %(default)s)")
    parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)
    args = parser.parse_args(argv)
    epsilons = parse_epsilons(args.epsilons)
    ensure_writable_dir(args.out)  # the comparison folder is made once every run is done
    results = [evaluate_run(run, epsilons, args.pgd_steps, args.pgd_step_size, args.nsl_grad_norm,
                            data=args.data, limit=args.limit, batch_size=args.batch_size, seed=args.seed,
                            trusted=args.trust_model, split=args.split)
               for run in args.runs]
    out = RunFolder.create(args.out, "robustness").path
    paths = write_comparison(results, out)
    print(paths["markdown"].read_text())
    file = SPLIT_FILES[args.split]
    print(f"Per run: {file}, figures/{Path(file).with_suffix('.png')}; comparison in {out}")


if __name__ == "__main__":
    run_main(main)
