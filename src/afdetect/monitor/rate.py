"""Heart rate from detected beats: per span (window, episode, hour), vectorised.

An RR interval belongs to a span when both its beats lie in it (``start <= beat < end``),
so an interval across an episode boundary counts for neither side. Over a span with ``n``
such intervals lasting ``T`` seconds in all:

- ``mean`` = ``60 n / T`` beats per minute (beats per minute of the span's beat-to-beat
  time, not the mean of instantaneous rates, which over-weights short intervals);
- ``min`` and ``max``: the extremes of the rate averaged over :data:`SMOOTH_RR` successive
  intervals, as Holter systems smooth so that one missed or extra beat does not read as a
  pause or a run of 300 bpm; with fewer intervals than that, the span's mean;
- all three are ``None`` when the span holds fewer than 2 beats.

Memory stays bounded for long recordings: beats are one int64 array (14 days at 75 bpm:
1.5 M beats, 12 MB) and every statistic is a handful of array operations.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

SMOOTH_RR = 5
"""RR intervals averaged for the min and max rate."""


class HeartRate(TypedDict):
    """Beats per minute over a span, rounded to 0.1 bpm."""

    min: float
    mean: float
    max: float


def span_rates(beats: np.ndarray, fs: float, starts: np.ndarray, ends: np.ndarray
               ) -> np.ndarray:
    """Heart rate (min, mean, max) of each span, float64 (n_spans, 3); NaN rows for spans
    with fewer than 2 beats.

    Args:
        beats: (n_beats,) sorted sample indices at ``fs`` Hz.
        starts: (n_spans,) first sample of each span.
        ends: (n_spans,) sample after the last of each span (spans are ``[start, end)``).
    """
    beats = np.asarray(beats, dtype=np.int64)
    starts, ends = np.asarray(starts), np.asarray(ends)
    out = np.full((len(starts), 3), np.nan)
    if len(beats) < 2 or not len(starts):
        return out
    first = np.searchsorted(beats, starts, side="left")
    last = np.searchsorted(beats, ends, side="left") - 1
    n = last - first  # RR intervals in the span
    ok = n >= 1
    f, lt, k = first[ok], last[ok], n[ok]
    mean = 60.0 * fs * k / (beats[lt] - beats[f])
    low, high = mean.copy(), mean.copy()
    if len(beats) > SMOOTH_RR:
        # smoothed[i]: the rate over intervals i .. i + SMOOTH_RR - 1 (beats i .. i + SMOOTH_RR)
        smoothed = 60.0 * fs * SMOOTH_RR / (beats[SMOOTH_RR:] - beats[:-SMOOTH_RR])
        long = k >= SMOOTH_RR
        a, b = f[long], lt[long] - SMOOTH_RR + 1  # smoothed[a:b] lie wholly in the span
        if len(a):
            bounds = np.stack([a, b], axis=1).ravel()
            padded = np.append(smoothed, np.nan)  # reduceat needs every bound < length
            low[long] = np.minimum.reduceat(padded, bounds)[::2]
            high[long] = np.maximum.reduceat(padded, bounds)[::2]
    out[ok] = np.stack([low, mean, high], axis=1)
    return out


def as_heart_rate(row: np.ndarray) -> HeartRate | None:
    """One :func:`span_rates` row as the JSON object, None when undefined."""
    if np.isnan(row[1]):
        return None
    return HeartRate(min=round(float(row[0]), 1), mean=round(float(row[1]), 1),
                     max=round(float(row[2]), 1))


def pooled_rate(beats: np.ndarray, fs: float, starts: np.ndarray, ends: np.ndarray
                ) -> HeartRate | None:
    """The heart rate over a set of spans together (for instance every AF episode): the
    mean over all their intervals, the extremes of their extremes."""
    starts, ends = np.asarray(starts), np.asarray(ends)
    rates = span_rates(beats, fs, starts, ends)
    ok = ~np.isnan(rates[:, 1])
    if not ok.any():
        return None
    beats = np.asarray(beats, dtype=np.int64)
    first = np.searchsorted(beats, starts[ok], side="left")
    last = np.searchsorted(beats, ends[ok], side="left") - 1
    mean = 60.0 * fs * (last - first).sum() / (beats[last] - beats[first]).sum()
    return HeartRate(min=round(float(rates[ok, 0].min()), 1), mean=round(float(mean), 1),
                     max=round(float(rates[ok, 2].max()), 1))


def hourly_trend(beats: np.ndarray, fs: float, n_samples: int,
                 af_spans: list[tuple[float, float]]) -> list[dict[str, object]]:
    """AF burden and heart rate per hour from the start of the recording.

    Args:
        beats: (n_beats,) sorted sample indices at ``fs`` Hz.
        n_samples: the recording's length; the last hour may be shorter.
        af_spans: (start_s, end_s) of the AF episodes.

    Returns:
        One dict per hour: ``hour`` (0-based), ``start_s``, ``end_s``, ``af_burden`` (AF
        seconds over the hour's seconds) and ``heart_rate_bpm`` (:class:`HeartRate` or None).
    """
    duration_s = n_samples / fs
    edges = np.append(np.arange(0.0, duration_s, 3600.0), duration_s)
    starts, ends = edges[:-1], edges[1:]
    af = np.zeros(len(starts))
    for a, b in af_spans:
        af += np.clip(np.minimum(ends, b) - np.maximum(starts, a), 0, None)
    rates = span_rates(beats, fs, np.round(starts * fs), np.round(ends * fs))
    return [{"hour": h, "start_s": round(float(s), 3), "end_s": round(float(e), 3),
             "af_burden": round(float(a / (e - s)), 6), "heart_rate_bpm": as_heart_rate(r)}
            for h, (s, e, a, r) in enumerate(zip(starts, ends, af, rates, strict=True))]
