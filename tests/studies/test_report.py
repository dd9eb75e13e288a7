"""The results report: run folders from a real tiny demo run -> RESULTS.md and README's block."""
import json
import shutil

import pytest

from fer_keras.config import ExperimentConfig
from fer_keras.errors import ConfigError
from fer_keras.runs import read_history
from fer_keras.studies.report import README_END, README_START, collect_run, find_runs, parse_time_log, write_report
from fer_keras.studies.report.render import replace_between_markers
from fer_keras.training.experiment import run_experiment

TIME_LOG = """some TensorFlow noise on stderr
\tCommand being timed: "python experiments/run_nsl.py --no-adversarial --epochs 1"
\tUser time (seconds): 80.50
\tSystem time (seconds): 4.25
\tPercent of CPU this job got: 171%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5
\tMaximum resident set size (kbytes): 2097152
\tExit status: 0
"""


def test_parse_time_log():
    t = parse_time_log(TIME_LOG)
    assert t["command"] == "python experiments/run_nsl.py --no-adversarial --epochs 1"
    assert t["wall_seconds"] == 3723.5 and t["cpu_percent"] == 171 and t["max_rss_mb"] == 2048
    with pytest.raises(ValueError):
        parse_time_log("no report here")


def test_markers_appended_then_only_the_block_replaced():
    once = replace_between_markers("# Title\n\ntext\n", "block 1")
    assert once.endswith(f"{README_START}\nblock 1\n{README_END}\n") and once.startswith("# Title\n\ntext\n")
    twice = replace_between_markers(once + "after\n", "block 2")
    assert "block 1" not in twice and twice.endswith(f"{README_START}\nblock 2\n{README_END}\nafter\n")


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """docs/runs/ with a real plain demo run (collected, with timing), a robustness.json in the
    schema of fer_keras.studies.robustness, and a privacy run's config + summary in run_mia's schema."""
    tmp = tmp_path_factory.mktemp("report")
    run = run_experiment(ExperimentConfig.from_dict({"demo_images_per_class": 6, "epochs": 1, "batch_size": 16,
                                                     "adversarial": False, "out": str(tmp / "runs")}),
                         log=lambda *a: None).path
    (tmp / "time.log").write_text(TIME_LOG)
    dest = collect_run(run, tmp / "docs" / "runs", tmp / "time.log")
    (dest / "robustness.json").write_text(json.dumps({
        "run": str(run), "label": "dcnn plain", "model": "dcnn", "adversarial": False, "multiplier": None,
        "step": None, "augment": "basic", "images": 29, "clean": 0.25, "epsilons": [0.0, 2 / 255],
        "fgsm": [0.25, 0.125], "pgd": [0.25, 0.0625], "units": "input units, [0, 1]", "settings": {}}))
    mia = tmp / "docs" / "runs" / "20990101-000000-mia-small_cnn"
    mia.mkdir()
    (mia / "config.json").write_text(json.dumps({"config": {"model": "small_cnn", "data": None, "audit_size": 50,
                                                            "target_fpr": 0.1}, "images": {"train": 29}}))
    (mia / "summary.json").write_text(json.dumps({"settings": {"noise1+basic": {
        "test_accuracy": 0.5, "epsilon": None, "auc": {"threshold": 0.61, "threshold-entropy": 0.6, "lr": 0.55},
        "loss_attack_at_target_fpr": {"tp": 12.5, "fp": 5.0, "tn": 45.0, "fn": 37.5}}}, "vs_none_loss_attack": {}}))
    return tmp, run, dest


def test_collect_copies_results_not_weights(docs):
    _, run, dest = docs
    names = {p.name for p in dest.iterdir()}
    assert {"config.json", "metrics.json", "history.csv", "classification_report.txt", "timing.json"} <= names
    assert not {"model", "checkpoints"} & names  # no weights
    assert {p.name for p in (dest / "figures").iterdir()} == {"training_curves.png", "confusion_matrix.png"}
    timing = json.loads((dest / "timing.json").read_text())
    assert timing["wall_seconds"] == 3723.5 and timing["cpu_model"]


