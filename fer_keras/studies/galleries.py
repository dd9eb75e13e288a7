"""Study B's qualitative galleries for trained runs: Grad-CAM, likely label noise, and faces one
run gets wrong and another gets right (the Grad-CAM itself is :mod:`fer_keras.gradcam`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_keras import plots
from fer_keras.data.hygiene import duplicate_groups
from fer_keras.errors import ConfigError
from fer_keras.gradcam import confident_disagreements, grad_cam, last_conv_layer, wrong_vs_right


def _titles(labels, probs, class_names, prefix=""):
    preds = probs.argmax(1)
    return [(f"{prefix}given {class_names[y]}\npred {class_names[p]} {pr[p]:.0%}",
             "black" if p == y else "darkred") for y, p, pr in zip(labels, preds, probs)]


def explain_run(run, faces, out_dir: str | Path, other=None, threshold: float = 0.9,
                count: int = 24, layer: str | None = None, log=print) -> dict:
    """Write the Grad-CAM figures of ``run`` on ``faces`` into ``out_dir``; return a summary.

    Args:
        run: a :class:`fer_keras.runs.RunModel`.
        faces: :class:`fer_keras.data.FaceData` (uint8 faces, labels in ``run``'s class order).
        other: optional second RunModel for the "wrong here, right there" gallery (both ways).
        threshold: confidence for the label-disagreement gallery.
        count: faces per figure.

    Files: ``gradcam.png`` (``count`` faces drawn at random, seed 0), ``confident_disagreements.png``, and with
    ``other``: ``wrong_<run>_right_<other>.png`` and ``wrong_<other>_right_<run>.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = run.class_names
    probs = run.predict(faces.images)
    summary = {"run": run.name, "images": len(faces), "layer": layer or last_conv_layer(run.model),
               "accuracy": float((probs.argmax(1) == faces.labels).mean()), "threshold": threshold,
               "figures": {}}

    def figure(model_run, idx, file, title, prefix=""):
        idx = np.asarray(idx[:count], int)
        cams, p = grad_cam(model_run.model, model_run.prepare(faces.images[idx]).numpy(), layer=layer)
        path = plots.gradcam_grid(faces.images[idx], cams, _titles(faces.labels[idx], p, names, prefix),
                                  out_dir / file, title)
        summary["figures"][file] = len(idx)
        return path

    spread = np.sort(np.random.default_rng(0).choice(len(faces), min(count, len(faces)), replace=False))
    figure(run, spread, "gradcam.png",
           f"Grad-CAM ({summary['layer']}) of {run.name}: given and predicted label")
    noisy = confident_disagreements(faces.labels, probs, threshold)
    summary["confident_disagreements"] = int(len(noisy))
    figure(run, noisy, "confident_disagreements.png",
           f"{run.name}: prediction >= {threshold:.0%} confident disagrees with the given label "
           f"({len(noisy)} of {len(faces)} faces; likely label noise)")
    if other is not None:
        if tuple(other.class_names) != tuple(names):
            raise ConfigError(f"--compare {other.name}: classes {other.class_names} differ from {names}")
        other_probs = other.predict(faces.images)
        summary["compare"] = {"run": other.name,
                              "accuracy": float((other_probs.argmax(1) == faces.labels).mean())}
        for a, pa, b, pb in ((run, probs, other, other_probs), (other, other_probs, run, probs)):
            idx = wrong_vs_right(faces.labels, pa, pb)[:count // 2]
            file = f"wrong_{a.name}_right_{b.name}.png"
            summary["compare"][f"wrong_{a.name}_right_{b.name}"] = int(len(wrong_vs_right(faces.labels, pa, pb)))
            # Each face twice: A's heatmap and prediction, then B's.
            cams_a, p_a = grad_cam(a.model, a.prepare(faces.images[idx]).numpy(), layer=layer)
            cams_b, p_b = grad_cam(b.model, b.prepare(faces.images[idx]).numpy(), layer=layer)
            images = np.repeat(faces.images[idx], 2, axis=0)
            cams = np.stack([cams_a, cams_b], 1).reshape(-1, *cams_a.shape[1:]) if len(idx) else cams_a
            titles = [t for pair in zip(_titles(faces.labels[idx], p_a, names, "A: "),
                                        _titles(faces.labels[idx], p_b, names, "B: ")) for t in pair]
            plots.gradcam_grid(images, cams, titles, out_dir / file,
                               f"Wrong by A = {a.name}, right by B = {b.name} "
                               f"({summary['compare'][f'wrong_{a.name}_right_{b.name}']} faces); pairs A | B")
            summary["figures"][file] = len(idx)
    log(f"{run.name}: accuracy {summary['accuracy']:.4f} on {len(faces)} faces; "
        f"{len(noisy)} confident (>= {threshold:.0%}) disagreements with the given label")
    return summary


def label_conflicts(run, data, threshold: float = 0.9, trained_on=None) -> dict:
    """How ``run``'s model judges the faces whose exact copies carry different labels in ``data``
    (``fer-keras hygiene``'s conflicting-label duplicate groups: at least one label in each is wrong).

    Returns counts: ``groups`` and ``images`` in conflict, how many of those images the model flags
    as likely label noise (a prediction >= ``threshold`` confident that disagrees with the given
    label; ``flagged_share`` beside ``flagged_share_elsewhere``, the same rate on every other face of
    ``data``), and in how many groups its prediction is one of the group's labels (it sides with
    one of the annotators). ``trained_on``: bool (len(data),) rows the model trained on; the
    figures are also given for the conflicting images it never saw (``unseen_*``).
    """
    groups = duplicate_groups(data)
    conflicting = [g for g in np.unique(groups[groups >= 0]) if len(set(data.labels[groups == g].tolist())) > 1]
    rows = np.flatnonzero(np.isin(groups, conflicting))
    probs = run.predict(data.images)
    flagged = np.zeros(len(data), bool)
    flagged[confident_disagreements(data.labels, probs, threshold)] = True
    preds = probs.argmax(1)
    sides = sum(int(preds[groups == g][0] in set(data.labels[groups == g].tolist())) for g in conflicting)
    others = np.setdiff1d(np.arange(len(data)), rows)
    summary = {"threshold": threshold, "groups": len(conflicting), "images": int(len(rows)),
               "flagged_images": int(flagged[rows].sum()),
               "flagged_share": float(flagged[rows].mean()) if len(rows) else None,
               "flagged_share_elsewhere": float(flagged[others].mean()) if len(others) else None,
               "groups_where_prediction_is_one_of_the_labels": sides}
    if trained_on is not None:
        unseen = rows[~np.asarray(trained_on)[rows]]
        summary.update(unseen_images=int(len(unseen)), unseen_flagged=int(flagged[unseen].sum()))
    return summary
