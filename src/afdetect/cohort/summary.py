"""``RESULTS/cohort.csv`` (one row per recording) and ``RESULTS/failures.csv``.

``cohort.csv`` columns: ``record`` (the results key), ``source`` (the input file),
``start`` (the manifest's ``start``, else the WFDB header's date and time, else empty),
``duration_s``, ``analysed_s`` (the seconds the model's steps cover), ``af_burden`` (AF
time over the duration, a fraction), ``n_af_episodes``, ``longest_af_s``, the mean heart
rate over the recording, in AF and outside it (``heart_rate_bpm``, ``heart_rate_af_bpm``,
``heart_rate_non_af_bpm``; empty where fewer than 2 beats), ``model``, ``status`` (``ok``
or ``failed``; a failed row has its figures empty), then the manifest's other columns
(``patient``, ...) in the order they first appear.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afdetect.atomic import write_text_atomic

COHORT_NAME = "cohort.csv"
FAILURES_NAME = "failures.csv"
FIGURES = ("duration_s", "analysed_s", "af_burden", "n_af_episodes", "longest_af_s",
           "heart_rate_bpm", "heart_rate_af_bpm", "heart_rate_non_af_bpm")
COLUMNS = ("record", "source", "start", *FIGURES, "model", "status")


@dataclass(frozen=True)
class Row:
    """One recording's line of ``cohort.csv``.

    Attributes:
        record: its results key.
        source: its input file.
        summary: the worker's figures (see :func:`~afdetect.cohort.worker.summary_values`)
            and the header's ``start``; empty when it failed.
        metadata: the manifest's other columns.
        model: the model's name.
        error: the one-line reason it failed, else None.
    """

    record: str
    source: str
    summary: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)
    model: str = ""
    error: str | None = None


def write_cohort(folder: Path, rows: list[Row]) -> None:
    """Write ``folder/cohort.csv`` (atomically), rows in the order given."""
    extra: list[str] = []
    for row in rows:
        extra.extend(k for k in row.metadata if k != "start" and k not in extra)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, *(c for c in extra if c not in COLUMNS)])
    for row in rows:
        start = row.metadata.get("start") or row.summary.get("start", "")
        figures = [row.summary.get(k, "") for k in FIGURES]
        writer.writerow([row.record, row.source, start, *figures, row.model,
                         "failed" if row.error else "ok",
                         *(row.metadata.get(c, "") for c in extra if c not in COLUMNS)])
    write_text_atomic(folder / COHORT_NAME, buffer.getvalue())


def write_failures(folder: Path, failures: list[tuple[str, str]]) -> None:
    """Write ``folder/failures.csv`` (atomically): ``record,reason`` per failure, with a
    header even when there is none."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record", "reason"])
    writer.writerows(failures)
    write_text_atomic(folder / FAILURES_NAME, buffer.getvalue())
