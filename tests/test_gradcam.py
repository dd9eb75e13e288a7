"""Grad-CAM: shapes, range, localisation on a task whose evidence is in a known place, the layer
each registered model explains, and the galleries' selections."""
import numpy as np
import pytest
import tensorflow as tf

from fer_keras.gradcam import confident_disagreements, grad_cam, last_conv_layer, wrong_vs_right
from fer_keras.models import build_model
from fer_keras.models.ghostface import LAST_CONV_LAYER


def _squares(n, seed, classes=3):
    """32x32x1 noise images in [0, 1] with an 8x8 bright shape at a random place: a filled
    square (class 0), a hollow square (class 1) or none (class 2, so that both shapes need
    evidence of their own). Returns images, labels and the shapes' top-left corners."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, 32, 32, 1)).astype(np.float32)
    y = rng.integers(0, classes, n)
    corners = rng.integers(0, 24, (n, 2))
    for img, label, (r, c) in zip(x, y, corners):
        if label < 2:
            img[r:r + 8, c:c + 8] = 1.0
        if label == 1:
            img[r + 2:r + 6, c + 2:c + 6] = 0.0
    return x, y, corners


@pytest.fixture(scope="module")
def square_model():
    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    inputs = layers.Input((32, 32, 1), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="feat")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = tf.keras.Model(inputs, outputs)
    model.compile(tf.keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    x, y, _ = _squares(600, 0)
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model


def test_heatmap_is_higher_on_the_evidence(square_model):
    x, y, corners = _squares(40, 1, classes=2)  # images with a shape
    assert (square_model.predict(x, verbose=0).argmax(1) == y).mean() > 0.9
    cams, probs = grad_cam(square_model, x)
    assert cams.shape == (40, 32, 32) and probs.shape == (40, 3)
    assert cams.min() >= 0 and cams.max() <= 1 and cams.max() > 0.9  # per-image max 1 before resizing
    inside = np.array([c[r:r + 8, k:k + 8].mean() for c, (r, k) in zip(cams, corners)])
    outside = np.array([(c.sum() - c[r:r + 8, k:k + 8].sum()) / (32 * 32 - 64) for c, (r, k) in zip(cams, corners)])
    assert np.mean(inside > 2 * outside) >= 0.9, (inside, outside)


def test_last_conv_layer_and_shapes():
    dcnn = build_model("dcnn", (48, 48, 1), 7)
    assert last_conv_layer(dcnn) == "block3_conv2"
    ghost = build_model("ghostface", (64, 64, 3), 7)
    assert last_conv_layer(ghost) == LAST_CONV_LAYER
    cams, probs = grad_cam(ghost, np.random.default_rng(0).normal(size=(3, 64, 64, 3)).astype(np.float32),
                           class_index=2)
    assert cams.shape == (3, 64, 64) and probs.shape == (3, 7)
    assert cams.min() >= 0 and cams.max() <= 1
    empty, _ = grad_cam(dcnn, np.zeros((0, 48, 48, 1), np.float32))
    assert empty.shape == (0, 48, 48)


def test_gallery_selections():
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.05, 0.95, 0], [0, 1.0, 0], [0.4, 0.6, 0], [0.1, 0.0, 0.9]])
    np.testing.assert_array_equal(confident_disagreements(labels, probs, 0.9), [0, 3])
    np.testing.assert_array_equal(confident_disagreements(labels, probs, 0.5), [0, 3, 2])
    other = np.eye(3)[[0, 1, 1, 0]]
    np.testing.assert_array_equal(wrong_vs_right(labels, probs, other), [0, 3])


def test_label_conflicts_counts_the_flagged_copies_and_whose_side_the_model_takes():
    from fer_keras.data import FaceData
    from fer_keras.studies.galleries import label_conflicts

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 4, 4, 1), dtype=np.uint8)
    images[1] = images[0]  # group A: labels 0 and 1
    images[3] = images[2]  # group B: labels 2 and 2 (a copy, no conflict)
    images[5] = images[4]  # group C: labels 1 and 2
    labels = np.array([0, 1, 2, 2, 1, 2, 0, 1])
    data = FaceData(images, labels, ("a", "b", "c"))

    class Run:  # predicts class 1 at 95 % for group A's face, class 0 at 60 % elsewhere
        def predict(self, pixels):
            probs = np.tile([0.6, 0.2, 0.2], (len(pixels), 1))
            probs[(pixels == images[0]).all(axis=(1, 2, 3))] = [0.025, 0.95, 0.025]
            return probs

    summary = label_conflicts(Run(), data, threshold=0.9, trained_on=np.array([1, 0, 0, 0, 0, 0, 0, 0], bool))
    assert summary["groups"] == 2 and summary["images"] == 4
    assert summary["flagged_images"] == 1 and summary["flagged_share"] == 0.25  # row 0: given 0, 95 % class 1
    assert summary["flagged_share_elsewhere"] == 0.0
    assert summary["groups_where_prediction_is_one_of_the_labels"] == 1  # A: b is one of its labels; C: a is not
    assert summary["unseen_images"] == 3 and summary["unseen_flagged"] == 0
