"""Evaluation helpers: memorisation of flipped labels."""
import numpy as np

from fer_keras.evaluation import memorisation


def test_memorisation_counts():
    probs = np.eye(3)[[0, 1, 2, 2]]
    result = memorisation(probs, true_labels=[0, 0, 2, 1], noisy_labels=[1, 1, 0, 2])
    assert (result["predicted_true"], result["predicted_noisy"], result["predicted_other"]) == (2, 2, 0)
    assert result["fraction_true"] == 0.5
