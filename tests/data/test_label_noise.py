"""Label noise: exact flips, never to the same class, class-dependent map, training split only."""
import numpy as np
import pytest

from fer_keras.config import DataConfig
from fer_keras.data.label_noise import SIMILAR, confusion_target, flip_labels
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.data.prepare import prepare_data
from fer_keras.errors import ConfigError


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.33, 1.0])
@pytest.mark.parametrize("mode", ["uniform", "class"])
def test_flip_labels_flips_exactly_and_never_to_same_class(fraction, mode):
    labels = np.arange(301) % 7
    noisy, flipped = flip_labels(labels, fraction, mode, 7, seed=1, class_names=CLASS_NAMES)
    assert flipped.sum() == round(fraction * 301)
    assert np.all(noisy[flipped] != labels[flipped]) and np.all(noisy[~flipped] == labels[~flipped])
    assert noisy.min() >= 0 and noisy.max() < 7
    again, _ = flip_labels(labels, fraction, mode, 7, seed=1, class_names=CLASS_NAMES)
    np.testing.assert_array_equal(noisy, again)


def test_uniform_noise_reaches_every_other_class():
    labels = np.zeros(2000, dtype=int)
    noisy, flipped = flip_labels(labels, 0.5, "uniform", 7, seed=0)
    counts = np.bincount(noisy[flipped], minlength=7)
    assert counts[0] == 0 and counts[1:].min() > 100


def test_class_noise_follows_the_similarity_map():
    labels = np.arange(700) % 7
    noisy, flipped = flip_labels(labels, 0.5, "class", 7, seed=0, class_names=CLASS_NAMES)
    for old, new in zip(labels[flipped], noisy[flipped]):
        assert CLASS_NAMES[new] == SIMILAR[CLASS_NAMES[old]]
    # 3-class subset: targets missing from the subset fall back to the next class
    target = confusion_target(3, ("happiness", "sadness", "neutral"))
    assert list(target) == [0 + 1, 2, 1]  # happiness -> (surprise absent) sadness; sadness <-> neutral


def test_flip_labels_rejects_bad_settings():
    with pytest.raises(ConfigError, match="--noise-mode 'pairs'"):
        flip_labels([0, 1], 0.5, "pairs", 2)
    with pytest.raises(ConfigError, match="--label-noise 1.2"):
        DataConfig(label_noise=1.2)


def test_prepare_data_noises_training_split_only():
    clean = prepare_data(DataConfig(demo_images_per_class=10), log=lambda *a: None)
    parts, extras = prepare_data(DataConfig(demo_images_per_class=10, label_noise=0.4),
                                 log=lambda *a: None, return_extras=True)
    noise = extras["noise"]
    assert extras["test_in_training"].shape == (len(parts["test"]),)
    n = len(clean["train"])
    assert len(noise["indices"]) == round(0.4 * n)
    changed = np.flatnonzero(parts["train"].labels != clean["train"].labels)
    np.testing.assert_array_equal(changed, noise["indices"])
    np.testing.assert_array_equal(noise["true_labels"], clean["train"].labels[changed])
    np.testing.assert_array_equal(parts["train"].images, clean["train"].images)
    for name in ("val", "test"):
        np.testing.assert_array_equal(parts[name].labels, clean[name].labels)
