"""Files that appear whole or not at all: atomic writes, JSON, writable-folder checks.

Every writer here writes to a temporary name in the target's folder and renames it into place,
so an interrupted program never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.errors import ConfigError


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets it, racing threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block completes.

    The file gets the permissions of the file it replaces, else the usual ones for a new file
    (0666 less the umask: 0644 with umask 022), not mkstemp's 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            permissions = path.stat().st_mode & 0o7777
        except OSError:
            permissions = 0o666 & ~_umask()
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            os.fchmod(f.fileno(), permissions)
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def ensure_writable_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create ``path`` (and parents) and prove a file can be written there, or raise ConfigError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot write there ({exc.strerror}); choose a writable folder") from None
    return path


#: Name of the lock file :func:`lock_folder` keeps in a folder.
LOCK_FILE = ".lock"


def lock_folder(folder: str | os.PathLike, what: str):
    """Hold an exclusive lock on ``folder`` for as long as the returned file object is open (the
    process's lifetime, unless closed): a second process asking for it gets a one-line ConfigError
    naming ``what``. The lock is the kernel's (``flock``), so it is gone when its process dies,
    even by ``kill -9``; the empty ``.lock`` file left behind means nothing."""
    import fcntl

    handle = open(Path(folder) / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise ConfigError(f"{what} {folder}: another process{f' (pid {holder})' if holder else ''} is writing "
                          "this folder; wait for it to finish, or use another one") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_lock(handle) -> None:
    """Remove the ``.lock`` file of :func:`lock_folder` and let go of the lock (a folder left as found)."""
    Path(handle.name).unlink(missing_ok=True)
    handle.close()
