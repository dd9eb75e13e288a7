"""Grad-CAM explanations and Study B's qualitative galleries for a trained run.

On the run's own test split (re-created from its config.json; --data if the data moved):
Grad-CAM on the last conv layer (viridis overlay, given and predicted label above each face),
faces whose given label disagrees with a confident prediction (likely label noise), and with
--compare the faces one run gets wrong and the other gets right (both ways).

    python experiments/explain.py --run runs/<run>
    python experiments/explain.py --run runs/<plain run> --compare runs/<randaugment+mixup run> --threshold 0.9

Writes figures (gradcam.png, confident_disagreements.png, wrong_<A>_right_<B>.png) and
explain.json into RUN/figures/explain/ (or --out).
"""
import argparse
from pathlib import Path

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.cli import run_main


def main(argv=None):
    from fer_keras.data import stratified_indices
    from fer_keras.experiment import prepare_data
    from fer_keras.explain import explain_run
    from fer_keras.export import RunModel
    from fer_keras.runs import ensure_writable_dir, write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="finished run folder (config.json, model/model.keras)")
    parser.add_argument("--compare", default=None, metavar="OTHER_RUN", help="second run for the wrong/right gallery")
    parser.add_argument("--data", default=None, help="data path, if it moved since the run was trained")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="confidence for the label-disagreement gallery (default: %(default)s)")
    parser.add_argument("--count", type=int, default=24, help="faces per figure (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="use a stratified sample of N test faces")
    parser.add_argument("--layer", default=None, help="conv layer for Grad-CAM (default: the last one)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN/figures/explain)")
    parser.add_argument("--trust-model", action="store_true", help="load model files that can run code "
                        "(HDF5 model.keras, Lambda layers): only from a source you trust")
    args = parser.parse_args(argv)

    run = RunModel(args.run, trusted=args.trust_model)
    other = RunModel(args.compare, trusted=args.trust_model) if args.compare else None
    config = run.config
    config.label_noise = 0.0  # only the test split is used; label noise never touches it
    if args.data:
        config.data = args.data
    test = prepare_data(config, log=lambda *a: None)["test"]
    if args.limit:
        test = test.take(stratified_indices(test.labels, args.limit, config.seed))
    out = ensure_writable_dir(args.out or Path(args.run) / "figures" / "explain")
    summary = explain_run(run, test, out, other, args.threshold, args.count, args.layer)
    write_json(out / "explain.json", summary)
    print(f"Figures and explain.json in {out}")
    return out


if __name__ == "__main__":
    run_main(main)
