"""`import fer_keras` selects Keras 2 and makes NSL / tensorflow-privacy import, in fresh interpreters."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environ, timeout=300)


def test_fresh_import_selects_keras2_and_imports_the_stack():
    result = _python("""
        import sys
        import fer_keras
        import tensorflow as tf
        assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__
        from fer_keras._compat import import_nsl, import_tf_privacy
        nsl = import_nsl()
        assert hasattr(nsl.keras, "AdversarialRegularization")
        assert "tensorflow.estimator" not in sys.modules      # the placeholder did not leak
        mia = import_tf_privacy("privacy.privacy_tests.membership_inference_attack.membership_inference_attack")
        assert hasattr(mia, "run_attacks")
        assert not hasattr(sys, "skip_tf_privacy_import")
        from neural_structured_learning.estimator import adversarial_regularization as nsl_estimator
        try:  # NSL's estimator helpers reach the placeholder, which says why they are gone
            nsl_estimator.tf_estimator.Estimator
        except AttributeError as exc:
            assert "tf.estimator was removed in TensorFlow 2.16" in str(exc) and "nsl.keras" in str(exc), exc
        else:
            raise AssertionError("tf.estimator.Estimator resolved on TensorFlow >= 2.16")
        print("ok")
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout


def test_keras3_imported_first_gives_one_clear_error():
    result = _python("""
        import tensorflow as tf
        try:
            import fer_keras
        except ImportError as exc:
            print(type(exc).__name__, exc)
    """)
    assert "KerasVersionError TensorFlow was imported with Keras 3" in result.stdout, result.stderr[-2000:]
    assert "TF_USE_LEGACY_KERAS=1" in result.stdout


def test_keras3_requested_by_env_is_refused():
    result = _python("import fer_keras", TF_USE_LEGACY_KERAS="0")
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS='0' selects Keras 3" in result.stderr


def test_import_prints_none_of_tensorflows_start_up_noise():
    result = _python("""
        import fer_keras, tensorflow as tf
        print(int(tf.constant(1) + 1))
    """)
    assert result.returncode == 0 and result.stdout.strip() == "2", result.stderr[-2000:]
    for noise in ("absl::InitializeLog", "register cuDNN factory", "computation placer", "cuInit"):
        assert noise not in result.stderr, result.stderr


def test_start_up_filter_keeps_what_is_not_noise():
    result = _python("""
        import os, sys
        import fer_keras._compat as compat
        sys.modules.pop("tensorflow")  # as if TensorFlow were not imported yet
        with compat._start_up_noise_filtered():
            os.write(2, b"W0000 computation placer already registered. Please check linkage\\n")
            os.write(2, b"a real problem\\n")
        os.write(2, b"after\\n")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["a real problem", "after"], result.stderr
