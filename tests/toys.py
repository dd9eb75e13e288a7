"""Tiny learnable data sets shared by the tests."""
import numpy as np

from fer_keras.data import FaceData


def halves(n=96, seed=0, background=(0, 60), boost=150, size=12):
    """A separable task on (size, size, 1) uint8 images: class 0 = bright left half, 1 = right half."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(*background, (n, size, size, 1)).astype(np.uint8)
    half = size // 2
    for i, label in enumerate(labels):
        images[i, :, (half if label else 0):(size if label else half)] += boost
    return FaceData(images, labels, ("left", "right"))


def exit_2_one_line(capsys, call) -> str:
    """Run ``call`` (a command run in-process); assert it exits with status 2 after printing exactly
    one stderr line starting ``error: ``; return that line."""
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]
