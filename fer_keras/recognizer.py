"""Emotions in one call: ``EmotionRecognizer().detect_emotions(image)``.

    import fer_keras
    faces = fer_keras.detect_emotions("photo.jpg")      # the default pretrained model, best installed detector
    label, score = fer_keras.top_emotion("photo.jpg")   # ("happiness", 0.93), or (None, None) without a face

An image is a path, a PIL image or a numpy array: RGB (H, W, 3), RGBA (H, W, 4) or gray (H, W) /
(H, W, 1), any size; uint8 0..255, or float (0..1 when its maximum is at most 1, else 0..255).
Every face comes back as predict writes it: ``box`` [x, y, w, h] pixels, detector ``score``,
``landmarks`` ({name: [x, y]} or None for Haar), ``label`` and ``probabilities`` {class: p}.
``names="fer"`` spells classes as the ``fer`` package does (angry, disgust, fear, happy, sad,
surprise, neutral) and adds its ``emotions`` key (the same dict as ``probabilities``), for drop-in use.

The model is a pretrained name (:mod:`fer_keras.pretrained`), a run folder, a ``.keras`` file, a
SavedModel folder, a ``.tflite`` file or a :class:`fer_keras.classifier.Classifier`
(:func:`~fer_keras.classifier.load_classifier`). Nothing is loaded until a recognizer is made.
"""
from __future__ import annotations

import os

import numpy as np

from fer_keras.classifier import DemoModelWarning, load_classifier
from fer_keras.config import check_tta
from fer_keras.data.images import read_image, to_rgb
from fer_keras.data.labels import class_id
from fer_keras.errors import ConfigError, DataError
from fer_keras.faces import CROP_MARGIN, boxes_to_faces, crop_face, crop_margin, get_detector
from fer_keras.pretrained import DEFAULT_MODEL

#: The ``fer`` package's class names, in the project's class order (anger ... neutral).
FER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NAME_STYLES = ("project", "fer")


def display_names(class_names, names: str = "project") -> tuple[str, ...]:
    """``class_names`` as spelled by ``names``: ``"project"`` (as given) or ``"fer"`` (angry, happy, ...;
    names that are no FER2013 class stay as they are)."""
    if names not in NAME_STYLES:
        raise ConfigError(f"names must be one of {', '.join(NAME_STYLES)}, not {names!r}")
    if names == "project":
        return tuple(class_names)
    out = []
    for name in class_names:
        try:
            out.append(FER_NAMES[class_id(name)])
        except ConfigError:
            out.append(name)
    return tuple(out)


