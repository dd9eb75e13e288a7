"""Model cost: parameters, multiply-accumulates, TensorFlow's FLOPs, file size and latency.

MAC convention (:func:`count_macs`): one multiply-accumulate per weight use in Conv (any rank,
grouped), DepthwiseConv2D, SeparableConv2D, Conv2DTranspose and Dense layers, at the layer's
real input/output shapes, batch 1. Bias adds, batch normalisation (folded into the conv at
inference), activations, pooling, additions and the attention gates' elementwise multiplies
are *not* counted: the usual convention of the papers' "FLOPs" (GhostNet, EfficientNet,
EfficientFace). ``elementwise=True`` also counts the multiplies of layers that declare them
(``TripletAttention``: 3 per element of its input). Custom layers are not special-cased: the
model is traced once and every Keras layer call inside it, however deeply nested, is recorded
with its shapes, so a GhostBottleneck is counted as the sum of its convs.

TensorFlow's own count (:func:`tf_profiler_flops`) reports *FLOPs*, i.e. 2 per multiply-add,
plus the few element-wise ops it has statistics for (bias adds, multiplies, ...); expect it to be
a little over twice :func:`count_macs`.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from fer_keras.export.files import KERAS_FILE

MAC_CONVENTION = ("MACs = multiply-accumulates of Conv/DepthwiseConv/SeparableConv/Dense layers "
                  "at batch 1 (1 MAC = 1 multiply + 1 add); BN, activations, pooling, additions and "
                  "attention multiplies not counted")


# ------------------------------------------------------------------------------- parameters


def count_parameters(model: tf.keras.Model, trainable_only: bool = False) -> int:
    """Number of weights (Keras "Total params": trainable plus BN moving statistics)."""
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(np.prod(w.shape) for w in weights))


# ------------------------------------------------------------------------------------ MACs


def _shape(value):
    value = tf.nest.flatten(value)[0]
    return tuple(value.shape.as_list()) if hasattr(value, "shape") else ()


@contextlib.contextmanager
def _recorded_calls():
    """Record ``(path, input_shape, output_shape)`` of every Keras layer call made inside.

    ``path`` is the tuple of layers from the outermost caller down to the called layer. Works by
    wrapping ``tf.keras.layers.Layer.__call__`` for the duration of the ``with`` block (restored
    on exit; not thread-safe).
    """
    layer_cls = tf.keras.layers.Layer
    original = layer_cls.__call__
    records, stack = [], []

    @tf.autograph.experimental.do_not_convert
    def recording_call(self, *args, **kwargs):
        stack.append(self)
        try:
            outputs = original(self, *args, **kwargs)
            inputs = args[0] if args else kwargs.get("inputs")
            records.append((tuple(stack), _shape(inputs), _shape(outputs)))
            return outputs
        finally:
            stack.pop()

    layer_cls.__call__ = recording_call
    try:
        yield records
    finally:
        layer_cls.__call__ = original


def _trace(model: tf.keras.Model, batch: int = 1):
    if len(model.inputs) != 1:
        raise ValueError(f"{model.name}: profiling needs a model with one input, not {len(model.inputs)}")
    spec = tf.TensorSpec((batch, *model.inputs[0].shape[1:]), model.inputs[0].dtype)
    with _recorded_calls() as records:
        tf.function(lambda x: model(x, training=False), autograph=False).get_concrete_function(spec)
    return records


def layer_macs(layer, input_shape, output_shape, elementwise: bool = False) -> int:
    """MACs of one call of ``layer`` itself (0 for layers whose cost lies in their sublayers)."""
    layers = tf.keras.layers
    kernel = getattr(layer, "kernel_size", None)
    k = math.prod(kernel) if isinstance(kernel, tuple) else 1  # Keras convs store a tuple
    if isinstance(layer, (layers.Conv2DTranspose, layers.Conv3DTranspose, layers.Conv1DTranspose)):
        return math.prod(input_shape[1:-1]) * k * input_shape[-1] * output_shape[-1]
    if isinstance(layer, layers.DepthwiseConv2D):
        return math.prod(output_shape[1:-1]) * k * output_shape[-1]
    if isinstance(layer, layers.SeparableConv2D):
        mid = input_shape[-1] * layer.depth_multiplier
        return math.prod(output_shape[1:-1]) * (k * mid + mid * output_shape[-1])
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        groups = getattr(layer, "groups", 1) or 1
        return math.prod(output_shape[1:-1]) * k * (input_shape[-1] // groups) * output_shape[-1]
    if isinstance(layer, layers.Dense):
        return math.prod(input_shape[1:-1]) * input_shape[-1] * output_shape[-1]
    # layers that compute convs without calling a conv layer (TripletAttention) declare their MACs
    macs = int(layer.own_macs(input_shape)) if hasattr(layer, "own_macs") else 0
    if elementwise and hasattr(layer, "elementwise_multiplies"):
        macs += int(layer.elementwise_multiplies(input_shape))
    return macs


def count_macs(model: tf.keras.Model, per_layer: bool = False, elementwise: bool = False):
    """Multiply-accumulates of one image (batch 1), under the module's :data:`MAC_CONVENTION`.

    Returns the total, or with ``per_layer=True`` ``(total, rows)`` where ``rows`` holds one dict
    per top-level layer of ``model`` (``name``, ``type``, ``output_shape``, ``params``, ``macs``),
    the MACs of nested layers summed into their top-level owner.
    """
    total, rows = _macs_from_records(model, _trace(model), elementwise)
    return (total, rows) if per_layer else total


def _macs_from_records(model, records, elementwise):
    rows = {id(layer): {"name": layer.name, "type": type(layer).__name__, "output_shape": None,
                        "params": layer.count_params() if layer.built else 0, "macs": 0}
            for layer in model.layers}
    for layer in model.layers:  # the Input layer is never called
        if isinstance(layer, tf.keras.layers.InputLayer):
            rows[id(layer)]["output_shape"] = (1, *layer.output_shape[0][1:])
    total = 0
    for path, in_shape, out_shape in records:
        macs = layer_macs(path[-1], in_shape, out_shape, elementwise)
        total += macs
        owner = rows.get(id(path[1])) if len(path) > 1 and path[0] is model else None
        if owner is not None:
            owner["macs"] += macs
            if len(path) == 2:
                owner["output_shape"] = out_shape
    return total, list(rows.values())


def format_layer_table(rows) -> str:
    """A fixed-width table of :func:`count_macs` rows with a total line (MACs in millions)."""
    header = f"{'layer':<28} {'type':<20} {'output shape':<20} {'params':>10} {'MMACs':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(str(s) for s in (r["output_shape"] or ())[1:])
        lines.append(f"{r['name'][:28]:<28} {r['type'][:20]:<20} {shape:<20} {r['params']:>10,} "
                     f"{r['macs'] / 1e6:>9.3f}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<70} {sum(r['params'] for r in rows):>10,} "
                 f"{sum(r['macs'] for r in rows) / 1e6:>9.3f}")
    return "\n".join(lines)


def print_layer_table(model: tf.keras.Model, elementwise: bool = False) -> None:
    """Print the per-layer parameter and MAC table of ``model``."""
    print(format_layer_table(count_macs(model, per_layer=True, elementwise=elementwise)[1]))


# ------------------------------------------------------------------- TensorFlow's profiler


def tf_profiler_flops(model: tf.keras.Model, batch: int = 1) -> int:
    """FLOPs of one forward pass according to ``tf.compat.v1.profiler`` on the frozen graph.

    The inference graph (``training=False``) is frozen with ``convert_variables_to_constants_v2``
    and profiled with ``ProfileOptionBuilder.float_operation()``. TensorFlow counts a
    multiply-add as **2 FLOPs** and adds the element-wise ops it has statistics for; it counts
    grouped convolutions (``Conv2D(groups > 1)``) as 0.
    """
    spec = tf.TensorSpec((batch, *model.inputs[0].shape[1:]), model.inputs[0].dtype)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the v1 profiler warns about its own deprecated helpers
    try:
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(graph_def, name="")
            options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
            options["output"] = "none"
            stats = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                                  cmd="op", options=options)
    finally:
        logger.setLevel(level)
    return int(stats.total_float_ops)


# --------------------------------------------------------------------------- size and speed


def model_size_bytes(model: tf.keras.Model) -> int:
    """Bytes of the model saved as a ``.keras`` file (architecture + float32 weights)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, KERAS_FILE)
        model.save(path)
        return os.path.getsize(path)


