"""``afdetect evaluate --episodes``: scans scored against reference rhythm annotations."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.errors import InputError
from afdetect.io.records import open_stream
from afdetect.monitor.ec57 import (
    Ec57Options,
    EpisodeCounts,
    Mark,
    compare_record,
    summarise_records,
)
from afdetect.monitor.episodes import AF
from afdetect.monitor.rhythm import (
    RhythmInterval,
    af_intervals,
    episode_marks,
    read_rhythm_marks,
    rhythm_intervals,
)
from afdetect.monitor.scan import RecordingScan, ScanConfig, StepModel, scan_stream


@dataclass
class ScoredScan:
    """A scan and the reference rhythm of its record."""

    scan: RecordingScan
    reference: list[RhythmInterval]
    marks: list[Mark]

    @property
    def detected_marks(self) -> list[Mark]:
        """The marks ``scan --annotations`` writes for this scan."""
        return episode_marks(self.scan.episodes, self.scan.fs)


def af_seconds_in(starts_s: np.ndarray, ends_s: np.ndarray,
                  intervals: list[tuple[float, float]]) -> np.ndarray:
    """Seconds of each [start, end) that lie in the sorted, disjoint ``intervals``."""
    if not intervals:
        return np.zeros(len(starts_s))
    edges = np.array(sorted(intervals), dtype=np.float64).ravel()
    # time inside the intervals from the first edge up to each edge: only the stretches
    # from a start to its end (even-numbered gaps) count
    inside = np.diff(edges) * (np.arange(len(edges) - 1) % 2 == 0)
    cumulative = np.concatenate([[0.0], np.cumsum(inside)])
    return np.interp(ends_s, edges, cumulative) - np.interp(starts_s, edges, cumulative)


def window_share(scan: RecordingScan, intervals: list[tuple[float, float]]) -> np.ndarray:
    """(n_windows,) share of each window inside ``intervals`` (s)."""
    starts = scan.window_starts * scan.step_s
    return af_seconds_in(starts, starts + scan.window_s, intervals) / scan.window_s


def window_truth(scan: RecordingScan, reference: list[RhythmInterval]) -> np.ndarray:
    """(n_windows,) bool: at least half of the window lies in reference AF."""
    return window_share(scan, af_intervals(reference)) >= 0.5


def window_statistics(scored: list[ScoredScan]) -> dict[str, Any]:
    """AF-vs-rest confusion of the windows, and the 2 x 4 table truth x predicted class."""
    truth = np.concatenate([window_truth(s.scan, s.reference) for s in scored])
    predicted = np.concatenate([s.scan.window_labels for s in scored])
    table = {("AF" if t else "not AF"): {c: int(((truth == t) & (predicted == i)).sum())
                                          for i, c in enumerate(CLASSES)}
             for t in (True, False)}
    return {**af_confusion(truth, predicted == AF), "predicted_by_truth": table}


def af_confusion(truth: np.ndarray, is_af: np.ndarray) -> dict[str, Any]:
    """AF-vs-rest counts, sensitivity, specificity and positive predictivity of bool
    window decisions (n_windows,) against bool truth."""
    tp, fn = int((truth & is_af).sum()), int((truth & ~is_af).sum())
    fp, tn = int((~truth & is_af).sum()), int((~truth & ~is_af).sum())
    return {
        "n_windows": len(truth), "tp": tp, "fn": fn, "fp": fp, "tn": tn,
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
        "ppv": tp / (tp + fp) if tp + fp else None,
    }


def record_counts(scored: ScoredScan, options: Ec57Options | None = None) -> EpisodeCounts:
    """EC57 counts of one scan against its reference annotations."""
    return compare_record(scored.marks, scored.detected_marks, scored.scan.n_samples,
                          scored.scan.fs, options)


def episode_report(scored: list[ScoredScan], options: Ec57Options | None = None
                   ) -> dict[str, Any]:
    """EC57 statistics, burden per record and window statistics of scored scans."""
    options = options or Ec57Options()
    counts = {s.scan.record: record_counts(s, options) for s in scored}
    return {**summarise_records(counts), "windows": window_statistics(scored),
            "ec57": asdict(options)}


def scan_annotated(model: StepModel, data: str | Path, config: ScanConfig,
                   annotator: str = "atr", progress: bool = False
                   ) -> tuple[list[ScoredScan], list[InputError]]:
    """Scan every WFDB record in folder ``data`` that has ``annotator`` rhythm annotations;
    records without them, and unreadable ones, are returned as failures."""
    folder = Path(data)
    if not folder.is_dir():
        raise InputError(folder, "no such dataset folder")
    headers = sorted(folder.glob("*.hea"))
    if not headers:
        raise InputError(folder, "holds no WFDB records (.hea)")
    scored, failures = [], []
    for header in tqdm(headers, desc="scanning", unit="rec", disable=not progress):
        try:
            scored.append(scan_annotated_record(model, header, config, annotator))
        except InputError as exc:
            failures.append(exc)
    return scored, failures


def scan_annotated_record(model: StepModel, header: str | Path, config: ScanConfig,
                          annotator: str = "atr") -> ScoredScan:
    """Scan one WFDB record and read its ``annotator`` rhythm annotations (InputError
    naming the record when it cannot be read or has none)."""
    stream = open_stream(header)
    marks = read_rhythm_marks(header, annotator)
    reference = rhythm_intervals(marks, stream.fs, stream.duration_s)
    return ScoredScan(scan_stream(model, stream, config), reference, marks)
