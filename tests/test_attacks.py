"""FGSM / PGD / NSL perturbation accuracy of a tiny trained model."""
import numpy as np
import pytest
import tensorflow as tf

from fer_keras.attacks import NSLPerturbation, evaluate_robustness, fgsm, parse_epsilons, pgd
from fer_keras.data.pipeline import make_dataset
from fer_keras.errors import ConfigError
from fer_keras.training import compile_model, set_seed

from toys import halves


def _toy_data(n=64, seed=0):
    """Separable: class 0 = bright left half, class 1 = bright right half (12x12 gray)."""
    return halves(n, seed, background=(60, 120), boost=80)


@pytest.fixture(scope="module")
def trained():
    set_seed(0)
    inputs = tf.keras.Input((12, 12, 1), name="image")
    x = tf.keras.layers.Flatten()(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, activation="softmax")(x))
    ds = make_dataset(_toy_data(), (12, 12, 1), batch_size=32)
    compile_model(model, "adam", lr=0.02)
    model.fit(ds.map(lambda b: (b["image"], b["label"])), epochs=15, verbose=0)
    return model, ds


def test_attacks_reduce_accuracy_and_eps0_is_clean(trained):
    model, ds = trained
    res = evaluate_robustness(model, ds, [0.0, 0.05, 0.3], pgd_steps=5)
    assert res["clean"] > 0.95 and res["images"] == 64
    for attack in ("fgsm", "pgd", "nsl"):
        assert res[attack][0] == res["clean"]
        assert res[attack][2] < res["clean"] - 0.3, (attack, res[attack])
    assert res["pgd"][2] <= res["fgsm"][2] + 1e-9  # PGD is at least as strong here
    assert res["max_abs_perturbation"]["pgd"][1] <= 0.05 + 1e-6


def test_fgsm_and_pgd_at_zero_return_the_input(trained):
    model, ds = trained
    batch = next(iter(ds))
    x, y = batch["image"], batch["label"]
    np.testing.assert_array_equal(fgsm(model, x, y, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(pgd(model, x, y, 0.0).numpy(), x.numpy())


def test_pgd_stays_in_the_epsilon_ball_and_valid_range(trained):
    model, ds = trained
    batch = next(iter(ds))
    x, y = batch["image"].numpy(), batch["label"]
    x[:4] = 1.0  # saturated pixels: the [0, 1] clip must hold
    adv = pgd(model, x, y, 0.1, steps=4, step_size=0.2).numpy()  # big steps: projection must bite
    assert np.abs(adv - x).max() <= 0.1 + 1e-6 and np.abs(adv - x).max() > 0.09
    assert adv.min() >= 0 and adv.max() <= 1
    free = pgd(model, x, y, 0.1, steps=2, clip=None).numpy()  # standardised inputs: no range clip
    assert np.abs(free - x).max() <= 0.1 + 1e-6 and free.max() > 1


def test_nsl_infinity_perturbation_is_fgsm(trained):
    model, ds = trained
    batch = next(iter(ds))
    x, y = batch["image"], batch["label"]
    nsl_adv = np.asarray(NSLPerturbation(model, "infinity")(x, y, 0.05))
    np.testing.assert_allclose(nsl_adv, fgsm(model, x, y, 0.05).numpy(), atol=1e-6)


def test_parse_epsilons():
    assert parse_epsilons("0, 2/255,0.1") == [0.0, 2 / 255, 0.1]
    with pytest.raises(ConfigError, match="--epsilons 'a,b'"):
        parse_epsilons("a,b")
