"""The membership-inference table: one row per setting, attack and operating point, as CSV and Markdown."""
from __future__ import annotations

import csv
import io
from typing import Sequence

from fer_keras import markdown
from fer_keras.markdown import round_to_total
from fer_keras.privacy.audit import CONFUSION_KEYS


TABLE_COLUMNS = ("setting", "test_accuracy", "member_accuracy", "attack", "point", "TP", "FP", "TN", "FN", "auc",
                 "advantage", "tpr@1%fpr", "tpr@0.1%fpr", "epsilon")


def table_rows(setting: str, test_accuracy: float, result: dict, epsilon: float | None = None,
               points: Sequence[str] = ("at_target_fpr", "best_accuracy"),
               member_accuracy: float | None = None) -> list[dict]:
    """Table rows (one per attack and operating point) for one setting's audit result.
    TP/FP/TN/FN are rounded to 0.1 so that each row still sums to exactly 100."""
    rows = []
    for attack, fig in result["attacks"].items():
        for point in points:
            p = fig[point]
            tp, fp, tn, fn = round_to_total([p[k] for k in CONFUSION_KEYS], 1)
            rows.append({"setting": setting, "test_accuracy": round(100 * test_accuracy, 2),
                         "member_accuracy": "" if member_accuracy is None else round(100 * member_accuracy, 2),
                         "attack": attack, "point": point, "TP": tp, "FP": fp, "TN": tn, "FN": fn,
                         "auc": round(fig["auc"], 4), "advantage": round(fig["advantage"], 4),
                         "tpr@1%fpr": round(fig["tpr_at_1%_fpr"], 4),
                         "tpr@0.1%fpr": round(fig["tpr_at_0.1%_fpr"], 4),
                         "epsilon": "" if epsilon is None else round(epsilon, 2)})
    return rows


def table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def table_markdown(rows: list[dict]) -> str:
    def fmt(column, v):
        if column in ("TP", "FP", "TN", "FN"):
            return f"{v:.1f}"
        if column in ("test_accuracy", "member_accuracy") and v != "":
            return f"{v:.2f}"
        return f"{v:g}" if isinstance(v, float) else str(v)

    return "\n".join(markdown.table(TABLE_COLUMNS, [[fmt(c, r[c]) for c in TABLE_COLUMNS] for r in rows])) + "\n"