def test_report_figures_come_from_the_run_files(docs):
    tmp, run, dest = docs
    readme = tmp / "README.md"
    readme.write_text("# fer_keras\n\nintro\n")
    shutil.copytree(dest, tmp / "docs" / "runs" / "speed" / "probe-run")  # a speed probe: scale table only
    patterns = [tmp / "docs" / "runs" / "*", tmp / "docs" / "runs" / "speed" / "*"]
    paths = write_report(patterns, tmp / "docs" / "RESULTS.md", readme, latency_runs=2)
    text = paths["results"].read_text()
    metrics = json.loads((dest / "metrics.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith(f"| {run.name} | val PublicTest"))
    assert f"| {100 * metrics['accuracy']:.2f} | {100 * metrics['test_deduplicated']['accuracy']:.2f} (" in row
    assert " †" not in row  # demo data: validation PublicTest, test PrivateTest, so test stayed out of selection
    assert f"{metrics['evaluate']['loss']:.4f}" in row and f"{100 * metrics['macro_f1']:.2f}" in row
    assert "70.49" in row  # Study A's accuracy beside ours, as the study's
    assert "3724" in text  # command wall time from timing.json
    assert "| probe-run (speed probe) |" in text and "| probe-run |" not in text
    assert "| FGSM | 0.2500 | 0.2500 | 0.1250 |" in text
    assert ("| noise1+basic | 50.00 | - | 0.610 / 0.600 / 0.550 | - / - | 12.5 | 5.0 | 45.0 | 37.5 | 5.9 / 4.8 / 45 / 44 |"
            in text)
    assert "2,395,591" in text and "python experiments/run_ghostface.py --data path/to/rafdb --augment basic+mixup" in text
    profile = json.loads((dest / "profile.json").read_text())  # latency recorded for the next report
    assert profile["params"] == 2_395_591 and profile["latency_ms"] > 0
    block = readme.read_text()
    assert block.startswith("# fer_keras\n\nintro\n") and "(docs/RESULTS.md)" in block
    assert "No full-data run yet." in block and run.name not in block  # README shows full-data runs only
    assert (tmp / "docs" / "figures" / "accuracy_vs_cost.png").is_file()  # the report's own figure
    write_report(patterns, tmp / "docs" / "RESULTS.md", readme)
    assert readme.read_text() == block and paths["results"].read_text() == text  # stable: nothing re-measured


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report([tmp_path / "none*"], tmp_path / "R.md", None)
    assert find_runs([tmp_path / "*"]) == []


def test_xla_pairs_are_compared():
    from fer_keras.studies.report.tables import xla_lines

    def run(name, jit, ips):
        config = ExperimentConfig.from_dict({"model": "dcnn", "adversarial": False, "jit_compile": jit,
                                             "deterministic": False, "limit": 10})
        return {"name": name, "config": config, "metrics": {"training": {"images_per_second": ips}}}

    runs = [run("a", False, 60.0), run("b", True, 12.0)]
    lines = xla_lines(runs, {"a": {"macs": 495.6e6}, "b": {"macs": 495.6e6}})
    assert lines[0] == ("* XLA (`--jit`, b): 12.0 training images/s = 35.7 GFLOP/s; default (a): 60.0 images/s "
                        "= 178.4 GFLOP/s; XLA/default = 0.20.")


def test_a_resumed_run_sums_its_commands_timings(tmp_path):
    from fer_keras.studies.report.collect import combine_timings

    first = parse_time_log(TIME_LOG)  # 3723.5 s wall at 171 %
    second = {**first, "wall_seconds": 276.5, "user_seconds": 400.0, "system_seconds": 0.0, "max_rss_mb": 4096.0}
    both = combine_timings([first, second])
    assert both["wall_seconds"] == 4000.0 and both["max_rss_mb"] == 4096.0 and len(both["invocations"]) == 2
    assert both["cpu_percent"] == round(100 * (80.5 + 4.25 + 400.0) / 4000.0)
    assert combine_timings([first]) == first


def test_an_untimed_part_adds_its_history_wall_time_but_not_to_the_cpu_share(docs, tmp_path):
    from fer_keras.studies.report.collect import combine_timings, untimed_epochs

    _, run, _ = docs
    lost = untimed_epochs(run, "1-1")  # the demo run's one epoch, as if its time report were lost
    epoch_seconds = read_history(run / "history.csv")[0]["seconds"]
    assert lost["wall_seconds"] == round(epoch_seconds, 1) and lost["user_seconds"] is None
    timed = parse_time_log(TIME_LOG)  # 3723.5 s wall, 84.75 s CPU
    both = combine_timings([lost, timed])
    assert both["wall_seconds"] == round(lost["wall_seconds"] + 3723.5, 1)
    assert both["cpu_percent"] == round(100 * 84.75 / 3723.5) and both["max_rss_mb"] == timed["max_rss_mb"]
    assert both["cpu_percent_of"] == f"the timed 3724 s of {round(both['wall_seconds'])} s"
    (tmp_path / "t.log").write_text(TIME_LOG)
    dest = collect_run(run, tmp_path, ["untimed:1-1", tmp_path / "t.log"])
    assert json.loads((dest / "timing.json").read_text())["wall_seconds"] == both["wall_seconds"]
    with pytest.raises(ConfigError, match="lacks some of them"):
        untimed_epochs(run, "1-5")
    with pytest.raises(ConfigError, match="write FIRST-LAST"):
        untimed_epochs(run, "one")


def test_full_data_runs_name_their_preset_and_the_shipped_model():
    from pathlib import Path

    from fer_keras import pretrained
    from fer_keras.studies.report.tables import full_data_rows

    docs = Path(__file__).resolve().parents[2] / "docs" / "runs"
    header, rows = full_data_rows(find_runs([docs / "*"]))
    by_run = {row[0].split(" ")[0]: dict(zip(header, row)) for row in rows}
    source = Path(pretrained.card("fer2013-dcnn")["source_run"]).name
    light = Path(pretrained.card("fer2013-ghostface")["source_run"]).name
    assert sorted(row[0] for row in rows if "shipped as" in row[0]) == sorted(
        [f"{source} (shipped as `fer2013-dcnn`)", f"{light} (shipped as `fer2013-ghostface`)"])
    assert by_run[light]["recipe"] == "`--preset study-b-fer2013-randaugment`"
    assert by_run[source]["recipe"].startswith("`--preset ") and by_run[source]["held-out copies in training"] == "dropped"
    plain = by_run["20261201-104712-dcnn-plain"]
    assert plain["recipe"] == "`--preset study-a-plain`" and plain["held-out copies in training"] == "kept"


def test_runs_whose_initial_weights_saw_held_out_images_are_marked():
    from fer_keras.studies.report.tables import marks, selection_warnings

    def run(name, init=None):
        return {"name": name, "speed": False, "metrics": {"accuracy": 0.5},
                "resolved": {"splits": {"test_in_selection": False}, **({"init_from": init} if init else {})}}

    clean = run("clean", {"source": "a", "val_images_it_trained_on": 0, "test_images_it_trained_on": 0})
    leaked = run("leaked", {"source": "b", "val_images_it_trained_on": 0, "test_images_it_trained_on": 280})
    unknown = run("unknown", {"source": "c.keras", "val_images_it_trained_on": None,
                              "test_images_it_trained_on": None, "not_checked": "a model file without its run's config"})
    assert [marks(r) for r in (run("scratch"), clean, leaked, unknown)] == ["", "", " ‡", " ‡"]
    [line] = selection_warnings([run("scratch"), clean, leaked, unknown])
    assert line.startswith("‡ **Initial weights (`--init-from`) trained on held-out images")
    assert "leaked (0 validation, 280 test images), unknown (not checked: a model file without its run's config)" in line
    assert selection_warnings([run("scratch"), clean]) == []


def test_study_b_rows_show_full_data_ghostface_runs_beside_the_study():
    from fer_keras.studies.report.render import study_b_lines

    def run(name, augment, limit=None, adversarial=False):
        config = ExperimentConfig.from_dict({"model": "ghostface", "adversarial": adversarial, "augment": augment,
                                             "data": "path/to/fer2013", "limit": limit})
        metrics = {"evaluate": {"loss": 1.05}, "accuracy": 0.62, "macro_f1": 0.6, "tta": "flip",
                   "without_tta": {"accuracy": 0.61, "macro_f1": 0.59}, "training": {"epochs": 30, "best_epoch": 28}}
        return {"name": name, "kind": "train", "speed": False, "config": config, "metrics": metrics,
                "resolved": {"input_shape": [112, 112, 3]}, "timing": {"wall_seconds": 5400, "cpu_percent": 180},
                "history": [{"epoch": e, "val_categorical_accuracy": 0.5 + e / 100} for e in range(30)]}

    runs = [run("b", "basic+mixup"), run("reduced", "basic", limit=100), run("nsl", "basic", adversarial=True)]
    lines = study_b_lines(runs, {"b": {"params": 1_292_159, "macs": 38.7e6}})
    assert "FER2013 stands in for RAF-DB" in lines[0]
    assert lines[-1] == ("| b | basic+mixup | 112x112x3 | 1,292,159 | 38.7 | 30 (29) | 1.50, 180 | 78.00 | 1.0500 "
                         "| 61.00 | 59.00 | 0.655 / 77.60 |") and len(lines) == 5  # reduced and NSL runs left out


def test_precision_pairs_are_the_runs_that_differ_only_in_precision():
    from fer_keras.config import ExperimentConfig
    from fer_keras.studies.report.tables import precision_rows

    def run(name, precision, ips, val, lr=1e-3, seed=42):
        config = ExperimentConfig(data=None).replace(training__precision=precision, optimizer__lr=lr, seed=seed)
        return {"name": name, "kind": "train", "config": config, "timing": {"wall_seconds": 600, "cpu_percent": 180},
                "metrics": {"accuracy": 0.6, "training": {"epochs": 2, "images_per_second": ips}},
                "history": [{"val_categorical_accuracy": v} for v in val]}

    runs = [run("a", "float32", 50.0, [0.5, 0.6]), run("b", "mixed_bfloat16", 90.0, [0.51, 0.59]),
            run("c", "mixed_bfloat16", 80.0, [0.4, 0.5], lr=5e-4),  # another learning rate: no twin
            run("d", "float32", 48.0, [0.49, 0.61], seed=43)]  # another seed: the spread, after the pair
    header, rows = precision_rows(runs)
    assert [r[0] for r in rows] == ["a", "b", "d"]
    table = {r[0]: dict(zip(header, r)) for r in rows}
    assert table["b"]["training images/s (ratio)"] == "90.0 (1.80x)"
    assert table["b"]["validation accuracy % after each epoch"] == "51.00 / 59.00"


def test_ablation_rows_are_the_runs_of_the_ablation_preset_each_with_its_one_change():
    from fer_keras.studies.report.render import ablation_lines
    from fer_keras.training.presets import preset_config

    def run(name, **changes):
        config = preset_config("ablation-fer2013", "path/to/fer2013").replace(**changes)
        return {"name": name, "kind": "train", "speed": False, "config": config,
                "metrics": {"accuracy": 0.64, "test_deduplicated": {"accuracy": 0.63}, "training": {"epochs": 20}},
                "timing": {"wall_seconds": 3600, "cpu_percent": 180},
                "history": [{"val_categorical_accuracy": 0.65}],
                "robustness": {"epsilons": [0.0, 1 / 255, 2 / 255], "fgsm": [0.64, 0.31, 0.12]}}

    other = run("other", model__name="vgg")
    runs = [run("erase", augment__name="basic+flip+erase"), run("base"), other, run("longer", training__epochs=30),
            run("sgd", optimizer__name="sgd", optimizer__lr=0.01, optimizer__nesterov=True)]
    lines = ablation_lines(runs)
    rows = [line for line in lines if line.startswith("| ") and "run |" not in line and "---" not in line]
    assert rows[0] == "| base | base | 20 | 1.00, 180 | 65.00 | 64.00 | 63.00 | 31.00 | 12.00 |"
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| `--augment basic+flip+erase`",
                                                        "| `--optimizer sgd --lr 0.01 --nesterov`"]
    assert ablation_lines([other]) == []
    assert not any("recipe_ablation.png" in line for line in lines)  # no figure without an output folder


def test_ablation_figure_shows_each_changes_validation_gain_and_fgsm_accuracy(tmp_path, monkeypatch):
    from fer_keras import plots
    from fer_keras.studies.report.render import FIGURES, ablation_lines
    from fer_keras.training.presets import preset_config

    def run(name, val, fgsm, **changes):
        config = preset_config("ablation-fer2013", "path/to/fer2013").replace(**changes)
        return {"name": name, "kind": "train", "speed": False, "config": config, "timing": {},
                "metrics": {"accuracy": 0.64, "training": {"epochs": 20}},
                "history": [{"val_categorical_accuracy": 0.5}, {"val_categorical_accuracy": val}],
                "robustness": {"epsilons": [0.0, 1 / 255], "fgsm": [0.64, fgsm]}}

    runs = [run("base", 0.6294, 0.336), run("crop", 0.6346, 0.318, augment__name="basic+flip+crop"),
            run("ls", 0.6290, 0.35, training__label_smoothing=0.1)]
    drawn = {}
    real = plots.ablation_changes
    monkeypatch.setattr(plots, "ablation_changes", lambda rows, keep, path: drawn.update(rows=rows, keep=keep)
                        or real(rows, keep, path))
    lines = ablation_lines(runs, tmp_path)
    assert f"![Validation gain and FGSM accuracy of each change]({FIGURES['ablation']})" in lines
    assert (tmp_path / FIGURES["ablation"]).stat().st_size > 1000 and drawn["keep"] == 0.5
    gains = {r["change"]: round(r["validation_gain"], 2) for r in drawn["rows"]}
    assert gains == {"--augment basic+flip+crop": 0.52, "--label-smoothing 0.1": -0.04}
    assert [r["fgsm"] for r in drawn["rows"]] == [0.318, 0.35] and drawn["rows"][0]["base_fgsm"] == 0.336
    assert not any("png" in line for line in ablation_lines(runs[:1], tmp_path))  # the base alone: no figure


def test_nsl_runs_are_set_beside_their_plain_twins_with_their_robustness():
    from fer_keras.studies.report.render import nsl_twin_lines

    def run(name, adversarial, path="path/to/fer2013", seed=42, fgsm=(0.6, 0.3, 0.1)):
        config = ExperimentConfig.from_dict({"model": "dcnn", "adversarial": adversarial, "data": path, "seed": seed})
        return {"name": name, "kind": "train", "speed": False, "config": config,
                "metrics": {"accuracy": 0.64, "evaluate": {"loss": 1.6, "categorical_crossentropy": 1.04},
                            "training": {"epochs": 30}},
                "resolved": {"class_names": list(range(7)), "images": {"val": 2871, "test": 3589}}, "timing": {"wall_seconds": 3600, "cpu_percent": 180},
                "history": [{"epoch": 29, "val_categorical_accuracy": 0.65}],
                "robustness": {"epsilons": [0.0, 1 / 255, 2 / 255], "fgsm": list(fgsm), "pgd": list(fgsm),
                               "images": 1000, "units": "input units, [0, 1]"}}

    runs = [run("plain", False, path="../elsewhere/fer2013"), run("nsl", True, fgsm=(0.64, 0.44, 0.29)),
            run("other-seed", False, seed=7)]
    lines = nsl_twin_lines(runs)
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].endswith("| FGSM 1/255 % | FGSM 2/255 % | PGD 1/255 % | PGD 2/255 % |")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| plain", "| nsl"]  # same data set by name; seed 7 is no twin
    assert table[3] == ("| nsl | NSL x0.3 step 0.12 | 30 | 1.00, 180 | 65.00 | 64.00 | 1.0400 | 44.00 | 29.00 "
                        "| 44.00 | 29.00 |")
    assert nsl_twin_lines([runs[0], runs[2]]) == []


