"""The PDF report of a reviewed recording: :func:`afdetect.monitor.report.write_report`
(the report of ``scan --report``) on the scan with the reviewed episodes in place of the
algorithm's, marked as reviewed (:meth:`Adjudication.mark`).

The scan comes back from its JSON entry: the windows and their probabilities as the scan
gave them, on the model's step grid (``step_s`` of the scan's settings); the beats are the
ones the review marks on the trace (:func:`afdetect.review.rate.recording_beats`), from
which the report's heart rates come.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from afdetect import CLASSES
from afdetect.errors import InputError
from afdetect.monitor.episodes import EpisodeRule, checked_probabilities, step_probabilities
from afdetect.monitor.report import ReportOptions, write_report
from afdetect.monitor.scan import RecordingScan
from afdetect.review.adjudication import Adjudication
from afdetect.review.recordings import ReviewRecording

REPORT_SUFFIX = ".reviewed.pdf"
MS = 1e-3  # the JSON's seconds are rounded to the millisecond


def reviewed_scan(recording: ReviewRecording, review: Adjudication, beats: np.ndarray
                  ) -> RecordingScan:
    """The recording's scan with the reviewed rhythm (:meth:`Adjudication.reviewed_episodes`)
    as its episodes; ``beats`` (n_beats,) int64 samples of the detected beats."""
    stream, windows = recording.stream, recording.scan["windows"]
    starts_s = np.array([w["start_s"] for w in windows], dtype=np.float64)
    window_s = windows[0]["end_s"] - windows[0]["start_s"] if windows else 0.0
    step_s = scan_step(recording.scan_settings, starts_s, window_s, recording.scan_path)
    window_steps = max(1, round(window_s / step_s))
    window_starts = np.round(starts_s / step_s).astype(np.int64)
    probabilities = np.array([[w["probabilities"].get(c, 0.0) for c in CLASSES]
                              for w in windows], dtype=np.float64).reshape(-1, len(CLASSES))
    # the atrial check as the scan decided it (`atrial_organised`; scans written before the
    # check have none), for the checked P(AF) the report draws: terms (1, 1) exceed any
    # limit below 1, terms (0, 1) none
    terms = np.array([[int(bool(w.get("atrial_organised"))), 1] for w in windows],
                     dtype=np.int64).reshape(-1, 2)
    rule = scan_rule(recording.scan_settings) or EpisodeRule(max_atrial_coherence=None)
    return RecordingScan(review.record, stream.source, stream.fs, stream.n_samples,
                         stream.duration_s, stream.lead, step_s, window_starts, window_steps,
                         probabilities, None, terms, rule,
                         step_probabilities(window_starts, window_steps,
                                            checked_probabilities(probabilities, terms, rule)),
                         review.reviewed_episodes(), stream.start,
                         np.asarray(beats, dtype=np.int64))


def scan_rule(settings: dict[str, Any]) -> EpisodeRule | None:
    """The episode rule the scan's settings name, or None for one this version does not
    know."""
    rule = settings.get("rule")
    try:
        return EpisodeRule(**rule) if isinstance(rule, dict) else None
    except (TypeError, ValueError):
        return None


def scan_step(settings: dict[str, Any], starts_s: np.ndarray, window_s: float,
              scan_path: Path) -> float:
    """The model's output step in seconds: ``step_s`` of the scan's settings; for a scan
    written before they held it, the coarsest step of which the window and every window
    start are whole multiples (to the millisecond), which is the model's step or a
    multiple of it (then only the printed resolution is coarser)."""
    step = settings.get("step_s")
    if isinstance(step, int | float) and math.isfinite(step) and step > 0:
        return float(step)
    for k in range(1, max(1, round(window_s / (10 * MS))) + 1):
        step = window_s / k
        if np.all(np.abs(starts_s / step - np.round(starts_s / step)) * step < 2 * MS):
            return float(step)
    raise InputError(scan_path, "the scan's windows lie on no common step: scan again")


def write_reviewed_report(recording: ReviewRecording, review: Adjudication,
                          beats: np.ndarray, path: str | Path) -> Path:
    """Write the PDF report of the reviewed recording to ``path``, atomically."""
    settings = recording.scan_settings
    options = ReportOptions(model=str(settings.get("model", "unknown")),
                            rule=scan_rule(settings),
                            start=recording.stream.start, review=review.mark())
    return write_report(reviewed_scan(recording, review, beats), recording.stream, path,
                        options)


def export_review(recording: ReviewRecording, review: Adjudication, beats: np.ndarray,
                  out_dir: str | Path) -> dict[str, str]:
    """Write ``RECORD.rev``, ``RECORD.reviewed.csv`` (:meth:`Adjudication.export`) and the
    report ``RECORD.reviewed.pdf`` into ``out_dir``, each atomically; return their paths
    (``annotations``, ``csv``, ``report``)."""
    files = review.export(out_dir)
    report = write_reviewed_report(recording, review, beats,
                                   Path(out_dir) / f"{review.record}{REPORT_SUFFIX}")
    return {**files, "report": str(report)}
