"""Indexing a CinC 2017 style dataset directory and reading its labels.

Two layouts are accepted (DESIGN.md): the challenge root holding ``training2017/`` and
``REFERENCE-v3.csv``, or any folder of records with a ``REFERENCE*.csv`` beside them.
Records may sit in sub-folders (PhysioNet's own tree does that); they are found by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from afdetect import CLASSES
from afdetect.errors import InputError

# Preference order: the revised v3 labels, then whatever the folder ships.
_LABEL_FILES = (
    "REFERENCE-v3.csv",
    "REFERENCE.csv",
    "training2017/REFERENCE-v3.csv",
    "training2017/REFERENCE.csv",
)


@dataclass(frozen=True)
class LabelledRecord:
    """One entry of a dataset index: record name, path without suffix, class index."""

    name: str
    path: Path
    label: int


def find_label_file(data_dir: str | Path) -> Path:
    """Return the label file of ``data_dir``, v3 labels first."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(data_dir, "no such dataset directory")
    for candidate in _LABEL_FILES:
        if (data_dir / candidate).is_file():
            return data_dir / candidate
    others = sorted(p for p in data_dir.glob("REFERENCE*.csv") if "original" not in p.name)
    if others:
        return others[0]
    raise InputError(data_dir, "no REFERENCE-v3.csv or REFERENCE*.csv label file")


def read_labels(path: str | Path) -> dict[str, int]:
    """Read ``name,label`` rows into ``{name: class index}``.

    Tolerates CRLF line ends, a UTF-8 BOM, blank lines and a header row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable label file ({exc})") from None
    labels: dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        cells = [c.strip() for c in line.split(",")]
        if not cells[0]:
            continue
        if len(cells) < 2 or cells[1] not in CLASSES:
            if line_no == 1:  # a header row such as "record,label"
                continue
            raise InputError(path, f"line {line_no}: expected 'name,label' with label in "
                                   f"{'/'.join(CLASSES)}, got {line.strip()!r}")
        labels[cells[0]] = CLASSES.index(cells[1])
    if not labels:
        raise InputError(path, "no labels")
    return labels


def index_dataset(data_dir: str | Path) -> list[LabelledRecord]:
    """List every labelled record of ``data_dir`` whose header exists, sorted by name.

    Labelled records without a header are an error: a partial download should be noticed.
    """
    data_dir = Path(data_dir)
    labels = read_labels(find_label_file(data_dir))
    headers = {p.stem: p.with_suffix("") for p in data_dir.rglob("*.hea")}
    missing = sorted(set(labels) - set(headers))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(data_dir, f"{len(missing)} labelled record(s) have no header: {shown}")
    return [LabelledRecord(name, headers[name], labels[name]) for name in sorted(labels)]
