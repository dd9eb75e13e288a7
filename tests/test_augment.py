"""De-memorisation augmentation: RandAugment (gray and RGB), MixUp on a fraction, combinations,
training-only application in the tf.data pipeline, the config/CLI settings and the figure."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from fer_keras.augment import make_augmenter
from fer_keras.config import AugmentConfig, ExperimentConfig, parse_augment
from fer_keras.data.pipeline import make_dataset
from fer_keras.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _batch(n=24, channels=1, k=7, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(20, 230, (n, 24, 24, 1)).astype(np.float32)
    images[:, 6:18, 6:18] = 200.0  # some structure for the geometric ops
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    labels = np.eye(k, dtype=np.float32)[np.arange(n) % k]
    return tf.constant(images), tf.constant(labels)


def _changed(a, b, tol=0.5):
    return np.any(np.abs(np.asarray(a) - np.asarray(b)) > tol, axis=tuple(range(1, np.ndim(a))))


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_keeps_shape_dtype_range_and_changes_images(channels):
    tf.keras.utils.set_random_seed(1)
    x, y = _batch(channels=channels)
    out, labels = make_augmenter("randaugment", seed=3)(x, y)
    assert out.shape == x.shape and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255
    assert _changed(out, x).mean() > 0.4  # 0..3 ops per image: 3/4 of images get at least one
    np.testing.assert_array_equal(labels.numpy(), y.numpy())  # RandAugment never touches labels


def test_randaugment_on_gray_rgb_keeps_channels_identical():
    """The gray -> 3 channels -> gray round trip is lossless because every op treats channels alike."""
    tf.keras.utils.set_random_seed(2)
    x, y = _batch(channels=3)
    out, _ = make_augmenter("randaugment", seed=5)(x, y)
    out = out.numpy()
    assert np.abs(out[..., 0] - out[..., 1]).max() < 1e-3 and np.abs(out[..., 0] - out[..., 2]).max() < 1e-3


def test_randaugment_zero_ops_is_identity():
    x, y = _batch()
    out, _ = make_augmenter("randaugment", randaugment_max_ops=0)(x, y)
    np.testing.assert_array_equal(out.numpy(), x.numpy())


@pytest.mark.parametrize("fraction", [0.0, 0.25, 1.0])
def test_mixup_mixes_about_the_chosen_fraction(fraction):
    tf.keras.utils.set_random_seed(3)
    x, y = _batch(n=400)
    out, labels = make_augmenter("mixup", mixup_fraction=fraction)(x, y)
    out, labels = out.numpy(), labels.numpy()
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-5)
    mixed = _changed(out, x, tol=1e-5)  # Beta(0.2, 0.2) weights are often within 1e-3 of 1
    relabelled = np.abs(labels - y.numpy()).sum(1) > 1e-4
    assert abs(mixed.mean() - fraction) < 0.08
    assert not np.any(relabelled & ~mixed)  # untouched images keep their one-hot label
    untouched = ~mixed
    np.testing.assert_array_equal(out[untouched], x.numpy()[untouched])
    if fraction:
        # mixed with a partner of another class (6 of 7 partners) -> soft label
        assert relabelled.mean() > 0.6 * fraction


def test_combination_order_and_names():
    assert parse_augment("mixup+randaugment") == ("randaugment", "mixup")
    assert parse_augment("none") == () and make_augmenter("none") is None
    aug = make_augmenter("basic+randaugment+mixup", mixup_fraction=1.0)
    x, y = _batch(n=32)
    out, labels = aug(x, y)
    assert aug.name == "basic+randaugment+mixup" and out.shape == x.shape
    assert _changed(out, x).mean() > 0.9 and (np.abs(labels.numpy() - y.numpy()).sum(1) > 1e-6).mean() > 0.5
    with pytest.raises(ConfigError, match="--augment 'cutmix'"):
        parse_augment("cutmix")
    with pytest.raises(ConfigError, match="--augment"):
        parse_augment("mixup+mixup")


def test_pipeline_augments_training_data_only(demo_small):
    aug = make_augmenter("basic+mixup", mixup_fraction=1.0, seed=4)
    common = dict(input_shape=(48, 48, 1), batch_size=len(demo_small), augment=aug)
    clean = next(iter(make_dataset(demo_small, (48, 48, 1), batch_size=len(demo_small))))
    evaluation = next(iter(make_dataset(demo_small, **common)))
    np.testing.assert_array_equal(evaluation["image"].numpy(), clean["image"].numpy())
    np.testing.assert_array_equal(evaluation["label"].numpy(), clean["label"].numpy())
    train = next(iter(make_dataset(demo_small, training=True, **common)))
    x, labels = train["image"].numpy(), train["label"].numpy()
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1  # still scaled after augmenting
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-5)
    assert (labels.max(1) < 1 - 1e-6).mean() > 0.5  # MixUp's soft labels reached the model


def test_images_only_augment_hook_still_works(demo_small):
    ds = make_dataset(demo_small, (48, 48, 1), batch_size=8, training=True, augment=lambda x: 255.0 - x)
    batch = next(iter(ds))
    assert float(tf.reduce_mean(batch["image"])) > 0.5  # demo faces are mostly dark: inverted now


def test_config_settings_validate_and_old_configs_load():
    # an early flat config.json, written before the augmentation settings existed
    old = {"data": None, "model": "dcnn", "augment": "basic", "adversarial": True, "epochs": 2}
    loaded = ExperimentConfig.from_dict(old)
    assert loaded.augment.mixup_fraction == 0.25 and loaded.augment.randaugment_magnitude == (2.0, 4.0)
    assert loaded.training.epochs == 2 and loaded.adversarial.enabled
    assert ExperimentConfig().replace(augment__name="mixup+randaugment").augment.name == "randaugment+mixup"
    assert AugmentConfig(randaugment_magnitude=[2, 4]).randaugment_magnitude == (2.0, 4.0)  # as read from JSON
    with pytest.raises(ConfigError, match="--mixup-fraction"):
        AugmentConfig(mixup_fraction=1.5)
    with pytest.raises(ConfigError, match="--randaugment-magnitude 4,2"):
        ExperimentConfig().replace(augment__randaugment_magnitude=(4, 2))


def test_augmented_samples_figure(tmp_path, demo_small):
    from fer_keras.training.experiment import _augmented_samples

    aug = make_augmenter("randaugment+mixup", mixup_fraction=0.5)
    path = tmp_path / "augmented_samples.png"
    _augmented_samples(demo_small, aug, (48, 48, 1), 0, path)
    assert path.stat().st_size > 10_000


def test_cli_bad_augment_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "run_nsl.py"), "--augment", "cutmix",
                             "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --augment 'cutmix': use none or")
    assert not any(tmp_path.iterdir())


def test_random_erasing_fills_one_box_per_chosen_face_repeatably():
    """About half the faces get one rectangle of noise (2-40 % of the face), the rest are untouched;
    the same seed gives the same boxes, another seed other boxes; labels pass through."""
    aug = make_augmenter("erase")
    x, y = _batch(n=400)
    seed = tf.constant([3, 4], tf.int64)
    out, labels = aug(x, y, seed=seed)
    out = out.numpy()
    changed = np.abs(out - x.numpy()) > 0  # noise can equal a pixel only by chance
    erased = changed.any(axis=(1, 2, 3))
    assert 0.4 < erased.mean() < 0.6 and np.array_equal(labels.numpy(), y.numpy())
    for face in np.flatnonzero(erased)[:50]:
        rows, cols = np.flatnonzero(changed[face].any(axis=(1, 2))), np.flatnonzero(changed[face].any(axis=(0, 2)))
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        assert changed[face].sum() >= 0.95 * box  # one filled rectangle
        assert box <= 0.45 * 24 * 24
    assert 0.0 <= out.min() and out.max() <= 255.0
    np.testing.assert_array_equal(aug(x, y, seed=seed)[0].numpy(), out)
    assert not np.array_equal(aug(x, y, seed=tf.constant([3, 5], tf.int64))[0].numpy(), out)
    assert parse_augment("erase+basic") == ("basic", "erase")
