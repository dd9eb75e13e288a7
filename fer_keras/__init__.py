"""fer_keras: facial expression recognition with TensorFlow/Keras 2.

Importing this package selects the Keras 2 API (tf-keras) before TensorFlow loads, so that Neural
Structured Learning, tensorflow-privacy and keras-cv work on TensorFlow >= 2.16; see
:mod:`fer_keras._compat` for exactly what is done and why.
"""
from fer_keras._compat import KerasVersionError, select_keras2

select_keras2()

from fer_keras.errors import ConfigError, DataError, FerKerasError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "FerKerasError", "KerasVersionError", "__version__"]
