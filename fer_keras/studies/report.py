"""Results report: run folders -> ``docs/RESULTS.md`` and the summary block of ``README.md``.

Every figure in the report is read from run files (``config.json``, ``metrics.json``,
``history.csv``, ``robustness.json``, a privacy run's ``summary.json``, and the two files this
module adds: ``timing.json`` from ``/usr/bin/time -v`` and ``profile.json`` from
:mod:`fer_keras.profiler`) or computed from them; the only typed-in figures are the studies'
own (:mod:`fer_keras.studies.published`, from the studies as restated in the project's spec),
always shown as the study's; the recipes' commands are the presets' (:mod:`fer_keras.studies.presets`).

Units: accuracy and F1 as fractions in the files, shown in %; times in seconds unless a column
says otherwise; MACs = multiply-accumulates of one image (batch 1, see
:data:`fer_keras.profiler.MAC_CONVENTION`); GFLOP/s = 1e9 floating-point operations per second,
2 FLOPs per MAC.
"""
from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
from pathlib import Path

from fer_keras import pretrained, profiler
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.errors import ConfigError
from fer_keras.files import atomic_write_text, write_json
from fer_keras.models import build_model, get_spec
from fer_keras.privacy import round_to_total
from fer_keras.runs import (CONFIG_FILE, CONFUSION_FIGURE, CURVES_FIGURE, FIGURES_DIR, HISTORY_FILE, LABEL_NOISE_FILE,
                            LOG_FILE, METRICS_FILE, REPORT_FILE, ROBUSTNESS_FILE, SUMMARY_FILE,
                            TABLE_CSV_FILE, TABLE_MD_FILE, TTA_FILE, RunFolder)
from fer_keras.studies.mia import MIAConfig
from fer_keras.studies.presets import STUDY_RECIPES, command, get_preset, preset_config, preset_flags
from fer_keras.studies.published import (STUDY_A, STUDY_A_MODELS, STUDY_B, STUDY_B_MIA, STUDY_B_MODEL,
                                         STUDY_BUDGETS)
from fer_keras.studies.robustness import comparison_rows

#: Small result files copied from a run folder into ``docs/runs/<run>/`` (never weights).
TIMING_FILE, PROFILE_FILE = "timing.json", "profile.json"
RESULT_FILES = (CONFIG_FILE, METRICS_FILE, HISTORY_FILE, LOG_FILE, REPORT_FILE, LABEL_NOISE_FILE, ROBUSTNESS_FILE,
                TTA_FILE, TIMING_FILE, PROFILE_FILE, SUMMARY_FILE, TABLE_MD_FILE, TABLE_CSV_FILE,
                f"{FIGURES_DIR}/{CURVES_FIGURE}", f"{FIGURES_DIR}/{CONFUSION_FIGURE}")
#: Runs in a folder of this name (``docs/runs/speed/<run>``) are speed probes: they appear in the
#: scale table, the XLA comparison and the CPU estimates, not in the accuracy tables.
SPEED_DIR = "speed"
DEFAULT_PATTERNS = ("docs/runs/*", f"docs/runs/{SPEED_DIR}/*")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
#: Training cost of one image as a multiple of its forward MACs: forward + backward (2x) = 3x,
#: times 2 FLOPs per MAC = 6. NSL adds a gradient w.r.t. the input and a second forward/backward
#: on the perturbed batch: counted as 2x the plain cost.
TRAIN_FLOPS_PER_MAC = 6
NSL_COST_FACTOR = 2
#: Sustained fp32 throughput assumed for the GPU wall-time estimates of the full recipes
#: (a Colab T4: 8.1 TFLOP/s peak; small convnets at batch 16-50 reach a fraction of it).
ASSUMED_GPU_TFLOPS = 2.0

# ------------------------------------------------------------------------------ collecting


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


# --------------------------------------------------------------------------------- reading


def load_run(folder: str | Path) -> dict:
    """One run folder as a dict: ``kind`` ("train" or "privacy"), ``name``, ``config`` (an
    ExperimentConfig, or a MIAConfig for a privacy run), ``resolved``, ``environment``, ``images``,
    ``speed`` (a speed probe, see :data:`SPEED_DIR`) and whichever of ``metrics``, ``history``,
    ``robustness``, ``label_noise``, ``timing``, ``profile``, ``privacy`` (summary.json),
    ``tta_selection`` (tta_validation.json) exist."""
    folder = RunFolder.open(folder, "--runs")
    kind = folder.kind
    config = folder.config if kind == "train" else MIAConfig.from_dict(folder.saved["config"])
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
    """Run folders matching the glob ``patterns`` (folders holding ``config.json``), by name, speed probes last."""
    folders = {Path(p) for pattern in patterns for p in glob.glob(str(pattern))}
    order = sorted(folders, key=lambda p: (p.parent.name == SPEED_DIR, p.name))
    return [load_run(f) for f in order if (f / CONFIG_FILE).is_file()]


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


