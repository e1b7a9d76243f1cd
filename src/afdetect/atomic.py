"""Atomic file writes: a crash never leaves half a file at the destination."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The temporary file is removed if the body raises.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain open() would honour umask
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | Path, text: str) -> None:
    write_bytes_atomic(dest, text.encode("utf-8"))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):  # NumPy scalars: their Python int, float or bool
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json_atomic(dest: str | Path, data: Any, indent: int | None = 1) -> None:
    """``data`` as JSON with a final newline; NumPy scalars are written as numbers."""
    write_text_atomic(dest, json.dumps(data, indent=indent, default=_plain) + "\n")


LOCK_NAME = ".lock"


@contextmanager
def exclusive_folder(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration: a second run into the same folder is refused
    with :class:`~afdetect.errors.AfdetectError`. The lock is an ``flock``, so a run
    killed with SIGKILL releases it and ``--resume`` can go on."""
    import fcntl

    from afdetect.errors import AfdetectError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AfdetectError(f"{folder}: in use by another afdetect run (wait for it, or "
                            "choose another output)") from None
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
