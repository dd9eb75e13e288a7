"""Exports agree with the Keras model: SavedModel (float and uint8 signatures), TFLite float and
dynamic-range quantised, for a DCNN and a small GhostFace (all its custom layers) at 48x48."""
import json

import numpy as np
import pytest
import tensorflow as tf

from fer_keras.data.pipeline import scale, to_pixels
from fer_keras.data.pipeline import InputSpec
from fer_keras.export import (TFLiteModel, check_exports, export_model, saved_model_predict,
                              UINT8_SIGNATURE)
from fer_keras.models import build_model
from fer_keras.models.ghostface import Stage

#: Tolerances on the max absolute probability difference from the Keras model.
FLOAT_TOL = 1e-4          # SavedModel, uint8 signature, TFLite float32
QUANTISED_TOL = 0.1       # TFLite dynamic-range (int8 weights)

SMALL_GHOSTFACE = dict(stages=(Stage("fused", 1, 3, 2, 16, 2), Stage("ghost", 1, 3, 2, 24, 2)),
                       stem_filters=8, head_filters=64)


def _model(name, shape):
    tf.keras.utils.set_random_seed(0)
    model = build_model(name, shape, 7, **(SMALL_GHOSTFACE if name == "ghostface" else {}))
    # Non-trivial BN statistics, so folding them during conversion is actually checked.
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(np.random.default_rng(1).normal(0, 0.1, mean.shape))
            var.assign(np.random.default_rng(2).uniform(0.5, 2.0, var.shape))
    return model


@pytest.mark.parametrize("name,shape,mode", [("dcnn", (48, 48, 1), "unit"),
                                             ("ghostface", (48, 48, 3), "standardize")])
@pytest.mark.slow
def test_exports_agree_with_keras(tmp_path, name, shape, mode):
    model = _model(name, shape)
    inputs = InputSpec(shape, mode)
    paths = export_model(model, tmp_path, inputs, tflite=True)
    assert set(paths) == {"keras", "saved_model", "tflite", "tflite_dynamic", "labels", "info"}
    pixels = np.random.default_rng(3).integers(0, 256, (6, *shape), dtype=np.uint8)
    images = scale(to_pixels(pixels, shape), mode).numpy()
    diffs = check_exports(model, paths, images, pixels, inputs)
    for key in ("keras", "saved_model", "saved_model_uint8", "tflite"):
        assert diffs[f"{key}_max_abs_diff"] < FLOAT_TOL, (key, diffs)
    assert diffs["tflite_dynamic_max_abs_diff"] < QUANTISED_TOL, diffs
    # The quantised file really holds int8 weights (TFLite leaves tensors < 1024 values in float).
    ratio = paths["tflite_dynamic"].stat().st_size / paths["tflite"].stat().st_size
    assert ratio < (0.3 if name == "dcnn" else 0.9), ratio
    # The same TFLite runner at batch 1 and again at batch 6 (rebuilds the interpreter).
    runner = TFLiteModel(paths["tflite_dynamic"], num_threads=1)
    one = runner(images[:1])
    np.testing.assert_allclose(runner(images)[:1], one, atol=1e-6)


def test_uint8_signature_resizes_and_scales(tmp_path):
    model = _model("dcnn", (48, 48, 1))
    paths = export_model(model, tmp_path, InputSpec((48, 48, 1), "unit"))
    pixels = np.random.default_rng(4).integers(0, 256, (3, 96, 80, 1), dtype=np.uint8)  # any size
    got = saved_model_predict(paths["saved_model"], pixels, UINT8_SIGNATURE, trusted=True)
    want = model.predict(to_pixels(pixels, (48, 48, 1)) / 255.0, verbose=0)
    np.testing.assert_allclose(got, want, atol=FLOAT_TOL)
    assert got.shape == (3, 7)


