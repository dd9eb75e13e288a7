"""The export folder's layout: the one place its file names are spelled."""

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "model.tflite"
TFLITE_DYNAMIC_FILE = "model_dynamic.tflite"
UINT8_SIGNATURE = "serving_uint8"
LABELS_FILE = "labels.txt"
MODEL_INFO_FILE = "model_info.json"
#: A shipped model's description (:mod:`fer_keras.pretrained`): model_info.json's content plus its figures.
CARD_FILE = "card.json"
