"""Which faces a model trained on: the config it was trained with, and how many of a run's
validation and test faces it saw (by pixels). ``--init-from`` and ``--teacher`` sources are checked
with it, and the ensembles' members."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from fer_keras import pretrained
from fer_keras.config import ExperimentConfig
from fer_keras.data.hygiene import duplicates_of
from fer_keras.data.prepare import prepare_data
from fer_keras.runs import RunFolder


def trained_config(source: str) -> ExperimentConfig | None:
    """The config a model was trained with: a training run folder's, or a pretrained model's card's;
    None for a bare model file (or a card that does not record it)."""
    if pretrained.is_name(source):
        saved = pretrained.card(source).get("training", {}).get("config")
        return ExperimentConfig.from_dict(saved) if saved else None
    run = RunFolder.find(source)
    return run.config if run is not None and run.kind == "train" else None


def held_out_seen_by(source: str, config: ExperimentConfig, parts: dict) -> dict:
    """How many of this run's validation and test images the model ``source`` trained on.

    The source's training split is made again from its own config (a run folder's config.json or
    a pretrained model's card) on this run's data, and compared by pixels. Returns ``{"source",
    "val_images_it_trained_on", "test_images_it_trained_on"}`` (counts; None when they cannot be
    known: a bare model file, or a source trained on another data set, named in ``"not_checked"``).
    """
    record = {"source": source, "val_images_it_trained_on": None, "test_images_it_trained_on": None}
    if pretrained.is_name(source):  # the name may ship another model later: say which one this was
        record.update(pretrained.identity(source))
    donor = trained_config(source)
    if donor is None:
        return {**record, "not_checked": "a model file without its run's config"}
    name = lambda path: Path(path).name if path else "the demo set"  # noqa: E731
    if name(donor.data.path) != name(config.data.path):
        return {**record, "not_checked": f"trained on other data ({name(donor.data.path)})"}
    trained_on = prepare_data(dataclasses.replace(donor.data, path=config.data.path), donor.seed,
                              log=lambda *_: None)["train"]
    return {**record, "val_images_it_trained_on": int(duplicates_of(parts["val"], trained_on).sum()),
            "test_images_it_trained_on": int(duplicates_of(parts["test"], trained_on).sum())}
