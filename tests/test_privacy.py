"""Privacy audit: sampling, operating points, attackable vs not, DP training, the run_mia.py command."""

import numpy as np
import pytest
import tensorflow as tf

from fer_keras import privacy
from fer_keras.data.dataset import FaceData
from fer_keras.data.pipeline import InputSpec

NAMES = ("a", "b", "c", "d")


def _faces(n, seed, labels=None, size=16):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    labels = rng.integers(0, len(NAMES), n) if labels is None else np.asarray(labels)
    return FaceData(images, labels, NAMES, sources=np.array([f"s{seed}-{i}" for i in range(n)]))


def test_sampling_is_class_balanced_reproducible_and_disjoint():
    train = _faces(200, 0, labels=[0] * 100 + [1] * 60 + [2] * 35 + [3] * 5)
    held = _faces(150, 1, labels=[0] * 60 + [1] * 60 + [2] * 20 + [3] * 10)
    sets = privacy.sample_members_nonmembers(train, held, n=60, seed=3)
    counts = np.bincount(sets.members.labels, minlength=4)
    assert counts.tolist() == [19, 18, 18, 5]  # class 3 gives all it has, the rest share equally
    assert np.bincount(sets.nonmembers.labels, minlength=4).tolist() == counts.tolist()
    again = privacy.sample_members_nonmembers(train, held, n=60, seed=3)
    assert (again.members.sources == sets.members.sources).all()
    assert not set(sets.reference.sources) & set(sets.nonmembers.sources)
    assert len(sets.reference) + len(sets.nonmembers) == len(held)
    members, nonmembers = privacy.sample_members_nonmembers(train, held, n=10_000, seed=0)
    assert len(members) == len(nonmembers) == 5 + 60 + 20 + 60  # capped by the per-class minimum


def test_operating_points_and_rounding():
    point = privacy.best_accuracy_point(np.array([3.0, 2.0, 2.0, 0.5]), np.array([1.0, 0.0, 2.0, -1.0]))
    assert point["counts"] == {"tp": 3, "fp": 1, "tn": 3, "fn": 1} and point["threshold"] == 2.0
    assert sum(point[k] for k in privacy.CONFUSION_KEYS) == pytest.approx(100)
    assert privacy.round_to_total([8.33, 5.55, 45.04, 41.08]) == [8.3, 5.6, 45.0, 41.1]
    assert sum(privacy.round_to_total([100 / 3] * 3 + [0.0])) == pytest.approx(100)
    scores_out = np.arange(100, dtype=float)
    p = privacy.per_class_point(np.full(10, 200.0), np.zeros(10, int), scores_out, np.zeros(100, int), 0.1)
    assert p["counts"]["fp"] <= 10 and p["counts"]["tp"] == 10 and p["calibration"] == "non-members"


def _mlp(seed):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((16, 16, 1), name="image")
    x = tf.keras.layers.Flatten()(inputs)
    x = tf.keras.layers.Dense(64, activation="relu")(x)
    outputs = tf.keras.layers.Dense(len(NAMES), activation="softmax", name="probabilities")(x)
    return tf.keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def noise_data():
    members, nonmembers = _faces(40, 10), _faces(40, 11)  # random noise, random labels
    model = _mlp(0)
    model.compile(tf.keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    model.fit(members.images / 255.0, members.one_hot(), batch_size=40, epochs=100, verbose=0)
    return members, nonmembers, model


def test_audit_tells_an_overfit_model_from_an_untrained_one(noise_data):
    members, nonmembers, overfit = noise_data
    kw = dict(inputs=InputSpec((16, 16, 1), "unit"), attacks=privacy.DEFAULT_ATTACKS)
    attacked = privacy.audit(overfit, members, nonmembers, **kw)
    untrained = privacy.audit(_mlp(1), members, nonmembers, **kw)
    for result in (attacked, untrained):
        assert set(result["attacks"]) == {"threshold", "threshold-entropy", "lr"}
        for fig in result["attacks"].values():
            for point in ("at_target_fpr", "best_accuracy"):
                assert sum(fig[point][k] for k in privacy.CONFUSION_KEYS) == pytest.approx(100)
                assert sum(fig[point]["counts"].values()) == 80
    assert attacked["attacks"]["threshold"]["auc"] > 0.9
    assert attacked["member_accuracy"] == 1.0 and attacked["nonmember_accuracy"] < 0.5  # memorised noise
    assert attacked["attacks"]["threshold"]["best_accuracy"]["accuracy"] > 0.8
    assert attacked["attacks"]["lr"]["auc"] > 0.8
    for fig in untrained["attacks"].values():
        assert fig["auc"] < 0.65


def test_model_logits_are_exact_for_softmax_models(noise_data):
    members, _, model = noise_data
    logits = privacy.model_logits(model, members)  # default: the model's input shape, pixels / 255
    probs = model.predict(members.images / 255.0, verbose=0)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-5)
    loss = privacy.cross_entropy(logits, members.labels)
    np.testing.assert_allclose(loss, -np.log(np.clip(probs[np.arange(40), members.labels], 1e-30, 1)),
                               rtol=1e-3, atol=1e-5)


def test_dp_optimizer_trains_and_reports_a_finite_epsilon():
    data = _faces(32, 5)
    model = privacy.compile_dp(_mlp(2), l2_norm_clip=1.0, noise_multiplier=1.1, lr=1e-2)
    before = [w.copy() for w in model.get_weights()]
    model.fit(data.images / 255.0, data.one_hot(), batch_size=8, epochs=1, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    spent = privacy.dp_epsilon(32, 8, 1, 1.1)
    assert 0 < spent["epsilon"] < 100 and spent["steps"] == 4 and spent["delta"] == pytest.approx(1 / 320)
    assert privacy.dp_epsilon(32, 8, 5, 1.1)["epsilon"] > spent["epsilon"]  # more steps spend more
    assert privacy.dp_epsilon(32, 8, 1, 4.0)["epsilon"] < spent["epsilon"]  # more noise spends less
