"""What the report says of a run (labels, splits, marks) and the rows of its tables.

Units: accuracy and F1 as fractions in the files, shown in %; times in seconds unless a column
says otherwise; MACs = multiply-accumulates of one image (batch 1, see
:data:`fer_keras.profiler.MAC_CONVENTION`); GFLOP/s = 1e9 floating-point operations per second,
2 FLOPs per MAC.
"""
from __future__ import annotations

import json
from pathlib import Path

from fer_keras import pretrained
from fer_keras.config import view_count
from fer_keras.data.labels import CLASS_NAMES
from fer_keras.markdown import num as _num
from fer_keras.markdown import pct as _pct
from fer_keras.studies.published import STUDY_A, STUDY_A_MODELS, STUDY_B, STUDY_B_MODEL, STUDY_BUDGETS
from fer_keras.training.presets import preset_flags

#: Training cost of one image as a multiple of its forward MACs: forward + backward (2x) = 3x,
#: times 2 FLOPs per MAC = 6. NSL adds a gradient w.r.t. the input and a second forward/backward
#: on the perturbed batch: counted as 2x the plain cost.
TRAIN_FLOPS_PER_MAC = 6
NSL_COST_FACTOR = 2


def training_label(run: dict) -> str:
    cfg = run["config"]
    adv, opt = cfg.adversarial, cfg.optimizer
    text = (f"NSL x{adv.multiplier:g} step {adv.step:g}" + (f" {adv.grad_norm}" if adv.grad_norm != "l2" else "")
            if adv.enabled else "plain")
    if cfg.augment.name != "none":
        text += f", {cfg.augment.name}"
    text += f", {opt.name.upper() if opt.name == 'sgd' else opt.name.capitalize()} {opt.lr:g}"
    if opt.nesterov:
        text += " Nesterov"
    if opt.ema:
        text += f", weight EMA {opt.ema:g}"
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


def _twin_key(run: dict, *fields: str) -> str:
    """The run's config without its output folder and ``fields`` (``"section.field"`` or a top-level
    ``"field"``), the data path reduced to its name: runs with equal keys differ only there."""
    values = run["config"].to_dict()
    values.pop("out")
    if (values.get("data") or {}).get("path"):  # the same data set, however its path was written
        values["data"]["path"] = Path(values["data"]["path"]).name
    for field in fields:
        section, _, name = field.rpartition(".")
        (values[section] if section else values).pop(name)
    return json.dumps(values, sort_keys=True)


def precision_rows(runs):
    """Pairs of finished runs that differ only in ``--precision`` (float32 and a mixed one): training
    images/s, validation accuracy after each epoch, test accuracy, wall time and CPU share of each;
    float32 runs of the same recipe with another seed follow, for the seed-to-seed spread."""
    header = ["run", "precision", "seed", "epochs", "training images/s (ratio)",
              "validation accuracy % after each epoch", "test accuracy %", "wall s, CPU %"]
    rows = []
    done = [r for r in runs if r.get("metrics") and r["kind"] == "train"]
    for mixed in (r for r in done if r["config"].training.precision != "float32"):
        for base in (r for r in done if r["config"].training.precision == "float32"
                     and _twin_key(r, "training.precision") == _twin_key(mixed, "training.precision")):
            ref = base["metrics"]["training"]["images_per_second"]
            seeds = [r for r in done if r is not base and r["config"].training.precision == "float32"
                     and _twin_key(r, "seed") == _twin_key(base, "seed")]
            for r in (base, mixed, *seeds):
                t = r.get("timing", {})
                ips = r["metrics"]["training"]["images_per_second"]
                rows.append([r["name"], r["config"].training.precision, r["config"].seed,
                             r["metrics"]["training"]["epochs"],
                             f"{ips:.1f} ({ips / ref:.2f}x)",
                             " / ".join(_pct(h.get("val_categorical_accuracy")) for h in r["history"]),
                             _pct((r["metrics"].get("without_tta") or r["metrics"])["accuracy"]),
                             f"{t['wall_seconds']:.0f}, {t['cpu_percent']:.0f}" if t else "-"])
    return header, rows


#: What an NSL run changes from its plain twin.
NSL_FIELDS = ("adversarial.enabled", "adversarial.multiplier", "adversarial.step", "adversarial.grad_norm")


def nsl_twin_groups(runs) -> list[list[dict]]:
    """Finished full-data NSL runs each with the plain runs that differ from it only in NSL
    (:data:`NSL_FIELDS`): ``[[plain..., nsl], ...]``."""
    done = [r for r in runs if r.get("metrics") and r["kind"] == "train" and not r["speed"] and full_data(r)]
    groups = []
    for nsl in (r for r in done if r["config"].adversarial.enabled):
        key = _twin_key(nsl, *NSL_FIELDS)
        plain = [r for r in done if not r["config"].adversarial.enabled and _twin_key(r, *NSL_FIELDS) == key]
        if plain:
            groups.append([*plain, nsl])
    return groups