@pytest.mark.slow
def test_dataset_standardisation_is_baked_in(tmp_path):
    model = _model("ghostface", (32, 32, 3))
    paths = export_model(model, tmp_path, InputSpec((32, 32, 3), "standardize", "dataset", 120.0, 60.0))
    pixels = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    got = saved_model_predict(paths["saved_model"], pixels, UINT8_SIGNATURE, trusted=True)
    want = model.predict((pixels.astype(np.float32) - 120.0) / 60.0, verbose=0)
    np.testing.assert_allclose(got, want, atol=FLOAT_TOL)


def test_default_export_is_unchanged(tmp_path):
    model = _model("dcnn", (48, 48, 1))
    paths = export_model(model, tmp_path)
    assert set(paths) == {"keras", "saved_model", "labels", "info"}
    loaded = tf.saved_model.load(str(paths["saved_model"]))
    assert set(loaded.signatures) == {"serving_default"}
    assert not list(tmp_path.glob("*.tflite"))


@pytest.mark.slow
def test_export_command_on_a_run_folder(tmp_path, capsys):
    """``fer-keras export RUN`` re-exports a run (config.json + model/model.keras) with TFLite."""
    from fer_keras.cli import main
    from fer_keras.files import write_json

    run = tmp_path / "run"
    _model("ghostface", (48, 48, 3)).save(tmp_path / "m.keras")
    (run / "model").mkdir(parents=True)
    (tmp_path / "m.keras").replace(run / "model" / "model.keras")
    write_json(run / "config.json", {"config": {"model": "ghostface", "standardize": "image"},
                                     "resolved": {"input_shape": [48, 48, 3], "input_mode": "standardize",
                                                  "class_names": [f"c{i}" for i in range(7)]}})
    main(["export", str(run)])
    out = capsys.readouterr().out
    for name in ("model.tflite", "model_dynamic.tflite", "saved_model"):
        assert (run / "model" / name).exists() and name in out
    assert "tflite_dynamic" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and "missing: no such file or folder" in capsys.readouterr().err
    model_file = tmp_path / "bare.keras"  # a bare .keras file: --input-mode says how to prepare its input
    _model("ghostface", (48, 48, 3)).save(model_file)
    with pytest.raises(SystemExit):
        main(["export", str(model_file), "--input-mode", "standardize"])  # no --out: refused in one line
    assert "give --out DIR" in capsys.readouterr().err
    main(["export", str(model_file), "--input-mode", "standardize", "--out", str(tmp_path / "bare"), "--no-tflite"])
    info = json.loads((tmp_path / "bare" / "model_info.json").read_text())
    assert info["input"]["mode"] == "standardize" and (tmp_path / "bare" / "saved_model" / "saved_model.pb").is_file()


@pytest.mark.real_data
@pytest.mark.slow
def test_exported_pretrained_model_scores_its_card_on_publictest_through_serving_uint8(shared_fer2013, tmp_path,
                                                                                        capsys):
    """`fer-keras export fer2013-dcnn --out DIR`, then TF Serving's path: raw uint8 faces into the
    SavedModel's ``serving_uint8`` give the card's PublicTest accuracy."""
    import tensorflow as tf

    from fer_keras import pretrained
    from fer_keras.cli import main
    from fer_keras.data import load_fer2013

    main(["export", "fer2013-dcnn", "--out", str(tmp_path / "export")])
    assert "saved_model_uint8" in capsys.readouterr().out
    data = load_fer2013(shared_fer2013, log=lambda *_: None)
    test = data.take(data.usage == "PublicTest")
    serve = tf.saved_model.load(str(tmp_path / "export" / "saved_model")).signatures["serving_uint8"]
    predicted = np.concatenate([serve(pixels=tf.constant(test.images[i:i + 512]))["probabilities"].numpy().argmax(1)
                                for i in range(0, len(test), 512)])
    card = pretrained.card("fer2013-dcnn")["evaluation"]["keras"]
    assert len(test) == card["images"] and abs(float(np.mean(predicted == test.labels)) - card["accuracy"]) < 1e-3
