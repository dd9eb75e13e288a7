"""Crop framing: how the detector, the crop margin and eye alignment change accuracy, measured on
faces whose framing is known.

FER2013's faces are tight, centred and roughly registered crops; ``predict`` and
:class:`~fer_keras.recognizer.EmotionRecognizer` cut faces out of photos with a detector, a margin
and alignment. To see what that path does to a model trained on FER2013 crops, each labelled crop
is made into a "photo" whose framing is known, and the real path
(:func:`~fer_keras.recognizer.classify_faces`: detect -> crop(margin, align) -> classify) runs on it
for every setting of the grid.

**The photos** (:func:`frame_faces`): the 48x48 crop, upscaled ``upscale`` times (bicubic), in the
middle of a canvas with ``pad`` face sides of background on each side. The background repeats the
crop's border pixels outward (``cv2.BORDER_REPLICATE``): that adds no face (mirroring would add
four mirrored faces), no hard square edge (a constant fill would draw a frame a detector or the
model could key on), and it is what :func:`~fer_keras.faces.crop_face` itself fills with where a
crop runs past a photo's edge. Two framings: ``registered`` (the crop as FER2013 has it) and
``jittered`` (per face a known in-plane rotation up to +-``rotate`` degrees, a shift up to
+-``shift`` face sides and a size factor in [1/``scale``, ``scale``], log-uniform; seeded).

**The settings**: each detector (``retinaface``, ``mtcnn``, ``haar``) x ``margins`` x align on/off,
plus two references: ``known``, a detector that returns the true face box (the FER2013 crop's
square in the photo) and the true eye line (from the framing's transform), so margin and
alignment are seen without detector error; and ``original crops``, the model on the 48x48 crops
themselves (detector ``none``), which is the model's plain test accuracy. Alignment is shown
as ``n/a`` (one row) when it changes nothing: no landmarks (Haar) or every eye line level.

**Scores per setting**: the face kept per photo is the largest found (as ``preprocess`` keeps and
``top_emotion`` reports); it counts as found when its centre lies inside the true face box.
Accuracy and macro F1 on the faces found; the detection rate (found / photos); accuracy counting
misses as wrong (correct / photos), with a 95% normal-approximation half-width; the median side of
the detector's box over the true face box's (how much tighter or looser than FER2013's frame it cuts).

**The choice** (:data:`RULE`, fixed before the first measurement): see :func:`choose_defaults`.

The run folder (``<out>/<stamp>-framing-<model>/``): ``config.json`` (the config, the data and
model resolved, ``"study": "framing"``), ``table.md``/``table.csv``, ``metrics.json`` (rows,
reference, detection time, the choice) and ``figures/framing.png``.
"""
from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import math
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from fer_keras import markdown, plots
from fer_keras.config import build_config, setting
from fer_keras.data.dataset import FaceData, stratified_indices
from fer_keras.errors import ConfigError
from fer_keras.faces import BACKENDS, Detector, Face, available_backends, get_detector
from fer_keras.files import atomic_write_text, write_json
from fer_keras.pretrained import DEFAULT_MODEL
from fer_keras.runs import FRAMING_FIGURE, FRAMING_STUDY, METRICS_FILE, TABLE_CSV_FILE, TABLE_MD_FILE, RunFolder

FRAMINGS = ("registered", "jittered")
#: The reference "detector": the true face box and eye line of each photo.
KNOWN = "known"
#: The row of the model on the original 48x48 crops.
ORIGINAL = "original crops"
#: Side of a FER2013 crop, in pixels.
SIDE = 48
#: Eye centres in a FER2013 crop's pixels (only the line through them matters: it sets the angle).
EYES = ((13.5, 18.0), (34.5, 18.0))

