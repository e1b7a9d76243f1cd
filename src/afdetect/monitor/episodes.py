"""From overlapping window probabilities to rhythm episodes and AF burden.

The documented rule (:class:`EpisodeRule`; defaults from cross-validation on the MIT-BIH
development records, ``benchmarks/monitor_accuracy.py``):

0. A window in which the same wave stands before every QRS (P waves, however irregular
   the rate, or flutter waves: :mod:`afdetect.monitor.atrial`) is not AF: its P(AF)
   becomes 0 (``max_atrial_coherence``; None turns the check off).
1. Every time step (``step_s`` seconds, the model's output resolution) takes the mean
   class probabilities of the windows that cover it: overlapping windows smooth.
2. A step is AF when its mean P(AF) is at least ``af_threshold``; otherwise it takes the
   most probable of the other classes.
3. Non-AF gaps shorter than ``min_gap_s`` between two AF runs become AF; then AF runs
   shorter than ``min_af_s`` take their steps' most probable other class, unless the run
   is the whole recording (a recording shorter than ``min_af_s`` that is AF throughout
   is AF).
4. Between AF episodes, runs of the other labels shorter than ``min_rhythm_s`` join the
   longer neighbouring run, shortest first, so that sinus rhythm does not flicker between
   ``N`` and ``O``; this never changes what is AF.
5. Runs of equal labels are the episodes. They tile the whole recording: the last one
   lasts to its end (the samples after the last model step, less than two steps, take the
   last decision). AF burden is AF time over the duration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from afdetect import CLASSES
from afdetect.monitor.atrial import organised

AF = CLASSES.index("A")


@dataclass(frozen=True)
class EpisodeRule:
    """How window probabilities become episodes (see the module docstring).

    Attributes:
        af_threshold: mean P(AF) from which a step is AF.
        min_af_s: shortest AF episode kept, in seconds.
        min_gap_s: shortest non-AF gap kept between two AF episodes, in seconds.
        min_rhythm_s: shortest run of another rhythm label kept between AF episodes, in
            seconds (does not affect AF).
        max_atrial_coherence: a window whose atrial coherence exceeds this is not AF (the
            same wave before every QRS: P waves or flutter waves;
            :mod:`afdetect.monitor.atrial`); None: no check.
    """

    af_threshold: float = 0.6
    min_af_s: float = 60.0
    min_gap_s: float = 60.0
    min_rhythm_s: float = 60.0
    max_atrial_coherence: float | None = 0.5625

    def __post_init__(self) -> None:
        if not 0 < self.af_threshold <= 1:
            raise ValueError("the AF threshold must be in (0, 1]")
        if self.max_atrial_coherence is not None and not 0 < self.max_atrial_coherence < 1:
            raise ValueError("the atrial coherence limit must be in (0, 1), or off")
        for name in ("min_af_s", "min_gap_s", "min_rhythm_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value}")

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class Episode:
    """A run of one rhythm label, in seconds from the start of the recording."""

    label: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, float | str]:
        return {"label": self.label, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3)}


def checked_probabilities(probabilities: np.ndarray, atrial_terms: np.ndarray,
                          rule: EpisodeRule) -> np.ndarray:
    """Window probabilities after the atrial check: windows with organised atrial
    activity (:func:`afdetect.monitor.atrial.organised`) get P(AF) 0, the other classes
    scaled up to sum to 1.

    Args:
        probabilities: (n_windows, n_classes) the network's.
        atrial_terms: (n_windows, 2) int64 :data:`~afdetect.monitor.atrial.WINDOW_TERMS`.
        rule: its ``max_atrial_coherence`` (None: returned unchanged).
    Returns:
        (n_windows, n_classes).
    """
    if rule.max_atrial_coherence is None or not len(probabilities):
        return probabilities
    checked = probabilities.copy()
    hit = organised(atrial_terms, rule.max_atrial_coherence)
    checked[hit, AF] = 0.0
    rest = checked[hit].sum(axis=1, keepdims=True)
    # P(AF) of exactly 1 (the others underflowed): the other classes share it evenly
    checked[hit] = np.where(rest > 0, checked[hit] / np.where(rest > 0, rest, 1.0),
                            (np.arange(checked.shape[1]) != AF) / (checked.shape[1] - 1))
    return checked


def step_probabilities(window_starts: np.ndarray, window_steps: int,
                       probabilities: np.ndarray) -> np.ndarray:
    """Mean probabilities of the windows covering each step.

    Args:
        window_starts: (n_windows,) first step of each window.
        window_steps: steps per window.
        probabilities: (n_windows, n_classes).
    Returns:
        (n_steps, n_classes), n_steps = last window's end; rows covered by no window are 0.
    """
    if not len(window_starts):
        return np.zeros((0, probabilities.shape[1]))
    n_steps = int(window_starts[-1]) + window_steps
    diff = np.zeros((n_steps + 1, probabilities.shape[1]))
    count = np.zeros(n_steps + 1)
    np.add.at(diff, window_starts, probabilities)
    np.add.at(diff, window_starts + window_steps, -probabilities)
    np.add.at(count, window_starts, 1)
    np.add.at(count, window_starts + window_steps, -1)
    covered = np.cumsum(count)[:-1]
    # in place: one (n_steps, n_classes) array, not three (memory grows with the length)
    steps = np.cumsum(diff, axis=0, out=diff)[:-1]
    steps /= np.maximum(covered, 1)[:, None]
    return steps


def step_labels(probabilities: np.ndarray, step_s: float, rule: EpisodeRule) -> np.ndarray:
    """Class index per step (see the module docstring), shape (n_steps,)."""
    other = probabilities.copy()
    other[:, AF] = -1
    fallback = other.argmax(axis=1)
    is_af = probabilities[:, AF] >= rule.af_threshold
    is_af = _fill_short(is_af, value=False, max_len=rule.min_gap_s / step_s, inner_only=True)
    if not is_af.all():  # a recording that is AF throughout stays AF, however short
        is_af = _fill_short(is_af, value=True, max_len=rule.min_af_s / step_s,
                            inner_only=False)
    labels = np.where(is_af, AF, fallback)
    for value, start, stop in _runs(is_af.astype(np.int8)):
        if not value:
            labels[start:stop] = _merge_short(labels[start:stop], rule.min_rhythm_s / step_s)
    return labels


def episodes_of(labels: np.ndarray, step_s: float, duration_s: float | None = None
                ) -> list[Episode]:
    """Runs of equal labels as :class:`Episode` s; with ``duration_s`` the last one lasts
    to the end of the recording."""
    episodes = []
    for value, start, stop in _runs(labels):
        episodes.append(Episode(CLASSES[int(value)], start * step_s, stop * step_s))
    if episodes and duration_s is not None and duration_s > episodes[-1].end_s:
        last = episodes[-1]
        episodes[-1] = Episode(last.label, last.start_s, duration_s)
    return episodes


def _merge_short(labels: np.ndarray, min_len: float) -> np.ndarray:
    """Runs shorter than ``min_len`` steps join their longer neighbour (the earlier one
    on a tie), shortest run first, until every run is long enough or one is left."""
    runs = [[v, b - a] for v, a, b in _runs(labels)]
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda k: runs[k][1])
        if runs[i][1] >= min_len:
            break
        left = runs[i - 1][1] if i > 0 else -1
        right = runs[i + 1][1] if i + 1 < len(runs) else -1
        j = i - 1 if left >= right else i + 1
        runs[j][1] += runs[i][1]
        del runs[i]
        k = min(i, j)  # neighbours that now carry the same label become one run
        if k + 1 < len(runs) and runs[k][0] == runs[k + 1][0]:
            runs[k][1] += runs[k + 1][1]
            del runs[k + 1]
        if k > 0 and runs[k - 1][0] == runs[k][0]:
            runs[k - 1][1] += runs[k][1]
            del runs[k]
    return np.repeat([v for v, _ in runs], [n for _, n in runs]).astype(labels.dtype)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, stop) of every run of equal values."""
    if not len(values):
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(values)]])
    return [(int(values[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _fill_short(mask: np.ndarray, *, value: bool, max_len: float,
                inner_only: bool) -> np.ndarray:
    """Flip runs of ``value`` shorter than ``max_len`` steps; with ``inner_only``, only runs
    with the other value on both sides."""
    out = mask.copy()
    for v, start, stop in _runs(mask.astype(np.int8)):
        if bool(v) != value or stop - start >= max_len:
            continue
        if inner_only and (start == 0 or stop == len(mask)):
            continue
        out[start:stop] = not value
    return out
