"""The project's class order and label subsets.

Project-wide class order (FER2013's own ids): 0 anger, 1 disgust, 2 fear, 3 happiness,
4 sadness, 5 surprise, 6 neutral. Every loader maps its data set's labels onto these ids.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from fer_keras.errors import ConfigError

CLASS_NAMES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
NUM_CLASSES = len(CLASS_NAMES)

#: Other spellings seen in the wild (Kaggle folder names, the `fer` package, RAF-DB papers).
ALIASES = {
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprised": "surprise",
    "neutrality": "neutral",
}

#: RAF-DB basic's labels 1..7 (surprise, fear, disgust, happiness, sadness, anger, neutral)
#: as project ids.
RAFDB_TO_PROJECT = {1: 5, 2: 2, 3: 1, 4: 3, 5: 4, 6: 0, 7: 6}

#: Named subsets used by the studies.
SUBSETS = {
    "all": tuple(range(NUM_CLASSES)),
    "3class": (3, 4, 6),  # Study A's happiness / sadness / neutral
}


def class_id(name_or_id: str | int) -> int:
    """Project id (0..6) of a class given by id, canonical name or alias (case-insensitive)."""
    if isinstance(name_or_id, int) or str(name_or_id).strip().isdigit():
        value = int(name_or_id)
        if 0 <= value < NUM_CLASSES:
            return value
        raise ConfigError(f"label id {value} is not a class id; use 0..6 ({', '.join(CLASS_NAMES)})")
    key = str(name_or_id).strip().lower()
    key = ALIASES.get(key, key)
    if key in CLASS_NAMES:
        return CLASS_NAMES.index(key)
    raise ConfigError(
        f"unknown label {name_or_id!r}; use an id 0..6 or one of: {', '.join(CLASS_NAMES)}"
    )


def parse_labels(spec: str | Sequence[str | int] | None) -> tuple[int, ...]:
    """Sorted project ids selected by ``spec``.

    ``spec`` is ``None``/``"all"``, a named subset (``"3class"``), a comma-separated string
    (``"happiness,sadness,neutral"`` or ``"3,4,6"``) or a sequence of names/ids.
    """
    if spec is None:
        return SUBSETS["all"]
    if isinstance(spec, str):
        if spec.strip().lower() in SUBSETS:
            return SUBSETS[spec.strip().lower()]
        items: Iterable = [s for s in spec.split(",") if s.strip()]
    else:
        items = spec
    ids = sorted({class_id(item) for item in items})
    if len(ids) < 2:
        raise ConfigError(f"--labels {spec!r} selects {len(ids)} class; choose at least two")
    return tuple(ids)
