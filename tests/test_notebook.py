"""The Colab notebook: valid nbformat 4, and its code cells run top to bottom on the demo set."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "fer_keras_colab.ipynb"


def _notebook():
    return json.loads(NOTEBOOK.read_text())


def notebook_script(nb: dict) -> str:
    """The code cells as one script, without shell (``!``) lines and IPython magics (``%``)."""
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines += [line.rstrip("\n") for line in cell["source"] if not line.lstrip().startswith(("!", "%"))]
            lines.append("")
    return "\n".join(lines)


def test_notebook_is_nbformat_4():
    nb = _notebook()
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4 and "kernelspec" in nb["metadata"]
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and isinstance(cell["source"], list) and cell["id"]
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and "execution_count" in cell
    compile(notebook_script(nb), str(NOTEBOOK), "exec")


@pytest.mark.slow
def test_notebook_runs_on_the_demo_set(tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(notebook_script(_notebook()))
    env = {**os.environ, "FER2013": str(tmp_path / "no-data"), "FER_EPOCHS": "1", "FER_DEMO_PER_CLASS": "6",
           "FER_AUDIT_SIZE": "20", "FER_OUT": str(tmp_path / "out"), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "using the synthetic demo set" in done.stdout and "macro F1" in done.stdout
    assert "| dcnn+nsl |" in done.stdout  # the privacy table
    assert (tmp_path / "out" / "model" / "model.keras").is_file()
    assert (tmp_path / "out" / "model" / "saved_model" / "saved_model.pb").is_file()
