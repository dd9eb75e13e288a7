"""Exports carry their class names: SavedModel ``classes``/``scores`` readable with plain TensorFlow
(no fer_keras import), TFLite with labels.txt and model_info.json that the TFLite loader reads."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fer_keras.data.labels import CLASS_NAMES
from fer_keras.data.pipeline import InputSpec
from fer_keras.export import TFLiteModel, export_model, read_model_info

from tiny_models import tiny_model

PLAIN_TF = """
import json, sys
import numpy as np
import tensorflow as tf
assert "fer_keras" not in sys.modules
loaded = tf.saved_model.load(sys.argv[1])
out = {}
for key, arg, value in (("serving_default", "image", np.zeros((2, 48, 48, 1), np.float32)),
                        ("serving_uint8", "pixels", np.zeros((2, 60, 50, 1), np.uint8))):
    result = loaded.signatures[key](**{arg: tf.constant(value)})
    out[key] = {"classes": [[c.decode() for c in row] for row in result["classes"].numpy().tolist()],
                "scores": result["scores"].numpy().tolist(), "probabilities": result["probabilities"].numpy().tolist()}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_saved_model_returns_class_names_to_plain_tensorflow(tmp_path):
    names = ["happiness", "sadness", "neutral"]
    paths = export_model(tiny_model(classes=3), tmp_path, InputSpec((48, 48, 1), "unit", class_names=names), tflite=True)
    done = subprocess.run([sys.executable, "-c", PLAIN_TF, str(paths["saved_model"])], capture_output=True,
                          text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for signature in ("serving_default", "serving_uint8"):
        assert out[signature]["classes"] == [names, names]
        assert out[signature]["scores"] == out[signature]["probabilities"]
        assert np.allclose(np.sum(out[signature]["scores"], 1), 1, atol=1e-5)
    # TFLite: numeric output only, labels and input description beside it
    assert (tmp_path / "labels.txt").read_text().split() == names
    info = read_model_info(paths["tflite_dynamic"])
    assert info["class_names"] == names and info["input"]["shape"] == [48, 48, 1] and info["input"]["mode"] == "unit"
    runner = TFLiteModel(paths["tflite_dynamic"])
    assert runner.class_names == tuple(names) and runner(np.zeros((2, 48, 48, 1))).shape == (2, 3)
    assert read_model_info(paths["saved_model"])["class_names"] == names


def test_default_class_names_are_the_seven_fer2013_classes(tmp_path):
    paths = export_model(tiny_model(), tmp_path)
    assert read_model_info(paths["keras"])["class_names"] == list(CLASS_NAMES)
    assert (tmp_path / "labels.txt").read_text().split() == list(CLASS_NAMES)