# ------------------------------------------------------------------------------- describing


def _pct(value, digits=2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _num(value, fmt="{:.4f}") -> str:
    return "-" if value is None else fmt.format(value)


def _table(header, rows) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def training_label(run: dict) -> str:
    cfg = run["config"]
    adv, opt = cfg.adversarial, cfg.optimizer
    text = (f"NSL x{adv.multiplier:g} step {adv.step:g}" + (f" {adv.grad_norm}" if adv.grad_norm != "l2" else "")
            if adv.enabled else "plain")
    if cfg.augment.name != "none":
        text += f", {cfg.augment.name}"
    text += f", {opt.name.upper() if opt.name == 'sgd' else opt.name.capitalize()} {opt.lr:g}"
    if opt.schedule != "constant":
        text += f" {opt.schedule}" + (f" /10 after epochs {','.join(map(str, opt.lr_drops))}" if opt.lr_drops else "")
    if cfg.training.label_smoothing:
        text += f", label smoothing {cfg.training.label_smoothing:g}"
    if cfg.model.init_from:
        text += f", from {Path(cfg.model.init_from).name}"
    if cfg.data.label_noise:
        text += f", {cfg.data.label_noise:.0%} label noise"
    if cfg.model.noise_layers:
        text += f", {cfg.model.noise_layers} noise layer(s)"
    return text + (", XLA" if cfg.training.jit_compile else "")


def full_data(run: dict) -> bool:
    """Trained on a whole real data set: a data path, no --limit and no --eval-limit."""
    data = run["config"].data
    return data.path is not None and data.limit is None and data.eval_limit is None


def data_label(run: dict) -> str:
    data = run["config"].data.path
    name = Path(data).name if data else "demo (synthetic)"
    return (f"{name}{' (full)' if full_data(run) else ''}, "
            f"{len(run['resolved'].get('class_names', []))} classes")


def machine_label(run: dict) -> str:
    env = run["environment"]
    cpu = run.get("timing", {}).get("cpu_model", "CPU model not recorded")
    return f"{env.get('cpus', '?')} cores {env.get('machine', '')}, {cpu}; TF {env.get('tensorflow', '?')}"


def train_gflops(run: dict, profile: dict) -> float | None:
    """Training GFLOP/s: images/s x MACs x :data:`TRAIN_FLOPS_PER_MAC` (x :data:`NSL_COST_FACTOR` with NSL)."""
    ips = run.get("metrics", {}).get("training", {}).get("images_per_second")
    if ips is None:
        return None
    factor = TRAIN_FLOPS_PER_MAC * (NSL_COST_FACTOR if run["config"].adversarial.enabled else 1)
    return ips * profile["macs"] * factor / 1e9


def study_figure(run: dict) -> tuple[str, float | None, float | None]:
    """(which study row, its test accuracy, its test loss) to show beside a run, or ("-", None, None)."""
    cfg, classes = run["config"], run["resolved"].get("class_names", [])
    model, augment = cfg.model.name, cfg.augment.name
    if model in STUDY_A_MODELS and len(classes) == 7:
        return "Study A, DCNN+NSL, 7 classes, 30 epochs (FER2013)", STUDY_A["7class"]["accuracy"], STUDY_A["7class"]["loss"]
    if model in STUDY_A_MODELS and sorted(classes) == ["happiness", "neutral", "sadness"]:
        return "Study A, DCNN+NSL, 3 classes (FER2013)", STUDY_A["3class"]["accuracy"], None
    if model == STUDY_B_MODEL and augment in STUDY_B["rows"]:
        loss, acc = STUDY_B["rows"][augment]
        return f"Study B, GhostFace {augment} (RAF-DB)", acc, loss
    return "-", None, None


def scale_rows(runs, profiles):
    header = ["run", "model", "input", "training", "data", "epochs", "train images", "eval images",
              "fit s", "command wall s", "CPU %", "train images/s", "train GFLOP/s", "machine"]
    rows = []
    for r in runs:
        m, res, t = r.get("metrics", {}), r["resolved"], r.get("timing", {})
        g = train_gflops(r, profiles[r["name"]])
        rows.append([r["name"] + (" (speed probe)" if r["speed"] else ""), r["config"].model.name,
                     "x".join(map(str, res["input_shape"])), training_label(r),
                     data_label(r), m.get("training", {}).get("epochs", res.get("epochs")),
                     f"{res['images']['train']:,}", f"{res['images']['val']:,} / {res['images']['test']:,}",
                     _num(m.get("training", {}).get("seconds"), "{:.0f}"), _num(t.get("wall_seconds"), "{:.0f}"),
                     _num(t.get("cpu_percent"), "{:.0f}") + (f" (of {t['cpu_percent_of'][4:]})"
                                                             if t.get("cpu_percent_of") else ""),
                     _num(m.get("training", {}).get("images_per_second"), "{:.1f}"), _num(g, "{:.1f}"),
                     machine_label(r)])
    return header, rows


def xla_lines(runs, profiles) -> list[str]:
    """One line per pair of runs that differ only in ``jit_compile``: images/s and GFLOP/s of each."""
    def key(r):
        values = r["config"].to_dict()
        values.pop("out")
        values["training"].pop("jit_compile")
        return json.dumps(values, sort_keys=True)

    def last_epoch(r):
        history, train = r.get("history"), r.get("resolved", {}).get("images", {}).get("train")
        if not history or len(history) < 2 or not train or not history[-1].get("train_seconds"):
            return ""
        ips = train / history[-1]["train_seconds"]
        gflops = ips * train_gflops(r, profiles[r["name"]]) / r["metrics"]["training"]["images_per_second"]
        return f" (last epoch, compiled: {ips:.1f} images/s = {gflops:.1f} GFLOP/s)"

    lines = []
    for jit in (r for r in runs if r["config"].training.jit_compile and r.get("metrics")):
        for plain in (r for r in runs if not r["config"].training.jit_compile and r.get("metrics") and key(r) == key(jit)):
            a, b = (x["metrics"]["training"]["images_per_second"] for x in (jit, plain))
            ga, gb = (train_gflops(x, profiles[x["name"]]) for x in (jit, plain))
            lines.append(f"* XLA (`--jit`, {jit['name']}): {a:.1f} training images/s = {ga:.1f} GFLOP/s{last_epoch(jit)}; "
                         f"default ({plain['name']}): {b:.1f} images/s = {gb:.1f} GFLOP/s{last_epoch(plain)}; "
                         f"XLA/default = {a / b:.2f}.")
    if lines:
        lines.append("  (All epochs' training seconds, so the first epoch's tracing and XLA compilation are included.)")
    return lines


def majority_accuracy(metrics: dict) -> float:
    """Test accuracy of always answering the test set's most frequent class (the chance floor)."""
    support = [c["support"] for c in metrics["per_class"].values()]
    return max(support) / sum(support)


def test_in_selection(run: dict) -> bool:
    """Did the run's test images take part in model selection (validation held test images)?

    New runs record it (``resolved.splits``); for older ones, validation and test with the same
    per-class counts means the same images (the Kaggle layout's PublicTest served as both)."""
    splits = run["resolved"].get("splits")
    if splits is not None:
        return bool(splits.get("test_in_selection"))
    counts = run["resolved"].get("class_counts", {})
    return counts.get("val") is not None and counts.get("val") == counts.get("test")


def held_out_seen(run: dict) -> bool:
    """Did the run's ``--init-from`` model train on its validation or test images, or could that
    not be checked (``resolved.init_from``, :func:`fer_keras.experiment.held_out_seen_by`)?"""
    init = run["resolved"].get("init_from")
    return bool(init) and bool(init.get("not_checked") or init.get("val_images_it_trained_on")
                               or init.get("test_images_it_trained_on"))


def marks(run: dict) -> str:
    """`` †`` (test in selection) and `` ‡`` (initial weights saw held-out images) after a run's name."""
    return (" †" if test_in_selection(run) else "") + (" ‡" if held_out_seen(run) else "")


def _seen(init: dict) -> str:
    if init.get("not_checked"):
        return f"not checked: {init['not_checked']}"
    return f"{init['val_images_it_trained_on']:,} validation, {init['test_images_it_trained_on']:,} test images"


def split_label(run: dict) -> str:
    """Where validation and test came from, e.g. ``val Training 2,871 / test PublicTest 3,589``."""
    splits = run["resolved"].get("splits")
    if splits is None:
        images = run["resolved"]["images"]
        same = "same images as test" if test_in_selection(run) else "held out"
        return f"val {images['val']:,} ({same}) / test {images['test']:,}"

    def part(name):
        return " + ".join(f"{u} {c:,}" for u, c in splits[name]["usage"].items())
    return f"val {part('val')} / test {part('test')}"


def selection_warnings(runs) -> list[str]:
    """A line naming the runs whose test images took part in model selection (marked † in the tables)."""
    shown = [r for r in runs if r.get("metrics") and not r["speed"]]
    names = [r["name"] for r in shown if test_in_selection(r)]
    seen = [r for r in shown if held_out_seen(r)]
    lines = [] if not seen else [
        "‡ **Initial weights (`--init-from`) trained on held-out images, or could not be checked**, in: "
        + ", ".join(f"{r['name']} ({_seen(r['resolved']['init_from'])})" for r in seen)
        + ". Read their validation and test figures as optimistic."]
    if not names:
        return lines
    return lines + [""] * bool(lines) + ["† **Test images took part in model selection** in: " + ", ".join(names) + ". Their validation "
            "images were the test images (FER2013's Kaggle folders hold no PrivateTest, and these runs predate "
            "the held-out validation split), so whatever validation chose (early-stopping epoch, LR drops) saw "
            "the test set; read their test figures as optimistic. Runs without † validate on a stratified 10% "
            "of Training and report on PublicTest, evaluated once at the end."]


def accuracy_rows(runs):
    header = ["run", "split", "test accuracy %", "test minus Training copies %", "majority-class accuracy %",
              "test loss", "cross-entropy", "adv. loss", "macro F1 %", "wrong / images",
              "last-epoch train acc %", "last-epoch val acc %", "study's figure", "study's accuracy %",
              "study's loss"]
    rows = []
    for r in runs:
        m = r.get("metrics")
        if not m or r["speed"]:
            continue
        ev, last = m["evaluate"], (r["history"][-1] if r["history"] else {})
        which, acc, loss = study_figure(r)
        dedup = m.get("test_deduplicated")
        rows.append([r["name"] + marks(r), split_label(r),
                     _pct(m["accuracy"]) + (f" ({m['tta']} TTA; {_pct(m['without_tta']['accuracy'])} without)"
                                            if m.get("tta", "none") != "none" else ""),
                     f"{_pct(dedup['accuracy'])} ({dedup['images']:,} images)" if dedup else "-",
                     _pct(majority_accuracy(m)), _num(ev.get("loss")),
                     _num(ev.get("categorical_crossentropy")),
                     _num(ev.get("scaled_adversarial_loss")), _pct(m["macro_f1"]), f"{m['wrong']} / {m['images']}",
                     _pct(last.get("categorical_accuracy")), _pct(last.get("val_categorical_accuracy")),
                     which, _pct(acc), _num(loss)])
    return header, rows


def per_class_rows(runs):
    header = ["run"] + [f"F1 {c} %" for c in CLASS_NAMES]
    rows = [[r["name"]] + [_pct(r["metrics"]["per_class"].get(c, {}).get("f1"), 1) for c in CLASS_NAMES]
            for r in runs if r.get("metrics") and not r["speed"]]
    rows.append(["Study A (the study's, 7 classes)"] + [_pct(STUDY_A["7class"]["f1"][c], 0) for c in CLASS_NAMES])
    return header, rows


def cost_rows(runs, profiles):
    header = ["model", "input", "classes", "parameters", "MMACs / image", "latency ms (batch 1, median of runs)",
              "latency measured on",
              "study's parameters", "study's MFLOPs (= MMACs)"]
    groups = {}
    for r in runs:
        res = r["resolved"]
        groups.setdefault((r["config"].model.name, tuple(res["input_shape"]), len(res["class_names"])), []).append(r)
    rows = []
    for key, group in groups.items():
        p = profiles[group[0]["name"]]
        times = sorted(profiles[r["name"]]["latency_ms"] for r in group if profiles[r["name"]].get("latency_ms") is not None)
        spread = f" ({times[0]:.2f}-{times[-1]:.2f}, {len(times)} runs)" if len(times) > 1 else ""
        latency = f"{times[len(times) // 2]:.2f}{spread}" if times else "-"
        study = STUDY_BUDGETS.get(key[0], ("-", "-"))
        where = (f"{p.get('latency_cpu')}, load {p.get('latency_load_average')}" if p.get("latency_ms") is not None
                 else "not measured (`--latency`)")
        rows.append([key[0], "x".join(map(str, key[1])), key[2], f"{p['params']:,}", f"{p['macs'] / 1e6:.2f}",
                     latency, where, *study])
    return header, rows


def robustness_lines(runs) -> list[str]:
    results = [r["robustness"] for r in runs if "robustness" in r]
    if not results:
        return ["No run folder holds a `robustness.json` (make one with `experiments/run_robustness.py`)."]
    lines = []
    for eps in dict.fromkeys(tuple(x["epsilons"]) for x in results):
        group = [x for x in results if tuple(x["epsilons"]) == eps]
        header, rows = comparison_rows(group)
        lines += _table(header, rows) + ["", f"Accuracy (fraction) on {group[0]['images']} test images per run; "
                                             f"epsilon in {group[0]['units']}; white-box.", ""]
    return lines


def privacy_lines(runs) -> list[str]:
    runs = [r for r in runs if r["kind"] == "privacy"]
    if not runs:
        return ["No privacy run folder (`experiments/run_mia.py`) was given. The study's rows:", "",
                *_table(["setting", "TP %", "FP %", "TN %", "FN %"],
                        [[k, *v] for k, v in STUDY_B_MIA.items()])]
    lines = []
    for r in runs:
        cfg = r["config"]
        header = ["setting", "test accuracy %", "member (training) accuracy %", "AUC (loss / entropy / LR)",
                  "loss attack TPR at 1 / 0.1 % FPR", "TP %", "FP %", "TN %", "FN %", "study's TP / FP / TN / FN %"]
        rows = []
        for name, s in r["privacy"]["settings"].items():
            pt = s.get("loss_attack_at_target_fpr") or {}
            auc = " / ".join(_num(s["auc"].get(a), "{:.3f}") for a in ("threshold", "threshold-entropy", "lr"))
            study = STUDY_B_MIA.get(name)
            if all(pt.get(k) is not None for k in ("tp", "fp", "tn", "fn")):  # rounded so they still sum to 100
                cells = [f"{v:.1f}" for v in round_to_total([pt[k] for k in ("tp", "fp", "tn", "fn")])]
            else:
                cells = [_num(pt.get(k), "{:.1f}") for k in ("tp", "fp", "tn", "fn")]
            low = s.get("loss_attack_tpr_at_low_fpr") or {}
            rows.append([name, _pct(s["test_accuracy"]), _pct(s.get("member_accuracy")), auc,
                         f"{_num(low.get('1%'), '{:.3f}')} / {_num(low.get('0.1%'), '{:.3f}')}", *cells,
                         " / ".join(f"{v:g}" for v in study) if study else "-"])
        shape = "x".join(map(str, r["resolved"].get("input_shape") or []))
        lines += [f"**{r['name']}**: model {cfg.model.name}{f' at {shape}' if shape else ''}, data "
                  f"{Path(cfg.data.path).name if cfg.data.path else 'demo (synthetic)'}, "
                  f"{r['images'].get('train', '?')} training images, "
                  + (f"the trained model of {Path(r['resolved']['model_dir']).name}, " if r["resolved"].get("model_dir")
                     else f"{cfg.training.epochs or 'default'} epochs, ")
                  + f"{cfg.audit.audit_size} members + {cfg.audit.audit_size} non-members; TP/FP/TN/FN of the "
                  f"loss-threshold attack at {100 * cfg.audit.target_fpr:g}% FPR, in % of all audited images.", "",
                  *_table(header, rows), ""]
    return lines


def recipes_lines(runs, profiles) -> list[str]:
    """The full recipes with wall-time estimates: GPU from FLOPs at :data:`ASSUMED_GPU_TFLOPS`,
    and this CPU from the fastest measured images/s of the same model and input."""
    share3 = STUDY_A["three_class_share"]
    a7 = STUDY_A["7class"]
    study_figures = {  # preset -> the study's accuracy for it
        "study-a": f"{_pct(a7['first_run_30_epochs']['test'])} % (first run; final {_pct(a7['accuracy'])} %)",
        "study-a-100": f"{_pct(a7['run_100_epochs']['test'])} %",
        "study-a-3class": f"{_pct(STUDY_A['3class']['accuracy'])} %",
        **{f"study-b{suffix}": f"{_pct(STUDY_B['rows'][aug][1])} %" for aug, suffix in (
            ("basic", ""), ("basic+randaugment", "-randaugment"), ("basic+mixup", "-mixup"),
            ("basic+randaugment+mixup", "-randaugment-mixup"))},
    }
    recipes = []
    for name in STUDY_RECIPES:
        preset = get_preset(name)
        config = preset_config(name, data=f"path/to/{preset.data}")
        spec = get_spec(config.model.name)
        if preset.data == "rafdb":
            n_train, n_val = STUDY_B["train_images"], STUDY_B["test_images"]
        else:
            n_train, n_val = STUDY_A["train_images"], STUDY_A["test_images"]
            if config.data.labels != "all":  # the 3-class subset
                n_train, n_val = round(n_train * share3), round(n_val * share3)
        recipes.append((preset.title, command(name), config.model.name, spec.input_shape_for(config.model.input_size),
                        config.adversarial.enabled, n_train, n_val, config.resolved_epochs,
                        study_figures.get(name, "-")))
    measured = {}
    for r in runs:
        ips = r.get("metrics", {}).get("training", {}).get("images_per_second")
        key = (r["config"].model.name, tuple(r["resolved"]["input_shape"]), r["config"].adversarial.enabled)
        if ips and not r["config"].training.jit_compile:
            measured[key] = max(measured.get(key, 0), ips)
    header = ["recipe", "command", "train / val images", "epochs", "TFLOP per run", "GPU estimate h",
              "this CPU estimate h", "study's test accuracy"]
    rows, macs_cache = [], {}
    for name, cmd, model, shape, nsl, n_train, n_val, epochs, study in recipes:
        if (model, shape) not in macs_cache:
            macs_cache[(model, shape)] = profiler.count_macs(build_model(model, shape, 7))
        macs = macs_cache[(model, shape)]
        per_epoch = n_train * macs * TRAIN_FLOPS_PER_MAC * (NSL_COST_FACTOR if nsl else 1) + n_val * macs * 2
        total = per_epoch * epochs
        ips = measured.get((model, shape, nsl))
        cpu = f"{(n_train + n_val / 3) * epochs / ips / 3600:.1f}" if ips else "not measured"
        rows.append([name, f"`{cmd}`", f"{n_train:,} / {n_val:,}", epochs, f"{total / 1e12:.0f}",
                     f"{total / (ASSUMED_GPU_TFLOPS * 1e12) / 3600:.2f}", cpu, study])
    return [
        "Exact commands for the studies' full-scale runs. **The wall times are estimates**, not measurements: "
        f"the GPU column is the run's floating-point work (MACs from `fer_keras.profiler`, x{TRAIN_FLOPS_PER_MAC} "
        f"per training image, x{NSL_COST_FACTOR} more with NSL, x2 per validation image) at an assumed sustained "
        f"{ASSUMED_GPU_TFLOPS:g} TFLOP/s (about a quarter of a Colab T4's fp32 peak; depthwise convolutions and small "
        "batches keep GhostFace further from peak, so read its figure as a lower bound); the CPU column scales the "
        "fastest training images/s measured above for the same model and input (validation counted at a third of a "
        "training image), on the machine of those runs. Study B's recipe stops early when validation loss stalls "
        "for 10 epochs. 3-class image counts are the 7-class counts times the study's share of those three classes "
        f"({share3:.1%}). GhostFace at 224x224 on FER2013 instead of RAF-DB: add `--data path/to/fer2013` (48x48 "
        "faces are resized; `--input-size 112` costs a quarter).", "", *_table(header, rows)]


def curves_lines(runs, out_dir: Path | None) -> list[str]:
    """Training curves and test confusion matrix of each full-data run whose figures were collected,
    as images linked relative to ``out_dir`` (the folder RESULTS.md is written to)."""
    lines = []
    for r in runs:
        if not (full_data(r) and r.get("metrics")) or r["speed"]:
            continue
        figures = [(what, Path(r["path"]) / FIGURES_DIR / name) for what, name in
                   (("training curves", CURVES_FIGURE), ("test confusion matrix", CONFUSION_FIGURE))]
        shown = [f"![{r['name']}: {what}]({os.path.relpath(path, out_dir) if out_dir else path})"
                 for what, path in figures if path.is_file()]
        if shown:
            lines += [f"**{r['name']}** ({r['config'].model.name}, {training_label(r)}; {split_label(r)}):", "",
                      " ".join(shown), ""]
    return ["## Training curves and confusion matrices (full-data runs)", "", *lines] if lines else []


def results_markdown(runs: list[dict], profiles: dict, out_dir: Path | None = None) -> str:
    """The whole ``RESULTS.md`` text for ``runs`` (from :func:`load_run`); figures are linked relative
    to ``out_dir``."""
    train = [r for r in runs if r["kind"] == "train"]
    text = ["# Results", "",
            "Generated by `python experiments/report.py` from the run folders under `docs/runs/` (each holds the "
            "run's `config.json`, `metrics.json`, `history.csv`, `classification_report.txt` and, when made, "
            "`timing.json` from `/usr/bin/time -v`). Do not edit by hand: re-run the script. The studies' figures "
            "are the studies' own, on their full data and epochs; ours are reduced-scale runs unless the scale "
            "columns say otherwise, so they are not a reproduction of the studies' accuracy.", "",
            "## Runs and scale", "",
            f"`fit s`: training + validation seconds of all epochs (metrics.json); `command wall s`: the whole "
            f"command (load, train, evaluate, figures, export). Train GFLOP/s = train images/s x MACs x "
            f"{TRAIN_FLOPS_PER_MAC} (x{NSL_COST_FACTOR} with NSL). `eval images`: validation / test; where each "
            "came from is the test table's `split` column (full-data runs validate on 10% of Training and test on "
            "PublicTest; the early reduced-scale runs sampled both from PublicTest, marked †).", "",
            *_table(*scale_rows(train, profiles)), "", *xla_lines(train, profiles), "",
            "GFLOP/s count the model's nominal multiply-adds (2 FLOPs each); oneDNN's convolution algorithms "
            "may do fewer, so this is model-FLOP throughput, not a hardware counter.", "",
            "## Test figures", "",
            "Loss figures are Keras/NSL `evaluate`'s (with NSL: loss = cross-entropy + adversarial loss). Study B's "
            "figures are on RAF-DB, ours on FER2013: set side by side for scale only.", "",
            *_table(*accuracy_rows(train)), "", *selection_warnings(train), "",
            "## Study B on FER2013: GhostFace and its augmentations", "", *study_b_lines(train, profiles), "",
            "## Per-class F1 (test)", "", *_table(*per_class_rows(train)), "",
            *curves_lines(train, out_dir),
            "## Model cost", "",
            "Parameters and MACs of the run's model built from its config (`fer_keras.profiler`); the study's budget "
            "beside it (Study B counts FLOPs as multiply-adds, at 224x224x3).", "",
            *_table(*cost_rows(train, profiles)), "",
            "## Robustness", "", *robustness_lines(train), "",
            "## Privacy (membership inference)", "", *privacy_lines(runs), "",
            "## Full recipes", "", *recipes_lines(train, profiles), ""]
    return "\n".join(text)


def shipped_runs() -> dict[str, str]:
    """Run folder name -> the pretrained model packaged from it (:mod:`fer_keras.pretrained` cards)."""
    return {Path(pretrained.card(name).get("source_run", "")).name: name for name in pretrained.available()}


def full_data_rows(runs):
    """One row per finished full-data training run: recipe (preset), epochs, wall time and CPU share,
    validation, test (with TTA) and de-duplicated test accuracy, and the TTA chosen on validation
    (``experiments/select_tta.py``) with its validation, test and de-duplicated test accuracy."""
    header = ["run", "model", "recipe", "split", "epochs", "wall h, CPU %", "last-epoch val %", "test % (TTA)",
              "test minus Training copies %", "held-out copies in training",
              "TTA chosen on val: val / test / de-dup test %"]
    shipped, rows = shipped_runs(), []
    for r in runs:
        m, t = r.get("metrics"), r.get("timing", {})
        if r["kind"] != "train" or not m or r["speed"] or not full_data(r):
            continue
        last, dedup = (r["history"][-1] if r["history"] else {}), m.get("test_deduplicated")
        test = (_pct(m["without_tta"]["accuracy"]) + f" ({_pct(m['accuracy'])})" if m.get("tta", "none") != "none"
                else _pct(m["accuracy"]))
        recipe = preset_flags(r["config"])
        wall = (f"{t['wall_seconds'] / 3600:.2f}, {t['cpu_percent']:.0f}"
                + (f" (of {t['cpu_percent_of'][4:]})" if t.get("cpu_percent_of") else "")) if t else "-"
        rows.append([r["name"] + marks(r) + (f" (shipped as `{shipped[r['name']]}`)" if r["name"] in shipped else ""),
                     r["config"].model.name, f"`{recipe}`" if recipe else training_label(r),
                     split_label(r), m["training"]["epochs"], wall, _pct(last.get("val_categorical_accuracy")), test,
                     _pct(dedup["accuracy"]) if dedup else "-",
                     "dropped" if r["config"].data.drop_test_duplicates else "kept", _tta_cell(r.get("tta_selection"))])
    return header, rows


def study_b_rows(runs, profiles):
    """Study B's accuracy table on full-data GhostFace runs (FER2013 standing in for RAF-DB), one row
    per run, the study's RAF-DB row for the same augmentation beside it."""
    header = ["run", "augmentation", "input", "params", "MACs (M)", "epochs (best)", "wall h, CPU %",
              "test loss", "test accuracy %", "macro F1 %", "Study B on RAF-DB: loss / accuracy %"]
    rows = []
    for r in runs:
        m, t, cfg = r.get("metrics"), r.get("timing", {}), r["config"]
        if (r["kind"] != "train" or not m or r["speed"] or not full_data(r) or cfg.model.name != STUDY_B_MODEL
                or cfg.adversarial.enabled or cfg.model.noise_layers or cfg.data.label_noise):
            continue
        plain = m.get("without_tta") or m  # Keras evaluate's loss is without TTA
        study = STUDY_B["rows"].get(cfg.augment.name)
        best = m.get("training", {}).get("best_epoch")  # 0-based
        p = profiles[r["name"]]
        rows.append([r["name"], cfg.augment.name, "x".join(map(str, r["resolved"]["input_shape"])),
                     f"{p['params']:,}", f"{p['macs'] / 1e6:.1f}",
                     f"{m['training']['epochs']}" + (f" ({best + 1})" if best is not None else ""),
                     f"{t['wall_seconds'] / 3600:.2f}, {t['cpu_percent']:.0f}" if t else "-",
                     _num(m.get("evaluate", {}).get("loss")), _pct(plain.get("accuracy")), _pct(plain.get("macro_f1")),
                     f"{study[0]:.3f} / {_pct(study[1])}" if study else "-"])
    return header, rows


def study_b_lines(runs, profiles) -> list[str]:
    header, rows = study_b_rows(runs, profiles)
    if not rows:
        return ["No full-data GhostFace run yet (`python experiments/run_ghostface.py --preset study-b-fer2013 "
                "--data path/to/fer2013`)."]
    return ["RAF-DB's images cannot be had here, so **FER2013 stands in for RAF-DB**: validation = a seeded, "
            "stratified 10 % of Training, test = PublicTest (evaluated once), training copies of validation/test "
            "faces dropped; the study's RAF-DB figures (224x224x3, SGD, 100 epochs) are set beside ours for "
            "scale only, on another data set. Accuracy and loss without test-time augmentation; the best "
            "validation-loss epoch's weights (in brackets) are the ones tested.", "", *_table(header, rows)]


def _tta_cell(selection: dict | None) -> str:
    if not selection:
        return "-"
    chosen, test = selection["selected"], selection.get("test", {})
    dedup = test.get("deduplicated")
    return (f"{chosen}: {_pct(selection['modes'][chosen]['accuracy'])} / {_pct(test.get('accuracy'))}"
            + (f" / {_pct(dedup['accuracy'])}" if dedup else ""))


def summary_markdown(runs: list[dict], results_link: str = "docs/RESULTS.md") -> str:
    """The short block written into README between the results markers."""
    header = ["run", "model, training", "data, scale", "test accuracy %", "majority-class accuracy %", "macro F1 %",
              "study's accuracy %"]
    rows = []
    for r in runs:
        if r["kind"] != "train" or not r.get("metrics") or r["speed"]:
            continue
        m, res = r["metrics"], r["resolved"]
        which, acc, _ = study_figure(r)
        rows.append([r["name"] + marks(r), f"{r['config'].model.name}, {training_label(r)}",
                     f"{data_label(r)}, {m['training']['epochs']} epochs, {res['images']['train']:,} train / "
                     f"{m['images']:,} test images", _pct(m["accuracy"]), _pct(majority_accuracy(m)), _pct(m["macro_f1"]),
                     f"{_pct(acc)} ({which})" if acc is not None else "-"])
    shown = [r for r in runs if r["kind"] == "train" and not r["speed"] and r.get("metrics")]
    data = sorted({Path(r["config"].data.path).name if r["config"].data.path else "the demo set" for r in shown})
    cores = sorted({str(r["environment"].get("cpus", "?")) for r in shown})
    full = [r for r in shown if full_data(r)]
    scale = (f"Reduced-scale runs (a few epochs on a sample of {', '.join(data)}; {', '.join(cores)} CPU cores), "
             "not reproductions of the studies' accuracy; the studies' figures are theirs, at full scale."
             if not full else
             f"{len(full)} full-data run(s) (marked (full): all of the data set's training images less the "
             f"validation share, every test image) and {len(shown) - len(full)} reduced-scale run(s) (a sample, a "
             f"few epochs: not reproductions); {', '.join(cores)} CPU cores. The studies' figures are theirs.")
    return "\n".join(["## Results", "",
                      f"{scale} Generated by "
                      f"`experiments/report.py`; scale, per-class F1, cost, robustness, XLA and the full recipes in "
                      f"[{results_link}]({results_link}).", "",
                      *_table(header, rows), "",
                      "† validation used the test images, so these figures are optimistic (see "
                      f"[{results_link}]({results_link}))."
                      + (" ‡ the initial weights (`--init-from`) trained on held-out images, or that could not be "
                         "checked." if any(held_out_seen(r) for r in shown) else ""), *_full_data_block(runs)])


def _full_data_block(runs) -> list[str]:
    header, rows = full_data_rows(runs)
    if not rows:
        return []
    return ["", "**Full-data training runs** (test evaluated once, at the end; "
            "wall time of all the run's commands, CPU share = CPU seconds / wall seconds; `kept`: trained on the "
            "Training copies of validation/test images, so only the de-duplicated test figure is clean):", "",
            *_table(header, rows)]


def replace_between_markers(text: str, block: str, start: str = README_START, end: str = README_END) -> str:
    """``text`` with everything between ``start`` and ``end`` replaced by ``block`` (markers appended
    at the end when absent)."""
    if start not in text or end not in text:
        return text.rstrip("\n") + f"\n\n{start}\n{block}\n{end}\n"
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}"


def write_report(patterns=DEFAULT_PATTERNS, out: str | Path = "docs/RESULTS.md",
                 readme: str | Path | None = "README.md", latency_runs: int = 0) -> dict[str, Path]:
    """Read the run folders matching ``patterns``; write ``out`` and README's results block
    (atomically). ``latency_runs`` > 0 measures batch-1 latency (recorded in each ``profile.json``)."""
    runs = find_runs(patterns)
    if not runs:
        raise FileNotFoundError(f"no run folder (with {CONFIG_FILE}) matches {', '.join(map(str, patterns))}")
    profiles = {r["name"]: model_profile(r, latency_runs) for r in runs if r["kind"] == "train"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"results": atomic_write_text(out, results_markdown(runs, profiles, out.parent))}
    if readme is not None:
        readme = Path(readme)
        link = Path(out).resolve().relative_to(readme.resolve().parent).as_posix() \
            if Path(out).resolve().is_relative_to(readme.resolve().parent) else str(out)
        paths["readme"] = atomic_write_text(readme, replace_between_markers(
            readme.read_text(), summary_markdown(runs, link)))
    return paths
