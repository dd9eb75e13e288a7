"""Reading run folders for the report: each as one dict (config, resolved facts, metrics, history,
timing, profile, ...), and the model cost of each (parameters, MACs, optional latency)."""
from __future__ import annotations

import glob
import os
from pathlib import Path

from fer_keras import profiler
from fer_keras.files import write_json
from fer_keras.models import build_model
from fer_keras.runs import (CONFIG_FILE, LABEL_NOISE_FILE, METRICS_FILE, PROFILE_FILE, ROBUSTNESS_FILE, SUMMARY_FILE,
                            TIMING_FILE, TTA_FILE, RunFolder)
from fer_keras.studies.mia import MIAConfig
from fer_keras.studies.report.collect import cpu_model

#: Runs in a folder of this name (``docs/runs/speed/<run>``) are speed probes: they appear in the
#: scale table, the XLA comparison and the CPU estimates, not in the accuracy tables.
SPEED_DIR = "speed"
DEFAULT_PATTERNS = ("docs/runs/*", f"docs/runs/{SPEED_DIR}/*")
#: Run folders the report reads; others under docs/runs (crop-framing measurements) are shown where
#: they are documented (docs/faces.md).
REPORTED_KINDS = ("train", "privacy", "ensemble")


def load_run(folder: str | Path) -> dict:
    """One run folder as a dict: ``kind`` ("train", "privacy" or "ensemble"), ``name``, ``config`` (an
    ExperimentConfig, a MIAConfig for a privacy run, the saved dict for an ensemble), ``resolved``, ``environment``, ``images``,
    ``speed`` (a speed probe, see :data:`SPEED_DIR`) and whichever of ``metrics``, ``history``,
    ``robustness``, ``label_noise``, ``timing``, ``profile``, ``privacy`` (summary.json),
    ``tta_selection`` (tta_validation.json) exist."""
    folder = RunFolder.open(folder, "--runs")
    kind = folder.kind
    config = (folder.config if kind == "train" else folder.saved["config"] if kind == "ensemble"
              else MIAConfig.from_dict(folder.saved["config"]))
    run = {"name": folder.name, "path": folder.path, "config": config, "kind": kind,
           "speed": folder.path.parent.name == SPEED_DIR, "resolved": folder.resolved,
           "environment": folder.environment,
           "images": folder.resolved.get("images") or folder.saved.get("images", {})}
    for key, file in (("metrics", METRICS_FILE), ("robustness", ROBUSTNESS_FILE), ("label_noise", LABEL_NOISE_FILE),
                      ("timing", TIMING_FILE), ("profile", PROFILE_FILE), ("privacy", SUMMARY_FILE),
                      ("tta_selection", TTA_FILE)):
        value = folder.read(file)
        if value is not None:
            run[key] = value
    run["history"] = folder.history()
    return run


def find_runs(patterns) -> list[dict]:
    """Run folders matching the glob ``patterns`` (folders holding ``config.json``, of a
    :data:`REPORTED_KINDS` kind), by name, speed probes last."""
    folders = {Path(p) for pattern in patterns for p in glob.glob(str(pattern))}
    order = sorted(folders, key=lambda p: (p.parent.name == SPEED_DIR, p.name))
    return [load_run(f) for f in order if (f / CONFIG_FILE).is_file() and RunFolder(f).kind in REPORTED_KINDS]


def model_profile(run: dict, latency_runs: int = 0) -> dict:
    """Parameters and MACs of the run's model (built from its config, untrained), plus the
    median batch-1 latency in ms when ``latency_runs`` > 0. A ``profile.json`` in the run is used
    as it is; a newly measured latency is written there (with the CPU and the load average), so
    re-running the report does not change it."""
    if "profile" in run and (latency_runs == 0 or run["profile"].get("latency_ms") is not None):
        return run["profile"]
    cfg, res = run["config"], run["resolved"]
    key = (cfg.model.name, tuple(res["input_shape"]), len(res["class_names"]), cfg.model.noise_layers)
    if key not in _PROFILES:
        model = build_model(key[0], key[1], key[2], noise_layers=key[3])
        _PROFILES[key] = {"params": profiler.count_parameters(model), "macs": profiler.count_macs(model),
                          "latency_ms": None, "_model": model}
    figures = {k: v for k, v in _PROFILES[key].items() if k != "_model"}
    if latency_runs:
        figures.update(latency_ms=round(profiler.latency_ms(_PROFILES[key]["_model"], runs=latency_runs), 2),
                       latency_cpu=cpu_model(), latency_load_average=round(os.getloadavg()[0], 2))
        write_json(Path(run["path"]) / PROFILE_FILE, figures)
    return figures


_PROFILES: dict = {}
