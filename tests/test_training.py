"""NSL wrapping, compile names, fit with checkpoints/resume/history, export parity."""
import numpy as np
import pytest
import tensorflow as tf

from fer_keras.data.pipeline import as_xy, make_dataset
from fer_keras.errors import ConfigError
from fer_keras.export import check_exports, export_model
from fer_keras.nsl import base_model, wrap_adversarial
from fer_keras.runs import read_history
from fer_keras.training import compile_model, fit, set_seed

from toys import halves


def _toy_data(n=96, seed=0):
    """A separable task: class 0 = bright left half, class 1 = bright right half."""
    return halves(n, seed)


def _tiny_model(num_classes=2):
    inputs = tf.keras.Input((12, 12, 1), name="image")
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes, activation="softmax")(x))


def test_nsl_wrap_learns_a_separable_task(tmp_path):
    set_seed(0)
    ds = make_dataset(_toy_data(), (12, 12, 1), batch_size=16, training=True)
    model = wrap_adversarial(_tiny_model(), multiplier=0.3, step=0.05)
    compile_model(model, "adam", lr=0.05)
    before = model.evaluate(ds, verbose=0, return_dict=True)
    model.fit(ds, epochs=8, verbose=0)
    after = model.evaluate(ds, verbose=0, return_dict=True)
    assert set(after) == {"loss", "categorical_crossentropy", "categorical_accuracy", "scaled_adversarial_loss"}
    assert after["loss"] < 0.5 * before["loss"]
    assert after["categorical_accuracy"] > 0.9 and after["scaled_adversarial_loss"] > 0


def test_plain_model_reports_same_names():
    ds = as_xy(make_dataset(_toy_data(), (12, 12, 1), batch_size=16))
    model = compile_model(_tiny_model())
    assert set(model.evaluate(ds, verbose=0, return_dict=True)) == {
        "loss", "categorical_crossentropy", "categorical_accuracy"}


def test_wrap_takes_the_settings_object_and_keyword_changes():
    from fer_keras.config import AdversarialConfig

    default = wrap_adversarial(_tiny_model()).adv_config
    assert (default.multiplier, default.adv_neighbor_config.adv_step_size) == (0.3, 0.12)  # Study A's, stated once
    prose = wrap_adversarial(_tiny_model(), AdversarialConfig(multiplier=0.12, step=0.01)).adv_config
    assert (prose.multiplier, prose.adv_neighbor_config.adv_step_size) == (0.12, 0.01)
    changed = wrap_adversarial(_tiny_model(), AdversarialConfig(multiplier=0.12), step=0.05).adv_config
    assert (changed.multiplier, changed.adv_neighbor_config.adv_step_size) == (0.12, 0.05)
    with pytest.raises(TypeError, match="stepsize"):
        wrap_adversarial(_tiny_model(), stepsize=0.05)


def test_wrap_checks_settings_and_input_name():
    with pytest.raises(ConfigError, match="--grad-norm 'l3'"):
        wrap_adversarial(_tiny_model(), grad_norm="l3")
    inputs = tf.keras.Input((4,), name="pixels")
    with pytest.raises(ConfigError, match="input named 'image'"):
        wrap_adversarial(tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs)))


def test_fit_resumes_from_last_epoch(tmp_path):
    set_seed(0)
    data = _toy_data()
    ds = make_dataset(data, (12, 12, 1), batch_size=32, training=True)

    def new_model():
        return compile_model(wrap_adversarial(_tiny_model(), step=0.05), "adam", lr=0.01)

    class StopAfter(tf.keras.callbacks.Callback):  # simulates a crash after epoch 2
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    first = new_model()
    original_fit = first.fit

    def crashing_fit(*args, callbacks=(), **kwargs):
        return original_fit(*args, callbacks=list(callbacks) + [StopAfter()], **kwargs)

    first.fit = crashing_fit
    with pytest.raises(KeyboardInterrupt):
        fit(first, ds, None, epochs=4, run_dir=tmp_path, verbose=0)
    assert [int(r["epoch"]) for r in read_history(tmp_path / "history.csv")] == [0, 1]
    saved = [w.numpy() for w in base_model(first).weights]

    second = new_model()
    seen = []
    second_fit = second.fit

    def recording_fit(*args, callbacks=(), **kwargs):
        cb = tf.keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
        return second_fit(*args, callbacks=list(callbacks) + [cb], **kwargs)

    second.fit = recording_fit
    history = fit(second, ds, None, epochs=4, run_dir=tmp_path, verbose=0)["history"]
    assert seen == [2, 3]  # epochs 0 and 1 were restored, not re-run
    assert [int(r["epoch"]) for r in history] == [0, 1, 2, 3]
    assert not np.allclose(saved[0], base_model(second).weights[0].numpy())  # kept training


