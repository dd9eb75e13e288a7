"""Collecting a finished run for the docs: its small result files (never weights) copied into
``docs/runs/<run>/``, with ``timing.json`` from the ``/usr/bin/time -v`` report(s) of the command(s)
that made it (wall, user and system seconds, CPU share, peak memory, CPU model)."""
from __future__ import annotations

import platform
import re
import shutil
from pathlib import Path

from fer_keras.errors import ConfigError
from fer_keras.files import write_json
from fer_keras.runs import (CONFIG_FILE, CONFUSION_FIGURE, CURVES_FIGURE, FIGURES_DIR, FRAMING_FIGURE, HISTORY_FILE,
                            LABEL_NOISE_FILE, LOG_FILE, METRICS_FILE, PROFILE_FILE, REPORT_FILE, ROBUSTNESS_FILE,
                            ROBUSTNESS_VAL_FILE, SUMMARY_FILE, TABLE_CSV_FILE, TABLE_MD_FILE, TIMING_FILE, TTA_FILE,
                            RunFolder)

#: Small result files copied from a run folder into ``docs/runs/<run>/`` (never weights).
RESULT_FILES = (CONFIG_FILE, METRICS_FILE, HISTORY_FILE, LOG_FILE, REPORT_FILE, LABEL_NOISE_FILE, ROBUSTNESS_FILE,
                ROBUSTNESS_VAL_FILE, TTA_FILE, TIMING_FILE, PROFILE_FILE, SUMMARY_FILE, TABLE_MD_FILE, TABLE_CSV_FILE,
                f"{FIGURES_DIR}/{CURVES_FIGURE}", f"{FIGURES_DIR}/{CONFUSION_FIGURE}",
                f"{FIGURES_DIR}/{FRAMING_FIGURE}")


def parse_time_log(text: str) -> dict:
    """Figures of a ``/usr/bin/time -v`` report: command, wall/user/system seconds, CPU %, peak MB."""
    def field(name):
        m = re.search(rf"^\s*{re.escape(name)}: (.*)$", text, re.MULTILINE)
        return m.group(1).strip() if m else None

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    if wall is None:
        raise ValueError("not a /usr/bin/time -v report (no 'Elapsed (wall clock) time' line)")
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    return {"command": (field("Command being timed") or "").strip('"'),
            "wall_seconds": round(seconds, 1),
            "user_seconds": float(field("User time (seconds)") or 0),
            "system_seconds": float(field("System time (seconds)") or 0),
            "cpu_percent": float((field("Percent of CPU this job got") or "0%").rstrip("%")),
            "max_rss_mb": round(int(field("Maximum resident set size (kbytes)") or 0) / 1024, 1),
            "exit_status": int(field("Exit status") or 0)}


def cpu_model() -> str:
    """This machine's CPU model name (``/proc/cpuinfo``), or ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def combine_timings(timings: list[dict]) -> dict:
    """One run made by several commands (started, then resumed): wall, user and system seconds
    summed, CPU share = CPU seconds / wall seconds, peak memory the largest; each command kept.
    An untimed part (:func:`untimed_epochs`: user/system seconds None) adds its wall seconds; the
    CPU share and peak memory then come from the timed parts only (``cpu_percent_of``)."""
    if len(timings) == 1:
        return timings[0]
    timed = [t for t in timings if t["user_seconds"] is not None]
    wall, timed_wall = (sum(t["wall_seconds"] for t in ts) for ts in (timings, timed))
    cpu = sum(t["user_seconds"] + t["system_seconds"] for t in timed)
    out = {"command": (timed or timings)[0]["command"], "wall_seconds": round(wall, 1),
           "user_seconds": round(sum(t["user_seconds"] for t in timed), 2),
           "system_seconds": round(sum(t["system_seconds"] for t in timed), 2),
           "cpu_percent": round(100 * cpu / timed_wall) if timed_wall else 0.0,
           "max_rss_mb": max((t["max_rss_mb"] for t in timed), default=None),
           "exit_status": timings[-1]["exit_status"], "invocations": timings}
    if len(timed) < len(timings):
        out["cpu_percent_of"] = f"the timed {round(timed_wall)} s of {round(wall)} s"
    return out


def untimed_epochs(run_dir: str | Path, epochs: str) -> dict:
    """A part of a run whose ``/usr/bin/time`` report was lost (its process was killed): epochs
    ``"FIRST-LAST"`` (1-based, inclusive), wall seconds summed from the run's history (each epoch's
    own ``seconds``, so start-up time is left out); CPU not measured (None)."""
    first, _, last = epochs.partition("-")
    try:
        first, last = int(first), int(last or first)
    except ValueError:
        raise ConfigError(f"untimed epochs {epochs!r}: write FIRST-LAST, e.g. untimed:1-12") from None
    history = RunFolder.open(run_dir, "--collect").history()
    rows = [r for r in history if first <= int(r["epoch"]) + 1 <= last]
    if len(rows) != last - first + 1 or any("seconds" not in r for r in rows):
        raise ConfigError(f"untimed epochs {epochs}: {run_dir}'s history.csv lacks some of them or their seconds")
    return {"command": f"epochs {first}-{last}, /usr/bin/time report lost (process killed); wall from history.csv",
            "wall_seconds": round(sum(float(r["seconds"]) for r in rows), 1), "user_seconds": None,
            "system_seconds": None, "cpu_percent": None, "max_rss_mb": None, "exit_status": None}


def collect_run(run_dir: str | Path, dest_root: str | Path, time_log=None) -> Path:
    """Copy ``run_dir``'s small result files (:data:`RESULT_FILES`; no model, no checkpoints) to
    ``dest_root/<run folder name>/``. With ``time_log`` (the ``/usr/bin/time -v`` output of the
    command that made the run, or a list of them when it was resumed; ``"untimed:FIRST-LAST"`` for
    epochs whose report was lost, see :func:`untimed_epochs`) also write ``timing.json``:
    :func:`parse_time_log` (:func:`combine_timings`) plus this machine's CPU model, so call it on
    the machine that ran the commands."""
    run = RunFolder.open(run_dir, "--collect")
    dest = Path(dest_root) / run.name
    dest.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if run.file(name).is_file():
            (dest / name).parent.mkdir(exist_ok=True)
            shutil.copyfile(run.file(name), dest / name)
    if time_log is not None:
        logs = [time_log] if isinstance(time_log, (str, Path)) else list(time_log)
        timings = [untimed_epochs(run_dir, str(log)[len("untimed:"):]) if str(log).startswith("untimed:")
                   else parse_time_log(Path(log).read_text(errors="replace")) for log in logs]
        write_json(dest / TIMING_FILE, {**combine_timings(timings), "cpu_model": cpu_model()})
    return dest
