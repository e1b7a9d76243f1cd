"""What every reader produces: a :class:`SignalStream` over one lead, read in bounded
chunks, and the whole-recording :class:`Recording` made from it.

Both ``afdetect predict`` (a whole :class:`Recording`) and ``afdetect scan`` (chunks) read
through the same stream, so a file means the same samples, in the same units, with the
same missing-sample rule, in every command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from afdetect.clock import StartTime
from afdetect.errors import InputError

# Floating-point inputs (CSV, .npy in mV) become counts at this gain: 1 uV per count.
FLOAT_COUNTS_PER_MV = 1000.0
MAX_MV = 1e9  # beyond this a float sample is no ECG in mV (and its counts would overflow)


@dataclass(frozen=True)
class Recording:
    """One ECG lead.

    Attributes:
        signal: shape (n_samples,), float64, millivolts.
        fs: sampling rate in Hz.
        name: record name (file stem).
        lead: lead name, or ``""`` when the file carries none.
    """

    signal: np.ndarray
    fs: float
    name: str
    lead: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


@dataclass(frozen=True)
class SignalStream:
    """One lead of a recording of any length, read in bounded chunks.

    Attributes:
        name: record name (file stem).
        source: the file it reads.
        fs: sampling rate in Hz.
        n_samples: samples in the recording.
        counts_per_mv: the counts of :meth:`read` per millivolt (positive).
        lead: lead name, or ``""``.
        integer: True when ``_read`` gives integer counts (WFDB), False when it gives
            float millivolts (CSV, ``.npy``).
        start: when the recording started (clock time), or None when unknown.
    """

    name: str
    source: str
    fs: float
    n_samples: int
    counts_per_mv: float
    lead: str
    _read: Callable[[int, int], np.ndarray]
    integer: bool = True
    start: StartTime | None = None

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` (exclusive) as int64 counts, shape (stop - start,)."""
        values = self._read(start, stop)
        if self.integer:
            return values
        return np.round(values * self.counts_per_mv).astype(np.int64)

    def read_mv(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` (exclusive) in mV, float64, shape (stop - start,)."""
        values = self._read(start, stop)
        return values / self.counts_per_mv if self.integer else values

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The whole lead as counts, ``size`` samples at a time (the last may be shorter)."""
        for start in range(0, self.n_samples, size):
            yield self.read(start, min(start + size, self.n_samples))

    def recording(self) -> Recording:
        """The whole lead in mV (memory grows with the recording: for strips)."""
        return Recording(self.read_mv(0, self.n_samples), self.fs, self.name, self.lead)


class MissingSamples(InputError):
    """A recording with missing samples (see :func:`refuse_missing`)."""


def refuse_missing(source: str, missing: np.ndarray, start: int, fs: float, what: str) -> None:
    """The one rule for missing samples, shared by every format and command: refused.

    afdetect never fills a gap (a filled gap is a made-up signal the model would classify),
    so a recording with missing samples is refused, saying how many and where.

    Args:
        source: the file, for the message.
        missing: bool mask of one chunk, shape (n,): True where a sample is missing.
        start: index of the chunk's first sample in the recording.
        fs: sampling rate in Hz (the message gives the time of the first gap).
        what: how the format marks a missing sample, e.g. "WFDB's 'no sample' value -32768".
    """
    n_missing = int(np.count_nonzero(missing))
    if n_missing:
        first = start + int(np.argmax(missing))
        raise MissingSamples(source, f"missing samples ({what}): {n_missing} in the stretch "
                                     f"read, the first at {first / fs:.3f} s (sample {first}); "
                                     "afdetect does not fill gaps")


def stream_from_array(signal_mv: np.ndarray, fs: float, name: str = "signal",
                      source: str = "<array>", lead: str = "") -> SignalStream:
    """A :class:`SignalStream` over a 1-D array in mV (or a memory map); NaN samples are
    missing (see :func:`refuse_missing`)."""
    array = np.asarray(signal_mv)  # a memory map stays one: chunks are read on demand
    if array.ndim != 1:
        raise InputError(source, f"expected one lead (a 1-D array), got shape {array.shape}")
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(source, f"invalid sampling rate {fs}")

    def read_float(start: int, stop: int) -> np.ndarray:
        values = np.asarray(array[start:stop], dtype=np.float64)
        refuse_missing(source, np.isnan(values), start, fs, "NaN")
        if values.size and not np.max(np.abs(values)) < MAX_MV:  # inf included
            raise InputError(source, f"sample values up to {np.max(np.abs(values)):.3g}: "
                                     "not millivolts")
        return values

    return SignalStream(name, source, float(fs), len(array), FLOAT_COUNTS_PER_MV, lead,
                        read_float, integer=False)
