"""Model files are told by content; files that can run code load only when trusted, else one line.

The hostile files (tests/bad_inputs.py) write a marker file when their code runs: an HDF5 model
with a Lambda layer renamed to .keras (alone and as a copied run folder's model/model.keras), a
.keras zip with a Lambda, a .keras zip naming os.system, a SavedModel whose signature writes a
file and a TFLite file with a FlexWriteFile op.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import bad_inputs as bad
from fer_keras import model_files
from fer_keras.errors import ConfigError
from fer_keras.runs import resolve_model

from toys import exit_2_one_line

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    marker = root / "marker"
    run = bad.run_folder(root / "run")
    out = {"marker": marker, "run": run, "saved_model": run / "model" / "saved_model",
           "h5": bad.hdf5_lambda_as_keras(root / "x.keras", marker),
           "hostile_run": bad.hostile_run_folder(root / "hostile_run", run, marker),
           "zip_lambda": bad.keras_zip_lambda(root / "lambda.keras", marker),
           "zip_module": bad.keras_zip_module_reference(root / "module.keras"),
           "zip_npz": bad.keras_zip_pickled_npz(root / "npz.keras", marker),
           "zip_op": bad.keras_zip_swapped_op(root / "op.keras"),
           "zip_extra": bad.keras_zip_extra_member(root / "extra.keras"),
           "zip_big": bad.keras_zip_oversized_config(root / "big.keras"),
           "evil_saved_model": bad.evil_saved_model(root / "evil_saved_model", marker),
           "flex": bad.flex_tflite(root / "flex.tflite", marker)}
    assert not marker.exists()
    return out


@pytest.fixture
def marker(files):
    files["marker"].unlink(missing_ok=True)
    yield files["marker"]
    files["marker"].unlink(missing_ok=True)


def test_format_is_told_by_content_not_name(files, tmp_path):
    assert model_files.model_format(files["h5"]) == "h5"  # named .keras
    zip_named_h5 = tmp_path / "model.h5"
    zip_named_h5.write_bytes((files["run"] / "model" / "model.keras").read_bytes())
    assert model_files.model_format(zip_named_h5) == "keras"
    assert model_files.load_keras(zip_named_h5).name == "dcnn"  # loaded as the zip it is
    assert model_files.model_format(files["saved_model"]) == "saved_model"
    assert model_files.model_format(files["flex"]) == "tflite"
    assert resolve_model(files["run"]) == files["run"] / "model" / "model.keras"  # never its SavedModel
    (tmp_path / "junk.keras").write_bytes(b"PK not really a zip")
    with pytest.raises(ConfigError, match="cannot load"):
        model_files.model_format(tmp_path / "junk.keras")


@pytest.mark.parametrize("key, says", [
    ("h5", "legacy Keras HDF5 file"), ("hostile_run", "legacy Keras HDF5 file"),
    ("zip_lambda", "a Lambda layer"), ("zip_module", "function os.system"),
    ("zip_npz", "'model.weights.npz' (pickled weights"), ("zip_op", "TFOpLambda layer calling 'compat.v1.Print'"),
    ("zip_extra", "'payload.py' (a file a Keras model does not need"), ("evil_saved_model", "a SavedModel")])
def test_untrusted_files_are_refused_before_any_code_runs(files, marker, key, says):
    from fer_keras.classifier import Classifier

    for load in (lambda path: model_files.load_keras(resolve_model(path)), Classifier):
        with pytest.raises(ConfigError) as info:
            load(files[key])
        message = str(info.value)
        assert says in message and "--trust-model" in message and "\n" not in message
    assert not marker.exists()


def test_oversized_member_is_refused_before_it_is_read(files):
    with pytest.raises(ConfigError, match=r"config.json unpacks to 2\d,\d{3},\d{3} bytes \(at most 16,777,216\)"):
        model_files.load_keras(files["zip_big"])


def test_hostile_zips_are_real_tf_keras_runs_the_pickle_and_resolves_any_tf_function(files, marker):
    """Without fer_keras' check, tf-keras itself unpickles the .npz weights (the marker appears) and
    resolves the swapped op layer's function; the allow-listed op (``x * 2``) still loads."""
    import tensorflow as tf

    with pytest.raises(Exception):
        tf.keras.models.load_model(str(files["zip_npz"]), safe_mode=True)  # its weights do not fit, after the pickle ran
    assert marker.exists()
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):  # compat.v1.Print(x, y=2.0) was called
        tf.keras.models.load_model(str(files["zip_op"]), safe_mode=True)


def test_a_model_with_a_safe_op_layer_loads(tmp_path):
    path = tmp_path / "op.keras"
    bad.op_layer_model().save(path)
    assert model_files.load_keras(path).name == "dcnn"


