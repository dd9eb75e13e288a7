"""The two source studies' own figures, as restated in the project's spec (``SPEC.md``).

These are the only typed-in figures of the report (:mod:`fer_keras.studies.report`); it always
shows them as the studies', beside ours.
"""
from __future__ import annotations

#: Study A (DCNN + NSL, FER2013, 3,589 test images), as the study reports.
STUDY_A = {
    "7class": {"accuracy": 0.7049, "loss": 1.2704, "categorical_crossentropy": 0.9444,
               "scaled_adversarial_loss": 0.3260, "wrong": 1059, "images": 3589, "epochs": 30,
               "f1": {"anger": .64, "disgust": .74, "fear": .52, "happiness": .90, "sadness": .57,
                      "surprise": .80, "neutral": .69},
               "first_run_30_epochs": {"train": 0.766, "test": 0.6882},
               "run_100_epochs": {"train": 0.8035, "test": 0.6980}},
    "3class": {"accuracy": 0.8295, "train_accuracy": 0.8551},
    "params": 2_395_591,
    #: Training / test images of its 80/10/10 split (the CSV's own Training and PrivateTest sizes).
    "train_images": 28_709, "test_images": 3_589,
    #: FER2013's counts of the 3-class subset's classes (happiness, sadness, neutral) and all rows.
    "three_class_share": (8_989 + 6_077 + 6_198) / 35_887,
}
#: The models Study A's figures describe (the DCNN and its two variants).
STUDY_A_MODELS = ("dcnn", "dcnn_deeper", "dcnn_final")
#: The model Study B's figures describe.
STUDY_B_MODEL = "ghostface"
#: Study B (GhostFace on RAF-DB, 3,068 test images): (test loss, accuracy) by augmentation setting.
STUDY_B = {
    "params_m": 1.28, "flops_m": 134.66, "train_images": 12_271, "test_images": 3_068,
    "rows": {"basic": (0.674, 0.7797), "basic+randaugment": (0.669, 0.7721),
             "basic+mixup": (0.655, 0.7760), "basic+randaugment+mixup": (0.679, 0.7696)},
}
#: Study B's membership-inference rows: setting -> TP, FP, TN, FN in % of 4,000 audited images.
STUDY_B_MIA = {
    "noise1": (8.3, 5.5, 45, 42), "noise1+basic": (5.9, 4.8, 45, 44),
    "noise1+randaugment": (5, 4.3, 46, 45), "noise1+mixup": (5.5, 5.3, 45, 44),
    "noise2": (6, 5.5, 44, 44), "noise2+basic": (5.4, 4.5, 46, 45),
    "noise2+randaugment": (5.8, 5.5, 44, 44), "noise2+mixup": (4.9, 8.7, 45, 41),
}
#: Model -> (the study's parameter count, its FLOPs column) for the report's cost table.
STUDY_BUDGETS = {"dcnn": (f"{STUDY_A['params']:,}", "-"),
                 "ghostface": (f"{STUDY_B['params_m']} M", f"{STUDY_B['flops_m']} at 224x224x3")}
