"""Shared checks every fer_keras layer must pass (in the spirit of keras-hub's ``run_layer_test``)."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf


def random_weights(model: tf.keras.Model, seed: int = 0) -> None:
    """Set every weight (BN moving variances included) to a random value in [0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in model.get_weights()])


def assert_config_round_trip(layer: tf.keras.layers.Layer) -> None:
    """get_config -> JSON -> from_config, and Keras (de)serialisation by registered name."""
    cls, config = type(layer), layer.get_config()
    config_json = json.dumps(config, sort_keys=True)
    assert json.dumps(cls.from_config(json.loads(config_json)).get_config(), sort_keys=True) == config_json
    serialized = json.loads(json.dumps(tf.keras.saving.serialize_keras_object(layer)))
    revived = tf.keras.saving.deserialize_keras_object(serialized)  # no custom_objects: registration
    assert type(revived) is cls
    assert json.dumps(revived.get_config(), sort_keys=True) == config_json


def assert_save_reload_identical(model: tf.keras.Model, x: np.ndarray, folder: str | None = None):
    """Save ``model`` as .keras, reload without custom_objects; same weights and outputs. Returns it."""
    expected = model(x, training=False).numpy()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = tf.keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
    return loaded


def run_layer_test(layer_cls, init_kwargs: dict, input_shape: tuple, expected_output_shape: tuple,
                   expected_num_trainable_weights: int | None = None, folder: str | None = None):
    """Build, call, differentiate, round-trip and save/reload one layer; returns the eager output.

    ``input_shape`` and ``expected_output_shape`` include the batch dimension.
    """
    x = np.random.default_rng(1).normal(size=input_shape).astype("float32")
    assert_config_round_trip(layer_cls(**init_kwargs))

    # Eager call: shape, dtype, compute_output_shape, weights tracked.
    layer = layer_cls(**init_kwargs)
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert y.dtype == tf.float32
    assert tuple(layer.compute_output_shape(input_shape)) == tuple(expected_output_shape)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    # Every trainable weight gets a gradient (no sublayer left out of the graph or untracked).
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert layer.trainable_weights and all(g is not None for g in grads)

    # Symbolic call inside a functional model, then save and reload.
    inputs = tf.keras.Input(input_shape[1:])
    model = tf.keras.Model(inputs, layer_cls(**init_kwargs)(inputs))
    assert model.output_shape == (None, *expected_output_shape[1:])
    random_weights(model)
    assert_save_reload_identical(model, x, folder)
    return y