def latency_ms(model: tf.keras.Model, batch: int = 1, runs: int = 20, warmup: int = 3) -> float:
    """Median wall-clock time (milliseconds) of one inference of ``batch`` random images.

    The model runs as a ``tf.function`` (traced once, then ``warmup`` untimed calls); each timed
    call includes copying the result back to NumPy.
    """
    x = tf.random.normal((batch, *model.inputs[0].shape[1:]))
    forward = tf.function(lambda images: model(images, training=False))
    for _ in range(max(1, warmup)):
        forward(x).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def profile(model: tf.keras.Model, latency_runs: int = 20, tf_profiler: bool = True,
            size: bool = True) -> dict:
    """All figures of ``model`` in one dict.

    Keys: ``name``, ``input_shape``, ``params`` (total), ``trainable_params``, ``macs``,
    ``macs_with_attention`` (``elementwise=True``), ``mac_convention``, ``tf_profiler_flops``
    (2 per MAC; None if ``tf_profiler=False``), ``size_bytes`` (.keras file; None if
    ``size=False``), ``latency_ms`` (median batch-1; None if ``latency_runs=0``).
    """
    records = _trace(model)
    return {
        "name": model.name,
        "input_shape": tuple(model.inputs[0].shape[1:]),
        "params": count_parameters(model),
        "trainable_params": count_parameters(model, trainable_only=True),
        "macs": _macs_from_records(model, records, elementwise=False)[0],
        "macs_with_attention": _macs_from_records(model, records, elementwise=True)[0],
        "mac_convention": MAC_CONVENTION,
        "tf_profiler_flops": tf_profiler_flops(model) if tf_profiler else None,
        "size_bytes": model_size_bytes(model) if size else None,
        "latency_ms": latency_ms(model, runs=latency_runs) if latency_runs else None,
    }


