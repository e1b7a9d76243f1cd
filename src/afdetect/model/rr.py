"""An integer R-peak detector and RR-irregularity features, the model's second input.

Cardiologists read AF from the rhythm: irregularly irregular RR intervals. The CNN sees the
waveform; these few integers summarise the rhythm so the classifier can weigh both. Every
step is integer arithmetic on the engine's quantised input, and every step can run on a
stream with a few hundred bytes of state (the C engine does), so Python and C compute the
same values bit for bit.

Detector, on ``q`` (n,) int, the quantised signal at ``fs`` Hz:

1. slope ``d[m] = q[m+2] + q[m+1] - q[m-1] - q[m-2]`` (q is 0 outside the signal);
2. energy ``e[m]`` = sum of ``|d|`` over the ``integrate`` samples ending at m;
3. candidates: m where ``e[m]`` is larger than every ``e`` in the ``refractory`` samples
   before it and at least as large as every one in the ``refractory`` samples after it;
4. the signal is cut into ``segment``-sample segments (the last may be shorter); segment j's
   threshold is half the lower median of the maxima of ``e`` over segments
   ``max(0, j - history + 1) .. j``; a candidate in segment j is a beat when its energy
   exceeds that threshold.

Features, from the RR intervals ``r`` (samples) between successive beats, each clamped to
``[0, FEATURE_MAX]`` (0 when there are too few intervals):

- ``beat_rate``: beats per 10 s;
- ``rr_mean``: the mean interval in units of 4 samples;
- ``rr_irregularity``: mean absolute successive difference over the mean interval, x64;
- ``rr_jumps``: share of successive differences above an eighth of the earlier interval, x64;
- ``rr_range``: (longest - shortest interval) over the mean interval, x64;
- ``rr_outliers``: share of intervals (from the second) more than an eighth away from the
  lower median of the up to ``MEDIAN_OF`` intervals before them, x64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

FEATURE_NAMES = ("beat_rate", "rr_mean", "rr_irregularity", "rr_jumps", "rr_range",
                 "rr_outliers")
N_FEATURES = len(FEATURE_NAMES)
FEATURE_MAX = 255
MEDIAN_OF = 8
FLOAT_INPUT_FRAC = 8
"""Fractional bits of the 12-bit signal a float model's detector reads (the compressed
model's detector reads its own quantised input)."""
SCALE_BITS = 6
"""A feature value f enters the classifier as f / 2**SCALE_BITS."""


@dataclass(frozen=True)
class RRConfig:
    """Detector settings, in samples at the model rate ``fs``.

    Attributes:
        fs: the model's sampling rate in Hz.
        integrate: energy integration window (100 ms).
        segment: threshold segment (2 s).
        history: segments whose maxima set a threshold, the current one included.
        refractory: half-width of the local-maximum test (200 ms: at most 300 beats/min).
    """

    fs: int = 300
    integrate: int = 30
    segment: int = 600
    history: int = 8
    refractory: int = 60

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def slope_energy(q: np.ndarray, config: RRConfig) -> np.ndarray:
    """Integrated absolute slope ``e``, int64 (n,), of a quantised signal ``q`` (n,)."""
    x = np.pad(np.asarray(q, dtype=np.int64), 2)
    d = np.abs(x[4:] + x[3:-1] - x[1:-3] - x[:-4])
    c = np.concatenate([[0], np.cumsum(d)])
    n = np.arange(1, len(d) + 1)
    return c[n] - c[np.maximum(n - config.integrate, 0)]


def segment_thresholds(e: np.ndarray, config: RRConfig) -> np.ndarray:
    """Threshold of each segment, int64 (n_segments,)."""
    maxima = np.maximum.reduceat(e, np.arange(0, len(e), config.segment))
    thresholds = np.empty(len(maxima), dtype=np.int64)
    for j in range(len(maxima)):
        recent = np.sort(maxima[max(0, j - config.history + 1):j + 1])
        thresholds[j] = recent[(len(recent) - 1) // 2] >> 1
    return thresholds


def detect_beats(q: np.ndarray, config: RRConfig) -> np.ndarray:
    """Beat sample indices, int64 (n_beats,), of the quantised signal ``q`` (n,)."""
    if len(q) == 0:
        return np.zeros(0, dtype=np.int64)
    e = slope_energy(q, config)
    r = config.refractory
    padded = np.pad(e, r, constant_values=-1)  # neighbours past the ends never win
    left = sliding_window_view(padded[:-r - 1], r).max(axis=1)
    right = sliding_window_view(padded[r + 1:], r).max(axis=1)
    threshold = segment_thresholds(e, config)[np.arange(len(e)) // config.segment]
    return np.flatnonzero((e > left) & (e >= right) & (e > threshold)).astype(np.int64)


def rr_features(beats: np.ndarray, n_samples: int, fs: int) -> np.ndarray:
    """The :data:`FEATURE_NAMES` integers, int64 (N_FEATURES,).

    Args:
        beats: beat sample indices, (n_beats,), of a signal of ``n_samples`` at ``fs`` Hz.
    """
    r = np.diff(np.asarray(beats, dtype=np.int64))
    n = len(r)
    values = np.zeros(N_FEATURES, dtype=np.int64)
    values[0] = 10 * fs * len(beats) // max(n_samples, 1)
    if n >= 1:
        total = int(r.sum())
        values[1] = total // (4 * n)
        values[4] = 64 * int(r.max() - r.min()) * n // total
    if n >= 2:
        d = np.diff(r)
        values[2] = 64 * int(np.abs(d).sum()) * n // ((n - 1) * total)
        values[3] = 64 * int(np.count_nonzero(8 * np.abs(d) > r[:-1])) // (n - 1)
        outliers = 0
        for i in range(1, n):
            recent = np.sort(r[max(0, i - MEDIAN_OF):i])
            median = int(recent[(len(recent) - 1) // 2])
            outliers += 8 * abs(int(r[i]) - median) > median
        values[5] = 64 * outliers // (n - 1)
    return np.clip(values, 0, FEATURE_MAX)


def signal_features(q: np.ndarray, config: RRConfig) -> np.ndarray:
    """RR features, int64 (N_FEATURES,), of one quantised signal ``q`` (n_samples,)."""
    return rr_features(detect_beats(q, config), len(q), config.fs)


def quantise(x: np.ndarray, frac: int, bits: int = 12) -> np.ndarray:
    """Normalised float signal -> signed ``bits``-bit integers with ``frac`` fractional bits,
    rounding half up (the integer engine's input rule)."""
    half = 2 ** (bits - 1)
    q = np.floor(np.asarray(x, dtype=np.float64) * 2.0 ** frac + 0.5)
    return np.clip(q, -half, half - 1).astype(np.int64)


def batch_features(x: torch.Tensor, lengths: torch.Tensor | None, frac: int,
                   config: RRConfig) -> torch.Tensor:
    """Classifier inputs, float32 (batch, N_FEATURES), of a batch of normalised signals.

    Args:
        x: (batch, 1, n_samples); rows past ``lengths`` are padding and ignored.
        frac: fractional bits of the 12-bit quantisation the detector reads.
    """
    signals = x.detach().cpu().numpy()[:, 0, :]
    rows = []
    for i, signal in enumerate(signals):
        n = int(lengths[i]) if lengths is not None else len(signal)
        rows.append(signal_features(quantise(signal[:n], frac), config))
    values = np.asarray(rows, dtype=np.float32) / 2.0 ** SCALE_BITS
    return torch.from_numpy(values).to(x.device)
