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
__all__ = ["ConfigError", "DataError", "FerKerasError", "KerasVersionError", "__version__"]
