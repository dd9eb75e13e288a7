"""Make the Keras 2 stack (tf-keras, NSL, tensorflow-privacy) import on TensorFlow >= 2.16.

Three things are done, each as narrowly as possible:

1. ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is first imported, so ``tf.keras`` is
   tf-keras (Keras 2). NSL, tensorflow-privacy and keras-cv's Keras-2 path need it. If the user
   already imported TensorFlow with Keras 3 we cannot switch, and :class:`KerasVersionError` says
   what to do instead.
2. NSL 1.4.0 runs ``from tensorflow import estimator`` at import time, and ``tf.estimator`` was
   removed in TensorFlow 2.16. Only NSL's estimator helpers use it (never its Keras API), so while
   NSL is imported a placeholder ``tensorflow.estimator`` module is put in ``sys.modules`` and taken
   out again right after: no other code ever sees it. Calling NSL's estimator helpers raises a clear
   error.
3. ``tensorflow_privacy/__init__`` imports its estimator code too; the package's own switch
   (``sys.skip_tf_privacy_import``) is set only while we import the sub-modules we use.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import types

_HOW_TO_FIX = (
    "fer_keras needs the Keras 2 API (tf-keras). Import fer_keras before tensorflow, or set "
    "TF_USE_LEGACY_KERAS=1 before Python starts (in Colab: restart the runtime and run "
    "`import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'` first)."
)


class KerasVersionError(ImportError):
    """TensorFlow was imported with Keras 3 before fer_keras could select Keras 2."""


def select_keras2() -> None:
    """Select tf-keras for ``tf.keras``; raise :class:`KerasVersionError` if it is too late."""
    flag = os.environ.get("TF_USE_LEGACY_KERAS")
    if "tensorflow" not in sys.modules:
        if flag not in (None, "1", "true", "True"):
            raise KerasVersionError(f"TF_USE_LEGACY_KERAS={flag!r} selects Keras 3. {_HOW_TO_FIX}")
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        # TensorFlow's C++ log below ERROR, and its cuInit failure on hosts without a GPU; set
        # TF_CPP_MIN_LOG_LEVEL=0 to see everything
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _start_up_noise_filtered():
            import tf_keras  # noqa: F401  (fails early with a clear message if tf-keras is missing)
    except ImportError as exc:  # pragma: no cover - install problem
        raise KerasVersionError(f"tf-keras is not installed ({exc}). Run the README's set-up command.") from exc
    import tensorflow as tf

    # judged by a class, not the module name: importing ``tensorflow.keras`` by name (keras-cv
    # does) re-registers tf-keras's API module under the name "tensorflow.keras"
    if not tf.keras.Model.__module__.startswith("tf_keras"):
        raise KerasVersionError(
            f"TensorFlow was imported with Keras 3 (tf.keras is {tf.keras.__name__}). {_HOW_TO_FIX}"
        )


#: Lines TensorFlow 2.16-2.19 wheels print on import through absl before its logging is set up
#: (duplicate CUDA plug-in and XLA registrations), on every host, GPU or not: nothing to act on.
START_UP_NOISE = (b"All log messages before absl::InitializeLog()", b"Unable to register cuDNN factory",
                  b"Unable to register cuBLAS factory", b"Unable to register cuFFT factory",
                  b"computation placer already registered")


@contextlib.contextmanager
def _start_up_noise_filtered():
    """While TensorFlow is first imported, send file descriptor 2 to a temporary file, then write
    back every line but :data:`START_UP_NOISE` (anything else TensorFlow says still shows). Does
    nothing once TensorFlow is loaded, or when stderr has no file descriptor (some notebooks)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured if not any(n in line for n in START_UP_NOISE))
            if kept:
                os.write(2, kept)


class _RemovedEstimator(types.ModuleType):
    """Stands in for ``tensorflow.estimator`` while NSL imports; any use says why it is gone."""

    def __getattr__(self, name):
        raise AttributeError(
            f"tf.estimator.{name}: tf.estimator was removed in TensorFlow 2.16, so NSL's estimator "
            "helpers are unavailable; use nsl.keras (fer_keras.nsl) instead."
        )


def import_nsl():
    """Import ``neural_structured_learning`` on any TensorFlow >= 2.x and return it."""
    if "neural_structured_learning" in sys.modules:
        return sys.modules["neural_structured_learning"]
    select_keras2()
    import tensorflow as tf

    placeholder = None
    if "tensorflow.estimator" not in sys.modules and not _has_estimator(tf):
        placeholder = _RemovedEstimator("tensorflow.estimator")
        sys.modules["tensorflow.estimator"] = placeholder
    try:
        return importlib.import_module("neural_structured_learning")
    finally:
        if placeholder is not None and sys.modules.get("tensorflow.estimator") is placeholder:
            del sys.modules["tensorflow.estimator"]


def _has_estimator(tf) -> bool:
    try:
        return tf.estimator is not None
    except AttributeError:
        return False


def import_tf_privacy(module: str):
    """Import ``tensorflow_privacy.<module>`` without the package's estimator-era ``__init__``.

    ``module`` is a dotted path below ``tensorflow_privacy``, for example
    ``"privacy.optimizers.dp_optimizer_keras"``.
    """
    select_keras2()
    had_flag = hasattr(sys, "skip_tf_privacy_import")
    sys.skip_tf_privacy_import = True
    try:
        return importlib.import_module(f"tensorflow_privacy.{module}")
    finally:
        if not had_flag:
            del sys.skip_tf_privacy_import
