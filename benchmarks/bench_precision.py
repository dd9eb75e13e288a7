"""Training and inference speed of each --precision, in one process, with the CPU's flags.

    python benchmarks/bench_precision.py                                  # DCNN 48x48x1 and GhostFace 112x112x3
    python benchmarks/bench_precision.py --models dcnn --precisions float32,mixed_bfloat16 --rounds 5

Each model is built once per precision under :func:`fer_keras.precision.precision_policy` (as the
training scripts build it) from the same float32 weights, compiled with Adam, and trained on one
random batch repeated; rounds alternate between the precisions so that another process on the
machine slows them alike. Printed: median training images/s, inference images/s (``predict`` at
the same batch), CPU share, and the largest difference of the mixed model's probabilities from
float32's on the same images (bf16 keeps 8 bits of mantissa: differences of ~1e-2 are expected).
``mixed_float16`` on a CPU is emulated and very slow; it is for GPUs.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fer_keras  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_keras.config import PRECISIONS  # noqa: E402
from fer_keras.models import build_model  # noqa: E402
from fer_keras.precision import cpu_flags, precision_policy, resolve_precision  # noqa: E402
from fer_keras.studies.report.collect import cpu_model  # noqa: E402

SHAPES = {"dcnn": ((48, 48, 1), 50), "ghostface": ((112, 112, 3), 64)}
FLAGS_SHOWN = ("avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(run) -> tuple[float, float]:
    start, cpu = time.time(), _cpu_seconds()
    run()
    wall = time.time() - start
    return wall, (_cpu_seconds() - cpu) / wall


def bench(name: str, precisions: list[str], rounds: int, steps: int) -> None:
    shape, batch = SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *shape)).astype("float32")
    y = tf.one_hot(rng.integers(0, 7, batch), 7)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    weights, models = None, {}
    for precision in precisions:
        tf.keras.utils.set_random_seed(0)
        with precision_policy(precision):
            model = build_model(name, shape, 7)
            model.compile(tf.keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        weights = weights or model.get_weights()
        model.set_weights(weights)
        models[precision] = model
    reference = models[precisions[0]].predict(x, verbose=0)
    diffs = {p: float(np.abs(m.predict(x, verbose=0) - reference).max()) for p, m in models.items()}
    for model in models.values():  # warm-up: tracing and oneDNN's kernel choice
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    train = {p: [] for p in precisions}
    infer = {p: [] for p in precisions}
    for _ in range(rounds):
        for precision, model in models.items():
            wall, share = _timed(lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0))
            train[precision].append((steps * batch / wall, share))
            wall, _ = _timed(lambda: [model.predict_on_batch(x) for _ in range(steps)])
            infer[precision].append(steps * batch / wall)
    print(f"\n{name} {'x'.join(map(str, shape))}, batch {batch}, Adam; {rounds} rounds of {steps} steps")
    print("| precision | training images/s | inference images/s | CPU share | max prob. diff. vs "
          f"{precisions[0]} |\n| --- | --- | --- | --- | --- |")
    base = statistics.median(r for r, _ in train[precisions[0]])
    for precision in precisions:
        rate = statistics.median(r for r, _ in train[precision])
        print(f"| {precision} | {rate:.1f} ({rate / base:.2f}x) | {statistics.median(infer[precision]):.1f} | "
              f"{statistics.median(s for _, s in train[precision]):.0%} | {diffs[precision]:.1e} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dcnn,ghostface", help="default: %(default)s")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16",
                        help=f"comma-separated, from {', '.join(p for p in PRECISIONS if p != 'auto')} "
                             "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round (default: %(default)s)")
    args = parser.parse_args(argv)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in PRECISIONS or p == "auto"]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if unknown or any(m not in SHAPES for m in models):
        parser.error(f"--precisions from float32, mixed_bfloat16, mixed_float16; --models from {', '.join(SHAPES)}")
    flags = cpu_flags()
    print(f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"TensorFlow {tf.__version__}")
    print("CPU flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS_SHOWN)
          + f"; --precision auto here = {resolve_precision('auto')}")
    for name in models:
        bench(name, precisions, args.rounds, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
