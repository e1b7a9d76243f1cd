"""AF episode statistics of ANSI/AAMI EC57, computed as WFDB's ``epicmp -A`` computes them.

Inputs are WFDB rhythm marks, ``(sample, aux)`` pairs of ``+`` annotations, as they are in
the reference annotation file and in the file ``scan --annotations`` writes, so that the
figures describe exactly what those files say. Everything is counted in samples.

- **AF episodes**: an episode starts at a mark whose aux begins with ``(AFIB`` and ends at
  the next mark whose aux does not (later ``(AFIB`` marks continue it); one still open at
  the end of the file lasts to the end of the record.
- **Comparison period**: from ``start_s`` (``epicmp -f``; WFDB's default is 5 min of
  learning period, afdetect's is 0 because a scan decides from the first window and the
  file covers the whole recording) to the end of the record. Episodes are clipped to it;
  those ending before it are ignored.
- **Episode sensitivity**: reference episodes overlapping (by at least one sample) any
  detected episode, over all reference episodes. **Episode positive predictivity**: the
  same with the roles swapped.
- **Duration sensitivity / positive predictivity**: the samples of reference (detected)
  episodes that lie in a detected (reference) episode, over all samples of reference
  (detected) episodes.
- With ``exclude_flutter`` (``epicmp -x``, the EC38:1998 rule) reference atrial flutter
  (``(AFL``) is cut out of the detected episodes before the positive predictivities are
  counted (not out of the sensitivities).
- Beside them, the clinical figure **sensitivity for episodes of at least 30 s**
  (``long_episode_s``): reference episodes that long (within the comparison period) that
  overlap any detection.

Each is given **gross** (counts pooled over records; durations in seconds) and **average**
(the mean of the per-record ratios over the records where the ratio is defined), as WFDB's
``sumstats`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Mark = tuple[int, str]          # (sample, aux of a '+' rhythm annotation)
Span = tuple[int, int]          # [start, end) in samples

AF_AUX = "(AFIB"
FLUTTER_AUX = "(AFL"


@dataclass(frozen=True)
class Ec57Options:
    """How records are compared.

    Attributes:
        start_s: seconds from the start of the record at which the comparison begins
            (``epicmp -f``).
        exclude_flutter: cut reference atrial flutter out of the detections for the
            positive predictivities (``epicmp -x``).
        long_episode_s: shortest reference episode counted by the clinical sensitivity.
    """

    start_s: float = 0.0
    exclude_flutter: bool = False
    long_episode_s: float = 30.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError("the comparison start must be a number of seconds >= 0")
        if not (np.isfinite(self.long_episode_s) and self.long_episode_s >= 0):
            raise ValueError("the long-episode length must be a number of seconds >= 0")


def rhythm_episodes(marks: Sequence[Mark], rhythm: str, end: int) -> list[Span]:
    """Episodes of ``rhythm`` (an aux prefix such as ``(AFIB``) in time-ordered marks.

    An episode open at the last mark lasts to ``end`` (or to that mark, if later).
    """
    episodes, onset = [], None
    for sample, aux in marks:
        if aux.startswith(rhythm):
            if onset is None:
                onset = sample
        elif onset is not None:
            episodes.append((onset, sample))
            onset = None
    if onset is not None:
        episodes.append((onset, max(end, marks[-1][0])))
    return episodes


def _in_period(episodes: Sequence[Span], start: int, end: int) -> list[Span]:
    """Episodes clipped to [start, end); those ending before ``start`` or starting at or
    after ``end`` are dropped. A zero-length episode at sample 0 ends the list, as in
    epicmp, which takes an end time of 0 for "no more episodes"."""
    kept = []
    for a, b in episodes:
        if b == 0:
            break
        if b < start:
            continue
        if a >= end:
            break
        kept.append((max(a, start), min(b, end)))
    return kept


def _overlap(span: Span, others: Sequence[Span]) -> int:
    """Samples of ``span`` inside ``others`` (sorted, disjoint)."""
    return sum(max(0, min(span[1], b) - max(span[0], a)) for a, b in others
               if a <= span[1] and b >= span[0])


def _exclude(span: Span, exclusions: Sequence[Span]) -> tuple[Span, int]:
    """``span`` with sorted ``exclusions`` cut out: its new bounds and its remaining
    duration (-1 when it lies wholly inside one). An exclusion strictly inside the span
    shortens the duration but not the bounds, so overlaps are still measured over them."""
    a, b = span
    duration = b - a
    for ex_a, ex_b in exclusions:
        if b <= ex_a:
            break
        if ex_a <= a <= ex_b:
            if b <= ex_b:
                return span, -1
            duration -= ex_b - a
            a = ex_b
        elif a <= ex_a <= b:
            if ex_b < b:
                duration -= ex_b - ex_a
            else:
                duration -= b - ex_a
                b = ex_a
    return (a, b), duration


def _tally(episodes: Sequence[Span], others: Sequence[Span],
           exclusions: Sequence[Span] = ()) -> tuple[int, int, int, int]:
    """(matched, unmatched, duration, overlap) of ``episodes`` against ``others``."""
    matched = unmatched = duration = overlap = 0
    for span in episodes:
        bounds, length = _exclude(span, exclusions)
        if length < 0:
            continue
        duration += length
        shared = _overlap(bounds, others)
        if shared > 0:
            matched += 1
            overlap += shared
        else:
            unmatched += 1
    return matched, unmatched, duration, overlap


@dataclass(frozen=True)
class EpisodeCounts:
    """One record's tallies, as ``epicmp -A`` prints them (durations in samples)."""

    fs: float
    samples: int              # samples compared
    ref_matched: int          # epicmp TPs: reference episodes overlapping a detection
    ref_missed: int           # FN
    det_matched: int          # TPp: detected episodes overlapping reference AF
    det_false: int            # FP
    ref_duration: int         # samples of reference AF
    ref_overlap: int          # ... also detected
    det_duration: int         # samples of detected AF (less flutter with -x)
    det_overlap: int          # ... also reference AF
    ref_long: int             # reference episodes of at least long_episode_s
    ref_long_detected: int    # ... overlapping a detection
    det_af: int               # samples of detected AF (no exclusions): the burden

    def statistics(self) -> dict[str, float | None]:
        """Episode and duration Se / +P, the 30-s sensitivity and both burdens."""
        return {
            "episode_sensitivity": _ratio(self.ref_matched, self.ref_matched + self.ref_missed),
            "episode_ppv": _ratio(self.det_matched, self.det_matched + self.det_false),
            "duration_sensitivity": _ratio(self.ref_overlap, self.ref_duration),
            "duration_ppv": _ratio(self.det_overlap, self.det_duration),
            "long_episode_sensitivity": _ratio(self.ref_long_detected, self.ref_long),
            "reference_burden": _ratio(self.ref_duration, self.samples),
            "detected_burden": _ratio(self.det_af, self.samples),
        }


STATISTICS = ("episode_sensitivity", "episode_ppv", "duration_sensitivity", "duration_ppv",
              "long_episode_sensitivity")


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def compare_record(reference: Sequence[Mark], detected: Sequence[Mark], n_samples: int,
                   fs: float, options: Ec57Options | None = None) -> EpisodeCounts:
    """EC57 AF counts of one record (see the module docstring).

    Args:
        reference, detected: time-ordered rhythm marks of the two annotation files.
        n_samples: length of the record in samples (the end of the comparison).
        fs: sampling rate of the record (Hz), for the start time and the 30-s threshold.
    """
    options = options or Ec57Options()
    start = round(options.start_s * fs)
    if start > n_samples:
        raise ValueError(f"the comparison start ({options.start_s:g} s) is after the end "
                         f"of the record ({n_samples / fs:g} s)")
    ref = _in_period(rhythm_episodes(reference, AF_AUX, n_samples), start, n_samples)
    det = _in_period(rhythm_episodes(detected, AF_AUX, n_samples), start, n_samples)
    flutter = (_in_period(rhythm_episodes(reference, FLUTTER_AUX, n_samples), start,
                          n_samples) if options.exclude_flutter else [])
    # Overlaps are measured against the other side's episodes as they are in the file;
    # only the counted side is clipped to the period, as epicmp does.
    ref_all = rhythm_episodes(reference, AF_AUX, n_samples)
    det_all = rhythm_episodes(detected, AF_AUX, n_samples)
    s_match, s_miss, s_dur, s_over = _tally(ref, det_all)
    p_match, p_false, p_dur, p_over = _tally(det, ref_all, flutter)
    long_refs = [r for r in ref if r[1] - r[0] >= options.long_episode_s * fs]
    return EpisodeCounts(
        fs=fs, samples=n_samples - start,
        ref_matched=s_match, ref_missed=s_miss, det_matched=p_match, det_false=p_false,
        ref_duration=s_dur, ref_overlap=s_over, det_duration=p_dur, det_overlap=p_over,
        ref_long=len(long_refs),
        ref_long_detected=sum(_overlap(r, det_all) > 0 for r in long_refs),
        det_af=sum(b - a for a, b in det),
    )


def gross_statistics(counts: Sequence[EpisodeCounts]) -> dict[str, float | None]:
    """The statistics of counts pooled over records (durations summed in seconds)."""
    def total(field: str, seconds: bool) -> float:
        return float(sum(getattr(c, field) / (c.fs if seconds else 1.0) for c in counts))

    return {
        "episode_sensitivity": _ratio(total("ref_matched", False),
                                      total("ref_matched", False) + total("ref_missed", False)),
        "episode_ppv": _ratio(total("det_matched", False),
                              total("det_matched", False) + total("det_false", False)),
        "duration_sensitivity": _ratio(total("ref_overlap", True), total("ref_duration", True)),
        "duration_ppv": _ratio(total("det_overlap", True), total("det_duration", True)),
        "long_episode_sensitivity": _ratio(total("ref_long_detected", False),
                                           total("ref_long", False)),
    }


def summarise_records(counts: dict[str, EpisodeCounts]) -> dict[str, Any]:
    """Gross and average statistics, per-record figures, and the mean absolute error of
    the AF burden (detected against reference, over the compared time)."""
    per_record = {name: c.statistics() for name, c in counts.items()}
    average = {}
    for key in STATISTICS:
        values = [v for s in per_record.values() if (v := s[key]) is not None]
        average[key] = float(np.mean(values)) if values else None
    errors = [abs((s["detected_burden"] or 0.0) - (s["reference_burden"] or 0.0))
              for s in per_record.values()]
    return {
        "gross": gross_statistics(list(counts.values())),
        "average": average,
        "burden_mae": float(np.mean(errors)) if errors else None,
        "records": {name: {**s, **asdict(counts[name])} for name, s in per_record.items()},
    }
