"""``RESULTS/manifest.json``: what is done, from which input, with which model and settings.

Per recording it records the input's files (name, size, modification time in ns), the
model (name and SHA-256 of its file), the scan settings, and the outcome (the
``cohort.csv`` values, or the reason it failed). A recording is done when all of these
still hold and its result files exist; a re-run skips it and redoes everything else.

The manifest is only ever replaced whole (written beside it, then renamed), and only
after the result files it lists are in place: a driver killed at any moment leaves at
worst recordings whose results exist but are not listed yet, which the next run redoes
into the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import wfdb

from afdetect.atomic import write_json_atomic
from afdetect.errors import AfdetectError
from afdetect.io.records import WFDB_SUFFIXES

FORMAT = "afdetect-cohort-manifest/1"
MANIFEST_NAME = "manifest.json"
# Rewriting the manifest costs time growing with the cohort: write it at most every
# MIN_INTERVAL_S, and never spend more than 1/SHARE of the driver's time on it.
MIN_INTERVAL_S = 2.0
SHARE = 10


def model_identity(model: str) -> dict[str, str]:
    """``{"name", "sha256"}`` of a built-in model name or model file."""
    from afdetect.models import resolve_model

    name, path = resolve_model(model)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"name": name, "sha256": digest.hexdigest()}


def input_files(source: Path) -> list[Path]:
    """The files a recording is read from: a WFDB record's header and the signal files
    it names, or the one ``.csv``/``.npy`` file."""
    suffix = source.suffix.lower()
    if suffix not in (*WFDB_SUFFIXES, ""):
        return [source]
    base = source.with_suffix("") if suffix else source
    header = base.with_suffix(".hea")
    try:
        names = sorted(set(wfdb.rdheader(str(base)).file_name or []))
    except Exception:  # missing or unreadable: the scan names the problem
        names = []
    return [header, *(base.parent / n for n in names if n)]


def fingerprint(source: Path) -> list[list[Any]]:
    """``[[file, size, mtime_ns], ...]`` of :func:`input_files` (None for a missing file)."""
    out: list[list[Any]] = []
    for path in input_files(source):
        try:
            st = path.stat()
            out.append([path.name, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([path.name, None, None])
    return out


class Manifest:
    """The manifest of one results folder, held in memory and written back now and then.

    Args:
        folder: the results folder; its ``manifest.json`` is read if it exists.

    Raises:
        AfdetectError: the file exists but is not an afdetect cohort manifest.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._last_save = 0.0
        self._save_cost = 0.0
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AfdetectError(f"{self.path}: unreadable cohort manifest ({exc}); "
                                    "choose another --out or remove it") from None
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise AfdetectError(f"{self.path}: not an afdetect cohort manifest "
                                    f"(format {FORMAT}); choose another --out")
            self.entries = dict(data.get("recordings", {}))

    def is_done(self, key: str, expected: dict[str, Any], outputs: list[Path]) -> bool:
        """Whether ``key`` succeeded with exactly ``expected`` (source, fingerprint,
        model, settings) and its ``outputs`` all exist."""
        entry = self.entries.get(key)
        return (entry is not None and entry.get("status") == "done"
                and all(entry.get(k) == v for k, v in expected.items())
                and all(p.is_file() for p in outputs))

    def summary(self, key: str) -> dict[str, Any]:
        """The ``cohort.csv`` values recorded for ``key``."""
        return dict(self.entries[key]["summary"])

    def record(self, key: str, expected: dict[str, Any], summary: dict[str, Any],
               error: str | None) -> None:
        """Note ``key``'s outcome (after its result files are written, if it has any)."""
        self.entries[key] = {**expected, "status": "failed" if error else "done",
                             "summary": summary, "error": error}
        self._dirty = True

    def save(self, force: bool = False) -> None:
        """Write the manifest if it changed and it is time to (always with ``force``)."""
        now = time.monotonic()
        if not self._dirty or (not force and now - self._last_save <
                               max(MIN_INTERVAL_S, SHARE * self._save_cost)):
            return
        entries = dict(sorted(self.entries.items()))  # the same bytes whatever the order
        write_json_atomic(self.path, {"format": FORMAT, "recordings": entries}, indent=None)
        self._dirty = False
        self._last_save = time.monotonic()
        self._save_cost = self._last_save - now
