"""Soft labels: per-record class probabilities from a teacher, for distillation.

The file is a CSV with the header ``record,N,A,O,~`` (the classes of
:data:`afdetect.CLASSES`) and one row per record: its name and the teacher's probability of
each class. Any teacher can write one (an ensemble, another toolkit, several annotators'
votes); ``afdetect train --soft-labels FILE --distill W`` then learns from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from afdetect import CLASSES
from afdetect.atomic import write_text_atomic
from afdetect.errors import InputError

HEADER = ["record", *CLASSES]


def write_soft_labels(path: str | Path, names: np.ndarray, probabilities: np.ndarray) -> None:
    """Write ``probabilities`` (n_records, n_classes), rows summing to 1, for ``names``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for name, row in zip(names, probabilities, strict=True):
        writer.writerow([str(name), *(f"{p:.6f}" for p in row)])
    write_text_atomic(Path(path), buffer.getvalue())


def read_soft_labels(path: str | Path, names: np.ndarray) -> np.ndarray:
    """The soft labels of ``names`` from ``path``: float32 (len(names), n_classes).

    Rows are renormalised to sum to 1. Raises :class:`InputError` when the file is not a
    soft-label CSV, a probability is negative or not finite, or a record is missing.
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read soft labels ({exc})") from None
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        raise InputError(path, f"not a soft-label file: the header must be {','.join(HEADER)}")
    table: dict[str, np.ndarray] = {}
    for line, row in enumerate(rows[1:], start=2):
        try:
            values = np.array([float(v) for v in row[1:]], dtype=np.float64)
        except ValueError:
            raise InputError(path, f"line {line}: a probability is not a number") from None
        if len(values) != len(CLASSES) or not np.all(np.isfinite(values)) or values.min() < 0 \
                or values.sum() <= 0:
            raise InputError(path, f"line {line}: needs {len(CLASSES)} non-negative "
                                   "probabilities, not all zero")
        table[row[0].strip()] = values / values.sum()
    missing = [str(n) for n in names if str(n) not in table]
    if missing:
        raise InputError(path, f"has no soft label for {len(missing)} training records "
                               f"(first: {missing[0]})")
    return np.vstack([table[str(n)] for n in names]).astype(np.float32)


def file_digest(path: str | Path) -> str:
    """SHA-256 of the file, so that a resumed run refuses changed soft labels."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(path, f"cannot read soft labels ({exc.strerror})") from None
