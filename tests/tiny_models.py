"""Tiny expression models saved the ways users hold them (run folder, .keras, pretrained folder),
for the one-call API, pretrained registry, evaluate and export tests. Seconds to build."""
from pathlib import Path

from fer_keras.data.labels import CLASS_NAMES


def tiny_model(shape=(48, 48, 1), classes=7, seed=0):
    """A ~1.5 k-parameter plain CNN (fer_keras.models.small_cnn), pixels / 255 in, softmax out."""
    import tensorflow as tf

    from fer_keras.models.small_cnn import small_cnn

    tf.keras.utils.set_random_seed(seed)
    return small_cnn(shape, classes, widths=(4, 8, 8), dense=8, name="tiny")


def tiny_run(folder: Path, data: str | None = "path/to/fer2013", class_names=CLASS_NAMES, shape=(48, 48, 1),
             tflite: bool = False) -> Path:
    """A finished-looking run folder: config.json (``data`` as given; None = the demo set) + model/ exports."""
    from fer_keras.config import ExperimentConfig
    from fer_keras.data.pipeline import InputSpec
    from fer_keras.export import export_model
    from fer_keras.files import write_json

    folder = Path(folder)
    model = tiny_model(shape, len(class_names))
    export_model(model, folder / "model", InputSpec(shape, "unit", class_names=class_names), tflite=tflite)
    write_json(folder / "config.json", {
        "config": ExperimentConfig.from_dict({"data": data, "model": "dcnn"}).to_dict(),
        "resolved": {"input_shape": list(shape), "input_mode": "unit", "class_names": list(class_names),
                     "dataset_mean": None, "dataset_std": None, "images": {"train": 10, "val": 2, "test": 2}}})
    write_json(folder / "metrics.json", {"accuracy": 0.25, "macro_f1": 0.1, "images": 2})
    (folder / "history.csv").write_text("epoch,loss,val_categorical_accuracy\n0,1.9,0.25\n1,1.8,0.5\n")
    return folder
