"""Shared fixtures. Importing fer_keras first selects Keras 2 for every test."""
import os
from pathlib import Path

import fer_keras  # noqa: F401
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def demo_small():
    from fer_keras.data import make_demo

    return make_demo(images_per_class=12, seed=0)


@pytest.fixture
def shared_fer2013():
    path = Path(os.environ.get("FER_KERAS_SHARED_DATA", SHARED_DATA)) / "fer2013"
    if not path.is_dir():
        pytest.skip(f"real FER2013 not found at {path}")
    return path
