"""Streaming R-peak detection on the scan's front-end output, in integers only.

:func:`afdetect.model.rr.detect_beats` finds beats in a whole strip for the model's RR
features (and the C engine mirrors it bit for bit, so it never changes). A scan sees a
stream: :class:`BeatStream` runs the same detector a chunk at a time on the quantised
model input ``q`` that :class:`~afdetect.monitor.frontend.IntegerFrontEnd` emits, with a
few seconds of state, and maps the beats back to sample indices of the recording's own
rate. With :data:`STRIP_DETECTOR` it finds exactly the beats ``detect_beats`` finds in the
whole signal, in any chunking; :data:`SCAN_DETECTOR` (the scan's) differs only in the
threshold, tuned on the MIT-BIH development records against their reference beats
(``benchmarks/beat_accuracy.py``).

The detector (see :mod:`afdetect.model.rr`): slope ``d[m] = q[m+2] + q[m+1] - q[m-1] -
q[m-2]``; energy ``e[m]``, the sum of ``|d|`` over the ``integrate`` samples ending at m; a
beat where ``e[m]`` beats every ``e`` within ``refractory`` samples before it, is at least
every one within ``refractory`` after it, and exceeds its segment's threshold:
``threshold_eighths / 8`` of the lower median of the last ``history`` segment maxima.

The energy peaks about half an integration window after the R peak; beats are reported
``integrate // 2`` model samples earlier. A beat is final ``segment + refractory`` model
samples (2.2 s at 300 Hz) after it; beats in the last incomplete front-end block of a
recording, which the front end does not emit, are not found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from afdetect.model.rr import RRConfig


@dataclass(frozen=True)
class BeatConfig:
    """The detector: :class:`~afdetect.model.rr.RRConfig`'s settings plus the threshold.

    Attributes:
        rr: energy window, segment, history and refractory period, in model samples.
        threshold_eighths: a candidate is a beat when its energy exceeds this many eighths
            of the lower median of recent segment maxima (4: the strip detector's half).
    """

    rr: RRConfig = field(default_factory=RRConfig)
    threshold_eighths: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.threshold_eighths <= 8:
            raise ValueError("threshold_eighths must be in 1..8")


STRIP_DETECTOR = BeatConfig()
"""Bit for bit :func:`afdetect.model.rr.detect_beats`."""
SCAN_DETECTOR = BeatConfig(threshold_eighths=3)
"""The scan's detector: a lower threshold finds more of the small beats (QRS Se and +P on
the MIT-BIH development records in ``benchmarks/results/beat_accuracy.json``)."""


class BeatStream:
    """Push the quantised model input in any chunking, get the beats as they become final.

    Args:
        p: numerator of the recording's rate over the model's, ``p / q`` (the front
            end's :func:`~afdetect.monitor.frontend.resample_ratio`): model sample ``n``
            lies at recording sample ``n * p / q``.
        q: its denominator.
        config: the detector.
    """

    def __init__(self, p: int, q: int, config: BeatConfig = SCAN_DETECTOR) -> None:
        self.config = config
        self.p, self.q = p, q
        rr = config.rr
        self._x = np.zeros(2, dtype=np.int64)  # padded input from the next slope's m - 2
        self._tail = np.zeros(rr.integrate - 1, dtype=np.int64)  # last |d| for the energy
        self._e = np.zeros(0, dtype=np.int64)  # e[_e0 ...]
        self._e0 = 0
        self._n_e = 0            # energies computed
        self._maxima: list[int] = []    # completed segment maxima, the last `history`
        self._thresholds: list[int] = []  # thresholds of segments _t0 ...
        self._t0 = 0
        self._current = -1       # running maximum of the unfinished segment
        self._decided = 0        # next m to decide
        self._finished = False
        # one buffer grown by doubling, not a list of per-chunk arrays: thousands of small
        # long-lived blocks fragment the heap and the process grows with the recording
        self._found = np.zeros(1024, dtype=np.int64)
        self._n_found = 0

    def push(self, q: np.ndarray) -> np.ndarray:
        """Model input samples (any length) -> int64 recording sample indices of the beats
        now final, in order."""
        first = self._n_found
        self.push_model(q)
        return self._found[first:self._n_found].copy()

    def push_model(self, q: np.ndarray) -> np.ndarray:
        """As :meth:`push`, but the beats as model-rate R-peak indices (may be negative
        for a beat at the very start); they are recorded for :meth:`beats` just the same."""
        if self._finished:
            raise RuntimeError("push after finish")
        self._energy(np.asarray(q, dtype=np.int64))
        peaks = self._decide(final=False) - self.config.rr.integrate // 2
        self._record(peaks)
        return peaks

    @property
    def final_through(self) -> int:
        """Model samples before which every R peak has been returned: a peak found later
        lies at or after this index."""
        return self._decided - self.config.rr.integrate // 2

    def beats(self) -> np.ndarray:
        """Every beat found so far, int64 (n_beats,) recording sample indices."""
        return self._found[:self._n_found].copy()

    def finish(self) -> np.ndarray:
        """The rest of the beats once the stream has ended (the signal is 0 after it), as
        recording sample indices."""
        first = self._n_found
        self.finish_model()
        return self._found[first:self._n_found].copy()

    def finish_model(self) -> np.ndarray:
        """As :meth:`finish`, as model-rate R-peak indices."""
        self._energy(np.zeros(2, dtype=np.int64))  # completes the last two slopes
        if self._n_e > self._segments_done() * self.config.rr.segment:
            self._close_segment()  # the last, shorter segment
        self._finished = True
        peaks = self._decide(final=True) - self.config.rr.integrate // 2
        self._record(peaks)
        return peaks

    def _segments_done(self) -> int:
        return self._t0 + len(self._thresholds)

    def _energy(self, q: np.ndarray) -> None:
        x = np.concatenate([self._x, q])
        k = len(x) - 4  # slopes d[m] need x[m .. m + 4] (x is q shifted by the 2 pad)
        if k <= 0:
            self._x = x
            return
        d = np.abs(x[4:] + x[3:-1] - x[1:-3] - x[:-4])
        self._x = x[k:]
        a = np.concatenate([self._tail, d])
        c = np.concatenate([[0], np.cumsum(a)])
        t = len(self._tail)
        integrate = self.config.rr.integrate
        idx = np.arange(t + 1, t + k + 1)
        e = c[idx] - c[np.maximum(idx - integrate, 0)]
        self._tail = a[len(a) - t:] if t else a[:0]
        self._segment_maxima(e)
        self._e = np.concatenate([self._e, e])
        self._n_e += k

    def _segment_maxima(self, e: np.ndarray) -> None:
        """Fold new energies ``e`` (starting at ``_n_e``) into the segment maxima."""
        segment = self.config.rr.segment
        start = self._n_e
        while len(e):
            room = segment - start % segment  # samples left in the current segment
            part, e = e[:room], e[room:]
            self._current = max(self._current, int(part.max()))
            start += len(part)
            if start % segment == 0:
                self._close_segment()

    def _close_segment(self) -> None:
        rr = self.config.rr
        self._maxima = [*self._maxima, self._current][-rr.history:]
        median = sorted(self._maxima)[(len(self._maxima) - 1) // 2]
        self._thresholds.append(median * self.config.threshold_eighths >> 3)
        self._current = -1

    def _decide(self, final: bool) -> np.ndarray:
        """Model-rate indices of the beats among the energies that can now be decided."""
        rr = self.config.rr
        r, segment = rr.refractory, rr.segment
        end = self._n_e if final else min(self._segments_done() * segment, self._n_e - r)
        m0 = self._decided
        if end <= m0:
            return np.zeros(0, dtype=np.int64)
        # E[j] = e[m0 - r + j], -1 before the start (and after the end when final)
        lead = self._e[max(0, m0 - r - self._e0):self._n_e - self._e0]
        pad_left = max(0, r - m0)
        pad_right = r if final else 0
        energy = np.concatenate([np.full(pad_left, -1), lead, np.full(pad_right, -1)])
        energy = energy[:end - m0 + 2 * r]
        n = end - m0
        centre = energy[r:r + n]
        m = np.arange(m0, end)
        thresholds = np.asarray(self._thresholds, dtype=np.int64)[m // segment - self._t0]
        # the full test on the few samples above threshold that beat their neighbours
        j = np.flatnonzero((centre > thresholds) & (centre > energy[r - 1:r - 1 + n])
                           & (centre >= energy[r + 1:r + 1 + n]))
        offsets = np.arange(r)
        left = energy[j[:, None] + offsets].max(axis=1, initial=-1)  # e[m - r .. m - 1]
        right = energy[j[:, None] + r + 1 + offsets].max(axis=1, initial=-1)  # e[m+1 .. m+r]
        beats = m[j[(centre[j] > left) & (centre[j] >= right)]]
        self._decided = end
        keep = max(0, end - r)  # the next decision looks r samples back
        self._e = self._e[keep - self._e0:]
        self._e0 = keep
        drop = max(0, end // segment - self._t0)  # thresholds of fully decided segments
        self._thresholds = self._thresholds[drop:]
        self._t0 += drop
        return beats

    def _record(self, n: np.ndarray) -> None:
        """Keep model-rate R peaks ``n`` for :meth:`beats`, as recording sample indices."""
        samples = np.maximum((2 * n * self.p + self.q) // (2 * self.q), 0)
        if self._n_found + len(samples) > len(self._found):
            grown = np.zeros(max(2 * len(self._found), self._n_found + len(samples)),
                             dtype=np.int64)
            grown[:self._n_found] = self._found[:self._n_found]
            self._found = grown
        self._found[self._n_found:self._n_found + len(samples)] = samples
        self._n_found += len(samples)
