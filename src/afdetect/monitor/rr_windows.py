"""RR features of a scan's windows, for models that read them (:mod:`afdetect.model.rr`).

A strip's RR features come from its own pass of the strip detector; a window of a scan
takes them from the R peaks the scan's detector (:mod:`afdetect.monitor.beats`, the one
behind its heart rate and atrial check) found in the window's model samples, as a strip of
the window's length would have them. :class:`WindowRRStream` computes them as the beats
become final, in bounded state, so that the scan's memory does not grow with the beats.
"""

from __future__ import annotations

import numpy as np

from afdetect.model.rr import N_FEATURES, rr_features


def window_rr_features(peaks: np.ndarray, starts: np.ndarray, window_steps: int,
                       downsampling: int, fs: int) -> np.ndarray:
    """RR features of each window, int64 (n_windows, N_FEATURES).

    Args:
        peaks: (n_beats,) model-rate R-peak indices of the whole recording, in order.
        starts: (n_windows,) first model step of each window.
        window_steps, downsampling: steps per window, model samples per step.
        fs: the model rate, Hz.
    Returns:
        :func:`afdetect.model.rr.rr_features` of the peaks in each window's model samples
        ``[start * downsampling, (start + window_steps) * downsampling)``, as a strip of
        that length would have them.
    """
    n_samples = window_steps * downsampling
    first = np.searchsorted(peaks, starts * downsampling)
    last = np.searchsorted(peaks, starts * downsampling + n_samples)
    return np.array([rr_features(peaks[a:b], n_samples, fs) for a, b in
                     zip(first, last, strict=True)], dtype=np.int64).reshape(-1, N_FEATURES)


class WindowRRStream:
    """The RR features of a scan's windows, computed as the beats become final, with
    bounded state: the R peaks of the window being completed and the hop before it, and
    six bytes per window done (the features are clamped to 0..255).

    A window's features are :func:`window_rr_features` of the peaks in its model samples.
    Hop-grid windows (a start every ``hop_steps`` from step 0) are computed once every
    peak before their end is known; any other start asked for at :meth:`finish` (the
    scan's tail window) lies at or after the last hop-grid start, whose peaks are kept.

    Args:
        window_steps, hop_steps: steps per window and between window starts.
        downsampling: model samples per step.
        fs: the model rate, Hz.
    """

    def __init__(self, window_steps: int, hop_steps: int, downsampling: int, fs: int) -> None:
        self.window_steps, self.hop_steps = window_steps, hop_steps
        self.downsampling, self.fs = downsampling, fs
        self._peaks = np.zeros(0, dtype=np.int64)  # model-rate R peaks, from the last start done
        self._next = 0  # next hop-grid window start (steps)
        self._done = np.zeros((1024, N_FEATURES), dtype=np.uint8)  # grown by doubling
        self._n_done = 0

    def push(self, peaks: np.ndarray, final_through: int) -> None:
        """R peaks that became final (model indices, in order) and the model sample before
        which every peak is now known."""
        self._peaks = np.concatenate([self._peaks, np.asarray(peaks, dtype=np.int64)])
        window = self.window_steps * self.downsampling
        while (self._next * self.downsampling + window <= final_through):
            if self._n_done == len(self._done):
                self._done = np.concatenate([self._done, np.zeros_like(self._done)])
            self._done[self._n_done] = self._features(self._next)
            self._n_done += 1
            self._next += self.hop_steps
        # the last hop-grid start done stays: a tail window starts at or after it
        keep = (self._next - self.hop_steps) * self.downsampling
        self._peaks = self._peaks[np.searchsorted(self._peaks, keep):]

    def finish(self, peaks: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The last R peaks -> int64 (n_windows, N_FEATURES) features of the windows
        starting at ``starts`` (the scan's, in order; every peak is now known)."""
        self._peaks = np.concatenate([self._peaks, np.asarray(peaks, dtype=np.int64)])
        out = np.zeros((len(starts), N_FEATURES), dtype=np.int64)
        for i, start in enumerate(starts):
            k, off_grid = divmod(int(start), self.hop_steps)
            out[i] = (self._done[k] if not off_grid and k < self._n_done
                      else self._features(int(start)))
        return out

    def _features(self, start: int) -> np.ndarray:
        if start < self._next - self.hop_steps:  # its first peaks were dropped
            raise RuntimeError(f"RR features: window {start} left the buffer")
        return window_rr_features(self._peaks, np.array([start]), self.window_steps,
                                  self.downsampling, self.fs)[0]
