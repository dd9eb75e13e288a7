"""Test-time augmentation views and averaging (fer_keras.tta)."""
import numpy as np
import pytest

from fer_keras.config import view_count
from fer_keras.errors import ConfigError
from fer_keras.tta import average_probabilities, views


def _faces(n=2, side=20):
    return np.random.default_rng(0).uniform(0, 1, (n, side, side, 1)).astype(np.float32)


def test_views_per_mode_have_the_input_shape():
    x = _faces()
    for mode, count in (("none", 1), ("flip", 2), ("flip+crops", 12)):
        got = views(x, mode)
        assert len(got) == count == view_count(mode) and all(v.shape == x.shape and v.dtype == np.float32 for v in got), mode
    flip = views(x, "flip")
    np.testing.assert_array_equal(flip[0], x)
    np.testing.assert_array_equal(flip[1], x[:, :, ::-1])


def test_crops_are_corner_and_centre_crops_resized_back():
    side = 20  # 90 % crops are 18 x 18 at offsets 0 or 2 (centre: 1)
    x = np.zeros((1, side, side, 1), np.float32)
    x[0, 0, 0] = 1.0  # a bright top-left pixel: of the five crops only the top-left one keeps it
    crops = views(x, "flip+crops")[2:]
    upright = crops[0::2]
    assert [float(v.max()) > 0 for v in upright] == [True, False, False, False, False]
    np.testing.assert_array_equal(crops[1], upright[0][:, :, ::-1])
    constant = np.full((1, side, side, 1), 0.5, np.float32)
    for v in views(constant, "flip+crops"):  # resizing a constant image changes nothing
        np.testing.assert_allclose(v, constant, atol=1e-6)


def test_average_probabilities_is_the_mean_over_views():
    def left_vs_right(batch):  # probabilities of "left half brighter" / "right half brighter"
        half = batch.shape[2] // 2
        left, right = batch[:, :, :half].sum((1, 2, 3)), batch[:, :, half:].sum((1, 2, 3))
        return np.stack([left, right], 1) / (left + right)[:, None]

    x = _faces()
    plain = average_probabilities(left_vs_right, x, "none")
    np.testing.assert_allclose(plain, left_vs_right(x), rtol=1e-6)
    assert not np.allclose(plain, 0.5, atol=1e-3)
    np.testing.assert_allclose(average_probabilities(left_vs_right, x, "flip"), 0.5, atol=1e-6)  # mirror-symmetric
    crops = average_probabilities(left_vs_right, x, "flip+crops")
    assert crops.shape == (2, 2) and crops.dtype == np.float32
    np.testing.assert_allclose(crops, 0.5, atol=1e-6)  # every view comes with its mirror image


def test_unknown_mode_is_one_line_config_error():
    with pytest.raises(ConfigError, match=r"tta must be one of none, flip, flip\+crops, not 'crop'"):
        views(_faces(), "crop")


@pytest.mark.filterwarnings("ignore:model .* was trained on the synthetic demo set")
def test_select_tta_scores_every_mode_on_validation_and_writes_the_run_file(tmp_path):
    import json

    from fer_keras.evaluation import evaluate_model_on_data, select_tta
    from fer_keras.runs import TTA_FILE, RunFolder
    from tiny_models import tiny_run

    run = tiny_run(tmp_path / "run", data=None)  # the demo set, split as the CSV: Training / PublicTest / PrivateTest
    result = select_tta(run, log=lambda *a: None)
    parts, extras = RunFolder(run).prepared_data()
    val, test = parts["val"], parts["test"]
    usage = {u: int((val.usage == u).sum()) for u in set(val.usage)}
    assert result["split"] == {"part": "val", "images": len(val), "usage": usage} and len(val) > 0
    assert not set(usage) & set(test.usage)  # the demo set's PublicTest validates, its PrivateTest tests
    assert {m: r["views"] for m, r in result["modes"].items()} == {"none": 1, "flip": 2, "flip+crops": 12}
    for mode, r in result["modes"].items():
        assert r["accuracy"] == evaluate_model_on_data(run, val, tta=mode, log=lambda *a: None)["accuracy"]
    best = max(r["accuracy"] for r in result["modes"].values())
    assert result["modes"][result["selected"]]["accuracy"] == best
    chosen = evaluate_model_on_data(run, test, tta=result["selected"], log=lambda *a: None)
    assert result["test"] == {"tta": result["selected"], "images": len(test), "accuracy": chosen["accuracy"],
                              "macro_f1": chosen["macro_f1"]}  # the demo set has no test copies of Training images
    assert not extras["test_in_training"].any()
    assert json.loads((run / TTA_FILE).read_text()) == result
    with pytest.raises(ConfigError, match="not a run folder .no config.json."):
        select_tta(tmp_path, log=lambda *a: None)


def test_predict_probabilities_averages_views_of_a_dataset():
    import tensorflow as tf

    from fer_keras.evaluation import predict_probabilities
    from tiny_models import tiny_model

    model = tiny_model()
    x = np.random.default_rng(0).uniform(0, 1, (10, 48, 48, 1)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices({"image": x, "label": np.eye(7, dtype=np.float32)[np.arange(10) % 7]}).batch(4)
    plain, mirrored = model.predict(x, verbose=0), model.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(predict_probabilities(model, ds), plain, atol=1e-6)
    np.testing.assert_allclose(predict_probabilities(model, ds, "flip"), (plain + mirrored) / 2, atol=1e-6)
    twelve = predict_probabilities(model, ds, "flip+crops")
    assert twelve.shape == (10, 7) and not np.allclose(twelve, (plain + mirrored) / 2, atol=1e-4)
