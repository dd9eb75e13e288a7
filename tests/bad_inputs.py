"""A small, fast generator of bad inputs: CSVs, image folders, images, videos and model files.

Every function writes into a folder it is given and returns the path(s) it made. Models are tiny
(12x12x1 input, 7 classes, named ``dcnn`` so their input mode is known). The malicious models
write ``marker`` when their code runs; nothing else they do is harmful.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np

SHAPE = (12, 12, 1)
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


# ------------------------------------------------------------------------------------- CSV

def _row(label=3, usage="Training", value=7) -> str:
    return f"{label},{' '.join([str(value)] * 2304)},{usage}"


def good_csv(path: Path, rows: int = 4, bom: bool = False) -> Path:
    """A valid FER2013 CSV of ``rows`` rows (optionally with a UTF-8 byte-order mark)."""
    text = "emotion,pixels,Usage\n" + "".join(_row(i % 7) + "\n" for i in range(rows))
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def malformed_csv(path: Path) -> Path:
    """Line 3 has a 2,000-character non-numeric pixel field (errors must quote at most ~200)."""
    path.write_text("emotion,pixels,Usage\n" + _row() + "\n" + "3," + "x" * 2000 + ",Training\n")
    return path


def long_line_csv(path: Path, size: int = 2**20) -> Path:
    """A good CSV whose third line is ``size`` bytes of pixel values (the issue's was 200 MB)."""
    good_csv(path, rows=1)
    with path.open("ab") as f:
        f.write(b"3," + b"7 " * (size // 2) + b",Training\n")
    return path


def headerless_csv(path: Path) -> Path:
    """Data rows without the header line (the first row is 2,304 numbers: ~9 KB)."""
    path.write_text(_row() + "\n" + _row() + "\n")
    return path


def garbage_file(path: Path, size: int = 8192) -> Path:
    """Random bytes (with NULs), as a file picked by mistake."""
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


# ---------------------------------------------------------------------------- image folders

def face_png(path: Path, side: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".png", np.full((side, side), 128, np.uint8))[1].tobytes())  # any file name
    return path


def kaggle_folder(root: Path, extra_class: str | None = None, loop: bool = False, non_utf8: bool = False,
                  big: tuple[int, int] | None = None) -> Path:
    """``root/train/<class>/*.png`` for two classes; ``extra_class`` adds an unknown class folder,
    ``loop`` a symbolic link in ``happy/`` that points to itself, ``non_utf8`` a valid face PNG
    named ``bad\\xff\\xfe.png`` (bytes that are not UTF-8: OpenCV's imread crashed on it), ``big``
    a (width, height) PNG ``big.png`` in ``sad/`` (small on disk, huge decoded)."""
    for name in ("happy", "sad"):
        face_png(root / "train" / name / "0.png")
    if extra_class:
        face_png(root / "train" / extra_class / "0.png")
    if loop:
        (root / "train" / "happy" / "loop.png").symlink_to("loop.png")
    if non_utf8:
        face_png(Path(os.fsdecode(os.fsencode(root / "train" / "happy") + b"/bad\xff\xfe.png")))
    if big:
        large_png(root / "train" / "sad" / "big.png", *big)
    return root


def large_png(path: Path, width: int, height: int) -> Path:
    """A blank 1-bit gray PNG of ``width`` x ``height`` pixels, written as a stream (never held in
    memory: 20000 x 20000 is ~50 KB on disk, 400 MB once decoded to 8 bits)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows, compressor, body = bytes(1 + (width + 7) // 8) * 1000, zlib.compressobj(9), []
    for start in range(0, height, 1000):
        body.append(compressor.compress(rows[:(min(1000, height - start)) * (1 + (width + 7) // 8)]))
    body.append(compressor.flush())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b""))
    return path


def zero_frame_video(path: Path) -> Path:
    """An .avi (MJPG) that OpenCV opens but that holds no frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    writer.release()
    return path


# ------------------------------------------------------------------------------------ models

def tiny_model():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(SHAPE, name="image")
    x = tf.keras.layers.Flatten()(inputs)
    outputs = tf.keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    return tf.keras.Model(inputs, outputs, name="dcnn")


def lambda_model(marker: Path):
    """A model whose Lambda layer writes ``marker`` whenever it is called (also while loading)."""
    import tensorflow as tf

    inputs = tf.keras.Input(SHAPE, name="image")
    x = tf.keras.layers.Flatten()(inputs)
    x = tf.keras.layers.Lambda(lambda t, m=str(marker): (open(m, "w").write("ran"), t)[1])(x)
    outputs = tf.keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    model = tf.keras.Model(inputs, outputs, name="dcnn")
    Path(marker).unlink(missing_ok=True)  # building it called the Lambda once
    return model


def hdf5_lambda_as_keras(path: Path, marker: Path) -> Path:
    """The Lambda model saved as Keras-2 HDF5, then renamed to ``path`` (e.g. ``x.keras``)."""
    import warnings

    h5 = path.with_name(path.stem + "-tmp.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 ... is considered legacy": the point here
        lambda_model(marker).save(h5)
    h5.replace(path)
    return path


def keras_zip_lambda(path: Path, marker: Path) -> Path:
    """The Lambda model as a real .keras zip (Keras' safe mode must refuse it)."""
    lambda_model(marker).save(path)
    return path


def keras_zip_module_reference(path: Path) -> Path:
    """A .keras zip whose Dense activation names ``os.system`` (an import Keras would follow)."""
    tiny_model().save(path)

    def change(files):
        config = json.loads(files["config.json"])
        dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        dense["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system",
                                         "registered_name": "system"}
        files["config.json"] = json.dumps(config).encode()

    return _rewrite_zip(path, change)


def _rewrite_zip(path: Path, change) -> Path:
    """Rewrite the zip at ``path`` with ``change(files)`` applied to its {name: bytes}."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


class _WritesMarker:
    """Unpickling it writes ``marker`` (exec of one line of Python: what a pickle can do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def keras_zip_pickled_npz(path: Path, marker: Path) -> Path:
    """A .keras zip with a clean config whose weights are ``model.weights.npz`` holding a pickle
    that writes ``marker`` when tf-keras loads it (``np.load(..., allow_pickle=True)``)."""
    import io

    tiny_model().save(path)

    def change(files):
        buffer = io.BytesIO()
        np.savez(buffer, __root__=np.array([_WritesMarker(marker)], dtype=object))  # read for the model itself
        del files["model.weights.h5"]
        files["model.weights.npz"] = buffer.getvalue()

    return _rewrite_zip(path, change)


def op_layer_model():
    """A tiny model with a TFOpLambda layer (``x * 2`` on a Keras tensor: ``math.multiply``)."""
    import tensorflow as tf

    inputs = tf.keras.Input(SHAPE, name="image")
    x = tf.keras.layers.Flatten()(inputs) * 2.0
    outputs = tf.keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    return tf.keras.Model(inputs, outputs, name="dcnn")


def keras_zip_swapped_op(path: Path, function: str = "compat.v1.Print") -> Path:
    """:func:`op_layer_model` as a .keras zip whose TFOpLambda names ``function`` instead of
    ``math.multiply`` (tf-keras resolves it against all of TensorFlow's API)."""
    op_layer_model().save(path)

    def change(files):
        config = json.loads(files["config.json"])
        layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "TFOpLambda")
        assert layer["config"]["function"] == "math.multiply"
        layer["config"]["function"] = function
        files["config.json"] = json.dumps(config).encode()

    return _rewrite_zip(path, change)


def keras_zip_extra_member(path: Path, name: str = "payload.py", size: int = 100) -> Path:
    """A valid .keras zip plus one member ``name`` of ``size`` bytes (spaces: compresses to little)."""
    tiny_model().save(path)
    return _rewrite_zip(path, lambda files: files.update({name: b" " * size}))


def keras_zip_oversized_config(path: Path, size: int = 20 * 2**20) -> Path:
    """A .keras zip whose config.json unpacks to ``size`` bytes (padded with spaces: a small file)."""
    tiny_model().save(path)
    return _rewrite_zip(path, lambda files: files.update({"config.json": files["config.json"] + b" " * size}))


def evil_saved_model(path: Path, marker: Path) -> Path:
    """A SavedModel whose ``serving_default`` (image -> probabilities) writes ``marker`` when called."""
    import tensorflow as tf

    class Evil(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, *SHAPE], tf.float32, name="image")])
        def serve(self, image):
            tf.io.write_file(str(marker), "ran")
            return {"probabilities": tf.nn.softmax(tf.zeros([tf.shape(image)[0], len(CLASSES)]))}

    module = Evil()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def flex_tflite(path: Path, marker: Path) -> Path:
    """A TFLite model with a ``FlexWriteFile`` op: TensorFlow's select-ops delegate runs it on invoke."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, *SHAPE], tf.float32, name="image")])
    def serve(image):
        tf.io.write_file(str(marker), "ran")
        return tf.nn.softmax(tf.reshape(image, [1, -1])[:, :len(CLASSES)])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], serve)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    path.write_bytes(converter.convert())
    return path


def run_folder(root: Path, model=None, saved_model: bool = True) -> Path:
    """A finished-looking run folder: ``config.json`` + ``model/model.keras`` (+ ``model/saved_model``)."""
    from fer_keras.config import ExperimentConfig
    from fer_keras.data.pipeline import InputSpec
    from fer_keras.export import export_model
    from fer_keras.files import write_json

    model = model or tiny_model()
    if saved_model:
        export_model(model, root / "model", InputSpec(model.input_shape[1:], "unit"))
    else:
        (root / "model").mkdir(parents=True, exist_ok=True)
        model.save(root / "model" / "model.keras")
    write_json(root / "config.json", {
        "config": ExperimentConfig.from_dict({"data": "fer2013.csv", "model": "dcnn", "input_shape": SHAPE,
                                              "adversarial": False}).to_dict(),
        "resolved": {"input_shape": list(SHAPE), "input_mode": "unit", "class_names": CLASSES}})
    return root


def hostile_run_folder(root: Path, source: Path, marker: Path, model: Path | None = None) -> Path:
    """A copy of run folder ``source`` whose ``model/model.keras`` is ``model`` (a hostile file
    made before), by default the HDF5 Lambda model."""
    shutil.copytree(source, root)
    if model is None:
        hdf5_lambda_as_keras(root / "model" / "model.keras", marker)
    else:
        shutil.copyfile(model, root / "model" / "model.keras")
    return root