def test_export_reloads_with_identical_predictions(tmp_path):
    model = wrap_adversarial(_tiny_model())
    compile_model(model)
    images = np.random.default_rng(0).random((5, 12, 12, 1)).astype(np.float32)
    paths = export_model(model, tmp_path / "model")
    assert paths["keras"].is_file() and (paths["saved_model"] / "saved_model.pb").is_file()
    diffs = check_exports(model, paths, images)
    assert diffs["keras_max_abs_diff"] < 1e-6 and diffs["saved_model_max_abs_diff"] < 1e-5
    assert not list((tmp_path / "model").glob(".export-*"))  # no temporary leftovers


def _stream(n=96, batch=32):
    from fer_keras.data.pipeline import TrainingStream

    return TrainingStream(_toy_data(n), (12, 12, 1), batch)


def test_time_budget_stops_at_an_epoch_boundary_and_resume_finishes(tmp_path):
    set_seed(0)
    model = compile_model(_tiny_model(), "adam", lr=0.01)
    first = fit(model, _stream(), None, epochs=5, run_dir=tmp_path, time_budget=1e-6, verbose=0, log=lambda *a: None)
    assert first["status"] == "time_budget" and [r["epoch"] for r in first["history"]] == [0]
    again = fit(compile_model(_tiny_model(), "adam", lr=0.01), _stream(), None, epochs=5, run_dir=tmp_path,
                verbose=0, log=lambda *a: None)
    assert again["status"] == "finished" and [r["epoch"] for r in again["history"]] == [0, 1, 2, 3, 4]
    assert all(isinstance(r["epoch"], int) for r in again["history"])


def test_time_budget_never_stops_after_the_last_epoch(tmp_path):
    set_seed(0)
    model = compile_model(_tiny_model(), "adam", lr=0.01)
    done = fit(model, _stream(), None, epochs=1, run_dir=tmp_path, time_budget=1e-6, verbose=0, log=lambda *a: None)
    assert done["status"] == "finished" and [r["epoch"] for r in done["history"]] == [0]  # on to evaluation


def test_training_stream_is_a_pure_function_of_seed_and_epoch():
    stream = _stream(n=40, batch=16)
    assert stream.steps_per_epoch == 3
    a = [b["label"].numpy() for b in stream.epochs(0, 3)]
    b = [b["label"].numpy() for b in stream.epochs(2, 3)]  # epoch 2 alone, as a resumed run reads it
    assert len(a) == 9 and all(np.array_equal(x, y) for x, y in zip(a[6:], b))
    assert not np.array_equal(np.concatenate(a[:3]), np.concatenate(a[3:6]))  # epochs are shuffled anew
    assert sorted(np.concatenate(a[:3]).argmax(1).tolist()) == sorted(_toy_data(40).labels.tolist())


@pytest.mark.parametrize("full_at_epoch", [1, 2])
def test_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_temporary_files(tmp_path, monkeypatch, full_at_epoch):
    """The message promises --resume only when an earlier epoch's checkpoint exists."""
    import errno

    from fer_keras.errors import FerKerasError

    save = tf.train.CheckpointManager.save

    def full(self, *args, checkpoint_number=None, **kwargs):
        if checkpoint_number < full_at_epoch:
            return save(self, *args, checkpoint_number=checkpoint_number, **kwargs)
        (tmp_path / "checkpoints" / f"ckpt-{checkpoint_number}_temp").mkdir()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    with pytest.raises(FerKerasError) as info:
        fit(compile_model(_tiny_model()), _stream(), None, epochs=2, run_dir=tmp_path, verbose=0, log=lambda *a: None)
    message = str(info.value)
    assert "\n" not in message and "no space left" in message
    if full_at_epoch == 1:
        assert "--resume" not in message and "no epoch was checkpointed yet" in message
    else:
        assert "run again with --resume" in message
    assert not list((tmp_path / "checkpoints").glob("*_temp*"))


