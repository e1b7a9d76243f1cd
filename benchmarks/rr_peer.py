"""The low-complexity RR-interval AF detector of Petrenas, Marozas and Sornmo (2015), the
peer the monitoring figures are compared with (``benchmarks/monitor_accuracy.py``).

Petrenas A, Marozas V, Sornmo L. Low-complexity detection of atrial fibrillation in
continuous long-term monitoring. Comput Biol Med 2015; 65: 184-191. Per RR interval n:

- ectopic filtering: ``rm`` = 3-point median of the RR series ``r`` (s);
- RR trend ``rt``: exponential average of ``r`` (alpha 0.02), forward and backward;
- irregularity ``M(n)``: share of the pairs among the last N = 8 median-filtered intervals
  that differ by at least gamma = 0.03 s; ``I = Mt / rt`` with ``Mt`` its average;
- bigeminy suppression: ``B(n) = (sum rm / sum r - 1)^2`` over the last 8 intervals,
  averaged to ``Bt`` (near zero in bigeminy, where the median filter swaps long and short);
- decision signal ``O = I`` where ``Bt >= delta`` (2e-4), else ``Bt``; AF where
  ``O > eta`` (0.725).

The parameters are the published ones, not tuned here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import filtfilt

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


@dataclass(frozen=True)
class PeerParams:
    alpha: float = 0.02
    n: int = 8
    gamma_s: float = 0.03
    delta: float = 2e-4
    eta: float = 0.725


def _average(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential average y(n) = (1 - alpha) y(n - 1) + alpha x(n), forward and backward."""
    return filtfilt([alpha], [1.0, alpha - 1.0], x, padlen=min(len(x) - 1, 6))


def rr_af_decisions(rr_s: np.ndarray, params: PeerParams | None = None) -> np.ndarray:
    """AF decision per RR interval, bool (n_intervals,)."""
    p = params or PeerParams()
    r = np.asarray(rr_s, dtype=np.float64)
    if len(r) < p.n + 2:
        return np.zeros(len(r), dtype=bool)
    rm = median_filter(r, size=3, mode="nearest")
    rt = _average(r, p.alpha)
    # the last N median-filtered intervals, (n_intervals, N), earlier ones repeated
    idx = np.arange(len(r))[:, None] - np.arange(p.n)[None, :]
    window = rm[np.clip(idx, 0, None)]
    pairs = np.abs(window[:, :, None] - window[:, None, :]) >= p.gamma_s
    m = np.triu(pairs, k=1).sum(axis=(1, 2)) * 2.0 / (p.n * (p.n - 1))
    irregularity = _average(m, p.alpha) / rt
    csum_rm = np.concatenate([[0.0], np.cumsum(rm)])
    csum_r = np.concatenate([[0.0], np.cumsum(r)])
    lo = np.clip(np.arange(len(r)) - p.n + 1, 0, None)
    hi = np.arange(len(r)) + 1
    b = ((csum_rm[hi] - csum_rm[lo]) / (csum_r[hi] - csum_r[lo]) - 1.0) ** 2
    bt = _average(b, p.alpha)
    o = np.where(bt >= p.delta, irregularity, bt)
    return o > p.eta


def af_intervals_from_beats(beat_s: np.ndarray, params: PeerParams | None = None
                            ) -> list[tuple[float, float]]:
    """AF episodes (start_s, end_s): runs of AF-labelled RR intervals between beats."""
    beats = np.sort(np.asarray(beat_s, dtype=np.float64))
    if len(beats) < 3:
        return []
    af = rr_af_decisions(np.diff(beats), params)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], af.astype(np.int8), [0]])))
    return [(float(beats[a]), float(beats[b])) for a, b in zip(edges[::2], edges[1::2],
                                                                strict=True)]
