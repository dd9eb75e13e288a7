"""GhostFace training speed before and after the fast triplet attention, in one process.

    python benchmarks/bench_ghostface.py                      # 112x112x3, batch 64, 5 rounds
    python benchmarks/bench_ghostface.py --size 224 --batch 16 --rounds 3

"before" computes triplet attention as the paper defines it (rotate the input for each branch,
Z-pool, gate with a plain conv, rotate back: :func:`fer_keras.layers.triplet_attention.rotated_reference`);
"after" is :class:`~fer_keras.layers.TripletAttention` as shipped. Both train the same model
(same weights, checked to give the same pooled features) on the same random batch with Adam, op
determinism on (as the training scripts run). Rounds alternate before/after so that another
process on the machine slows both alike; the medians are printed with the CPU share.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fer_keras  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_keras.layers import TripletAttention  # noqa: E402
from fer_keras.layers.triplet_attention import rotated_reference  # noqa: E402
from fer_keras.models import build_model  # noqa: E402


class _Rotated(TripletAttention):
    """Triplet attention computed as the paper defines it (the "before")."""

    def call(self, inputs, training=None):
        return rotated_reference(self, inputs, training)


def _model(size: int, weights=None, reference: bool = False) -> tf.keras.Model:
    model = build_model("ghostface", (size, size, 3), 7)
    if reference:
        for layer in model.submodules:
            if type(layer) is TripletAttention:
                layer.__class__ = _Rotated
    model.compile(tf.keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    if weights is not None:
        model.set_weights(weights)
    return model


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rate(model, data, steps: int) -> tuple[float, float]:
    start, cpu = time.time(), _cpu_seconds()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    wall = time.time() - start
    return steps * data.element_spec[0].shape[0] / wall, (_cpu_seconds() - cpu) / wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112, help="input side in pixels (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=64, help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="before/after rounds (default: %(default)s)")
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    after = _model(args.size)
    rng = np.random.default_rng(1)  # weights away from their initial values, BN statistics included
    after.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in after.get_weights()])
    before = _model(args.size, after.get_weights(), reference=True)
    probe = tf.random.normal((4, args.size, args.size, 3), seed=2)
    features = [tf.keras.Model(m.input, m.get_layer("avg_pool").output) for m in (after, before)]
    a, b = (f(probe, training=False) for f in features)  # pooled features: softmax can round differences away
    diff = float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(b)))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.size, args.size, 3)).astype("float32")
    y = tf.one_hot(rng.integers(0, 7, args.batch), 7)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    for model in (before, after):
        _rate(model, data, 3)  # warm-up: tracing and oneDNN's kernel choice
    rates = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name, model in (("before", before), ("after", after)):
            rates[name].append(_rate(model, data, args.steps))
    print(f"GhostFace {args.size}x{args.size}x3, batch {args.batch}, Adam, op determinism on; {args.rounds} rounds of "
          f"{args.steps} steps; TensorFlow {tf.__version__}, {os.cpu_count()} CPUs")
    print(f"max |pooled-feature difference| after vs before, same weights, relative to the largest feature: "
          f"{diff:.1e}")
    medians = {}
    for name, runs in rates.items():
        medians[name] = statistics.median(r for r, _ in runs)
        print(f"{name:6s}: {medians[name]:6.1f} training images/s (median; rounds "
              f"{', '.join(f'{r:.0f}' for r, _ in runs)}), CPU share {statistics.median(c for _, c in runs):.0%}")
    print(f"speed-up: {medians['after'] / medians['before']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
