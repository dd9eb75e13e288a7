"""Export: a trained model as ``.keras``, SavedModel (with ``serving_uint8``) and TFLite files that
say what they are (class names, input preparation), checked against the Keras model.

* :mod:`~fer_keras.export.write`: :func:`export_model`, :func:`check_exports`, :func:`export_checked`.
* :mod:`~fer_keras.export.run`: :class:`TFLiteModel`, :func:`saved_model_predict`, :func:`read_model_info`.
* :mod:`~fer_keras.export.files`: the export folder's file names.
"""
from fer_keras.export.files import (CARD_FILE, KERAS_FILE, LABELS_FILE, MODEL_INFO_FILE, SAVED_MODEL_DIR,
                                    TFLITE_DYNAMIC_FILE, TFLITE_FILE, UINT8_SIGNATURE)
from fer_keras.export.run import TFLiteModel, read_model_info, saved_model_predict, tflite_predict
from fer_keras.export.write import (check_exports, convert_tflite, export_checked, export_model,
                                    out_of_space)

__all__ = ["CARD_FILE", "KERAS_FILE", "LABELS_FILE", "MODEL_INFO_FILE", "SAVED_MODEL_DIR", "TFLITE_DYNAMIC_FILE",
           "TFLITE_FILE", "UINT8_SIGNATURE", "TFLiteModel", "check_exports", "convert_tflite", "export_checked",
           "export_model", "out_of_space", "read_model_info", "saved_model_predict", "tflite_predict"]