def test_every_entry_point_refuses_the_pickled_npz_and_swapped_op_with_one_line(files, marker, tmp_path, capsys,
                                                                               monkeypatch):
    """predict, evaluate, export, EmotionRecognizer and --init-from: exit 2 / ConfigError, one line, no marker."""
    from fer_keras.cli import main
    from fer_keras.recognizer import EmotionRecognizer

    monkeypatch.chdir(tmp_path)
    image = bad.face_png(tmp_path / "face.png")
    data = bad.kaggle_folder(tmp_path / "kaggle")
    script = _script("run_nsl").main
    for key in ("zip_npz", "zip_op"):
        model = str(files[key])
        commands = [["predict", str(image), "--model", model, "--detector", "haar", "--input-mode", "unit"],
                    ["evaluate", str(data), "--model", model, "--out", str(tmp_path / "eval")],
                    ["export", str(bad.hostile_run_folder(tmp_path / f"run_{key}", files["run"], marker, files[key])),
                     "--out", str(tmp_path / "export")]]
        for argv in commands:
            line = exit_2_one_line(capsys, lambda: main(argv))
            assert "not loaded" in line and "--trust-model" in line, (argv, line)
        with pytest.raises(ConfigError, match="not loaded") as info:
            EmotionRecognizer(model=model, detector="haar")
        assert "\n" not in str(info.value)
        from fer_keras.errors import run_main
        monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--init-from", model, "--epochs", "1",
                                          "--out", str(tmp_path / "runs")])
        line = exit_2_one_line(capsys, lambda: run_main(script))
        assert "not loaded" in line, line
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not marker.exists()
    for made in ("predictions", "eval", "export"):
        assert not (tmp_path / made).exists()


def test_keras_safe_mode_alone_refuses_the_lambda_zip(files, marker):
    """Defence in depth: were the config check skipped, tf-keras' safe mode still refuses it."""
    import tensorflow as tf

    with pytest.raises(ValueError, match="safe_mode"):
        tf.keras.models.load_model(str(files["zip_lambda"]), safe_mode=True)
    assert not marker.exists()


def test_trusted_files_load_and_really_run_their_code(files, marker):
    """The hostile files are real: trusted, the HDF5 Lambda runs on load and the SavedModel on a call."""
    from fer_keras.classifier import Classifier

    model_files.load_keras(files["h5"], trusted=True)
    assert marker.exists()
    marker.unlink()
    Classifier(files["evil_saved_model"], input_mode="unit", trusted=True)  # probes the model once
    assert marker.exists()


def test_legitimate_saved_model_loads_when_trusted(files):
    from fer_keras.classifier import Classifier

    keras = Classifier(files["run"])
    with pytest.raises(ConfigError, match="a SavedModel"):
        Classifier(files["saved_model"])
    saved = Classifier(files["saved_model"], trusted=True)
    assert saved.class_names == keras.class_names == tuple(bad.CLASSES)  # from the run folder's config
    crops = np.random.default_rng(0).integers(0, 256, (3, *bad.SHAPE), dtype=np.uint8)
    assert np.abs(saved(crops) - keras(crops)).max() < 1e-5


def test_run_folder_without_model_keras_does_not_fall_back_to_its_saved_model(files, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(files["run"], run)
    (run / "model" / "model.keras").unlink()
    with pytest.raises(ConfigError, match="no model/model.keras.*--trust-model"):
        resolve_model(run)


def test_tflite_with_flex_ops_is_refused(files, marker):
    from fer_keras.export import TFLiteModel

    with pytest.raises(ConfigError, match="custom ops \\(FlexWriteFile\\)"):
        TFLiteModel(files["flex"])
    assert not marker.exists()


def test_run_folder_loaders_refuse_the_hostile_run(files, marker):
    from fer_keras.runs import RunModel
    from fer_keras.studies.mia import MIAConfig, load_source
    from fer_keras.studies.robustness import load_model_and_test_split as load_run

    for load in (RunModel, load_run, lambda run: load_source(run, MIAConfig())):
        with pytest.raises(ConfigError, match="legacy Keras HDF5"):
            load(files["hostile_run"])
    assert not marker.exists()
    assert RunModel(files["hostile_run"], trusted=True).model.name == "dcnn" and marker.exists()


def test_fer_keras_predict_and_export_exit_2_with_one_line(files, marker, tmp_path, capsys, monkeypatch):
    from fer_keras.cli import main

    monkeypatch.chdir(tmp_path)
    image = bad.face_png(tmp_path / "face.png")
    for model in ("h5", "hostile_run", "zip_lambda", "zip_module", "evil_saved_model", "flex"):
        line = exit_2_one_line(capsys, lambda: main(["predict", str(image), "--model", str(files[model]),
                                                       "--detector", "haar", "--input-mode", "unit"]))
        assert "not loaded" in line and "--trust-model" in line, line
    assert not (tmp_path / "predictions").exists()
    before = sorted(p.name for p in (files["hostile_run"] / "model").iterdir())
    line = exit_2_one_line(capsys, lambda: main(["export", str(files["hostile_run"]), "--no-tflite"]))
    assert "legacy Keras HDF5" in line
    assert sorted(p.name for p in (files["hostile_run"] / "model").iterdir()) == before
    assert not marker.exists()
    main(["predict", str(image), "--model", str(files["saved_model"]), "--trust-model", "--detector", "haar",
          "--input-mode", "unit"])  # the project's own SavedModel, trusted
    result = json.loads((tmp_path / "predictions" / "predictions.json").read_text())
    assert result["items"][0]["status"] == "no_face" and result["class_names"] == bad.CLASSES


def _script(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script, argv", [
    ("run_robustness", ["--runs", "{run}", "--out", "{out}"]),
    ("run_mia", ["--model-dir", "{run}", "--out", "{out}"]),
    ("explain", ["--run", "{run}", "--out", "{out}"])])
def test_scripts_refuse_the_hostile_run(files, marker, tmp_path, capsys, monkeypatch, script, argv):
    from fer_keras.errors import run_main

    argv = [a.format(run=files["hostile_run"], out=tmp_path / "out") for a in argv]
    monkeypatch.setattr(sys, "argv", [script, *argv])
    main = _script(script).main
    line = exit_2_one_line(capsys, lambda: run_main(main))
    assert "legacy Keras HDF5" in line and "--trust-model" in line
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
