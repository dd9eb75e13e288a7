"""Label noise: exact flips, never to the same class, class-dependent map, training split only."""
import numpy as np
import pytest

from fer_keras.config import ExperimentConfig
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError
from fer_keras.experiment import prepare_data
from fer_keras.label_noise import SIMILAR, confusion_target, flip_labels, memorisation, write_sweep


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
    with pytest.raises(ConfigError, match="--noise"):
        ExperimentConfig(label_noise=1.2)


def test_memorisation_counts():
    probs = np.eye(3)[[0, 1, 2, 2]]
    result = memorisation(probs, true_labels=[0, 0, 2, 1], noisy_labels=[1, 1, 0, 2])
    assert (result["predicted_true"], result["predicted_noisy"], result["predicted_other"]) == (2, 2, 0)
    assert result["fraction_true"] == 0.5


def test_prepare_data_noises_training_split_only():
    clean = prepare_data(ExperimentConfig(demo_images_per_class=10), log=lambda *a: None)
    parts, extras = prepare_data(ExperimentConfig(demo_images_per_class=10, label_noise=0.4),
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


def test_write_sweep_table_and_plot(tmp_path):
    nan = float("nan")
    rows = [{"noise": f, "mode": "uniform", "augment": a, "test_accuracy": acc, "macro_f1": acc / 2,
             "flipped_images": int(f * 100), "fraction_true": nan if f == 0 else 0.5,
             "fraction_noisy": nan if f == 0 else 0.3, "run": f"run-{a}-{f}"}
            for a in ("basic", "mixup") for f, acc in ((0.0, 0.5), (0.2, 0.45), (0.4, 0.4))]
    write_sweep(rows, tmp_path, ExperimentConfig(limit=100, eval_limit=50, epochs=1))
    md = (tmp_path / "label_noise.md").read_text()
    assert "| 20% | uniform | mixup | 0.4500 |" in md and "| 0% | uniform | basic | 0.5000 | 0.2500 | 0 | - | - |" in md
    assert (tmp_path / "label_noise.csv").read_text().count("\n") == 7
    assert (tmp_path / "label_noise.png").stat().st_size > 10_000
