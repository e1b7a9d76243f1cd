"""Fetching a PhysioNet database with resumable transfers and checksum verification.

PhysioNet publishes ``SHA256SUMS.txt`` at the root of every database version
(``{base_url}/{database}/SHA256SUMS.txt``, lines ``<sha256> <relative path>``). Each listed
file matching the include patterns is fetched into ``out_dir`` under its relative path.
A partial file (``<name>.part``) is continued with an HTTP range request; a finished file is
verified against its checksum before it is moved into place, so ``out_dir`` never holds a
file that does not match.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from afdetect.atomic import fsync_path
from afdetect.errors import AfdetectError

DEFAULT_BASE_URL = "https://physionet.org/files"
CINC2017 = "challenge-2017/1.0.0"
# The training records and the revised labels; the rest of the database (papers,
# entries' sources, zips) is not needed to train or evaluate.
CINC2017_INCLUDE = ("training/*", "REFERENCE-v3.csv")
CHUNK = 1 << 16


@dataclass
class DownloadReport:
    """Outcome of :func:`download`: relative paths fetched, already present, failed."""

    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def parse_checksums(text: str) -> dict[str, str]:
    """``{relative path: sha256}`` from a ``SHA256SUMS.txt`` body."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            continue
        path = parts[1].lstrip("*")
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts:
            raise AfdetectError(f"SHA256SUMS.txt: unsafe path {path!r}")
        sums[path] = parts[0].lower()
    return sums


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(out_dir: str | Path, database: str = CINC2017, *,
             base_url: str = DEFAULT_BASE_URL, include: tuple[str, ...] | None = None,
             retries: int = 3, timeout: float = 60.0, progress: bool = True) -> DownloadReport:
    """Fetch the files of ``database`` listed in its ``SHA256SUMS.txt`` into ``out_dir``.

    Args:
        out_dir: destination folder; files keep their path relative to the database root.
        database: PhysioNet path ``<slug>/<version>``, e.g. ``challenge-2017/1.0.0``.
        base_url: PhysioNet's file server (configurable for mirrors and tests).
        include: glob patterns on relative paths; default: everything, or for CinC 2017
            the training records and ``REFERENCE-v3.csv``.
        retries: attempts per file; an interrupted transfer resumes where it stopped.
    """
    out = Path(out_dir)
    root = f"{base_url.rstrip('/')}/{database.strip('/')}"
    if include is None:
        include = CINC2017_INCLUDE if database.strip("/") == CINC2017 else ("*",)
    sums = parse_checksums(_fetch_text(f"{root}/SHA256SUMS.txt", timeout))
    wanted = {p: h for p, h in sums.items() if any(fnmatch.fnmatch(p, g) for g in include)}
    if not wanted:
        raise AfdetectError(f"{root}/SHA256SUMS.txt lists no file matching {', '.join(include)}")
    report = DownloadReport()
    for rel, expected in tqdm(sorted(wanted.items()), desc=f"downloading {database}",
                              unit="file", disable=not progress):
        dest = out / rel
        if dest.is_file() and sha256_file(dest) == expected:
            report.present.append(rel)
            continue
        error = _fetch_verified(f"{root}/{rel}", dest, expected, retries, timeout)
        if error is None:
            report.fetched.append(rel)
        else:
            report.failed[rel] = error
    return report


def _fetch_text(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise AfdetectError(f"{url}: cannot fetch ({_reason(exc)})") from None


def _fetch_verified(url: str, dest: Path, expected: str, retries: int,
                    timeout: float) -> str | None:
    """Fetch ``url`` into ``dest`` via ``dest.part``; return None, or why it failed."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    error = "not attempted"
    for _ in range(max(1, retries)):
        try:
            _transfer(url, part, timeout)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            error = f"transfer failed ({_reason(exc)})"
            continue  # keep the .part: the next attempt resumes it
        if sha256_file(part) == expected:
            fsync_path(part)  # on the disk before its name says it is complete
            os.replace(part, dest)
            fsync_path(dest.parent)
            return None
        error = "checksum mismatch"
        part.unlink()  # a complete but wrong file cannot be resumed into a right one
    return error


def _transfer(url: str, part: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the .part is already complete (or longer than the file)
            return
        raise
    with response as r:
        status = r.status
        mode = "ab" if offset and status == 206 else "wb"  # 200: server ignored the range
        expected = int(r.headers.get("Content-Length", -1))
        received = 0
        with open(part, mode) as fh:
            for block in iter(lambda: r.read(CHUNK), b""):
                fh.write(block)
                received += len(block)
        if 0 <= received < expected:
            raise OSError(f"connection closed after {received} of {expected} bytes")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).strip() or type(exc).__name__
