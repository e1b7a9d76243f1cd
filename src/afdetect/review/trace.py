"""The signal in chunks at the resolution drawn, so the page never holds the recording.

A request names a sample range and the pixel columns it will be drawn on. When the range
holds no more than two samples per column the samples themselves come back; otherwise the
minimum and maximum of each column's samples, which draws the same envelope a full-rate
trace would. Only the requested range is read, through
:meth:`~afdetect.io.records.SignalStream.read`.

The values are millivolts about the chunk's median (``offset_mv``): a stream's counts carry
the recorder's ADC offset, and a page drawn about its median sits on its rows as a Holter
strip does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from afdetect.io.records import SignalStream
from afdetect.review.recordings import ReferenceAnnotations

MAX_COLUMNS = 16384  # pixel columns one request may ask for (several rows of a wide screen)
MAX_SPAN_S = 3600.0  # seconds one request may cover: a zoomed-out page, not the recording
MAX_ANNOTATIONS = 20000  # reference annotations in one reply (an hour of beats at 300 bpm)


def chunk(stream: SignalStream, start: int, stop: int, columns: int,
          annotations: ReferenceAnnotations | None = None) -> dict[str, Any]:
    """Samples ``[start, stop)`` (clipped to the recording) for ``columns`` pixel columns.

    Returns a JSON-ready dict: ``start``, ``stop`` (samples, clipped), ``fs``, ``mode``
    (``"raw"``: ``values`` in mV, one per sample; ``"minmax"``: ``min`` and ``max`` in mV,
    one pair per column, column ``i`` covering samples ``start + i * per_column`` onward),
    ``offset_mv`` (the median taken off the values) and ``annotations`` (reference
    annotations in the range).
    """
    start, stop = max(0, start), min(stream.n_samples, stop)
    out: dict[str, Any] = {"start": start, "stop": stop, "fs": stream.fs}
    if stop <= start:
        return {**out, "mode": "raw", "values": [], "annotations": []}
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
    return out
