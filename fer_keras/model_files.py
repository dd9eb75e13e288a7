"""Model files: what a path really holds, and loading it without running code from an untrusted file.

The format is told from the content, never from the name:

| format | recognised by | loads by default |
| --- | --- | --- |
| ``"keras"`` | a zip archive (Keras v3 ``.keras``) | yes, in Keras' safe mode, after :func:`check_keras_config` read every member: only ``config.json``, ``metadata.json`` and HDF5 ``model.weights.h5`` (never pickled ``.npz`` weights), sizes bounded; no ``Lambda`` layer, Python ``lambda``, class or function from outside keras / tf_keras / fer_keras, or op layer (``TFOpLambda`` ...) naming a TensorFlow function off a short safe list |
| ``"h5"`` | the HDF5 signature (whatever the suffix) | only trusted: legacy Keras HDF5 keeps ``Lambda`` layers as Python bytecode, which Keras runs while loading |
| ``"saved_model"`` | a folder with ``saved_model.pb`` | only trusted: its graph may hold any TensorFlow op (write or delete files, ...), run when it is loaded or called |
| ``"tflite"`` | ``TFL3`` at bytes 4..8 | yes if it uses TFLite's built-in ops only; custom ops (``Flex*`` = any TensorFlow op) only trusted |

Trusted = ``trusted=True`` in Python, ``--trust-model`` on the command line. Which file a run
folder means is :func:`fer_keras.runs.resolve_model`'s business (its Keras model, never its
SavedModel). Refusals are :class:`ConfigError` in one line.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from fer_keras.errors import ConfigError

TRUST_HINT = "pass --trust-model (Python: trusted=True) only if you trust its source"
#: The help of every command's ``--trust-model`` flag.
TRUST_HELP = ("also load model files that can run code: HDF5 (.h5, Lambda layers), SavedModel folders, .keras with "
              "Lambda layers, TFLite with custom ops. Only for files from a source you trust (docs/usage.md: Trust model)")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TFLITE_IDENTIFIER = b"TFL3"
#: Python packages a safe ``.keras`` config may name (classes: any module below them).
_SAFE_ROOTS = ("keras", "tf_keras", "fer_keras")
#: Modules whose functions a safe ``.keras`` config may name (activations, losses, metrics).
_SAFE_FUNCTION_MODULES = ("keras.activations", "keras.losses", "keras.metrics", "tf_keras.src.activations",
                          "tf_keras.src.losses", "tf_keras.src.metrics")


def model_format(path: str | os.PathLike) -> str:
    """``"keras"``, ``"h5"``, ``"saved_model"`` or ``"tflite"`` from the content of ``path``.

    Raises :class:`ConfigError` for a missing path or anything else."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise ConfigError(f"model {path}: a folder that is not a SavedModel (no saved_model.pb); pass a run "
                          "folder, a .keras file, a SavedModel folder or a .tflite file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if _is_hdf5(f, head):
                return "h5"
    except FileNotFoundError:
        raise ConfigError(f"model {path}: no such file or folder; pass a run folder, .keras, SavedModel "
                          "or .tflite") from None
    except OSError as exc:
        raise ConfigError(f"model {path}: cannot read ({exc.strerror})") from None
    if head[4:8] == _TFLITE_IDENTIFIER:
        return "tflite"
    if zipfile.is_zipfile(path):
        return "keras"
    raise ConfigError(f"model {path}: cannot load (not a .keras zip, HDF5, SavedModel or TFLite file)")


def _is_hdf5(f, head: bytes) -> bool:
    """HDF5 signature at byte 0 or after a user block (512, 1024, 2048, ... bytes)."""
    if head == _HDF5_SIGNATURE:
        return True
    size = os.fstat(f.fileno()).st_size
    offset = 512
    while offset + 8 <= size:
        f.seek(offset)
        if f.read(8) == _HDF5_SIGNATURE:
            return True
        offset *= 2
    return False


def require_trust(path: str | os.PathLike, fmt: str, trusted: bool) -> None:
    """Raise :class:`ConfigError` (one line: what the file is, why it is refused, what to do) unless
    ``trusted`` or ``fmt`` runs no code of its own."""
    if trusted or fmt in ("keras", "tflite"):
        return
    why = {"h5": "a legacy Keras HDF5 file (whatever its name), which can run Python code while loading; re-save "
                 "it as .keras where it was made, or",
           "saved_model": "a SavedModel, whose TensorFlow ops (which can write files) run when it is loaded;"}[fmt]
    raise ConfigError(f"model {path}: not loaded: {why} {TRUST_HINT}")


