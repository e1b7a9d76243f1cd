"""The signal in chunks at the resolution drawn, so the page never holds the recording.

A request names a sample range and the pixel columns it will be drawn on. When the range
holds no more than two samples per column the samples themselves come back; otherwise the
minimum and maximum of each column's samples, which draws the same envelope a full-rate
trace would. Only the requested range is read, through
:meth:`~afdetect.io.records.SignalStream.read`.

A chunk of reading length (up to :data:`BEATS_MAX_SPAN_S`) also carries the beats that
:func:`afdetect.model.rr.detect_beats` (the model's integer R-peak detector) finds in it,
run on the stream's counts at their own rate with its windows in the same seconds, after
:data:`BEATS_LEAD_S` of signal before the chunk so that its thresholds have settled.

The values are millivolts about the chunk's median (``offset_mv``): a stream's counts carry
the recorder's ADC offset, and a page drawn about its median sits on its rows as a Holter
strip does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from afdetect.io.records import SignalStream
from afdetect.model.rr import RRConfig, detect_beats
from afdetect.review.recordings import ReferenceAnnotations

MAX_COLUMNS = 16384  # pixel columns one request may ask for (several rows of a wide screen)
MAX_SPAN_S = 3600.0  # seconds one request may cover: a zoomed-out page, not the recording
MAX_ANNOTATIONS = 20000  # reference annotations in one reply (an hour of beats at 300 bpm)
BEATS_MAX_SPAN_S = 300.0  # chunks up to this long carry detected beats
BEATS_LEAD_S = 16.0  # signal before a chunk the detector sees first: its threshold history


def beat_config(fs: float) -> RRConfig:
    """The R-peak detector's settings (100-ms energy, 2-s threshold segments, 200-ms
    refractory half-width) in samples at ``fs`` Hz."""
    default = RRConfig()
    per_s = fs / default.fs
    return RRConfig(fs=round(fs), integrate=max(1, round(default.integrate * per_s)),
                    segment=max(1, round(default.segment * per_s)), history=default.history,
                    refractory=max(1, round(default.refractory * per_s)))


def detected_beats(stream: SignalStream, start: int, stop: int) -> np.ndarray:
    """Samples (n_beats,) int64 in ``[start, stop)`` where the detector finds a beat."""
    lead = max(0, start - round(BEATS_LEAD_S * stream.fs))
    config = beat_config(stream.fs)
    # the integrated energy peaks half an integration window after the QRS it marks
    beats = detect_beats(stream.read(lead, stop), config) + lead - config.integrate // 2
    return beats[(beats >= start) & (beats < stop)]


def chunk(stream: SignalStream, start: int, stop: int, columns: int,
          annotations: ReferenceAnnotations | None = None) -> dict[str, Any]:
    """Samples ``[start, stop)`` (clipped to the recording) for ``columns`` pixel columns.

    Returns a JSON-ready dict: ``start``, ``stop`` (samples, clipped), ``fs``, ``mode``
    (``"raw"``: ``values`` in mV, one per sample; ``"minmax"``: ``min`` and ``max`` in mV,
    one pair per column, column ``i`` covering samples ``start + i * per_column`` onward),
    ``offset_mv`` (the median taken off the values), ``annotations`` (reference
    annotations in the range) and ``beats`` (detected beats, samples; None for a chunk
    longer than :data:`BEATS_MAX_SPAN_S`).
    """
    start, stop = max(0, start), min(stream.n_samples, stop)
    out: dict[str, Any] = {"start": start, "stop": stop, "fs": stream.fs}
    if stop <= start:
        return {**out, "mode": "raw", "values": [], "annotations": [], "beats": []}
    counts = stream.read(start, stop)
    offset = float(np.median(counts))
    mv = (counts - offset) / stream.counts_per_mv
    out["offset_mv"] = round(offset / stream.counts_per_mv, 4)
    if stop - start <= 2 * columns:
        out.update(mode="raw", values=np.round(mv, 4).tolist())
    else:
        per_column = (stop - start) / columns
        edges = np.floor(np.arange(columns) * per_column).astype(np.int64)
        out.update(mode="minmax", per_column=per_column,
                   min=np.round(np.minimum.reduceat(mv, edges), 4).tolist(),
                   max=np.round(np.maximum.reduceat(mv, edges), 4).tolist())
    out["annotations"] = annotations.between(start, stop, MAX_ANNOTATIONS) if annotations \
        else []
    out["beats"] = detected_beats(stream, start, stop).tolist() \
        if (stop - start) / stream.fs <= BEATS_MAX_SPAN_S else None
    return out