def test_resume_refuses_flags_that_would_change_the_run():
    from fer_keras.training.command_line import check_resume_flags
    from fer_keras.training.command_line import experiment_parser

    parser, _ = experiment_parser("A", "", [])
    check_resume_flags(parser, ["--resume", "runs/x", "--time-budget", "30", "--epochs", "40"])  # allowed
    check_resume_flags(parser, ["--lr", "0.5"])  # no resume: anything goes
    with pytest.raises(ConfigError, match=r"--lr, --model would change it") as info:
        check_resume_flags(parser, ["--resume", "runs/x", "--lr=0.5", "--model", "vgg"])
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_resume_may_extend_only_a_constant_lr_run(tmp_path):
    from fer_keras.config import ExperimentConfig
    from fer_keras.training.experiment import run_experiment

    config = ExperimentConfig.from_dict({"demo_images_per_class": 4, "epochs": 1, "batch_size": 16,
                                         "lr_schedule": "cosine", "adversarial": False, "out": str(tmp_path)})
    run = run_experiment(config, log=lambda *a: None)
    with pytest.raises(ConfigError, match="cosine schedule over 1 epochs"):
        run_experiment(ExperimentConfig(), resume=run, extend_epochs=3, log=lambda *a: None)


def test_step_schedule_divides_by_ten_after_each_drop():
    from fer_keras.config import OptimizerConfig
    from fer_keras.training import schedule_for

    lr = schedule_for(OptimizerConfig(lr=1e-3, schedule="step", lr_drops=(2, 3)), steps_per_epoch=5, epochs=4)
    got = [float(lr(step)) for step in (0, 9, 10, 14, 15, 19)]  # step 10 = the first batch of epoch 3
    np.testing.assert_allclose(got, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)
    with pytest.raises(ConfigError, match="every drop must fall inside the run's 20 steps"):
        schedule_for(OptimizerConfig(schedule="step", lr_drops=(4,)), steps_per_epoch=5, epochs=4)


def _ema_model():
    set_seed(0)
    return compile_model(_tiny_model(), "sgd", lr=0.1, ema=0.9)


def test_weight_average_is_what_validation_judges_and_what_training_ends_with(tmp_path):
    val = make_dataset(_toy_data(48, seed=1), (12, 12, 1), batch_size=16)
    model = _ema_model()
    result = fit(model, _stream(), val, epochs=3, run_dir=tmp_path, verbose=0, log=lambda *a: None)
    opt = model.optimizer
    averages = [opt._model_variables_moving_average[opt._index_dict[opt._var_key(v)]].numpy()
                for v in model.trainable_variables]
    assert all(np.array_equal(v.numpy(), a) for v, a in zip(model.trainable_variables, averages))
    final = model.evaluate(as_xy(val), verbose=0, return_dict=True)
    assert result["history"][-1]["val_loss"] == pytest.approx(final["loss"], rel=1e-5)
    raw = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))  # checkpoints keep the raw weights
    kernel = [k for k in raw.get_variable_to_shape_map() if k.startswith("model/layer_with_weights-0/kernel")
              and "OPTIMIZER" not in k][0]
    assert not np.allclose(raw.get_tensor(kernel), model.trainable_variables[0].numpy())


def test_weight_average_resumes_exactly(tmp_path):
    quiet = dict(verbose=0, log=lambda *a: None)
    val = make_dataset(_toy_data(48, seed=1), (12, 12, 1), batch_size=16)
    whole = _ema_model()
    fit(whole, _stream(), val, epochs=3, run_dir=tmp_path / "whole", **quiet)
    first = fit(_ema_model(), _stream(), val, epochs=3, run_dir=tmp_path / "parts", time_budget=1e-6, **quiet)
    assert first["status"] == "time_budget"
    resumed = _ema_model()
    fit(resumed, _stream(), val, epochs=3, run_dir=tmp_path / "parts", **quiet)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert read_history(tmp_path / "whole" / "history.csv")[-1]["val_loss"] == pytest.approx(
        read_history(tmp_path / "parts" / "history.csv")[-1]["val_loss"], rel=1e-5)
