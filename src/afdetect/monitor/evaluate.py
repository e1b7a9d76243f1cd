"""``afdetect evaluate --episodes``: scans scored against reference rhythm annotations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.errors import InputError
from afdetect.io.records import open_stream
from afdetect.monitor.ec57 import compare_episodes, second_grid, summarise_records
from afdetect.monitor.episodes import AF
from afdetect.monitor.rhythm import RhythmInterval, af_intervals, read_rhythm
from afdetect.monitor.scan import RecordingScan, ScanConfig, StepModel, scan_stream


@dataclass
class ScoredScan:
    """A scan and the reference rhythm of its record."""

    scan: RecordingScan
    reference: list[RhythmInterval]


def window_share(scan: RecordingScan, intervals: list[tuple[float, float]]) -> np.ndarray:
    """(n_windows,) share of each window inside ``intervals`` (s), on the 1-s grid."""
    grid = second_grid(intervals, scan.duration_s).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(grid)])
    starts = scan.window_starts * scan.step_s
    ends = starts + scan.window_steps * scan.step_s
    lo = np.clip(np.round(starts).astype(int), 0, len(grid))
    hi = np.clip(np.round(ends).astype(int), 0, len(grid))
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def window_truth(scan: RecordingScan, reference: list[RhythmInterval]) -> np.ndarray:
    """(n_windows,) bool: at least half of the window lies in reference AF."""
    return window_share(scan, af_intervals(reference)) >= 0.5


def window_statistics(scored: list[ScoredScan]) -> dict[str, Any]:
    """AF-vs-rest confusion of the windows, and the 2 x 4 table truth x predicted class."""
    truth = np.concatenate([window_truth(s.scan, s.reference) for s in scored])
    predicted = np.concatenate([s.scan.probabilities.argmax(axis=1) for s in scored])
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


def episode_report(scored: list[ScoredScan], min_episode_s: float = 30.0) -> dict[str, Any]:
    """EC57 statistics, burden per record and window statistics of scored scans."""
    counts = {
        s.scan.record: compare_episodes(af_intervals(s.reference),
                                        [(e.start_s, e.end_s) for e in s.scan.af_episodes()],
                                        s.scan.duration_s, min_episode_s)
        for s in scored}
    return {**summarise_records(counts), "windows": window_statistics(scored),
            "min_episode_s": min_episode_s}


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
            stream = open_stream(header)
            reference = read_rhythm(header, annotator, stream.fs, stream.duration_s)
            scored.append(ScoredScan(scan_stream(model, stream, config), reference))
        except InputError as exc:
            failures.append(exc)
    return scored, failures
