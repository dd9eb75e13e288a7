"""Markdown for reports and cards: one table writer and the two cell formats every table uses."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def table(header: Sequence, rows: Iterable[Sequence]) -> list[str]:
    """A Markdown table as lines: ``header`` then one line per row (cells as ``str``)."""
    return ["| " + " | ".join(map(str, header)) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(map(str, row)) + " |" for row in rows]


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage without the sign (``0.6383`` -> ``"63.83"``); None -> ``"-"``."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def num(value: float | None, fmt: str = "{:.4f}") -> str:
    """``value`` in ``fmt``; None -> ``"-"``."""
    return "-" if value is None else fmt.format(value)


def round_to_total(values: Sequence[float], decimals: int = 1, total: float = 100.0) -> list[float]:
    """Round ``values`` to ``decimals`` so that the rounded values still sum to ``total``
    (largest-remainder rounding), e.g. for a printed TP/FP/TN/FN row."""
    scale = 10 ** decimals
    scaled = np.asarray(values, dtype=np.float64) * scale
    floors = np.floor(scaled + 1e-9)
    short = int(round(total * scale - floors.sum()))
    order = np.argsort(-(scaled - floors), kind="stable")
    floors[order[:max(short, 0)]] += 1
    return [float(v) / scale for v in floors]
