"""fer_keras: facial expression recognition with TensorFlow/Keras 2.

Importing this package selects the Keras 2 API (tf-keras) before TensorFlow loads, so that Neural
Structured Learning, tensorflow-privacy and keras-cv work on TensorFlow >= 2.16; see
:mod:`fer_keras._compat` for exactly what is done and why. It also registers the custom layers
(:mod:`fer_keras.layers`), so ``tf.keras.models.load_model`` reads a saved GhostFace with no
``custom_objects``.
"""
from fer_keras._compat import KerasVersionError, select_keras2

select_keras2()

from fer_keras.errors import ConfigError, DataError, FerKerasError  # noqa: E402
from fer_keras import layers  # noqa: E402,F401  (registers the custom layers: saved models load by name)

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "EmotionRecognizer", "FerKerasError", "KerasVersionError", "__version__",
           "detect_emotions", "top_emotion"]


def detect_emotions(image) -> list[dict]:
    """Faces and expressions in ``image`` (path, PIL image or RGB/gray array) with the default pretrained
    model: ``[{"box", "score", "landmarks", "label", "probabilities"}, ...]``, ``[]`` without a face.
    See :mod:`fer_keras.recognizer`; the model is loaded on the first call."""
    from fer_keras.recognizer import detect_emotions as run

    return run(image)


def top_emotion(image):
    """(label, probability) of the largest face in ``image`` with the default model; (None, None) if none."""
    from fer_keras.recognizer import top_emotion as run

    return run(image)


def __getattr__(name):  # fer_keras.EmotionRecognizer without importing the recognizer at `import fer_keras`
    if name == "EmotionRecognizer":
        from fer_keras.recognizer import EmotionRecognizer

        return EmotionRecognizer
    raise AttributeError(f"module 'fer_keras' has no attribute {name!r}")
