"""Heart rate over a whole recording, for the overview and the episode list.

The beats are those :func:`afdetect.review.trace.detected_beats` marks on the trace (the
model's integer R-peak detector), found chunk by chunk so that memory stays bounded; the
rate of a bin is its beats' mean rate, ``60 * (n - 1) / (last - first)`` beats per minute.
"""

from __future__ import annotations

import numpy as np

from afdetect.io.records import SignalStream
from afdetect.review.trace import detected_beats

BIN_S = 60.0  # seconds per heart-rate value
CHUNK_S = 600.0  # seconds of signal read at a time
MIN_BEATS = 3  # fewer beats in a bin: no rate (noise, a gap)


def recording_beats(stream: SignalStream) -> np.ndarray:
    """Samples (n_beats,) int64 of the beats detected over the whole recording, a
    :data:`CHUNK_S` chunk at a time (memory bounded by the chunk, not the recording)."""
    chunk = round(CHUNK_S * stream.fs)
    found = [detected_beats(stream, start, min(start + chunk, stream.n_samples))
             for start in range(0, stream.n_samples, chunk)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def heart_rate(stream: SignalStream, bin_s: float = BIN_S, beats: np.ndarray | None = None
               ) -> np.ndarray:
    """Mean heart rate of each ``bin_s`` bin of the recording, float (n_bins,), in beats per
    minute; NaN where a bin has fewer than :data:`MIN_BEATS` beats or an implausible rate
    (outside 20 to 300 bpm). ``beats``: :func:`recording_beats` of ``stream`` when already
    found."""
    n_bins = int(np.ceil(stream.duration_s / bin_s))
    seconds = (recording_beats(stream) if beats is None else beats) / stream.fs
    which = np.minimum((seconds // bin_s).astype(np.int64), n_bins - 1)
    rate = np.full(n_bins, np.nan)
    for b in np.unique(which):
        t = seconds[which == b]
        if len(t) >= MIN_BEATS and t[-1] > t[0]:
            rate[b] = 60.0 * (len(t) - 1) / (t[-1] - t[0])
    rate[(rate < 20) | (rate > 300)] = np.nan
    return rate