def format_profile(figures: dict) -> str:
    """Human-readable lines for a :func:`profile` dict."""
    lines = [f"model: {figures['name']}  input: {'x'.join(map(str, figures['input_shape']))}",
             f"parameters: {figures['params']:,} total ({figures['params'] / 1e6:.3f} M), "
             f"{figures['trainable_params']:,} trainable",
             f"MACs: {figures['macs']:,} ({figures['macs'] / 1e6:.2f} M)"
             + (f"; {figures['macs_with_attention'] / 1e6:.2f} M counting attention multiplies"
                if figures["macs_with_attention"] != figures["macs"] else ""),
             f"  convention: {figures['mac_convention']}"]
    if figures.get("tf_profiler_flops") is not None:
        flops = figures["tf_profiler_flops"]
        lines.append(f"TF profiler: {flops:,} FLOPs ({flops / 1e6:.2f} M; 2 FLOPs per multiply-add, "
                     f"= {flops / 2e6:.2f} M MAC-equivalents)")
    if figures.get("size_bytes") is not None:
        size = figures["size_bytes"]
        lines.append(f"saved .keras size: {size:,} bytes ({size / 2**20:.2f} MiB)")
    if figures.get("latency_ms") is not None:
        lines.append(f"latency (batch 1, median): {figures['latency_ms']:.2f} ms")
    return "\n".join(lines)