def nsl_twin_rows(group: list[dict]):
    """One table for an NSL run and its plain twin(s): cost, validation at the tested epoch, test
    accuracy without TTA, test cross-entropy, and accuracy under FGSM and PGD at each epsilon of the
    NSL run's robustness.json (the same epsilons for every row, '-' where a run lacks them)."""
    robustness = group[-1].get("robustness", {})
    attacked = [e for e in robustness.get("epsilons", []) if e > 0]
    pixels = "[0, 1]" in robustness.get("units", "")  # pixel units: say 1/255 rather than 0.00392157
    header = ["run", "training", "epochs (tested)", "wall h, CPU %", "validation % (tested epoch)",
              "test % (no TTA)", "test cross-entropy",
              *[f"{a} {f'{e * 255:.0f}/255' if pixels else f'{e:g}'} %" for a in ("FGSM", "PGD") for e in attacked]]
    rows = []
    for r in group:
        m, t = r["metrics"], r.get("timing", {})
        best = m.get("training", {}).get("best_epoch")
        evaluate = m.get("evaluate", {})
        rows.append([r["name"], training_label(r).split(", ")[0],
                     f"{m['training']['epochs']}" + (f" ({best + 1})" if best is not None else ""),
                     f"{t['wall_seconds'] / 3600:.2f}, {t['cpu_percent']:.0f}" if t else "-",
                     _pct(_best_row(r).get("val_categorical_accuracy")),
                     _pct((m.get("without_tta") or m)["accuracy"]),
                     _num(evaluate.get("categorical_crossentropy", evaluate.get("loss"))),
                     *[_attacked(r, a, e) for a in ("fgsm", "pgd") for e in attacked]])
    return header, rows


def xla_lines(runs, profiles) -> list[str]:
    """One line per pair of runs that differ only in ``jit_compile``: images/s and GFLOP/s of each."""
    def key(r):
        return _twin_key(r, "training.jit_compile")

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
    not be checked (``resolved.init_from``, :func:`fer_keras.training.held_out.held_out_seen_by`)?"""
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

#: The recipe ablation's base preset (:mod:`fer_keras.training.presets`): its rows are the runs made from it.
ABLATION_PRESET = "ablation-fer2013"
#: A change is kept when it adds at least this many validation points over the base (docs/findings.md).
ABLATION_KEEP_POINTS = 0.5


def attack_accuracy(run: dict, attack: str, epsilon: float) -> float | None:
    """Accuracy (fraction) under ``attack`` at ``epsilon`` (input units) from the run's robustness.json."""
    rob = run.get("robustness")
    if not rob or attack not in rob:
        return None
    at = [i for i, e in enumerate(rob["epsilons"]) if abs(e - epsilon) < 1e-6]
    return rob[attack][at[0]] if at else None


def _attacked(run: dict, attack: str, epsilon: float) -> str:
    """Accuracy % under ``attack`` at ``epsilon`` from the run's robustness.json, or '-'."""
    return _pct(attack_accuracy(run, attack, epsilon))


def ablation_runs(runs) -> list[tuple[str, dict]]:
    """The recipe ablation's runs: ``(change, run)`` for each finished full-data run of
    :data:`ABLATION_PRESET` plus at most one change (its added flags; ``"base"`` for none), base first."""
    prefix, found = f"--preset {ABLATION_PRESET}", []
    for r in runs:
        if r["kind"] != "train" or not r.get("metrics") or r["speed"] or not full_data(r):
            continue
        flags = preset_flags(r["config"]) or ""
        if (flags != prefix and not flags.startswith(prefix + " ")) or "--model" in flags or "--epochs" in flags:
            continue  # another recipe, or another model or schedule length: not one choice of the ablation
        found.append((flags[len(prefix):].strip() or "base", r))
    return sorted(found, key=lambda item: item[0] != "base")


def last_validation(run: dict) -> float | None:
    """The run's last-epoch validation accuracy (fraction), or None without a history."""
    return (run["history"][-1] if run["history"] else {}).get("val_categorical_accuracy")


def ablation_rows(runs):
    """The recipe ablation (:func:`ablation_runs`), each with validation (last epoch: the recipe keeps no
    best epoch), PublicTest without TTA, the de-duplicated test, FGSM at 1/255 and 2/255
    (robustness.json) and the run's cost."""
    header = ["change from the base", "run", "epochs", "wall h, CPU %", "validation % (last epoch)",
              "test % (no TTA)", "test minus Training copies %", "FGSM 1/255 %", "FGSM 2/255 %"]
    rows = []
    for change, r in ablation_runs(runs):
        m, t = r["metrics"], r.get("timing", {})
        plain, dedup = m.get("without_tta") or m, m.get("test_deduplicated")
        rows.append([change if change == "base" else f"`{change}`", r["name"], m["training"]["epochs"],
                     f"{t['wall_seconds'] / 3600:.2f}, {t['cpu_percent']:.0f}" if t else "-",
                     _pct(last_validation(r)), _pct(plain["accuracy"]), _pct(dedup["accuracy"]) if dedup else "-",
                     _attacked(r, "fgsm", 1 / 255), _attacked(r, "fgsm", 2 / 255)])
    return header, rows


