"""Organised atrial activity: is the same wave in front of every QRS of a window?

AF has no P waves: the atrial activity before each QRS is chaotic, so the stretches in
front of successive QRS complexes are unrelated. In sinus rhythm, however irregular its
rate (sinus arrhythmia, bradycardia with a varying rate, pauses), every QRS follows its P
wave by the same PR interval; in atrial flutter the conducted flutter wave also sits at a
fixed time before the QRS. The RR intervals of such rhythms can be as irregular as AF's,
and the network, which reads the rhythm more than the P waves, calls them AF
(``benchmarks/pause_probe.py``). This check measures how much of the activity before the
QRS complexes of a window repeats beat after beat::

    coherence = |sum_k s_k|^2 / (n * sum_k |s_k|^2)

``s_k`` is the stretch from ``start_ms`` to ``end_ms`` before beat k's R peak, of the
quantised model input, in bins of ``bin_ms``, its mean removed; ``n`` beats. It is 1 when
the stretch is the same before every beat and about ``1 / n`` when the stretches are
unrelated. A window whose coherence exceeds the episode rule's ``max_atrial_coherence``
is not AF, whatever the network says (:func:`afdetect.monitor.episodes.checked_probabilities`).

Integers only, so that a C implementation computes the same: a bin is the sum of its
samples; ``s_k = (n_bins * bin - sum of the bins) >> SHIFT`` removes the mean without a
division (and keeps every sum within int64 for the 12-bit input); a window keeps
``|sum_k s_k|^2`` and ``n * sum_k |s_k|^2`` (:data:`WINDOW_TERMS`), and the check is
``256 * template > round(256 * c) * spread`` (:func:`organised`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHIFT = 4
"""Right shift of the mean-free bins: |s| < 2^15 for a 12-bit input."""
THRESHOLD_BITS = 8
"""The coherence threshold is compared in units of 2^-8."""
WINDOW_TERMS = ("template", "spread")
"""The two int64 numbers kept per window: |sum_k s_k|^2 and n * sum_k |s_k|^2."""


@dataclass(frozen=True)
class AtrialConfig:
    """Where the atrial activity is read, and from how many beats.

    Attributes:
        fs: the model's sampling rate in Hz (the quantised input's).
        start_ms: the stretch starts this long before the R peak (before the P wave of a
            normal PR interval).
        end_ms: and ends this long before it (before the QRS onset).
        bin_ms: bin width; ``start_ms - end_ms`` must be a whole number of bins.
        min_beats: windows with fewer beats are not checked (coherence undefined).
    """

    fs: int = 300
    start_ms: int = 300
    end_ms: int = 80
    bin_ms: int = 20
    min_beats: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.end_ms < self.start_ms:
            raise ValueError("the stretch must end after it starts, before the R peak")
        if self.bin_samples < 1 or (self.start - self.end) % self.bin_samples:
            raise ValueError("the stretch must be a whole number of bins of at least a sample")
        if self.min_beats < 2:
            raise ValueError("min_beats must be at least 2")

    @property
    def start(self) -> int:
        """Model samples from the stretch's start to the R peak."""
        return self.fs * self.start_ms // 1000

    @property
    def end(self) -> int:
        """Model samples from the stretch's end to the R peak."""
        return self.fs * self.end_ms // 1000

    @property
    def bin_samples(self) -> int:
        return self.fs * self.bin_ms // 1000

    @property
    def n_bins(self) -> int:
        return (self.start - self.end) // self.bin_samples


def beat_stretches(q: np.ndarray, peaks: np.ndarray, config: AtrialConfig) -> np.ndarray:
    """The mean-free binned stretches before each beat.

    Args:
        q: (n,) int quantised model input.
        peaks: (n_beats,) R-peak indices into ``q``; each needs ``config.start`` samples
            before it inside ``q``.
        config: the stretch.
    Returns:
        (n_beats, n_bins) int64 ``s_k``.
    """
    offsets = np.arange(config.start - config.end) - config.start
    samples = np.asarray(q, dtype=np.int64)[np.asarray(peaks)[:, None] + offsets]
    bins = samples.reshape(len(peaks), config.n_bins, config.bin_samples).sum(axis=2)
    return (config.n_bins * bins - bins.sum(axis=1, keepdims=True)) >> SHIFT


def window_terms(stretches: np.ndarray) -> np.ndarray:
    """(n_beats, n_bins) stretches of one window -> int64 (2,) ``template, spread``."""
    return _terms_of(stretches.sum(axis=0), int((stretches * stretches).sum()), len(stretches))


def _terms_of(template: np.ndarray, energy: int, n: int) -> np.ndarray:
    """``sum_k s_k``, ``sum_k |s_k|^2`` and n -> the window terms."""
    return np.array([int(template @ template), n * energy], dtype=np.int64)


