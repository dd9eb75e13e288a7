"""Print the cost of GhostFace and/or the DCNN: parameters, MACs, TF-profiler FLOPs, size, latency.

    python benchmarks/profile_models.py --model ghostface                 # 224x224x3
    python benchmarks/profile_models.py --model both --per-layer
    python benchmarks/profile_models.py --model dcnn --input 48,48,1 --runs 50

MACs follow :data:`fer_keras.profiler.MAC_CONVENTION` (printed); TensorFlow's profiler figure is
printed beside them and counts 2 FLOPs per multiply-add. Without ``--input`` each model gets its
own default input (GhostFace 224x224x3, DCNN 48x48x1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import fer_keras  # noqa: F401
from fer_keras.errors import FerKerasError
from fer_keras.models import build_model, model_names
from fer_keras.profiler import format_profile, print_layer_table, profile

def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--input must be height,width,channels like 224,224,3, "
                                         f"not {text!r}")
    return shape


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=(*model_names(), "both"), default="both",
                        help="a registered model, or both = ghostface and dcnn (default: %(default)s)")
    parser.add_argument("--input", type=parse_shape, default=None, metavar="H,W,C",
                        help="input shape (default: each model's registered one, ghostface 224,224,3, dcnn 48,48,1)")
    parser.add_argument("--classes", type=int, default=7, help="softmax outputs (default 7)")
    parser.add_argument("--per-layer", action="store_true", help="also print the per-layer table")
    parser.add_argument("--runs", type=int, default=20, help="timed runs for the median latency (0: skip)")
    args = parser.parse_args(argv)

    names = ("ghostface", "dcnn") if args.model == "both" else (args.model,)
    try:
        for name in names:
            model = build_model(name, args.input, args.classes)
            print(f"== {name} ==")
            print(format_profile(profile(model, latency_runs=args.runs)))
            if args.per_layer:
                print_layer_table(model)
            print()
    except FerKerasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
