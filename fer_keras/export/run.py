"""Running exported models: a SavedModel signature, a TFLite file (:class:`TFLiteModel`), and the
description written beside them (:func:`read_model_info`)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras.errors import DataError
from fer_keras.export.files import CARD_FILE, MODEL_INFO_FILE, UINT8_SIGNATURE
from fer_keras.files import read_json
from fer_keras.model_files import load_saved_model, read_tflite


def saved_model_predict(path: str | Path, images: np.ndarray, signature: str = "serving_default",
                        trusted: bool = False) -> np.ndarray:
    """Probabilities (B, K) from a SavedModel signature: ``serving_default`` takes prepared
    float32 ``image`` (B, H, W, C); ``serving_uint8`` takes uint8 ``pixels`` 0..255.
    A SavedModel's ops run when it loads: it must be ``trusted`` (e.g. just written by :func:`export_model`)."""
    loaded = load_saved_model(path, trusted)
    if signature == UINT8_SIGNATURE:
        return loaded.signatures[signature](pixels=tf.constant(images, tf.uint8))["probabilities"].numpy()
    return loaded.signatures[signature](image=tf.constant(images, tf.float32))["probabilities"].numpy()


class TFLiteModel:
    """A TFLite model as a callable: prepared float32 (B, H, W, C) -> probabilities (B, K).

    :attr:`info` is the input description written beside it (:func:`read_model_info`: class names,
    how to prepare pixels) or None; :attr:`class_names` its class names or None.
    ``num_threads`` is the interpreter's CPU threads (None = TFLite's default). When the batch
    size changes, the interpreter is rebuilt for it (resizing an already-invoked interpreter
    crashes TF 2.19's XNNPACK delegate on dynamic-range quantised models).
    """

    def __init__(self, path: str | Path, num_threads: int | None = None, trusted: bool = False):
        self.content = read_tflite(path, trusted)  # custom (Flex) ops, which can run any TF op, need trusted
        self.num_threads = num_threads
        self._build(None)
        #: the model's input shape (H, W, C) without the batch axis
        self.input_shape = tuple(int(v) for v in self.interpreter.get_input_details()[0]["shape"][1:])
        self.info = read_model_info(path)
        self.class_names = tuple(self.info["class_names"]) if self.info else None

    def _build(self, shape) -> None:
        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (TF 2.19; LiteRT is its successor)
            warnings.simplefilter("ignore", UserWarning)
            self.interpreter = tf.lite.Interpreter(model_content=self.content, num_threads=self.num_threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        if shape is not None:
            self.interpreter.resize_tensor_input(self._input, list(shape))
        self.interpreter.allocate_tensors()
        self._batch = int(self.interpreter.get_input_details()[0]["shape"][0])  # as built: no rebuild for it

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if len(images) != self._batch:
            self._build(images.shape)
        self.interpreter.set_tensor(self._input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).copy()


def read_model_info(path: str | Path) -> dict | None:
    """The description written beside an exported model, or None when there is none.

    Looks for ``model_info.json`` (written by :func:`export_model`) or a pretrained model's
    ``card.json`` (:mod:`fer_keras.pretrained`) beside a model file, or in / beside a SavedModel
    folder. Returns ``{"class_names": [...], "input": {"shape", "mode", "standardize", "mean", "std", ...}, ...}``.
    """
    path = Path(path)
    for folder in ([path, path.parent] if path.is_dir() else [path.parent]):
        for name in (MODEL_INFO_FILE, CARD_FILE):
            file = folder / name
            if file.is_file():
                try:
                    info = read_json(file)
                except ValueError:
                    raise DataError(f"{file}: not valid JSON") from None
                if isinstance(info, dict) and "class_names" in info and "input" in info:
                    return info
    return None


def tflite_predict(path: str | Path, images: np.ndarray, num_threads: int | None = None,
                   trusted: bool = False) -> np.ndarray:
    """Probabilities (B, K) of a TFLite model on prepared float32 ``images`` (B, H, W, C)."""
    return TFLiteModel(path, num_threads, trusted)(images)
