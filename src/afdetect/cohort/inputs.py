"""What a cohort is: the recordings behind the inputs, and where their results go.

An input is

- a folder: every recording below it, recursively (WFDB records by their ``.hea``, ``.csv``
  and ``.npy`` files, as ``afdetect scan`` takes a folder; hidden folders and the results
  folder itself are skipped);
- a text list (``.txt``, ``.lst``, ``.list``): one recording (or folder) per line, blank
  lines and ``#`` comments ignored, relative paths taken from the list's folder;
- a CSV manifest (a ``.csv`` whose header has a ``record`` column): one recording per
  row, relative paths taken from the manifest's folder, every other column (``patient``,
  ``start``, ...) kept as the recording's metadata;
- anything else: one recording.

Each recording gets a *key*, the path of its results under ``RESULTS/``: its path relative
to the folder all the inputs share, without the file suffix (``ward3/p0042/day1``), so
that the results mirror the input tree.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from afdetect.errors import InputError
from afdetect.io.records import WFDB_SUFFIXES
from afdetect.predict import RECORD_SUFFIXES

LIST_SUFFIXES = (".txt", ".lst", ".list")
RECORD_COLUMN = "record"


@dataclass(frozen=True)
class CohortRecord:
    """One recording of the cohort.

    Attributes:
        key: where its results go, relative to ``RESULTS/`` (POSIX separators, no suffix).
        source: the recording, as the readers take it (absolute).
        metadata: the manifest's other columns for it (``patient``, ``start``, ...).
    """

    key: str
    source: Path
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Found:
    source: Path
    root: Path  # the folder its key is relative to before the common base is taken off
    metadata: dict[str, str]


def discover(inputs: list[str | Path], exclude: Path | None = None
             ) -> tuple[list[CohortRecord], list[InputError]]:
    """The cohort behind ``inputs``, in input order, each recording once.

    Args:
        inputs: folders, lists, manifests or recordings (see the module docstring).
        exclude: a folder never to walk into (the results folder).

    Returns:
        the recordings, and one :class:`InputError` per input that could not be read (a
        missing or malformed list or manifest) or per recording whose key another one
        already has (``a/100.hea`` and ``a/100.csv``).
    """
    problems: list[InputError] = []
    found: list[_Found] = []
    for item in inputs:
        try:
            # whole inputs or nothing: a list naming a missing list is one problem
            found.extend(list(_expand(Path(item).absolute(),
                                      exclude.absolute() if exclude else None, {})))
        except InputError as exc:
            problems.append(exc)
    unique: dict[Path, _Found] = {}
    for f in found:
        unique.setdefault(_record_base(f.source), f)
    if not unique:
        return [], problems
    base = Path(os.path.commonpath([str(f.root) for f in unique.values()]))
    records: list[CohortRecord] = []
    taken: dict[str, Path] = {}
    for f in unique.values():
        key = _record_base(f.source).relative_to(base).as_posix()
        if key in taken:
            problems.append(InputError(f.source, f"its results would overwrite those of "
                                                 f"{taken[key]} (same name, same folder)"))
            continue
        taken[key] = f.source
        records.append(CohortRecord(key, f.source, f.metadata))
    return records, problems


def _expand(path: Path, exclude: Path | None, metadata: dict[str, str]) -> Iterator[_Found]:
    if path.is_dir():
        yield from (_Found(p, path, metadata) for p in _walk(path, exclude))
    elif path.suffix.lower() in LIST_SUFFIXES:
        for line in _read_lines(path):
            yield from _expand(_relative_to(path.parent, line), exclude, metadata)
    elif path.suffix.lower() == ".csv" and _is_manifest(path):
        for source, row in _manifest_rows(path):
            yield from _expand(source, exclude, row)
    else:
        yield _Found(path, path.parent, metadata)


def _walk(folder: Path, exclude: Path | None) -> Iterator[Path]:
    """Recordings below ``folder``, folder by folder in name order."""
    for parent, dirs, files in os.walk(folder):
        here = Path(parent)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d != exclude)
        for name in sorted(files):
            p = here / name
            if (p.suffix.lower() in RECORD_SUFFIXES and not name.startswith(".")
                    and not name.upper().startswith("REFERENCE")):
                yield p


def _record_base(path: Path) -> Path:
    """The record without its suffix: one name for a WFDB record's ``.hea``/``.dat``."""
    return path.with_suffix("") if path.suffix.lower() in (*WFDB_SUFFIXES, ".csv", ".npy") \
        else path


def _relative_to(folder: Path, entry: str) -> Path:
    p = Path(os.path.expanduser(entry))
    return p if p.is_absolute() else folder / p


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable ({exc.__class__.__name__})") from None


def _read_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in _read_text(path).splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise InputError(path, "the list names no recordings")
    return entries


def _is_manifest(path: Path) -> bool:
    """A CSV whose first row names a ``record`` column (an ECG CSV holds numbers)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # the reader of recordings names the problem
    return RECORD_COLUMN in (cell.strip().lower() for cell in header)


def _manifest_rows(path: Path) -> list[tuple[Path, dict[str, str]]]:
    """(recording, its other columns) per row of a CSV manifest, all rows checked first."""
    try:
        rows = list(csv.reader(_read_text(path).splitlines()))
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV ({exc})") from None
    header = [cell.strip() for cell in rows[0]]
    column = [h.lower() for h in header].index(RECORD_COLUMN)
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header) or not row[column].strip():
            raise InputError(path, f"row {number}: expected {len(header)} cells with a "
                                   f"{header[column]!r}, got {len(row)}")
        metadata = {h: cell.strip() for i, (h, cell) in enumerate(zip(header, row, strict=True))
                    if i != column}
        out.append((_relative_to(path.parent, row[column].strip()), metadata))
    if not out:
        raise InputError(path, "the manifest lists no recordings")
    return out