def test_a_distilled_student_is_set_beside_its_teacher_ensemble():
    from fer_keras.studies.report.render import distillation_lines

    config = ExperimentConfig.from_dict({"model": "dcnn", "adversarial": False, "data": "path/to/fer2013"})
    student = {"name": "student", "kind": "train", "speed": False,
               "config": config.replace(distil__teacher="/somewhere/20261205-122201-ensemble"),
               "metrics": {"accuracy": 0.66, "test_deduplicated": {"accuracy": 0.65}, "training": {"epochs": 20}},
               "history": [{"epoch": 19, "val_categorical_accuracy": 0.67}]}
    result = {"accuracy": 0.68}
    teacher = {"name": "20261205-122201-ensemble", "kind": "ensemble", "speed": False,
               "resolved": {"members": {"fer2013-dcnn": {"source_run": "dcnn-run"}}},
               "metrics": {"weights": {"fer2013-dcnn": 0.6, "/runs/ghost-run": 0.4},
                           "results": {"ensemble": {"val": result, "test": {"accuracy": 0.665},
                                                    "test_deduplicated": {"accuracy": 0.655}}}}}
    profiles = {"dcnn-run": {"macs": 495.6e6}, "ghost-run": {"macs": 38.7e6}, "student": {"macs": 495.6e6}}
    rows = [line for line in distillation_lines([teacher, student], profiles) if line.startswith("| ")][2:]
    assert rows == ["| 20261205-122201-ensemble | teacher: ensemble of 2 | 68.00 | 66.50 | 65.50 | 2 | 534.3 |",
                    "| student | student (dcnn, T 2, label weight 0.5) | 67.00 | 66.00 | 65.00 | 1 | 495.6 |"]
    assert distillation_lines([teacher], profiles) == []


