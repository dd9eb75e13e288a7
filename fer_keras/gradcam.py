"""Explanations (Study B): Grad-CAM heatmaps and the picks of the two qualitative galleries.

* :func:`grad_cam`: Grad-CAM (Selvaraju et al. 2017) on a conv layer (default: the model's
  registered ``gradcam_layer``, :func:`last_conv_layer`): the class score's gradients w.r.t. that
  layer's feature maps, averaged over space, weight the maps; ReLU; scaled to [0, 1] per image;
  resized to the input. The class score is the pre-softmax logit when the model ends in a softmax
  Dense layer (as all fer_keras models do, :func:`fer_keras.models.softmax_head`), else log-probability.
* :func:`confident_disagreements`: faces whose given label differs from a prediction made with
  probability >= ``threshold`` (likely label noise).
* :func:`wrong_vs_right`: faces model A gets wrong and model B gets right (e.g. trained without
  vs with de-memorisation augmentation).

Figures (viridis overlay, given and predicted label above each face) are drawn by
:func:`fer_keras.plots.gradcam_grid`; :func:`fer_keras.studies.galleries.explain_run` writes them
for a run folder.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from fer_keras.errors import ConfigError
from fer_keras.models.registry import find_spec, softmax_head


def last_conv_layer(model: tf.keras.Model) -> str:
    """The layer Grad-CAM explains: a registered model's ``gradcam_layer``; for any other model, its
    last top-level 2-D convolution (or, without one, its last layer with a 4-D output)."""
    spec = find_spec(model)
    if spec is not None:
        return spec.gradcam_layer
    for layer in reversed(model.layers):
        if isinstance(layer, tf.keras.layers.Conv2D):
            return layer.name
    for layer in reversed(model.layers):
        if len(getattr(layer, "output_shape", ()) or ()) == 4 and not isinstance(layer, tf.keras.layers.InputLayer):
            return layer.name
    raise ConfigError(f"model {model.name!r} has no convolutional layer for Grad-CAM")


def _score_model(model: tf.keras.Model, layer: str) -> tuple[tf.keras.Model, callable]:
    """A model returning (feature maps, head input) and a function head input -> class scores."""
    try:
        head = softmax_head(model)
    except ConfigError:
        grad_model = tf.keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
        return grad_model, lambda p: tf.math.log(p + 1e-12)
    grad_model = tf.keras.Model(model.inputs, [model.get_layer(layer).output, head.input])
    return grad_model, lambda x: tf.matmul(x, head.kernel) + head.bias


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
