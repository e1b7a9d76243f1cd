"""AF episode statistics of ANSI/AAMI EC57, as WFDB's ``epicmp -a`` reports them.

Per record, with reference AF episodes R and detected AF episodes D (intervals in s):

- **Episode sensitivity**: reference episodes of at least ``min_episode_s`` (30 s, the
  clinical definition of an AF episode) that overlap any detected episode, over all such
  reference episodes.
- **Episode positive predictivity**: detected episodes that overlap any reference AF
  episode (of any length), over all detected episodes.
- **Duration sensitivity / positive predictivity**: on a 1-s grid (second ``i`` is in an
  episode when ``i + 0.5`` is), the AF seconds in both over the reference (detected) AF
  seconds.

Each is given **gross** (counts pooled over records) and **average** (the mean of the
per-record ratios over the records where the ratio is defined).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Interval = tuple[float, float]


@dataclass(frozen=True)
class EpisodeCounts:
    """The counts behind one record's statistics."""

    ref_episodes: int        # reference episodes of at least min_episode_s
    ref_detected: int        # ... overlapped by a detection
    det_episodes: int        # detected episodes
    det_true: int            # ... overlapping reference AF
    ref_seconds: int         # reference AF seconds on the 1-s grid
    det_seconds: int         # detected AF seconds
    both_seconds: int        # seconds in both
    seconds: int             # seconds on the grid

    def __add__(self, other: EpisodeCounts) -> EpisodeCounts:
        return EpisodeCounts(*(a + b for a, b in zip(asdict(self).values(),
                                                       asdict(other).values(), strict=True)))

    def statistics(self) -> dict[str, float | None]:
        """Episode and duration Se / +P, and both burdens; None where undefined."""
        return {
            "episode_sensitivity": _ratio(self.ref_detected, self.ref_episodes),
            "episode_ppv": _ratio(self.det_true, self.det_episodes),
            "duration_sensitivity": _ratio(self.both_seconds, self.ref_seconds),
            "duration_ppv": _ratio(self.both_seconds, self.det_seconds),
            "reference_burden": _ratio(self.ref_seconds, self.seconds),
            "detected_burden": _ratio(self.det_seconds, self.seconds),
        }


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def second_grid(intervals: Sequence[Interval], duration_s: float) -> np.ndarray:
    """(ceil(duration_s),) bool: second i is inside when i + 0.5 lies in an interval."""
    centres = np.arange(int(np.ceil(duration_s))) + 0.5
    inside = np.zeros(len(centres), dtype=bool)
    for start, end in intervals:
        inside |= (centres >= start) & (centres < end)
    return inside


def compare_episodes(reference: Sequence[Interval], detected: Sequence[Interval],
                     duration_s: float, min_episode_s: float = 30.0) -> EpisodeCounts:
    """EC57 counts of one record's AF episodes (see the module docstring)."""
    long_refs = [r for r in reference if r[1] - r[0] >= min_episode_s]
    ref_grid = second_grid(reference, duration_s)
    det_grid = second_grid(detected, duration_s)
    return EpisodeCounts(
        ref_episodes=len(long_refs),
        ref_detected=sum(any(overlaps(r, d) for d in detected) for r in long_refs),
        det_episodes=len(detected),
        det_true=sum(any(overlaps(d, r) for r in reference) for d in detected),
        ref_seconds=int(ref_grid.sum()),
        det_seconds=int(det_grid.sum()),
        both_seconds=int((ref_grid & det_grid).sum()),
        seconds=len(ref_grid),
    )


def summarise_records(counts: dict[str, EpisodeCounts]) -> dict[str, Any]:
    """Gross and average statistics, plus burden per record and its mean absolute error."""
    per_record = {name: c.statistics() for name, c in counts.items()}
    total = sum(counts.values(), EpisodeCounts(0, 0, 0, 0, 0, 0, 0, 0))
    keys = ("episode_sensitivity", "episode_ppv", "duration_sensitivity", "duration_ppv")
    average = {}
    for key in keys:
        values = [v for s in per_record.values() if (v := s[key]) is not None]
        average[key] = float(np.mean(values)) if values else None
    errors = [abs((s["detected_burden"] or 0.0) - (s["reference_burden"] or 0.0))
              for s in per_record.values()]
    gross = total.statistics()
    return {
        "gross": {k: gross[k] for k in keys},
        "average": average,
        "counts": asdict(total),
        "burden_mae": float(np.mean(errors)) if errors else None,
        "records": {name: {**s, **asdict(counts[name])} for name, s in per_record.items()},
    }