#: The members a ``.keras`` zip may hold, with their largest uncompressed size (bytes).
KERAS_MEMBERS = {"config.json": 16 * 2**20, "metadata.json": 2**20, "model.weights.h5": 2**30}
#: Functions a ``TFOpLambda`` / ``SlicingOpLambda`` layer may name (the ``tf.`` symbol; Keras
#: makes these layers from plain TensorFlow calls on Keras tensors, e.g. ``x * 2``).
SAFE_TF_FUNCTIONS = frozenset({
    "__operators__.add", "__operators__.getitem", "math.add", "math.subtract", "math.multiply",
    "math.truediv", "math.divide", "math.negative", "math.maximum", "math.minimum", "math.sigmoid",
    "math.tanh", "math.exp", "math.log", "math.sqrt", "math.square", "math.abs", "math.reduce_mean",
    "math.reduce_sum", "math.reduce_max", "math.reduce_min", "nn.relu", "nn.relu6", "nn.softmax",
    "nn.silu", "nn.gelu", "reshape", "transpose", "concat", "stack", "expand_dims", "squeeze", "cast",
    "clip_by_value", "image.resize", "image.grayscale_to_rgb", "compat.v1.transpose"})
#: Keras layers that call a named TensorFlow function or tensor method: refused unless the name is safe.
_OP_LAYERS = {"TFOpLambda": "function", "SlicingOpLambda": "function", "ClassMethod": "method_name",
              "InstanceMethod": "attr_name", "InstanceProperty": "attr_name"}
_SAFE_PROPERTIES = frozenset({"shape", "dtype"})


def check_keras_config(path: str | os.PathLike) -> None:
    """Refuse a ``.keras`` zip that could run code when tf-keras loads it, before tf-keras sees it.

    Every member is checked: only ``config.json``, ``metadata.json`` and ``model.weights.h5``
    (HDF5 by content, so never the ``.npz`` weights that tf-keras unpickles), each at most
    :data:`KERAS_MEMBERS` bytes, no member twice; ``config.json`` may hold no Python bytecode
    (a ``lambda``), no class or function outside keras / tf_keras / fer_keras, and no op layer
    (``TFOpLambda`` ...) naming a function outside :data:`SAFE_TF_FUNCTIONS`.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(path, archive.infolist())
            with archive.open("model.weights.h5") as weights:
                if weights.read(8) != _HDF5_SIGNATURE:
                    raise ConfigError(f"model {path}: not loaded: its model.weights.h5 is not an HDF5 file; "
                                      f"{TRUST_HINT}")
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model {path}: cannot load (not a Keras zip with config.json and model.weights.h5: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    bad = _unsafe_reference(config)
    if bad is not None:
        raise ConfigError(f"model {path}: not loaded: its config holds {bad[:200]}, which can run code on loading; "
                          f"{TRUST_HINT}")


def _check_members(path, members: list[zipfile.ZipInfo]) -> None:
    names = [m.filename for m in members]
    for member in members:
        limit = KERAS_MEMBERS.get(member.filename)
        if limit is None:
            what = "pickled weights" if member.filename.endswith(".npz") else "a file a Keras model does not need"
            raise ConfigError(f"model {path}: not loaded: it holds {member.filename[:100]!r} ({what}; a .keras "
                              f"model holds only {', '.join(KERAS_MEMBERS)}); {TRUST_HINT}")
        if member.file_size > limit:
            raise ConfigError(f"model {path}: not loaded: its {member.filename} unpacks to {member.file_size:,} "
                              f"bytes (at most {limit:,})")
    if len(set(names)) != len(names):
        raise ConfigError(f"model {path}: not loaded: a member name occurs twice in the zip; {TRUST_HINT}")
    missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if missing:
        raise ConfigError(f"model {path}: cannot load (no {' or '.join(missing)} in the zip; not a Keras v3 file)")


def _unsafe_reference(obj) -> str | None:
    """The first unsafe entry of a Keras config (as text), or None."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        stack.extend(item.values())
        kind = item.get("class_name")
        if not isinstance(kind, str):
            continue
        if kind in ("__lambda__", "Lambda"):  # fer_keras models have no Lambda layer
            return "a Lambda layer" if kind == "Lambda" else "a Python lambda"
        if kind in _OP_LAYERS:
            named = (item.get("config") or {}).get(_OP_LAYERS[kind]) if isinstance(item.get("config"), dict) else None
            safe = _SAFE_PROPERTIES if kind == "InstanceProperty" else (
                SAFE_TF_FUNCTIONS if kind in ("TFOpLambda", "SlicingOpLambda") else ())
            if named not in safe:
                return f"a {kind} layer calling {str(named)[:80]!r} (not on fer_keras' list of safe TensorFlow functions)"
        module = item.get("module")
        if module is None or kind in ("__tensor__", "__numpy__", "__bytes__"):
            continue
        if not isinstance(module, str):
            return f"module {module!r}"
        if kind == "function":
            name = item.get("config")
            if module == "builtins" and isinstance(name, str) and _is_keras_builtin(name):
                continue
            if not module.startswith(_SAFE_FUNCTION_MODULES):
                return f"function {module}.{name} (not a Keras activation, loss or metric)"
        elif kind == "__typespec__":
            if module.split(".")[0] not in (*_SAFE_ROOTS, "tensorflow"):
                return f"type spec {module}.{item.get('spec_name')} from outside Keras"
        elif module.split(".")[0] not in _SAFE_ROOTS:
            return f"class {module}.{kind} from outside Keras"
    return None


