"""Study B's privacy grid: config checks, a tiny grid end to end and reloaded, the run_mia.py command."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_keras.config import DataConfig, ModelConfig, TrainingConfig
from fer_keras.errors import ConfigError
from fer_keras.studies.mia import AuditConfig, MIAConfig, run_study

ROOT = Path(__file__).resolve().parents[2]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="--settings 'noise3'"):
        MIAConfig(audit=AuditConfig(settings=("noise3",)))
    with pytest.raises(ConfigError, match="model dcnn has no noise layers"):
        MIAConfig(model=ModelConfig(name="dcnn"), audit=AuditConfig(settings=("noise1",)))
    with pytest.raises(ConfigError, match="--attacks 'bogus'"):
        AuditConfig(attacks=("bogus",))


def test_run_study_tiny_and_reload(tmp_path):
    config = MIAConfig(out=str(tmp_path), data=DataConfig(demo_images_per_class=6), training=TrainingConfig(epochs=1),
                       audit=AuditConfig(settings=("none", "noise1+basic"), audit_size=50, attacks=("threshold",)))
    run = run_study(config, log=lambda *a: None).path
    for name in ("table.csv", "table.md", "summary.json", "roc.png", "settings/none.json",
                 "settings/noise1+basic.json", "models/none.keras"):
        assert (run / name).exists(), name
    rows = list(csv.DictReader((run / "table.csv").open()))
    assert len(rows) == 4
    for row in rows:
        assert sum(float(row[k]) for k in ("TP", "FP", "TN", "FN")) == pytest.approx(100)
    again = run_study(MIAConfig(out=str(tmp_path / "again"), audit=AuditConfig(attacks=("threshold",))), model_dir=run,
                      log=lambda *a: None).path
    first = {r["setting"]: r["auc"] for r in rows}
    assert {r["setting"]: r["auc"] for r in csv.DictReader((again / "table.csv").open())} == first


def test_cli_model_dir_that_is_not_a_run_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "run_mia.py"), "--model-dir", "nowhere",
                             "--out", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --model-dir nowhere: not a run folder")
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())