def test_students_stand_under_their_teacher_ensemble_once_with_each_figures_tta_said():
    from fer_keras.studies.report.tables import distillation_rows
    from fer_keras.training.presets import preset_config

    def ensemble(name, tta):
        figures = {"val": {"accuracy": 0.68}, "test": {"accuracy": 0.66}, "test_deduplicated": {"accuracy": 0.65}}
        return {"name": name, "kind": "ensemble", "resolved": {"members": {}},
                "metrics": {"weights": {"runs/a": 0.5, "runs/b": 0.5}, "tta": tta, "results": {"ensemble": figures}}}

    def student(name, teacher, tta):
        config = preset_config("student-fer2013", "path/to/fer2013").replace(distil__teacher=f"/machine/{teacher}")
        metrics = {"accuracy": 0.66, "tta": tta, "test_deduplicated": {"accuracy": 0.649}, "training": {"epochs": 12}}
        if tta != "none":
            metrics["without_tta"] = {"accuracy": 0.655}
        return {"name": name, "kind": "train", "speed": False, "config": config, "metrics": metrics,
                "history": [{"epoch": 11, "val_categorical_accuracy": 0.6576}]}

    profiles = {"a": {"macs": 100e6}, "b": {"macs": 200e6}, "s": {"macs": 495.6e6}}
    header, rows = distillation_rows([student("lone", "gone", "none"), ensemble("e", "flip"), student("s", "e", "flip"),
                                      student("s2", "e", "flip")], profiles)
    assert header[2:5] == ["validation %", "test %", "test minus Training copies %"]
    assert rows == [["e", "teacher: ensemble of 2", "68.00 (flip TTA)", "66.00 (flip TTA)", "65.00 (flip TTA)", 2,
                     "600.0 (2 views)"],
                    ["s", "student (dcnn, T 2, label weight 0.5)", "65.76", "65.50; 66.00 (flip TTA)", "64.90 (flip TTA)",
                     1, "495.6"],
                    ["s2", "student (dcnn, T 2, label weight 0.5)", "65.76", "65.50; 66.00 (flip TTA)", "64.90 (flip TTA)",
                     1, "-"],  # one teacher row for both its students
                    ["lone", "student (dcnn, T 2, label weight 0.5)", "65.76", "66.00", "64.90", 1, "-"]]
