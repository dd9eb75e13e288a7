"""The wheel holds the package, the console script and every file of fer_keras/pretrained/<name>/
(checked with a stand-in model folder too, so the packaging rule is tested before real weights land)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRETRAINED_FILES = ("model.keras", "model_int8.tflite", "labels.txt", "card.json", "MODEL_CARD.md")


@pytest.mark.slow
def test_wheel_carries_package_and_pretrained_files(tmp_path):
    src = tmp_path / "src"  # a copy: building in the work tree would leave build/ and egg-info behind
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "fer_keras", src / "fer_keras", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stand_in = src / "fer_keras" / "pretrained" / "wheel-check"
    stand_in.mkdir()
    for name in PRETRAINED_FILES:
        (stand_in / name).write_bytes(b"stand-in")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("fer_keras-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("__init__.py", "recognizer.py", "cli.py", "studies/report/render.py", "pretrained/__init__.py", "models/dcnn.py",
                   "layers/ghost_module.py", "data/labels.py"):
        assert f"fer_keras/{module}" in names, module
    assert {f"fer_keras/pretrained/wheel-check/{n}" for n in PRETRAINED_FILES} <= names
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "fer_keras" / "pretrained").glob("*/*") if p.is_file()}
    assert shipped <= names, shipped - names  # the real models, once they are in the tree
    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "fer-keras = fer_keras.cli:main" in zipfile.ZipFile(wheel).read(info).decode()
    assert any(n.endswith(".dist-info/LICENSE") or "licenses/LICENSE" in n for n in names)
    assert not any(n.startswith("tests/") for n in names)
