"""Safe writes: an output is replaced only by a complete, verified file.

Every file afdetect writes goes through :func:`atomic_path`: the content is written into a
private temporary folder beside the destination, checked (its size, and a read-back where
the writer gives one), flushed to the disk (``fsync``), renamed onto the destination, and
the folder is flushed too. A failure (full disk, read-only folder, a crash, SIGKILL) leaves
the previous file whole; the temporary folder of a killed run is removed by the next write
into that folder.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.errors import AfdetectError

# Temporary folders are named TEMP_PREFIX + random; each is flock-ed by the run writing in
# it, so a folder nobody holds is the leftover of a killed run.
TEMP_PREFIX = ".afdetect-tmp-"


class OutputError(AfdetectError):
    """An output file could not be written; the message names the user's path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def describe_os_error(exc: OSError) -> str:
    """``exc`` as a short lower-case reason ("no space left on device"), without the
    file name it may carry (often a temporary one)."""
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or type(
        exc).__name__
    return text[:1].lower() + text[1:]


def write_failed(dest: Path, reason: str, existed: bool) -> OutputError:
    """The one-line error for a write of ``dest`` that did not happen."""
    left = f"the previous {dest.name} is unchanged" if existed else "no file was left there"
    return OutputError(dest, f"could not be written ({reason}); {left}")


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary folders that killed runs left in ``folder``: those no live
    process holds a lock on."""
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
    except OSError:
        return  # an unreadable folder: the write itself reports the problem
    for entry in entries:
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another run is writing there right now
        finally:
            os.close(fd)  # closing drops the lock we may have taken
        shutil.rmtree(entry, ignore_errors=True)


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has no block left for an ordinary user."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Check = Callable[[Path], None]
"""A read-back of a just-written temporary file; raises ValueError (with the reason) or
OSError when it is not what was meant to be written."""


@contextmanager
def atomic_path(dest: str | Path, check: Check | None = None,
                temp_name: str | None = None) -> Iterator[Path]:
    """Yield a temporary path for the body to write; then verify it and rename it onto
    ``dest``.

    The temporary file lives in a private folder beside ``dest`` and is named
    ``temp_name`` (default: ``dest``'s own name, so writers that look at the suffix
    behave). After the body: the file must exist and be non-empty, ``check`` (if given)
    must accept it, then it is fsync-ed, renamed onto ``dest`` and the folder fsync-ed.

    Raises:
        OutputError: naming ``dest`` (never the temporary file) when anything fails; the
            previous ``dest``, if any, is then unchanged.
    """
    dest = Path(dest)
    existed = dest.exists()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(dest.parent)
        work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=dest.parent))
    except OSError as exc:
        raise write_failed(dest, describe_os_error(exc), existed) from None
    lock = os.open(work, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    tmp = work / (temp_name or dest.name)
    try:
        try:
            yield tmp
        except OSError as exc:  # the writer's own failure: full disk, a folder, ...
            raise write_failed(dest, describe_os_error(exc), existed) from None
        try:
            size = tmp.stat().st_size if tmp.is_file() else -1
            if size <= 0:  # a writer that lost its write errors (wfdb's ndarray.tofile)
                if _disk_full(dest.parent):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                raise ValueError("nothing was written" if size < 0 else "it is empty")
            if check is not None:
                check(tmp)
            fsync_path(tmp)
            if dest.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a folder, not a file")
            os.replace(tmp, dest)
            fsync_path(dest.parent)
        except OSError as exc:
            raise write_failed(dest, describe_os_error(exc), existed) from None
        except ValueError as exc:  # short or garbled: most often a disk that filled up
            reason = (os.strerror(errno.ENOSPC).lower() if _disk_full(dest.parent) else
                      f"the written file did not read back whole: {exc}")
            raise write_failed(dest, reason, existed) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock)


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    """Write ``data`` to ``dest``; the file is read back and compared before it replaces
    ``dest``."""

    def same_bytes(tmp: Path) -> None:
        written = tmp.read_bytes()
        if written != data:
            raise ValueError(f"{len(written)} of {len(data)} bytes")

    with atomic_path(dest, same_bytes) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text_atomic(dest: str | Path, text: str) -> None:
    write_bytes_atomic(dest, text.encode("utf-8"))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):  # NumPy scalars: their Python int, float or bool
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json_atomic(dest: str | Path, data: Any, indent: int | None = 1) -> None:
    """``data`` as JSON with a final newline; NumPy scalars are written as numbers."""
    write_text_atomic(dest, json.dumps(data, indent=indent, default=_plain) + "\n")


def save_torch_atomic(dest: str | Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``dest``, serialised in memory first so the written file can
    be compared byte for byte (model files and checkpoints are a few MB)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(dest, buffer.getvalue())


LOCK_NAME = ".lock"


@contextmanager
def exclusive_folder(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration: a second run into the same folder is refused
    with :class:`~afdetect.errors.AfdetectError`. The lock is an ``flock``, so a run
    killed with SIGKILL releases it and ``--resume`` can go on."""
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