def as_image(image) -> np.ndarray:
    """uint8 RGB (H, W, 3) from a path, a PIL image or an array (see the module docstring)."""
    if isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise DataError(f"{image}: no such image file")
        pixels = read_image(image)
        if pixels is None:
            raise DataError(f"{image}: not a readable image")
        return pixels
    if hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        image = image.convert("RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)) or min(pixels.shape[:2]) < 1:
        raise DataError(f"image of shape {pixels.shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if pixels.dtype != np.uint8:
        if pixels.dtype == bool or not np.issubdtype(pixels.dtype, np.number):
            raise DataError(f"image of dtype {pixels.dtype}: expected uint8 0..255 or float pixels")
        values = pixels.astype(np.float32)
        if not np.isfinite(values).all():
            raise DataError("image has NaN or infinite pixels")
        if np.issubdtype(pixels.dtype, np.floating) and values.max() <= 1.0:
            values = values * 255.0
        if values.min() < 0 or values.max() > 255.5:
            raise DataError(f"image pixels range {values.min():g}..{values.max():g}: expected 0..255 (or 0..1 floats)")
        pixels = np.rint(values).clip(0, 255).astype(np.uint8)
    return to_rgb(pixels)


def face_crops(images, detector, input_shape, *, margin: float = CROP_MARGIN, align: bool = True, boxes=None
               ) -> tuple[list[list], list[np.ndarray]]:
    """The faces of each RGB/gray uint8 image (None: no image, no faces) and their crops for a model
    taking ``input_shape`` (H, W, C): per image its :class:`~fer_keras.faces.Face` list, and the crops
    of all images' faces in that order, uint8 (H, W, C) each. ``boxes``: per image, None (detect) or
    the caller's own (x, y, width, height) face boxes, cropped as they are (no margin, no alignment)."""
    height, width, channels = input_shape
    boxes = [None] * len(images) if boxes is None else list(boxes)
    if len(boxes) != len(images):
        raise ConfigError(f"{len(boxes)} lists of face boxes for {len(images)} images; give one per image (or None)")
    margin, align = crop_margin(detector, margin, align)
    found = [[] if image is None else detector.detect(image) if given is None else boxes_to_faces(given)
             for image, given in zip(images, boxes)]
    given = [b is not None for b in boxes]
    crops = [crop_face(image, face, (height, width), 0.0 if mine else margin, align and not mine, gray=channels == 1)
             for image, faces, mine in zip(images, found, given) for face in faces]
    return found, crops


def classify_faces(images, detector, classifier, *, margin: float = CROP_MARGIN, align: bool = True, batch_size: int = 64,
                   tta: str = "none", boxes=None) -> list[list[tuple]]:
    """Detect the faces of each RGB/gray uint8 image (None: no image, no faces) and classify them
    all together, ``batch_size`` crops per model call. ``boxes``: per image, None (detect) or the
    caller's own (x, y, width, height) face boxes, used as they are (no margin added, no
    alignment). Returns, per image, ``(Face, probabilities)`` pairs (probabilities: float32 (K,) in
    ``classifier.class_names`` order)."""
    found, crops = face_crops(images, detector, classifier.input_shape, margin=margin, align=align, boxes=boxes)
    probs = (np.concatenate([classifier(np.stack(crops[i:i + batch_size]), tta=tta)
                             for i in range(0, len(crops), batch_size)])
             if crops else np.zeros((0, len(classifier.class_names)), np.float32))
    out, k = [], 0
    for faces in found:
        out.append(list(zip(faces, probs[k:k + len(faces)])))
        k += len(faces)
    return out


def probability_dict(class_names, probabilities) -> dict[str, float]:
    """``{class name: probability}``, rounded to 5 decimals (what predictions.json and the API show)."""
    return {c: round(float(v), 5) for c, v in zip(class_names, probabilities)}


class EmotionRecognizer:
    """Faces and their expressions from images, in one call.

    Args:
        model: pretrained name, run folder, .keras, SavedModel, .tflite or Classifier (:func:`load_classifier`).
        detector: ``"auto"`` (best installed), ``"retinaface"``, ``"mtcnn"``, ``"haar"``, a Detector, or
            ``None`` / ``"none"`` when the images are faces already cropped (each image is one face).
        names: ``"project"`` (anger, happiness, ...) or ``"fer"`` (the ``fer`` package's angry, happy, ...).
        margin: crop margin on each side, a share of the face box; ``align``: level the eyes.
        batch_size: face crops per model call.
        min_score: drop faces the detector scores below this (RetinaFace, MTCNN).
        input_mode, class_names: override what the model's files say (see :func:`load_classifier`).
        tta: ``"flip"`` averages each face's probabilities with its mirror image's (twice the model
            cost; the model card's TTA figure), ``"flip+crops"`` over 12 views (:mod:`fer_keras.tta`);
            ``"none"`` matches the exported SavedModel / TFLite.
    """

    def __init__(self, model=DEFAULT_MODEL, detector="auto", names: str = "project", *, margin: float = CROP_MARGIN,
                 align: bool = True, batch_size: int = 64, min_score: float | None = None,
                 input_mode: str | None = None, class_names=None, tta: str = "none"):
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        self.tta = check_tta(tta)
        self.classifier = load_classifier(model, input_mode, class_names)
        self.detector = get_detector(detector, **({} if min_score is None else {"min_score": min_score}))
        self.names = names
        #: class names in output order, spelled as ``names`` asks
        self.class_names = display_names(self.classifier.class_names, names)
        self.margin, self.align, self.batch_size = margin, align, batch_size

    def detect_emotions(self, image, face_rectangles=None) -> list[dict]:
        """Every face in ``image``, left to right, with its expression; ``[]`` when there is none.
        ``face_rectangles``: the caller's own (x, y, width, height) face boxes, classified as they
        are instead of detecting (as the ``fer`` package's argument of that name)."""
        return self.detect_emotions_batch([image], None if face_rectangles is None else [face_rectangles])[0]

    def detect_emotions_batch(self, images, face_rectangles=None) -> list[list[dict]]:
        """:meth:`detect_emotions` for each of ``images``; the faces of all images are classified together
        (one model call per ``batch_size`` faces). ``face_rectangles``: per image, None or its face boxes."""
        found = classify_faces([as_image(image) for image in images], self.detector, self.classifier,
                               margin=self.margin, align=self.align, batch_size=self.batch_size, tta=self.tta,
                               boxes=face_rectangles)
        results = []
        for faces in found:
            records = []
            for face, p in faces:
                described = face.to_dict()
                record = {"box": described["box"], "score": described["score"],
                          "landmarks": described.get("landmarks"), "label": self.class_names[int(p.argmax())],
                          "probabilities": probability_dict(self.class_names, p)}
                if self.names == "fer":
                    record["emotions"] = record["probabilities"]
                records.append(record)
            results.append(records)
        return results

    def top_emotion(self, image) -> tuple[str, float] | tuple[None, None]:
        """(label, probability) of the largest face in ``image``; (None, None) when there is no face."""
        faces = self.detect_emotions(image)
        if not faces:
            return None, None
        face = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        return face["label"], face["probabilities"][face["label"]]

    def __repr__(self) -> str:
        return (f"EmotionRecognizer(model={str(self.classifier.path)!r}, detector={self.detector.name!r}, "
                f"names={self.names!r}, tta={self.tta!r})")


_DEFAULT: EmotionRecognizer | None = None


def default_recognizer() -> EmotionRecognizer:
    """The recognizer behind :func:`detect_emotions` / :func:`top_emotion`, made on first use
    (the default pretrained model, the best installed detector)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = EmotionRecognizer()
    return _DEFAULT


def detect_emotions(image) -> list[dict]:
    """Faces and expressions in ``image`` with the default pretrained model (see :class:`EmotionRecognizer`)."""
    return default_recognizer().detect_emotions(image)


def top_emotion(image) -> tuple[str, float] | tuple[None, None]:
    """(label, probability) of the largest face in ``image`` with the default model; (None, None) if none."""
    return default_recognizer().top_emotion(image)


__all__ = ["DemoModelWarning", "EmotionRecognizer", "FER_NAMES", "classify_faces", "detect_emotions", "display_names",
           "load_classifier", "probability_dict", "top_emotion"]
