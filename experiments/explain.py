"""Grad-CAM explanations and Study B's qualitative galleries for a trained run.

On the run's own test split (re-created from its config.json; --data if the data moved):
Grad-CAM on the model's last conv layer (viridis overlay, given and predicted label above each
face), faces whose given label disagrees with a confident prediction (likely label noise), and
with --compare the faces one run gets wrong and the other gets right (both ways).

    python experiments/explain.py --run runs/<run>
    python experiments/explain.py --run runs/<plain run> --compare runs/<randaugment+mixup run> --threshold 0.9

Writes figures (gradcam.png, confident_disagreements.png, wrong_<A>_right_<B>.png) and
explain.json into RUN/figures/explain/ (or --out).
"""
import argparse
from pathlib import Path

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.data import load_dataset
from fer_keras.data.hygiene import duplicates_of
from fer_keras.errors import run_main
from fer_keras.files import ensure_writable_dir, write_json
from fer_keras.model_files import TRUST_HELP
from fer_keras.runs import FIGURES_DIR, RunModel
from fer_keras.studies.galleries import explain_run, label_conflicts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="finished run folder (config.json, model/)")
    parser.add_argument("--compare", default=None, metavar="OTHER_RUN", help="second run for the wrong/right gallery")
    parser.add_argument("--data", default=None, help="data path, if it moved since the run was trained")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="confidence for the label-disagreement gallery (default: %(default)s)")
    parser.add_argument("--count", type=int, default=24, help="faces per figure (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="use a stratified sample of N test faces")
    parser.add_argument("--layer", default=None, help="conv layer for Grad-CAM (default: the model's registered one)")
    parser.add_argument("--conflicts", action="store_true", help="also check the model's likely-label-noise picks "
                        "against the data set's conflicting-label duplicates (fer-keras hygiene): how many it flags")
    parser.add_argument("--out", default=None, help="output folder (default: RUN/figures/explain)")
    parser.add_argument("--trust-model", action="store_true", help=TRUST_HELP)
    args = parser.parse_args(argv)

    run = RunModel(args.run, trusted=args.trust_model)
    other = RunModel(args.compare, trusted=args.trust_model, what="--compare") if args.compare else None
    test = run.run.held_out_split(args.data, args.limit)
    out = ensure_writable_dir(args.out or Path(args.run) / FIGURES_DIR / "explain")
    summary = explain_run(run, test, out, other, args.threshold, args.count, args.layer)
    if args.conflicts:
        data = load_dataset(args.data or run.config.data.path)
        trained = duplicates_of(data, run.run.prepared_data(args.data, faces=data)[0]["train"])
        summary["label_conflicts"] = label_conflicts(run, data, args.threshold, trained_on=trained)
        c = summary["label_conflicts"]
        print(f"conflicting-label duplicates: {c['groups']} groups, {c['images']} images; flagged as likely label "
              f"noise: {c['flagged_images']} ({100 * c['flagged_share']:.1f} % vs {100 * c['flagged_share_elsewhere']:.1f} "
              f"% of the other faces); in {c['groups_where_prediction_is_one_of_the_labels']} groups the prediction is "
              f"one of the labels; {c['unseen_flagged']} of the {c['unseen_images']} never trained on flagged")
    write_json(out / "explain.json", summary)
    print(f"Figures and explain.json in {out}")
    return out


if __name__ == "__main__":
    run_main(main)
