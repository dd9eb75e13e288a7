"""--strategy: a mirrored step on two logical CPU devices equals the single-device step (plain and
NSL), a real mirrored run stopped and resumed equals an uninterrupted one, two workers on localhost
ports train one run folder with equal weights, and the mistakes are one line each.

Logical devices and multi-worker collectives must be set up before TensorFlow starts, so every
distributed case runs in a fresh process."""
import csv
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fer_keras.config import TrainingConfig
from fer_keras.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RUN_NSL = str(ROOT / "experiments" / "run_nsl.py")
TINY = ["--limit", "40", "--eval-limit", "14", "--batch-size", "10", "--epochs", "2"]
TIMING = {"seconds", "train_seconds"}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "FER_KERAS_CPU_DEVICES")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _only_folder(out: Path) -> Path:
    folders = [p for p in out.iterdir()]
    assert len(folders) == 1, folders
    return folders[0]


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as f:
        return [{k: float(v) for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _finished(proc: subprocess.CompletedProcess | subprocess.Popen, out: str = "") -> str:
    assert proc.returncode == 0, out[-3000:]
    return out


# ------------------------------------------------------------------ one step, 2 devices vs 1

STEP = textwrap.dedent("""
    import os, sys, tempfile
    os.environ["FER_KERAS_CPU_DEVICES"] = "2"
    import fer_keras
    import numpy as np
    import tensorflow as tf
    from fer_keras.data import make_demo
    from fer_keras.data.pipeline import TrainingStream
    from fer_keras.distribute import make_strategy, synchronize_batch_norm
    from fer_keras.nsl import base_model, wrap_adversarial
    from fer_keras.training import compile_model, fit

    mirrored, single = make_strategy("mirrored"), make_strategy("none")
    assert mirrored.num_replicas_in_sync == 2, mirrored.extended.worker_devices
    data = make_demo(images_per_class=2, seed=0)          # 14 faces: one global batch of 14 = 2 x 7
    stream = TrainingStream(data, (16, 16, 1), 14, seed=0)
    L = tf.keras.layers

    def step(strategy, nsl, sync=True):
        tf.keras.utils.set_random_seed(0)                 # the same initial weights every time
        with strategy.scope():
            inputs = L.Input((16, 16, 1), name="image")
            x = L.Conv2D(6, 3, strides=2, name="conv")(inputs)
            x = L.BatchNormalization(name="bn")(x)
            x = L.ReLU()(L.Dense(8, name="hidden")(L.Flatten()(x)))
            model = tf.keras.Model(inputs, L.Dense(7, activation="softmax", name="probabilities")(x))
            if sync and strategy is mirrored:
                assert synchronize_batch_norm(model) == 1
            if nsl:
                model = wrap_adversarial(model, step=0.05)
            compile_model(model, "sgd", 0.5)
        fit(model, stream, None, 1, tempfile.mkdtemp(), verbose=0, log=lambda *a: None)
        assert int(model.optimizer.iterations.numpy()) == 1  # the global batch is one step, not one per replica
        return base_model(model).get_weights()

    for nsl in (False, True):
        one, two = step(single, nsl), step(mirrored, nsl)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
        print(f"{'nsl' if nsl else 'plain'}: largest difference {diff:.2g}")
        assert diff < 1e-5, diff
    unsynced = step(mirrored, False, sync=False)           # each replica's own statistics: another step
    diff = max(float(np.abs(a - b).max()) for a, b in zip(step(single, False), unsynced))
    print(f"per-replica batch norm: largest difference {diff:.2g}")
    assert diff > 1e-3, diff
    print("OK")
""")


def test_a_mirrored_step_on_two_cpu_devices_equals_the_single_device_step():
    """As NSL's own multi-device test: one step of the same model, initial weights and global batch
    on two logical CPU devices under MirroredStrategy gives the single-device weights, plain and
    with NSL (batch normalisation synchronised; without that the step differs)."""
    done = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0 and "OK" in done.stdout, (done.stdout + done.stderr)[-3000:]


# ------------------------------------------------------------------ a real mirrored run

@pytest.mark.slow
def test_a_mirrored_run_stopped_by_its_time_budget_and_resumed_matches_an_uninterrupted_one(tmp_path, capsys,
                                                                                          monkeypatch):
    """run_nsl.py --strategy mirrored on 2 logical CPUs (FER_KERAS_CPU_DEVICES=2), VGG (batch norm and
    dropout) trained plainly (NSL: the step test above and the two workers below): finishes with
    metrics and an export of the single-device form; a run stopped after epoch 1 and resumed has the
    same history; the same folder on 1 device is refused."""
    env = _env(FER_KERAS_CPU_DEVICES="2")
    args = ["--strategy", "mirrored", "--model", "vgg", "--input-size", "32", "--no-adversarial", *TINY]
    procs = [subprocess.Popen([sys.executable, RUN_NSL, "--out", str(tmp_path / name), *args, *extra], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, extra in (("straight", []), ("stopped", ["--time-budget", "0.0001"]))]
    for proc in procs:  # the two runs side by side
        _finished(proc, proc.communicate(timeout=600)[0])
    straight, stopped = _only_folder(tmp_path / "straight"), _only_folder(tmp_path / "stopped")
    assert len(_history(stopped)) == 1 and not (stopped / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, RUN_NSL, "--resume", str(stopped)], env=env, capture_output=True,
                             text=True, timeout=600)
    _finished(resumed, resumed.stdout + resumed.stderr)

    assert _history(stopped) == _history(straight)
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (straight, stopped))
    for key, value in a["evaluate"].items():
        assert b["evaluate"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    saved = json.loads((straight / "config.json").read_text())
    assert saved["config"]["training"]["strategy"] == "mirrored"
    assert saved["resolved"]["distribution"] == {"strategy": "mirrored", "workers": 1, "replicas": 2}
    assert "mirrored over 2 devices (CPU:0, CPU:1), global batch 10 = 2 x 5" in (straight / "log.txt").read_text()
    exported = json.loads(_keras_config(straight / "model" / "model.keras"))
    norms = [layer["config"] for layer in exported["config"]["layers"] if layer["class_name"] == "BatchNormalization"]
    assert norms and not any(c.get("synchronized") for c in norms)  # the form a single-device run exports
    assert (straight / "model" / "saved_model" / "saved_model.pb").is_file()

    # the folder on this process's one CPU device: refused in one line (another split of the batches)
    from fer_keras.errors import run_main
    from toys import exit_2_one_line
    sys.path.insert(0, str(ROOT / "experiments"))
    import run_nsl

    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--resume", str(stopped)])
    line = exit_2_one_line(capsys, lambda: run_main(run_nsl.main))
    assert "it trained on 2 replica(s) (--strategy mirrored) and this machine gives 1" in line, line
    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--resume", str(stopped), "--strategy", "none"])
    line = exit_2_one_line(capsys, lambda: run_main(run_nsl.main))
    assert "--strategy would change it" in line, line


def _keras_config(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read("config.json").decode()


# ------------------------------------------------------------------ two workers on localhost

def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(tmp_path: Path, per_worker: list[list[str]], meanwhile=lambda: None) -> list[str]:
    """Run one run_nsl.py process per entry of ``per_worker`` (its arguments) as the workers of one
    localhost cluster, each with its own TMPDIR, and ``meanwhile()`` here; return their outputs
    once all have ended."""
    cluster = [f"localhost:{port}" for port in _free_ports(len(per_worker))]
    procs = []
    for index, args in enumerate(per_worker):
        tf_config = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        tmp = tmp_path / f"tmp{index}"
        tmp.mkdir(exist_ok=True)
        procs.append(subprocess.Popen([sys.executable, RUN_NSL, *args], env=_env(TF_CONFIG=tf_config, TMPDIR=str(tmp)),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    try:
        meanwhile()
        for proc in procs:
            outs.append(proc.communicate(timeout=600)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, out in zip(procs, outs):
        _finished(proc, out)
    return outs


def _digest(out: str) -> str:
    found = re.findall(r"Trained weights: sha256 ([0-9a-f]{16})", out)
    assert len(found) == 1, out[-2000:]
    return found[0]


@pytest.mark.slow
def test_two_workers_train_one_run_folder_with_equal_weights_and_resume_it(tmp_path):
    """Two run_nsl.py workers (NSL) under MultiWorkerMirroredStrategy: the chief's time budget stops
    both after epoch 1 (the other has none), both resume from the chief's folder, and in the end
    there is one run folder with metrics, both workers' weights are equal, their temporary folders
    are gone, and the model equals a single-device run's (the batches were split, not duplicated)."""
    from fer_keras.config import ExperimentConfig
    from fer_keras.training.experiment import run_experiment
    import tensorflow as tf

    out = tmp_path / "runs"
    args = ["--strategy", "multiworker", "--model", "small_cnn", "--out", str(out), *TINY]
    single = []  # the same run on this process's one device, trained while the workers run
    config = ExperimentConfig(out=str(tmp_path / "single")).replace(
        model__name="small_cnn", data__limit=40, data__eval_limit=14, training__batch_size=10, training__epochs=2)
    first = _workers(tmp_path, [[*args, "--time-budget", "0.0001"], args],
                     meanwhile=lambda: single.append(run_experiment(config, log=lambda *a: None)))
    run = _only_folder(out)
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert _digest(first[0]) == _digest(first[1])
    assert not (run / "metrics.json").exists()

    done = _workers(tmp_path, [["--resume", str(run)]] * 2)
    assert _only_folder(out) == run and (run / "metrics.json").is_file() and (run / "model" / "model.keras").is_file()
    assert _digest(done[0]) == _digest(done[1])
    assert "the chief worker writes the run folder" in done[1] and "Results in" in done[0]
    leftovers = [p.name for i in (0, 1) for p in (tmp_path / f"tmp{i}").iterdir()]
    assert not [name for name in leftovers if name.startswith("fer_keras-")], leftovers  # the non-chief's folder
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["distribution"] == {"strategy": "multiworker", "workers": 2, "replicas": 2}

    saved = ExperimentConfig.from_dict(json.loads((run / "config.json").read_text())["config"])
    assert saved.replace(training__strategy="none", out=config.out) == config  # the same run but for the strategy
    single = single[0]
    assert len(_history(single.path)) == len(_history(run)) == 2
    for a, b in zip(_history(single.path), _history(run)):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6)
    ours, theirs = (tf.keras.models.load_model(r / "model" / "model.keras").get_weights() for r in (run, single.path))
    largest = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
    assert largest < 1e-6, largest  # 3e-8 here


# ------------------------------------------------------------------ mistakes, one line each

def _one_line(capsys, monkeypatch, tmp_path, *args) -> str:
    from fer_keras.errors import run_main
    from toys import exit_2_one_line
    sys.path.insert(0, str(ROOT / "experiments"))
    import run_nsl

    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--out", str(tmp_path / "runs"), *args])
    line = exit_2_one_line(capsys, lambda: run_main(run_nsl.main))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder left
    return line


def test_multiworker_without_a_usable_tf_config_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    line = _one_line(capsys, monkeypatch, tmp_path, "--strategy", "multiworker")
    assert "--strategy multiworker needs TF_CONFIG on every machine, e.g. TF_CONFIG=" in line, line
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}')
    line = _one_line(capsys, monkeypatch, tmp_path, "--strategy", "multiworker")
    assert "not a cluster with this task in it (IndexError" in line, line


def test_an_unknown_strategy_or_an_uneven_global_batch_is_refused(capsys):
    with pytest.raises(ConfigError, match="--strategy 'sideways': use one of none, mirrored, multiworker"):
        TrainingConfig(strategy="sideways")
    sys.path.insert(0, str(ROOT / "experiments"))
    import run_nsl

    with pytest.raises(SystemExit) as exit_info:
        run_nsl.main(["--strategy", "sideways"])
    assert exit_info.value.code == 2
    assert "argument --strategy: invalid choice: 'sideways'" in capsys.readouterr().err

    from fer_keras.distribute import check_batch

    class TwoReplicas:
        num_replicas_in_sync = 2

    check_batch(TwoReplicas(), 50)
    with pytest.raises(ConfigError, match="--batch-size 49: .* must be a multiple of 2 .e.g. 48 or 50."):
        check_batch(TwoReplicas(), 49)