RULE = ("For the auto detector (the first installed of " + ", ".join(BACKENDS) + "), the (margin, align) with the "
        "highest accuracy counting misses as wrong, pooled over both framings; equal scores go to the smaller "
        "margin, then to align on. It replaces the library's current default only if the paired 95% bootstrap "
        "interval of its gain over that default excludes 0; otherwise the current default stays. Detectors are "
        "ranked for auto by the same score, each at its own best setting: the current order stays unless a later "
        "detector beats an earlier one with an interval excluding 0.")

TABLE_FIELDS = ("framing", "detector", "align", "margin", "images", "found", "detection_rate", "accuracy_found",
                "macro_f1_found", "accuracy_all", "ci95", "box_ratio", "extra_faces")


def _names(text) -> tuple[str, ...]:
    if isinstance(text, str):
        return tuple(p.strip() for p in text.split(",") if p.strip())
    return tuple(text)


def _numbers(text) -> tuple[float, ...]:
    if isinstance(text, str):
        try:
            return tuple(float(p) for p in text.split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"{text!r}: give comma-separated numbers, e.g. 0,0.1,0.2") from None
    return tuple(float(v) for v in text)


@dataclasses.dataclass
class FramingConfig:
    """Everything that defines a framing measurement (saved as ``config.json``)."""

    seed: int = setting(0, "seeds the sample and the jitter (default: %(default)s)")
    out: str = setting("runs", "folder for run folders (default: %(default)s)")
    data: str | None = setting(None, "FER2013 (CSV or Kaggle folders): its PublicTest faces are used "
                               "(default: the bundled synthetic demo set)", metavar="PATH")
    model: str = setting(DEFAULT_MODEL, "pretrained name, run folder or model file (default: %(default)s)")
    limit: int | None = setting(None, "a class-stratified sample of this many faces (default: all)", metavar="N")
    detectors: tuple[str, ...] = setting(BACKENDS, "comma-separated detectors, of " + ", ".join(BACKENDS)
                                         + " (default: " + ",".join(BACKENDS) + "); the known box is always "
                                         "measured", type=_names)
    margins: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.3, 0.4), "comma-separated crop margins, a share of the "
                                         "face box on each side (default: 0,0.1,0.2,0.3,0.4)", type=_numbers)
    framings: tuple[str, ...] = setting(FRAMINGS, "comma-separated framings: registered, jittered (default: "
                                        "both)", type=_names)
    upscale: int = setting(4, "the 48x48 face is this many times larger in its photo (default: %(default)s)")
    pad: float = setting(0.5, "background on each side of the face, in face sides (default: %(default)s)")
    rotate: float = setting(15.0, "jittered: in-plane rotation up to +- this many degrees (default: %(default)s)")
    shift: float = setting(0.1, "jittered: shift up to +- this many face sides (default: %(default)s)")
    scale: float = setting(1.25, "jittered: face size times a factor in [1/scale, scale] (default: %(default)s)")
    batch_size: int = setting(64, "face crops per model call (default: %(default)s)")
    bootstrap: int = setting(2000, "bootstrap resamples for the paired intervals (default: %(default)s)")

    def __post_init__(self):
        self.detectors, self.framings = _names(self.detectors), _names(self.framings)
        self.margins = _numbers(self.margins)
        bad = [d for d in self.detectors if d not in BACKENDS]
        if bad or not self.detectors or len(set(self.detectors)) != len(self.detectors):
            raise ConfigError(f"--detectors {','.join(self.detectors)!r}: give distinct names of "
                              f"{', '.join(BACKENDS)} (the known box is always measured)")
        if not self.margins or any(not 0 <= m <= 2 for m in self.margins) \
                or len(set(self.margins)) != len(self.margins):
            raise ConfigError(f"--margins {','.join(f'{m:g}' for m in self.margins)!r}: give distinct margins "
                              "between 0 and 2")
        bad = [f for f in self.framings if f not in FRAMINGS]
        if bad or not self.framings or len(set(self.framings)) != len(self.framings):
            raise ConfigError(f"--framings {','.join(self.framings)!r}: give registered, jittered or both")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit {self.limit}: must be at least 1")
        for name, low in (("upscale", 1), ("batch_size", 1), ("bootstrap", 100)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least {low}")
        if not 0 <= self.pad <= 4 or not 0 <= self.rotate <= 45 or not 0 <= self.shift <= 0.5 \
                or not 1 <= self.scale <= 2:
            raise ConfigError("framing out of range: --pad 0..4, --rotate 0..45, --shift 0..0.5, --scale 1..2")
        self.margins = tuple(sorted(self.margins))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FramingConfig":
        return build_config(cls, values)


def current_default() -> tuple[float, bool]:
    """The library's default (margin, align): :func:`~fer_keras.recognizer.classify_faces`'s."""
    from fer_keras.recognizer import classify_faces

    params = inspect.signature(classify_faces).parameters
    return float(params["margin"].default), bool(params["align"].default)


# ---------------------------------------------------------------------------------- the photos


def frame_faces(images: np.ndarray, framing: str, config: FramingConfig) -> tuple[list[np.ndarray], list[Face]]:
    """Photos of the 48x48 ``images`` (uint8 (N, 48, 48, 1)) framed as ``framing``, and each
    photo's true :class:`~fer_keras.faces.Face`: the crop's square as ``box`` (axis-aligned, about
    the face centre) and its eye line as ``left_eye``/``right_eye`` landmarks. Photos are uint8
    gray (C, C), C = 48 * upscale * (1 + 2 * pad)."""
    if framing not in FRAMINGS:
        raise ConfigError(f"framing {framing!r}: use one of {', '.join(FRAMINGS)}")
    side = SIDE * config.upscale
    canvas = int(round(side * (1 + 2 * config.pad)))
    rng = np.random.default_rng([config.seed, FRAMINGS.index(framing)])
    photos, faces = [], []
    for image in images:
        if image.shape[:2] != (SIDE, SIDE):
            raise ConfigError(f"faces of shape {image.shape}: the framing study takes 48x48 crops (FER2013's)")
        angle, factor, dx, dy = 0.0, 1.0, 0.0, 0.0
        if framing == "jittered":
            angle = rng.uniform(-config.rotate, config.rotate)
            factor = math.exp(rng.uniform(-math.log(config.scale), math.log(config.scale)))
            dx, dy = rng.uniform(-config.shift, config.shift, 2) * side
        k = config.upscale * factor
        centre = np.array([(canvas - 1) / 2 + dx, (canvas - 1) / 2 + dy])
        theta = math.radians(angle)
        rot = k * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        m = np.hstack([rot, (centre - rot @ [(SIDE - 1) / 2, (SIDE - 1) / 2])[:, None]])  # crop pixels -> photo
        photos.append(cv2.warpAffine(np.ascontiguousarray(image[..., 0]), m, (canvas, canvas), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REPLICATE))
        width = SIDE * k
        x, y = centre - (width - 1) / 2
        eyes = [tuple(float(v) for v in m @ [ex, ey, 1.0]) for ex, ey in EYES]
        faces.append(Face((int(round(x)), int(round(y)), int(round(width)), int(round(width))), 1.0,
                          {"left_eye": eyes[0], "right_eye": eyes[1]}))
    return photos, faces


class KnownFaces(Detector):
    """A "detector" that returns each photo's true face (box and eye line) from :func:`frame_faces`."""

    name = KNOWN

    def __init__(self, photos: list[np.ndarray], faces: list[Face]):
        super().__init__(min_score=0.0, max_side=None)
        self._faces = {id(p): (p, f) for p, f in zip(photos, faces)}  # the photo kept: its id stays its own

    def detect(self, image: np.ndarray) -> list[Face]:
        return [self._faces[id(image)][1]]


class _Remembered(Detector):
    """``detector`` run once per photo however often it is asked (the crop settings share one
    detection), timing its calls."""

    def __init__(self, detector: Detector):
        super().__init__(min_score=detector.min_score, max_side=detector.max_side)
        self.detector, self.name = detector, detector.name
        self.seconds, self._seen = 0.0, {}

    def detect(self, image: np.ndarray) -> list[Face]:
        if id(image) not in self._seen:
            start = time.perf_counter()
            self._seen[id(image)] = (image, self.detector.detect(image))
            self.seconds += time.perf_counter() - start
        return self._seen[id(image)][1]

    @property
    def calls(self) -> int:
        return len(self._seen)


# ------------------------------------------------------------------------------- the measurement


def _level(faces) -> bool:
    """Whether alignment changes nothing for these faces: no eye landmarks, or every eye line level."""
    for face in faces:
        marks = face.landmarks or {}
        if "left_eye" in marks and "right_eye" in marks and marks["left_eye"][1] != marks["right_eye"][1]:
            return False
    return True


def _largest(found) -> tuple[Face, np.ndarray] | None:
    return max(found, key=lambda pair: pair[0].area) if found else None


def _inside(face: Face, truth: Face) -> bool:
    x, y, w, h = face.box
    tx, ty, tw, th = truth.box
    cx, cy = x + w / 2, y + h / 2
    return tx <= cx <= tx + tw and ty <= cy <= ty + th


def _scores(labels: np.ndarray, preds: np.ndarray, found: np.ndarray, k: int) -> dict:
    from sklearn.metrics import f1_score

    n, hits = len(labels), found & (preds == labels)
    acc_all = float(hits.mean()) if n else float("nan")
    return {"images": int(n), "found": int(found.sum()), "detection_rate": float(found.mean()) if n else float("nan"),
            "accuracy_found": float(hits.sum() / found.sum()) if found.any() else float("nan"),
            "macro_f1_found": float(f1_score(labels[found], preds[found], labels=range(k), average="macro",
                                             zero_division=0)) if found.any() else float("nan"),
            "accuracy_all": acc_all,
            "ci95": float(1.96 * math.sqrt(acc_all * (1 - acc_all) / n)) if n else float("nan")}


def measure(faces: FaceData, classifier, config: FramingConfig, log: Callable = print) -> dict:
    """Run the grid on ``faces`` (48x48 labelled crops) with ``classifier``
    (:class:`~fer_keras.classifier.Classifier`). Returns ``{"reference", "rows", "correct",
    "detection_ms"}``: ``rows`` as :data:`TABLE_FIELDS`; ``correct[(framing, detector, align,
    margin)]`` the per-photo 0/1 vector (a miss is 0) the choice is made from; ``align_no_op``
    the [framing, detector] pairs whose alignment changed nothing (one ``n/a`` row each)."""
    from fer_keras.recognizer import classify_faces

    labels = _model_labels(faces, classifier.class_names)
    k = len(classifier.class_names)
    row_of = lambda framing, detector, align, margin, s, **extra: {  # noqa: E731
        "framing": framing, "detector": detector, "align": align, "margin": margin, **s, **extra}

    found = classify_faces(list(faces.images), get_detector("none"), classifier, batch_size=config.batch_size)
    preds = np.array([int(pairs[0][1].argmax()) for pairs in found])
    reference = row_of(ORIGINAL, "none", "n/a", 0.0, _scores(labels, preds, np.ones(len(labels), bool), k),
                       box_ratio=1.0, extra_faces=0)
    log(f"{ORIGINAL}: accuracy {reference['accuracy_all']:.4f} on {len(labels)} faces")
    rows, correct, detection_ms, no_op = [], {}, {}, []
    for framing in config.framings:
        photos, truths = frame_faces(faces.images, framing, config)
        detectors = [KnownFaces(photos, truths)] + [_Remembered(get_detector(name)) for name in config.detectors]
        for detector in detectors:
            level = None
            for align in (False, True):
                for margin in config.margins:
                    if align and level:
                        continue
                    start = time.perf_counter()
                    found = classify_faces(photos, detector, classifier, margin=margin, align=align,
                                           batch_size=config.batch_size)
                    if level is None:
                        level = _level(f for pairs in found for f, _ in pairs)
                        if level:
                            no_op.append([framing, detector.name])
                    kept = [_largest(pairs) for pairs in found]
                    hit = np.array([pair is not None and _inside(pair[0], truth) for pair, truth in zip(kept, truths)])
                    preds = np.array([-1 if pair is None else int(pair[1].argmax()) for pair in kept])
                    ratios = [max(pair[0].box[2:]) / truth.box[2] for pair, truth, h in zip(kept, truths, hit) if h]
                    shown = "n/a" if level else ("on" if align else "off")
                    row = row_of(framing, detector.name, shown, margin, _scores(labels, preds, hit, k),
                                 box_ratio=float(np.median(ratios)) if ratios else float("nan"),
                                 extra_faces=int(sum(len(pairs) > 1 for pairs in found)))
                    rows.append(row)
                    vector = (hit & (preds == labels)).astype(np.int8)
                    for a in ((False, True) if level else (align,)):
                        correct[(framing, detector.name, a, margin)] = vector
                    log(f"{framing:10s} {detector.name:10s} align {shown:3s} margin {margin:.2f}: found "
                        f"{row['detection_rate']:.3f}, accuracy {row['accuracy_found']:.4f} on found, "
                        f"{row['accuracy_all']:.4f} misses wrong ({time.perf_counter() - start:.1f} s)")
            if isinstance(detector, _Remembered):
                detection_ms.setdefault(detector.name, {})[framing] = round(
                    1000 * detector.seconds / max(detector.calls, 1), 1)
    return {"reference": reference, "rows": rows, "correct": correct, "detection_ms": detection_ms,
            "align_no_op": no_op}


def _model_labels(faces: FaceData, model_names) -> np.ndarray:
    """``faces.labels`` as indices into the model's class names."""
    missing = [n for n in faces.class_names if n not in model_names]
    if missing:
        raise ConfigError(f"the faces have classes the model does not ({', '.join(missing)}); the model's: "
                          f"{', '.join(model_names)}")
    remap = np.array([list(model_names).index(n) for n in faces.class_names])
    return remap[faces.labels]


# ------------------------------------------------------------------------------------ the choice


def paired_gain(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> dict:
    """Mean gain of ``a`` over ``b`` (0/1 arrays (framings, photos), the same photos) and its
    95% bootstrap interval, resampling photos (each with all its framings)."""
    per_photo = (a.astype(np.float64) - b).mean(0)
    rng = np.random.default_rng(seed)
    means = np.array([per_photo[rng.integers(0, len(per_photo), len(per_photo))].mean() for _ in range(resamples)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"gain": float(per_photo.mean()), "interval": [float(lo), float(hi)]}


def choose_defaults(result: dict, config: FramingConfig, current: tuple[float, bool] | None = None) -> dict:
    """The defaults :data:`RULE` picks from :func:`measure`'s ``result``: ``margin``, ``align``,
    ``detector_order``, with the scores and paired intervals they rest on. The auto detector is
    the first installed one measured; ``current``: the default (margin, align) to beat (default:
    :func:`current_default`)."""
    correct = result["correct"]
    current = current or current_default()
    detectors = [d for d in BACKENDS if d in config.detectors]
    auto = next((d for d in available_backends() if d in detectors), detectors[0])

    def stack(detector, align, margin):
        return np.stack([correct[(f, detector, bool(align), margin)] for f in config.framings])

    def best(detector):
        options = [(stack(detector, align, m).mean(), -m, align, m) for m in config.margins for align in (True, False)]
        score, _, align, margin = max(options)
        no_op = all([f, detector] in result["align_no_op"] for f in config.framings)
        return {"margin": margin, "align": None if no_op else align, "score": float(score)}

    out = {"rule": RULE, "framings": list(config.framings), "auto_detector": auto,
           "current": {"margin": current[0], "align": current[1]}}
    if auto != available_backends()[0]:
        out["auto_note"] = f"auto is {available_backends()[0]} here, which was not measured: {auto} stands in"
    chosen = best(auto)
    out["best"] = chosen
    if current[0] in config.margins:
        base = stack(auto, current[1], current[0])
        out["current"]["score"] = float(base.mean())
        gain = paired_gain(stack(auto, chosen["align"], chosen["margin"]), base, config.bootstrap, config.seed)
        out["gain_over_current"] = gain
        change = gain["interval"][0] > 0
    else:
        out["note"] = f"the current margin {current[0]:g} was not measured: the best setting is taken"
        change = True
    chosen_align = current[1] if chosen["align"] is None else chosen["align"]  # a no-op: keep the default's
    out["margin"], out["align"] = (chosen["margin"], chosen_align) if change else current
    out["changed"] = bool(change and (chosen["margin"], chosen_align) != tuple(current))

    bests = {d: best(d) for d in detectors}
    order = list(detectors)
    comparisons = {}
    for _ in range(len(order)):  # bubble a later detector ahead only when it wins clearly
        for i in range(len(order) - 1):
            early, late = order[i], order[i + 1]
            key = f"{late} over {early}"
            if key not in comparisons:
                comparisons[key] = paired_gain(stack(late, bests[late]["align"], bests[late]["margin"]),
                                               stack(early, bests[early]["align"], bests[early]["margin"]),
                                               config.bootstrap, config.seed)
            if comparisons[key]["interval"][0] > 0:
                order[i], order[i + 1] = late, early
    out.update(detector_best=bests, detector_comparisons=comparisons, detector_order=order)
    return out


# ------------------------------------------------------------------------------------ the run folder


def load_faces(config: FramingConfig, log: Callable = print) -> tuple[FaceData, str]:
    """The faces to frame (``config.data``'s PublicTest, or the demo set's), sampled to ``config.limit``,
    and a description of them."""
    if config.data is None:
        from fer_keras.data import make_demo

        faces = make_demo(images_per_class=50, seed=0)
        what = "the bundled synthetic demo set's PublicTest faces (drawn faces: the figures mean nothing for photos)"
        log(f"No --data given: using {what}")
    else:
        from fer_keras.data import load_dataset

        faces = load_dataset(config.data, log=log)
        what = f"{config.data} PublicTest"
    faces = faces.take(faces.usage == "PublicTest")
    if len(faces) == 0:
        raise ConfigError(f"{config.data or 'demo set'}: no PublicTest faces (FER2013's test/ folder or Usage column)")
    if config.limit is not None and config.limit < len(faces):
        faces = faces.take(stratified_indices(faces.labels, config.limit, config.seed))
        what += f", a class-stratified sample of {len(faces)} (seed {config.seed})"
    return faces, what


def run_study(config: FramingConfig, log: Callable = print, classifier=None) -> RunFolder:
    """Measure ``config``'s grid and write the run folder; returns it. ``classifier``: an already
    loaded :class:`~fer_keras.classifier.Classifier` (default: ``config.model`` loaded)."""
    from fer_keras.classifier import load_classifier

    for name in config.detectors:  # a missing package fails now, in one line, before any work
        get_detector(name)
    faces, what = load_faces(config, log)
    classifier = classifier or load_classifier(config.model)
    label = Path(str(config.model)).name if config.model else "model"
    run = RunFolder.create(config.out, f"framing-{label}")
    run.lock()
    try:
        auto = available_backends()[0]
        run.write_config(config, {
            "faces": what, "images": len(faces), "class_counts": faces.class_counts(),
            "model": {"path": str(classifier.path), "input_shape": list(classifier.input_shape),
                      "input_mode": classifier.mode, "class_names": list(classifier.class_names)},
            "photo_side": int(round(SIDE * config.upscale * (1 + 2 * config.pad))), "auto_detector": auto,
            "detectors": {d: repr(get_detector(d)) for d in config.detectors}}, study=FRAMING_STUDY)
        log(f"Run folder: {run.path}; {len(faces)} faces, model {config.model} {tuple(classifier.input_shape)}")
        result = measure(faces, classifier, config, log)
        result["choice"] = choose_defaults(result, config)
        write_results(run, result, config, what)
    finally:
        run.unlock()
    return run


def _cell(value, fmt="{:.4f}"):
    return "-" if value is None or value != value else fmt.format(value)


def write_results(run: RunFolder, result: dict, config: FramingConfig, what: str = "") -> None:
    """``table.csv``, ``table.md``, ``metrics.json`` and ``figures/framing.png`` of :func:`measure`'s
    ``result`` (with its ``"choice"``) in ``run``."""
    rows = [result["reference"]] + result["rows"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TABLE_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run / TABLE_CSV_FILE, buf.getvalue())
    md = markdown.table(
        ["framing", "detector", "align", "margin", "found %", "accuracy on found %", "macro F1 on found",
         "accuracy, misses wrong %", "box side / true side"],
        [[r["framing"], r["detector"], r["align"], f"{r['margin']:g}", markdown.pct(r["detection_rate"], 1),
          markdown.pct(r["accuracy_found"]) if r["found"] else "-", _cell(r["macro_f1_found"]),
          f"{markdown.pct(r['accuracy_all'])} ± {markdown.pct(r['ci95'], 1)}", _cell(r["box_ratio"], "{:.2f}")]
         for r in rows])
    md += ["", f"{result['reference']['images']} faces: {what}. ± is a 95% interval. "
           f"Photos: each face {config.upscale}x upscaled, {config.pad:g} face sides of repeated-border background "
           f"on each side; jittered: rotation up to ±{config.rotate:g}°, shift up to ±{config.shift:g} face sides, "
           f"size x[1/{config.scale:g}, {config.scale:g}]. A face is found when the largest face's centre lies in "
           "the true face box."]
    choice = result.get("choice")
    if choice:
        md += ["", f"**Rule** (fixed before measuring): {choice['rule']}", "", "**Result**: " + describe_choice(choice)]
    atomic_write_text(run / TABLE_MD_FILE, "\n".join(md) + "\n")
    write_json(run / METRICS_FILE, {"reference": result["reference"], "rows": result["rows"],
                                    "detection_ms_per_photo": result["detection_ms"],
                                    "align_no_op": result["align_no_op"], "choice": choice})
    run.figures_dir.mkdir(exist_ok=True)
    plots.framing_curves(result["rows"], result["reference"]["accuracy_all"], run.figures_dir / FRAMING_FIGURE)


def _on(align) -> str:
    return "n/a" if align is None else "on" if align else "off"


def describe_choice(choice: dict) -> str:
    """One paragraph: what the rule chose and why."""
    best, current = choice["best"], choice["current"]
    text = (f"for auto = {choice['auto_detector']}, the best setting is margin {best['margin']:g}, align "
            f"{_on(best['align'])} ({100 * best['score']:.2f} % pooled over the framings)")
    if "gain_over_current" in choice:
        g = choice["gain_over_current"]
        text += (f"; the current default (margin {current['margin']:g}, align {'on' if current['align'] else 'off'}) "
                 f"scores {100 * current['score']:.2f} %, a gain of {100 * g['gain']:+.2f} points "
                 f"[{100 * g['interval'][0]:+.2f}, {100 * g['interval'][1]:+.2f}]")
    if "auto_note" in choice:
        text += f" ({choice['auto_note']})"
    text += (f". Defaults: margin {choice['margin']:g}, align {'on' if choice['align'] else 'off'}"
             f" ({'changed' if choice['changed'] else 'unchanged'}); auto detector order "
             + ", ".join(choice["detector_order"]) + " (each at its best: "
             + "; ".join(f"{d} {100 * b['score']:.2f} % at margin {b['margin']:g}, align {_on(b['align'])}"
                         for d, b in choice["detector_best"].items()) + ").")
    return text