def _is_keras_builtin(name: str) -> bool:
    return any(hasattr(m, name) for m in (tf.keras.activations, tf.keras.losses, tf.keras.metrics))


def load_keras(path: str | os.PathLike, trusted: bool = False, compile: bool = False):
    """A ``tf.keras.Model`` from a ``.keras`` zip, (trusted) HDF5 file or (trusted) SavedModel folder.

    Untrusted ``.keras`` files load in safe mode after :func:`check_keras_config`; see the module
    docstring for what needs ``trusted``. Errors are :class:`ConfigError` in one line.
    """
    path = Path(path)
    fmt = model_format(path)
    if fmt == "tflite":
        raise ConfigError(f"model {path}: a TFLite file, not a Keras model; this needs the Keras model "
                          "(a .keras file)")
    require_trust(path, fmt, trusted)
    if fmt == "keras" and not trusted:
        check_keras_config(path)
    try:
        if fmt != "keras" or path.suffix == ".keras":
            return tf.keras.models.load_model(str(path), compile=compile, safe_mode=not trusted)
        with tempfile.TemporaryDirectory(prefix="fer-keras-model-") as tmp:  # tf-keras wants the .keras name
            link = Path(tmp) / f"{path.stem}.keras"
            link.symlink_to(path.resolve())
            return tf.keras.models.load_model(str(link), compile=compile, safe_mode=not trusted)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, tf.errors.OpError) as exc:
        text = str(exc).replace("\n", " ").strip() or type(exc).__name__
        if "safe_mode" in text:
            raise ConfigError(f"model {path}: not loaded: it holds a Python lambda, which Keras' safe mode "
                              f"refuses; {TRUST_HINT}") from None
        raise ConfigError(f"model {path}: cannot load ({text[:200]})") from None


def load_saved_model(path: str | os.PathLike, trusted: bool = False):
    """``tf.saved_model.load(path)`` for a SavedModel folder, only when ``trusted``."""
    path = Path(path)
    fmt = model_format(path)
    if fmt != "saved_model":
        raise ConfigError(f"model {path}: not a SavedModel folder (it is a {fmt} file)")
    require_trust(path, fmt, trusted)
    try:
        return tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as exc:
        raise ConfigError(f"model {path}: cannot load ({str(exc).splitlines()[0][:200] if str(exc) else exc!r})"
                          ) from None


def read_tflite(path: str | os.PathLike, trusted: bool = False) -> bytes:
    """The bytes of a TFLite file, refused (unless ``trusted``) when it uses custom ops: ``Flex*``
    ops run any TensorFlow op (e.g. WriteFile) through TensorFlow's select-ops delegate."""
    path = Path(path)
    if model_format(path) != "tflite":
        raise ConfigError(f"model {path}: not a TFLite file (no TFL3 identifier)")
    content = path.read_bytes()
    if not trusted:
        custom = tflite_custom_ops(content)
        if custom:
            raise ConfigError(f"model {path}: not loaded: it uses custom ops ({', '.join(custom)[:200]}), which can "
                              f"run any TensorFlow op (write files, ...); {TRUST_HINT}")
    return content


def tflite_custom_ops(content: bytes) -> list[str]:
    """Names of the custom (non-built-in) operators a TFLite flatbuffer uses."""
    try:
        model = schema.Model.GetRootAsModel(content, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception as exc:  # a damaged flatbuffer: flatbuffers raises assorted errors
        raise ConfigError(f"TFLite model: cannot read its operators ({type(exc).__name__})") from None
    custom = schema.BuiltinOperator.CUSTOM
    return sorted({(c.CustomCode() or b"?").decode(errors="replace") for c in codes
                   if c.CustomCode() or max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == custom})
