"""Explanations (Study B): Grad-CAM heatmaps and the two qualitative galleries.

* :func:`grad_cam`: Grad-CAM (Selvaraju et al. 2017) on a conv layer (default: the last one,
  found by :func:`last_conv_layer`): the class score's gradients w.r.t. that layer's feature maps,
  averaged over space, weight the maps; ReLU; scaled to [0, 1] per image; resized to the input.
  The class score is the pre-softmax logit when the model ends in a softmax Dense layer (as all
  fer_keras models do), else log-probability.
* :func:`confident_disagreements`: faces whose given label differs from a prediction made with
  probability >= ``threshold`` (likely label noise).
* :func:`wrong_vs_right`: faces model A gets wrong and model B gets right (e.g. trained without
  vs with de-memorisation augmentation).

Figures (viridis overlay, given and predicted label above each face) are drawn by
:func:`fer_keras.plots.gradcam_grid`; :func:`explain_run` writes them for a run folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras.errors import ConfigError


def last_conv_layer(model: tf.keras.Model) -> str:
    """Name of the model's last top-level layer that is a 2-D convolution (Conv2D, incl. depthwise).

    Falls back to the last layer with a 4-D output (e.g. a custom block) if there is no Conv2D.
    """
    for layer in reversed(model.layers):
        if isinstance(layer, tf.keras.layers.Conv2D):
            return layer.name
    for layer in reversed(model.layers):
        if len(getattr(layer, "output_shape", ()) or ()) == 4 and not isinstance(layer, tf.keras.layers.InputLayer):
            return layer.name
    raise ConfigError(f"model {model.name!r} has no convolutional layer for Grad-CAM")


def _score_model(model: tf.keras.Model, layer: str) -> tuple[tf.keras.Model, callable]:
    """A model returning (feature maps, head input) and a function head input -> class scores."""
    last = model.layers[-1]
    softmax_dense = (isinstance(last, tf.keras.layers.Dense)
                     and getattr(last.activation, "__name__", "") == "softmax")
    head_input = last.input if softmax_dense else model.output
    grad_model = tf.keras.Model(model.inputs, [model.get_layer(layer).output, head_input])
    if softmax_dense:
        return grad_model, lambda x: tf.matmul(x, last.kernel) + last.bias
    return grad_model, lambda p: tf.math.log(p + 1e-12)


def grad_cam(model: tf.keras.Model, images, class_index=None, layer: str | None = None,
             batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps.

    Args:
        model: a Keras model (image -> probabilities).
        images: prepared model input float32 (B, H, W, C).
        class_index: class to explain per image, int or (B,) ints; None = the predicted class.
        layer: conv layer name; None = :func:`last_conv_layer`.

    Returns:
        ``(heatmaps, probabilities)``: float32 (B, H, W) in [0, 1] (1 = most important; all 0 when
        no location raises the score) and the model's probabilities (B, K).
    """
    layer = layer or last_conv_layer(model)
    grad_model, scores_of = _score_model(model, layer)
    images = np.asarray(images, np.float32)
    height, width = images.shape[1:3]
    if class_index is not None:
        class_index = np.broadcast_to(np.asarray(class_index, np.int32), (len(images),))
    heatmaps = [np.zeros((0, height, width), np.float32)]
    probabilities = [np.zeros((0, model.output_shape[-1]), np.float32)]
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size])
        with tf.GradientTape() as tape:
            maps, head = grad_model(x, training=False)
            scores = scores_of(head)
            target = (tf.argmax(scores, -1, output_type=tf.int32) if class_index is None
                      else tf.constant(class_index[start:start + batch_size]))
            chosen = tf.gather(scores, target, batch_dims=1)
        grads = tape.gradient(chosen, maps)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(maps * weights, axis=-1))
        cam = cam / tf.maximum(tf.reduce_max(cam, axis=(1, 2), keepdims=True), 1e-12)
        cam = tf.image.resize(cam[..., None], (height, width), method="bilinear")[..., 0]
        heatmaps.append(tf.clip_by_value(cam, 0.0, 1.0).numpy())
        probabilities.append(model(x, training=False).numpy())
    return np.concatenate(heatmaps), np.concatenate(probabilities)


def confident_disagreements(labels, probabilities, threshold: float = 0.9) -> np.ndarray:
    """Indices whose predicted class != given label with probability >= ``threshold``,
    most confident first."""
    probabilities = np.asarray(probabilities)
    preds, conf = probabilities.argmax(1), probabilities.max(1)
    idx = np.flatnonzero((preds != np.asarray(labels)) & (conf >= threshold))
    return idx[np.argsort(-conf[idx], kind="stable")]


