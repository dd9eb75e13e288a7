"""Robustness study: attack trained run folders and compare them in one table.

:func:`evaluate_run` re-creates a run's test split (or validation split) from its ``config.json``,
attacks its model white-box (:func:`fer_keras.attacks.evaluate_robustness`: clean, FGSM, PGD, NSL
perturbation) and writes ``robustness.json`` + ``figures/robustness.png`` into the run folder
(``robustness_val.json`` + ``figures/robustness_val.png`` for validation, a figure that may choose);
:func:`write_comparison` puts several runs side by side.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import tensorflow as tf

from fer_keras import markdown, plots
from fer_keras.attacks import DEFAULT_EPSILONS, PGD_STEPS, evaluate_robustness
from fer_keras.errors import ConfigError
from fer_keras.files import atomic_write_text, write_json
from fer_keras.runs import ROBUSTNESS_FILE, ROBUSTNESS_VAL_FILE, RunFolder

#: Which held-out split is attacked -> the run file its results go to.
SPLIT_FILES = {"test": ROBUSTNESS_FILE, "val": ROBUSTNESS_VAL_FILE}
_SPLIT_NAMES = {"test": "test", "val": "validation"}


def load_model_and_test_split(run_dir: str | Path, data: str | None = None, limit: int | None = None,
                              batch_size: int = 100, log=print, trusted: bool = False, split: str = "test"):
    """Load ``run_dir``'s model and re-create its test split (``split="val"``: validation) as a dataset.

    Returns ``(model, test_ds, info)``; ``info`` holds the run's config, input mode and clip range.
    ``data`` overrides the data path in the run's config (if the data has moved); ``limit``
    evaluates a stratified sample of that many test images. The run's Keras model loads safely
    unless ``trusted`` (:mod:`fer_keras.model_files`).
    """
    run = RunFolder.open(run_dir, "--runs", finished=True)
    model = run.load_model(trusted)  # before the data: a refused model stops at once
    config, spec = run.config, run.input_spec
    if split not in SPLIT_FILES:
        raise ConfigError(f"--split {split}: must be one of {', '.join(SPLIT_FILES)}")
    test = run.held_out_split(data, limit, split)
    if len(test) == 0:
        raise ConfigError(f"{run.path}: its {_SPLIT_NAMES[split]} split is empty; attack the other one (--split)")
    ds = spec.dataset(test, batch_size)
    clip = (0.0, 1.0) if spec.mode == "unit" else None
    adv = config.adversarial
    label = (f"{config.model.name} " + (f"NSL (x{adv.multiplier:g}, step {adv.step:g})" if adv.enabled else "plain")
             + (f", {config.augment.name}" if config.augment.name != "basic" else ""))
    log(f"{run.name}: {label}; {len(test)} {_SPLIT_NAMES[split]} images")
    return model, ds, {"config": config, "input_mode": spec.mode, "clip": clip, "label": label}


def evaluate_run(run_dir: str | Path, epsilons=DEFAULT_EPSILONS, pgd_steps: int = PGD_STEPS,
                 pgd_step_size: float | None = None, nsl_grad_norm: str = "infinity",
                 data: str | None = None, limit: int | None = None, batch_size: int = 100,
                 reference: tf.keras.Model | None = None, seed: int = 0, log=print, trusted: bool = False,
                 split: str = "test") -> dict:
    """:func:`evaluate_robustness` on a run folder's test split (``split="val"``: its validation
    split); writes :data:`SPLIT_FILES` ``[split]`` and ``figures/robustness[_val].png`` into the folder
    and returns the results (plus ``run``, ``label`` and ``split``)."""
    run = RunFolder.open(run_dir, "--runs", finished=True)
    model, ds, info = load_model_and_test_split(run.path, data, limit, batch_size, log, trusted, split)
    results = evaluate_robustness(model, ds, epsilons, pgd_steps, pgd_step_size, info["clip"],
                                  nsl_grad_norm=nsl_grad_norm, reference=reference, seed=seed, log=log)
    cfg = info["config"]
    adv = cfg.adversarial
    results = {"run": str(run.path), "label": info["label"], "model": cfg.model.name,
               "adversarial": adv.enabled, "multiplier": adv.multiplier if adv.enabled else None,
               "step": adv.step if adv.enabled else None, "augment": cfg.augment.name, "split": split, **results}
    write_json(run.file(SPLIT_FILES[split]), results)
    run.figures_dir.mkdir(exist_ok=True)
    plots.robustness_curves({info["label"]: results}, run.figures_dir / Path(SPLIT_FILES[split]).with_suffix(".png"),
                            title=f"Accuracy under attack ({_SPLIT_NAMES[split]}): {info['label']}")
    log(f"  clean {results['clean']:.4f}; " + "; ".join(
        f"{a.upper()} " + " ".join(f"{v:.3f}" for v in results[a]) for a in ("fgsm", "pgd", "nsl") if a in results))
    return results


def comparison_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table: one row per run and attack, one column per epsilon."""
    epsilons = results[0]["epsilons"]
    header = ["run", "model", "training", "augment", "attack", "clean"] + [
        f"eps={_eps_text(e)}" for e in epsilons]
    rows = []
    for r in results:
        training = f"NSL x{r['multiplier']:g} step {r['step']:g}" if r["adversarial"] else "plain"
        for attack in ("fgsm", "pgd", "nsl"):
            if attack in r:
                rows.append([Path(r["run"]).name, r["model"], training, r["augment"], attack.upper(),
                             f"{r['clean']:.4f}"] + [f"{v:.4f}" for v in r[attack]])
    return header, rows


def _eps_text(eps: float) -> str:
    levels = eps * 255
    return f"{eps:.4g} ({levels:.3g}/255)" if abs(levels - round(levels)) < 1e-6 and eps else f"{eps:.4g}"


def write_comparison(results: list[dict], out: str | Path) -> dict[str, Path]:
    """``robustness_table.md``, ``robustness_table.csv`` and ``robustness.png`` (all runs) in ``out``."""
    out = Path(out)
    if len({tuple(r["epsilons"]) for r in results}) != 1:
        raise ConfigError("runs were evaluated at different --epsilons; evaluate them together")
    header, rows = comparison_rows(results)
    buf = io.StringIO()
    csv.writer(buf).writerows([header] + rows)
    md = markdown.table(header, rows)
    units = results[0]["units"]
    settings = results[0]["settings"]
    split = _SPLIT_NAMES[results[0].get("split", "test")]
    md += ["", f"Accuracy on {results[0]['images']} {split} images per run; epsilon in {units}; "
           f"PGD {settings['pgd_steps']} steps of {settings['pgd_step_size']} with random start; "
           f"NSL = perturb_on_batch with adv_grad_norm={settings['nsl_grad_norm']}; "
           f"{'white-box (each model attacked with its own gradients)' if settings['white_box'] else 'NSL perturbation from a reference model'}."]
    labels = {}
    for r in results:
        label = r["label"]
        while label in labels:
            label += "'"
        labels[label] = r
    paths = {"csv": atomic_write_text(out / "robustness_table.csv", buf.getvalue()),
             "markdown": atomic_write_text(out / "robustness_table.md", "\n".join(md) + "\n"),
             "json": write_json(out / "robustness_all.json", results),
             "figure": plots.robustness_curves(labels, out / "robustness.png")}
    return paths
