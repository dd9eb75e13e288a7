"""Exact resume: kill -9 a real training process mid-epoch, resume it, and compare with an
uninterrupted run of the same seed (history rows and test metrics), plain (step LR schedule) and NSL."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6  # enough that a fast host cannot finish them all between the first checkpoint and the kill
ARGS = ["--model", "vgg", "--limit", "60", "--eval-limit", "21", "--epochs", str(EPOCHS), "--batch-size", "10",
        "--augment", "basic+flip+crop"]
TIMING = {"seconds", "train_seconds"}


def _cmd(out, *extra):
    return [sys.executable, str(ROOT / "experiments" / "run_nsl.py"), "--out", str(out), *ARGS, *extra]


def _run_folder(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _kill_mid_epoch(out: Path, extra) -> Path:
    """Start a run, wait until epoch 1 is checkpointed and epoch 2 is under way, then SIGKILL it."""
    proc = subprocess.Popen(_cmd(out, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            runs = [p for p in out.iterdir()] if out.exists() else []
            if runs and (runs[0] / "checkpoints" / "state.json").is_file():
                time.sleep(0.2)  # into epoch 2
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 300 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run = _run_folder(out)
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] < EPOCHS
    assert not (run / "metrics.json").exists()
    return run


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "nsl"])
def test_kill_and_resume_matches_uninterrupted_run(tmp_path, mode):
    # plain: with a step schedule whose first drop comes after the epoch the kill interrupts
    extra = ["--no-adversarial", "--lr-schedule", "step", "--lr-drops", "2,3"] if mode == "plain" else []
    subprocess.run(_cmd(tmp_path / "straight", *extra), check=True, capture_output=True)
    straight = _run_folder(tmp_path / "straight")

    killed = _kill_mid_epoch(tmp_path / "killed", extra)
    resume = [sys.executable, str(ROOT / "experiments" / "run_nsl.py"), "--resume", str(killed)]
    done = subprocess.run(resume, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Resumed from" in (killed / "log.txt").read_text()

    assert _history(killed) == _history(straight)  # every column but the timings, bit for bit
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    for key, value in a["evaluate"].items():
        assert b["evaluate"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert b["confusion_matrix"] == a["confusion_matrix"]


# ------------------------------------------------------------------ resume guards (one line each)

GUARD_ARGS = ["--no-adversarial", "--model", "small_cnn", "--limit", "40", "--eval-limit", "14", "--epochs", "3",
              "--batch-size", "10", "--time-budget", "0.0001"]  # stops after epoch 1 of 3


@pytest.fixture
def stopped_run(tmp_path, monkeypatch, capsys):
    """A run stopped by its time budget after epoch 1 (in-process, demo data)."""
    from fer_keras.errors import run_main
    sys.path.insert(0, str(ROOT / "experiments"))
    import run_nsl

    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--out", str(tmp_path / "runs"), *GUARD_ARGS])
    run_main(run_nsl.main)
    run = _run_folder(tmp_path / "runs")
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 1
    capsys.readouterr()
    return run


def _resume_line(run, capsys, monkeypatch):
    from fer_keras.errors import run_main
    import run_nsl
    from toys import exit_2_one_line

    monkeypatch.setattr(sys, "argv", ["run_nsl.py", "--resume", str(run)])
    return exit_2_one_line(capsys, lambda: run_main(run_nsl.main))


def test_resume_of_a_truncated_checkpoint_is_one_line(stopped_run, capsys, monkeypatch):
    data = next((stopped_run / "checkpoints").glob("ckpt-1.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    line = _resume_line(stopped_run, capsys, monkeypatch)
    assert "checkpoint ckpt-1 is damaged" in line and "start a new run" in line, line


def test_resume_with_a_config_naming_another_model_is_one_line(stopped_run, capsys, monkeypatch):
    config = json.loads((stopped_run / "config.json").read_text())
    config["config"]["model"]["name"] = "dcnn"
    (stopped_run / "config.json").write_text(json.dumps(config))
    line = _resume_line(stopped_run, capsys, monkeypatch)
    assert "checkpoint ckpt-1 does not fit the model its config.json builds (dcnn" in line, line


def test_resume_of_a_damaged_state_file_is_one_line(stopped_run, capsys, monkeypatch):
    (stopped_run / "checkpoints" / "state.json").write_text('{"epoch": ')
    line = _resume_line(stopped_run, capsys, monkeypatch)
    assert "state.json: damaged" in line, line


def test_a_second_resume_of_a_run_being_written_is_refused_and_a_killed_holder_frees_it(
        stopped_run, capsys, monkeypatch):
    from fer_keras.files import lock_folder

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from fer_keras.files import lock_folder; h = lock_folder(sys.argv[2], 'x'); "
                               "print('locked', flush=True); time.sleep(600)", str(ROOT), str(stopped_run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = _resume_line(stopped_run, capsys, monkeypatch)
        assert f"another process (pid {holder.pid}) is writing this folder" in line, line
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock
        holder.wait()
    lock_folder(stopped_run, "--resume").close()  # free again