def wrong_vs_right(labels, probs_a, probs_b) -> np.ndarray:
    """Indices model A gets wrong and model B gets right, B's most confident first."""
    labels = np.asarray(labels)
    a, b = np.asarray(probs_a).argmax(1), np.asarray(probs_b).argmax(1)
    idx = np.flatnonzero((a != labels) & (b == labels))
    return idx[np.argsort(-np.asarray(probs_b)[idx, labels[idx]], kind="stable")]


def _titles(labels, probs, class_names, prefix=""):
    preds = probs.argmax(1)
    return [(f"{prefix}given {class_names[y]}\npred {class_names[p]} {pr[p]:.0%}",
             "black" if p == y else "darkred") for y, p, pr in zip(labels, preds, probs)]


def explain_run(run, faces, out_dir: str | Path, other=None, threshold: float = 0.9,
                count: int = 24, layer: str | None = None, log=print) -> dict:
    """Write the Grad-CAM figures of ``run`` on ``faces`` into ``out_dir``; return a summary.

    Args:
        run: a :class:`fer_keras.export.RunModel`.
        faces: :class:`fer_keras.data.FaceData` (uint8 faces, labels in ``run``'s class order).
        other: optional second RunModel for the "wrong here, right there" gallery (both ways).
        threshold: confidence for the label-disagreement gallery.
        count: faces per figure.

    Files: ``gradcam.png`` (``count`` faces drawn at random, seed 0), ``confident_disagreements.png``, and with
    ``other``: ``wrong_<run>_right_<other>.png`` and ``wrong_<other>_right_<run>.png``.
    """
    from fer_keras import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = run.class_names
    probs = run.predict(faces.images)
    summary = {"run": run.name, "images": len(faces), "layer": layer or last_conv_layer(run.model),
               "accuracy": float((probs.argmax(1) == faces.labels).mean()), "threshold": threshold,
               "figures": {}}

    def figure(model_run, idx, file, title, prefix=""):
        idx = np.asarray(idx[:count], int)
        cams, p = grad_cam(model_run.model, model_run.prepare(faces.images[idx]).numpy(), layer=layer)
        path = plots.gradcam_grid(faces.images[idx], cams, _titles(faces.labels[idx], p, names, prefix),
                                  out_dir / file, title)
        summary["figures"][file] = len(idx)
        return path

    spread = np.sort(np.random.default_rng(0).choice(len(faces), min(count, len(faces)), replace=False))
    figure(run, spread, "gradcam.png",
           f"Grad-CAM ({summary['layer']}) of {run.name}: given and predicted label")
    noisy = confident_disagreements(faces.labels, probs, threshold)
    summary["confident_disagreements"] = int(len(noisy))
    figure(run, noisy, "confident_disagreements.png",
           f"{run.name}: prediction >= {threshold:.0%} confident disagrees with the given label "
           f"({len(noisy)} of {len(faces)} faces; likely label noise)")
    if other is not None:
        if tuple(other.class_names) != tuple(names):
            raise ConfigError(f"--compare {other.name}: classes {other.class_names} differ from {names}")
        other_probs = other.predict(faces.images)
        summary["compare"] = {"run": other.name,
                              "accuracy": float((other_probs.argmax(1) == faces.labels).mean())}
        for a, pa, b, pb in ((run, probs, other, other_probs), (other, other_probs, run, probs)):
            idx = wrong_vs_right(faces.labels, pa, pb)[:count // 2]
            file = f"wrong_{a.name}_right_{b.name}.png"
            summary["compare"][f"wrong_{a.name}_right_{b.name}"] = int(len(wrong_vs_right(faces.labels, pa, pb)))
            # Each face twice: A's heatmap and prediction, then B's.
            cams_a, p_a = grad_cam(a.model, a.prepare(faces.images[idx]).numpy(), layer=layer)
            cams_b, p_b = grad_cam(b.model, b.prepare(faces.images[idx]).numpy(), layer=layer)
            images = np.repeat(faces.images[idx], 2, axis=0)
            cams = np.stack([cams_a, cams_b], 1).reshape(-1, *cams_a.shape[1:]) if len(idx) else cams_a
            titles = [t for pair in zip(_titles(faces.labels[idx], p_a, names, "A: "),
                                        _titles(faces.labels[idx], p_b, names, "B: ")) for t in pair]
            plots.gradcam_grid(images, cams, titles, out_dir / file,
                               f"Wrong by A = {a.name}, right by B = {b.name} "
                               f"({summary['compare'][f'wrong_{a.name}_right_{b.name}']} faces); pairs A | B")
            summary["figures"][file] = len(idx)
    log(f"{run.name}: accuracy {summary['accuracy']:.4f} on {len(faces)} faces; "
        f"{len(noisy)} confident (>= {threshold:.0%}) disagreements with the given label")
    return summary