def distillation_rows(runs, profiles):
    """Each teacher ensemble whose run folder is among ``runs`` (once), then the distilled runs
    (``--teacher``) it taught; students whose teacher is not among ``runs`` after them. Columns:
    validation (the student's tested epoch; the ensemble's weighted average), test,
    test minus Training copies, models per face and multiply-adds per face (the ensemble's: its
    members', summed, from their training runs' profiles where known, times its TTA views; the
    student's: one view, the cost of its figure without TTA). A figure measured with
    test-time augmentation says which in brackets; the student's test without TTA comes first."""
    header = ["model", "what", "validation %", "test %", "test minus Training copies %",
              "models per face", "multiply-adds per face (M)"]
    by_name = {r["name"]: r for r in runs}
    with_tta = lambda value, tta: _pct(value) + ("" if tta in (None, "none") else f" ({tta} TTA)")  # noqa: E731
    taught: dict[str, list[dict]] = {}
    for student in (r for r in runs if r["kind"] == "train" and r.get("metrics") and not r["speed"]
                    and r["config"].distil.teacher):
        taught.setdefault(Path(student["config"].distil.teacher).name, []).append(student)
    rows = []
    for teacher_name, students in sorted(taught.items(), key=lambda item: item[0] not in by_name):
        teacher = by_name.get(teacher_name)
        if teacher is not None and teacher["kind"] == "ensemble" and teacher.get("metrics"):
            e, tta = teacher["metrics"]["results"]["ensemble"], teacher["metrics"].get("tta")
            members = teacher["metrics"]["weights"]
            recorded = teacher["resolved"].get("members", {})
            runs_of = [recorded.get(m, {}).get("source_run") or (pretrained.identity(m)["source_run"]
                       if pretrained.is_name(m) else Path(m).name) for m in members]
            macs, n_views = [profiles.get(name, {}).get("macs") for name in runs_of], view_count(tta or "none")
            cost = f"{sum(macs) * n_views / 1e6:.1f}" + (f" ({n_views} views)" if n_views > 1 else "")
            rows.append([teacher["name"], f"teacher: ensemble of {len(members)}", with_tta(e["val"]["accuracy"], tta),
                         with_tta(e["test"]["accuracy"], tta), with_tta(e["test_deduplicated"]["accuracy"], tta),
                         len(members), cost if None not in macs else "-"])
        for student in students:
            m, p, d = student["metrics"], profiles.get(student["name"], {}), student["config"].distil
            dedup, tta = m.get("test_deduplicated"), m.get("tta")
            test = _pct((m.get("without_tta") or m)["accuracy"]) + (
                f"; {with_tta(m['accuracy'], tta)}" if m.get("without_tta") else "")
            rows.append([student["name"], f"student ({student['config'].model.name}, T {d.temperature:g}, "
                         f"label weight {d.label_weight:g})", _pct(_best_row(student).get("val_categorical_accuracy")),
                         test, with_tta(dedup["accuracy"], tta) if dedup else "-", 1,
                         f"{p['macs'] / 1e6:.1f}" if p.get("macs") else "-"])
    return header, rows


def _best_row(run: dict) -> dict:
    """The history row of the epoch whose weights were tested (the best one, else the last)."""
    best = run.get("metrics", {}).get("training", {}).get("best_epoch")
    rows = run["history"]
    return next((h for h in rows if int(h["epoch"]) == best), rows[-1] if rows else {}) if best is not None else (
        rows[-1] if rows else {})


def study_b_rows(runs, profiles):
    """Study B's accuracy table on full-data GhostFace runs (FER2013 standing in for RAF-DB), one row
    per run, the study's RAF-DB row for the same augmentation beside it."""
    header = ["run", "augmentation", "input", "params", "MACs (M)", "epochs (best)", "wall h, CPU %",
              "validation accuracy % (best epoch)", "test loss", "test accuracy %", "macro F1 %",
              "Study B on RAF-DB: loss / accuracy %"]
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
                     _pct(_best_row(r).get("val_categorical_accuracy")),
                     _num(m.get("evaluate", {}).get("loss")), _pct(plain.get("accuracy")), _pct(plain.get("macro_f1")),
                     f"{study[0]:.3f} / {_pct(study[1])}" if study else "-"])
    return header, rows

def _tta_cell(selection: dict | None) -> str:
    if not selection:
        return "-"
    chosen, test = selection["selected"], selection.get("test", {})
    dedup = test.get("deduplicated")
    return (f"{chosen}: {_pct(selection['modes'][chosen]['accuracy'])} / {_pct(test.get('accuracy'))}"
            + (f" / {_pct(dedup['accuracy'])}" if dedup else ""))
