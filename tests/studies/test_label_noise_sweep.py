"""The label-noise sweep's table and plot."""
from fer_keras.config import ExperimentConfig
from fer_keras.studies.label_noise import write_sweep


def test_write_sweep_table_and_plot(tmp_path):
    nan = float("nan")
    rows = [{"noise": f, "mode": "uniform", "augment": a, "test_accuracy": acc, "macro_f1": acc / 2,
             "flipped_images": int(f * 100), "fraction_true": nan if f == 0 else 0.5,
             "fraction_noisy": nan if f == 0 else 0.3, "run": f"run-{a}-{f}"}
            for a in ("basic", "mixup") for f, acc in ((0.0, 0.5), (0.2, 0.45), (0.4, 0.4))]
    write_sweep(rows, tmp_path, ExperimentConfig().replace(data__limit=100, data__eval_limit=50, training__epochs=1))
    md = (tmp_path / "label_noise.md").read_text()
    assert "| 20% | uniform | mixup | 0.4500 |" in md and "| 0% | uniform | basic | 0.5000 | 0.2500 | 0 | - | - |" in md
    assert (tmp_path / "label_noise.csv").read_text().count("\n") == 7
    assert (tmp_path / "label_noise.png").stat().st_size > 10_000
