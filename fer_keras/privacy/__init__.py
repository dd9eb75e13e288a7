"""What a model leaks: the membership-inference audit and differentially private training.

* :mod:`~fer_keras.privacy.audit`: members vs non-members through tensorflow-privacy's attacks
  (AUC, advantage, TPR at low FPR, Study B's TP/FP/TN/FN at two operating points).
* :mod:`~fer_keras.privacy.dp`: DP-SGD compilation and the epsilon it spends.
* :mod:`~fer_keras.privacy.tables`: the audit's table as CSV and Markdown.

The grid of trained models (noise layers x augmentation) that Study B audits is
:mod:`fer_keras.studies.mia`.
"""
from fer_keras.markdown import round_to_total
from fer_keras.privacy.audit import (CONFUSION_KEYS, DEFAULT_ATTACKS, DEFAULT_TARGET_FPR, LOW_FPRS, AuditSets,
                                     attack_inputs, attack_type, audit, audit_outputs, balanced_counts,
                                     best_accuracy_point, confusion_percentages, cross_entropy, make_attack_input,
                                     model_logits, per_class_point, sample_members_nonmembers, tpr_at_fpr)
from fer_keras.privacy.dp import DPSettings, compile_dp, dp_epsilon
from fer_keras.privacy.tables import TABLE_COLUMNS, table_csv, table_markdown, table_rows

__all__ = ["CONFUSION_KEYS", "DEFAULT_ATTACKS", "DEFAULT_TARGET_FPR", "LOW_FPRS", "TABLE_COLUMNS", "AuditSets",
           "DPSettings", "attack_inputs", "attack_type", "audit", "audit_outputs", "balanced_counts",
           "best_accuracy_point", "compile_dp", "confusion_percentages", "cross_entropy", "dp_epsilon",
           "make_attack_input", "model_logits", "per_class_point", "round_to_total", "sample_members_nonmembers",
           "table_csv", "table_markdown", "table_rows", "tpr_at_fpr"]
