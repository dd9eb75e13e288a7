"""Export a trained (base) model as a Keras ``.keras`` file and a TensorFlow SavedModel.

SavedModel signature ``serving_default``: input ``image`` float32 (B, H, W, C), already prepared
as the model expects (see :mod:`fer_keras.data.pipeline`); output ``probabilities`` (B, K).
Custom layers are registered Keras serializables, so ``tf.keras.models.load_model`` needs no
``custom_objects``.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_keras.adversarial import base_model

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def export_model(model: tf.keras.Model, out_dir: str | Path) -> dict[str, Path]:
    """Write ``out_dir/model.keras`` and ``out_dir/saved_model/``; each appears whole or not at all."""
    model = base_model(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        tmp = Path(tmp)
        model.save(tmp / KERAS_FILE)
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="image")

        @tf.function(input_signature=[spec])
        def serve(image):
            return {"probabilities": model(image, training=False)}

        tf.saved_model.save(model, str(tmp / SAVED_MODEL_DIR), signatures={"serving_default": serve})
        for name in (KERAS_FILE, SAVED_MODEL_DIR):
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            (tmp / name).replace(target)
    return {"keras": out_dir / KERAS_FILE, "saved_model": out_dir / SAVED_MODEL_DIR}


def load_keras(path: str | Path) -> tf.keras.Model:
    return tf.keras.models.load_model(str(path), compile=False)


def saved_model_predict(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from a SavedModel's ``serving_default`` signature."""
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](image=tf.constant(images, tf.float32))
    return out["probabilities"].numpy()


def check_exports(model: tf.keras.Model, paths: dict[str, Path], images: np.ndarray) -> dict[str, float]:
    """Max absolute probability difference of each export against ``model`` on ``images``."""
    expected = base_model(model).predict(images, verbose=0)
    return {
        "keras_max_abs_diff": float(np.abs(load_keras(paths["keras"]).predict(images, verbose=0) - expected).max()),
        "saved_model_max_abs_diff": float(np.abs(saved_model_predict(paths["saved_model"], images) - expected).max()),
    }
