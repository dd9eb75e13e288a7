"""Study B's privacy audit: membership inference against each defence, in one table.

For every setting (none, Gaussian-noise layers, augmentations, DP-SGD) a model is trained (or
loaded with --model-dir), then attacked with tensorflow-privacy's membership-inference attacks
(loss threshold, entropy threshold, logistic regression) on members (training images) and
non-members (held-out images), 2,000 + 2,000 by default as in the study.

    python experiments/run_mia.py                                        # demo data, ~3 min
    python experiments/run_mia.py --data path/to/fer2013 --train-size 1000 --audit-size 1000
    python experiments/run_mia.py --settings none,noise1+basic,noise2+mixup --model ghostface --input-size 64
    python experiments/run_mia.py --model-dir runs/<earlier run_mia or run_nsl folder>   # audit saved models

Writes one run folder under --out: table.csv, table.md, summary.json, roc*.png,
settings/<setting>.json, models/<setting>.keras.
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.cli import run_main
from fer_keras.mia_study import DEFAULT_SETTINGS, MIA_MODELS, MIAConfig, run_study


def main():
    d = MIAConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", default=None, help="FER2013 CSV or Kaggle folder; omitted: the synthetic demo set")
    add("--labels", default=d.labels, help="classes to keep (default: %(default)s)")
    add("--split", default=d.split, help="usage, 80/10/10 or 90/10 (default: %(default)s)")
    add("--model", default=d.model, choices=MIA_MODELS,
        help="small_cnn (fast, default), dcnn or ghostface")
    add("--input-size", type=int, default=None, metavar="PIXELS", help="square input side")
    add("--settings", default=",".join(DEFAULT_SETTINGS),
        help="comma-separated settings; each none or parts joined by + from noise1, noise2, basic, "
             "randaugment, mixup, dp (default: %(default)s)")
    add("--epochs", type=int, default=None, help="default: 30")
    add("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    add("--lr", type=float, default=d.lr, help="Adam learning rate, also for DP (default: %(default)s)")
    add("--train-size", type=int, default=None, help="train on a stratified sample of N images")
    add("--eval-limit", type=int, default=None, help="use at most N validation and N test images")
    add("--audit-size", type=int, default=d.audit_size, help="members and non-members each (default: %(default)s)")
    add("--attacks", default=",".join(d.attacks),
        help="tensorflow-privacy attacks: threshold, threshold-entropy, lr, mlp, rf, knn (default: %(default)s)")
    add("--target-fpr", type=float, default=d.target_fpr,
        help="FPR of the per-class population thresholds (default: %(default)s)")
    add("--dp-clip", type=float, default=d.dp_clip, help="DP-SGD per-example L2 clip (default: %(default)s)")
    add("--dp-noise", type=float, default=d.dp_noise, help="DP-SGD noise multiplier (default: %(default)s)")
    add("--dp-microbatches", type=int, default=None, help="DP-SGD microbatches per batch (default: one per example)")
    add("--mixup-fraction", type=float, default=d.mixup_fraction,
        help="fraction of images MixUp mixes (default: %(default)s, as the study's privacy runs)")
    add("--seed", type=int, default=d.seed, help="default: %(default)s")
    add("--out", default=d.out, help="folder for run folders (default: %(default)s)")
    add("--model-dir", default=None, metavar="RUN_DIR",
        help="audit the models of an earlier run_mia.py (or run_nsl.py / run_ghostface.py) folder instead of training")
    add("--trust-model", action="store_true", help="with --model-dir: load model files that can run code "
        "(HDF5 model.keras, Lambda layers): only from a source you trust")
    args = parser.parse_args()
    split = lambda s: tuple(p.strip() for p in s.split(",") if p.strip())  # noqa: E731
    config = MIAConfig(data=args.data, labels=args.labels, split=args.split, model=args.model,
                       input_size=args.input_size, settings=split(args.settings), epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, train_size=args.train_size,
                       eval_limit=args.eval_limit, audit_size=args.audit_size, attacks=split(args.attacks),
                       target_fpr=args.target_fpr, dp_clip=args.dp_clip, dp_noise=args.dp_noise,
                       dp_microbatches=args.dp_microbatches, mixup_fraction=args.mixup_fraction,
                       seed=args.seed, out=args.out)
    run_dir = run_study(config, model_dir=args.model_dir, trusted=args.trust_model)
    print((run_dir / "table.md").read_text())
    print(f"Results in {run_dir} (table.csv, table.md, summary.json, roc.png, settings/, models/)")


if __name__ == "__main__":
    run_main(main)