def coherence(terms: np.ndarray) -> np.ndarray:
    """(..., 2) window terms -> coherence in [0, 1], NaN where no beat was checked."""
    terms = np.asarray(terms, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(terms[..., 1] > 0, terms[..., 0] / terms[..., 1], np.nan)


def organised(terms: np.ndarray, max_coherence: float) -> np.ndarray:
    """(..., 2) window terms -> bool: the window's coherence exceeds ``max_coherence``
    (in integers: ``2^8 * template > round(2^8 * max_coherence) * spread``)."""
    terms = np.asarray(terms, dtype=np.int64)
    limit = round(max_coherence * 2 ** THRESHOLD_BITS)
    return (terms[..., 0] << THRESHOLD_BITS) > limit * terms[..., 1]


class AtrialStream:
    """The window terms of a scan, computed as the stream goes with bounded state.

    Push the quantised model input with the R peaks that became final in it
    (:meth:`afdetect.monitor.beats.BeatStream.push_model`); the terms of a window are
    computed once every beat in it is known. A beat counts in the model step of its R
    peak (``peak // downsampling``); windows are ``window_steps`` steps, one every
    ``hop_steps`` from step 0, plus any other start asked for at :meth:`finish` (the
    scan's tail window), which lies within the last ``window_steps + hop_steps`` steps.

    The state is bounded but for the terms of the windows done (two int64 per window).

    Args:
        config: the stretch.
        downsampling: model samples per step.
        window_steps: steps per window.
        hop_steps: steps between window starts.
        lead_steps: how many steps a final beat may lie past the steps the caller has
            said are known (``known`` of :meth:`push`): the network's output lag.
        final_lag: model samples by which a beat may become final after its R peak
            (the detector's decision delay).
    """

    def __init__(self, config: AtrialConfig, downsampling: int, window_steps: int,
                 hop_steps: int, lead_steps: int = 8, final_lag: int = 4 * 300) -> None:
        self.config = config
        self.downsampling = downsampling
        self.window_steps, self.hop_steps = window_steps, hop_steps
        # steps kept: a window being filled, the hop before it (for the tail window) and
        # the steps by which final beats run ahead of the known ones
        self._ring = window_steps + 2 * hop_steps + lead_steps + 1
        self._keep = config.start + final_lag  # input kept behind the newest sample
        self._sums = np.zeros((self._ring, config.n_bins), dtype=np.int64)
        self._energy = np.zeros(self._ring, dtype=np.int64)
        self._count = np.zeros(self._ring, dtype=np.int64)
        self._low = 0              # oldest step held in the ring
        self._next = 0             # next window start on the hop grid
        self._q = np.zeros(0, dtype=np.int64)  # input from model sample _q0
        self._q0 = 0
        # terms of hop-grid windows 0, 1, ...: one buffer grown by doubling (a day holds
        # 8,640 windows; per-window objects would grow the heap with the recording)
        self._done = np.zeros((1024, len(WINDOW_TERMS)), dtype=np.int64)
        self._n_done = 0

    def push(self, q: np.ndarray, peaks: np.ndarray, final_through: int) -> None:
        """Model input ``q`` following what was pushed before, the R peaks that became
        final with it (model indices, in order) and the index before which every peak is
        now known."""
        self._q = np.concatenate([self._q, np.asarray(q, dtype=np.int64)])
        self._add(peaks, final_through // self.downsampling)
        cut = max(0, len(self._q) - self._keep)
        self._q, self._q0 = self._q[cut:], self._q0 + cut

    def finish(self, peaks: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The last R peaks -> (n_windows, 2) int64 terms of the windows starting at
        ``starts`` (the scan's, in order; every beat is now known)."""
        self._add(peaks, int(starts[-1]) + self.window_steps if len(starts) else self._low)
        out = np.zeros((len(starts), len(WINDOW_TERMS)), dtype=np.int64)
        for i, start in enumerate(starts):
            k, off_grid = divmod(int(start), self.hop_steps)
            out[i] = self._done[k] if not off_grid and k < self._n_done else self._terms(start)
        return out

    def _add(self, peaks: np.ndarray, known_steps: int) -> None:
        """Add ``peaks`` to their steps, and take the terms of every hop-grid window that
        is complete: one that ends before the first step of a peak not yet added, or by
        ``known_steps`` (every peak before that step is in ``peaks`` or was added)."""
        peaks = np.asarray(peaks, dtype=np.int64)
        early = peaks - self.config.start < self._q0
        if early.any() and self._q0 > 0:  # only the recording's first beats lack a stretch
            raise RuntimeError("atrial check: a beat became final after its stretch was gone")
        peaks = peaks[~early]
        steps = peaks // self.downsampling
        if len(steps) and steps[0] < self._low:
            raise RuntimeError("atrial check: a beat arrived for a window already done")
        i = 0
        while True:
            # the peaks whose steps the ring holds now; a longer chunk waits for windows
            # to complete and free the rows
            j = i + int(np.searchsorted(steps[i:], self._low + self._ring))
            if j > i:
                s = beat_stretches(self._q, peaks[i:j] - self._q0, self.config)
                rows = steps[i:j] % self._ring
                np.add.at(self._sums, rows, s)
                np.add.at(self._energy, rows, (s * s).sum(axis=1))
                np.add.at(self._count, rows, 1)
            i = j
            # every peak before the first not added is in: windows end by it, and by the
            # steps known to exist (a window past them may not be the scan's)
            bound = min(int(steps[i]), known_steps) if i < len(peaks) else known_steps
            first = self._next
            while self._next + self.window_steps <= bound:
                if self._n_done == len(self._done):
                    self._done = np.concatenate([self._done, np.zeros_like(self._done)])
                self._done[self._n_done] = self._terms(self._next)
                self._n_done += 1
                self._next += self.hop_steps
                self._forget(self._next - self.hop_steps)
            if i == len(peaks):
                return
            if self._next == first:
                raise RuntimeError("atrial check: a beat lies beyond the steps held")

    def _terms(self, start: int) -> np.ndarray:
        if start < self._low:
            raise RuntimeError(f"atrial check: window {start} left the ring")
        rows = np.arange(start, start + self.window_steps) % self._ring
        n = int(self._count[rows].sum())
        if n < self.config.min_beats:
            return np.zeros(len(WINDOW_TERMS), dtype=np.int64)
        return _terms_of(self._sums[rows].sum(axis=0), int(self._energy[rows].sum()), n)

    def _forget(self, low: int) -> None:
        """Drop the steps before ``low`` (their rows are reused)."""
        for step in range(self._low, max(self._low, low)):
            row = step % self._ring
            self._sums[row] = 0
            self._energy[row] = 0
            self._count[row] = 0
        self._low = max(self._low, low)
