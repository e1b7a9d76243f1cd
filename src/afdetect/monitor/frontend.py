"""Streaming integer preprocessing: raw ADC counts at any rate -> the model's 12-bit input.

Whole-recording normalisation (:func:`afdetect.data.preprocess.normalise`) needs the whole
recording; a monitor sees a stream. This front end computes the same kind of input from a
running estimate, in integers only, so the C engine's continuous mode reproduces it bit
for bit (``afd_stream_push`` in the C runtime's ``afd_stream.c``). With ``y`` the 300-Hz
counts and ``n`` the sample index:

1. **Resample** by linear interpolation on the exact rational grid: output ``n`` sits at
   input position ``n * P / Q`` (``P / Q = fs_in / fs_model`` in lowest terms), with
   ``i, r = divmod(n * P, Q)`` and ``y[n] = floor((x[i] * (Q - r) + x[i + 1] * r + Q // 2)
   / Q)``. Counts are clamped to 16 bits first.
2. **Baseline**: ``d[n] = y[n] - floor(sum(y[n - B/2 .. n + B/2 - 1]) / B)``, a centred
   moving average over ``B`` samples (``y`` before the first sample repeats it), clamped
   to 16 bits.
3. **Scale**: per block of ``B`` samples, ``k = round(log2(std))`` of ``d`` over that block
   and the ``span - 1`` before it, found exactly from integer sums.
4. **Quantise**: ``q[n] = clamp(round_half_up(d[n] * 2^(F - k)), 12-bit)`` with ``F`` the
   model's input fraction bits: the normalised signal ``d / 2^k`` in fixed point.

Latency is ``3 B / 2`` samples (2.6 s at 300 Hz for B = 512); the last incomplete block of
a finite recording is not emitted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

ADC_MIN, ADC_MAX = -(2**15), 2**15 - 1


@dataclass(frozen=True)
class FrontEndConfig:
    """Streaming normalisation; shared by Python and the C continuous mode.

    Attributes:
        block: samples (at the model rate) per baseline window and per scale block; a
            power of two, so the mean is a shift.
        span: blocks over which the standard deviation is estimated (block included).
    """

    block: int = 512
    span: int = 8

    def __post_init__(self) -> None:
        if self.block < 2 or self.block & (self.block - 1):
            raise ValueError("block must be a power of two >= 2")
        if self.span < 1:
            raise ValueError("span must be >= 1")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def resample_ratio(fs_in: float, fs_out: int) -> tuple[int, int]:
    """(P, Q): ``fs_in / fs_out`` as a reduced fraction (denominators up to 1000)."""
    ratio = Fraction(fs_in).limit_denominator(1000) / fs_out
    return ratio.numerator, ratio.denominator


def round_log2_std(n: int, total: int, total_sq: int) -> int:
    """round(log2(std)) of ``n`` integers with sum ``total`` and sum of squares ``total_sq``.

    ``var = (n * total_sq - total^2) / n^2``; with ``b = floor(log2(var))`` the rounded
    log2 of its square root is ``floor((b + 1) / 2)``. 0 for a zero variance.
    """
    num = n * total_sq - total * total
    den = n * n
    if num <= 0:
        return 0
    b = num.bit_length() - den.bit_length()  # floor(log2(num/den)) is b or b - 1
    if (num << max(-b, 0)) < (den << max(b, 0)):
        b -= 1
    return (b + 1) // 2


class IntegerFrontEnd:
    """Feeds raw counts in any chunking; returns the model's input samples as they become
    final. Every value is an exact integer: chunking never changes the output."""

    def __init__(self, fs_in: float, fs_model: int, input_frac: int, input_bits: int,
                 config: FrontEndConfig | None = None) -> None:
        self.config = config or FrontEndConfig()
        self.p, self.q = resample_ratio(fs_in, fs_model)
        self.input_frac = input_frac
        self.top = 2 ** (input_bits - 1) - 1
        self._x = np.zeros(0, dtype=np.int64)  # raw input not yet interpolated past
        self._x0 = 0                           # input index of _x[0]
        self._n = 0                            # next resampled index
        self._y = np.zeros(0, dtype=np.int64)  # y[_y0 - B/2 ...] for the moving average
        self._y0: int | None = None
        self._d = np.zeros(0, dtype=np.int64)  # d of the unfinished block
        self._sums: list[tuple[int, int]] = []  # (sum, sum of squares) of recent blocks

    def push(self, counts: np.ndarray) -> np.ndarray:
        """Raw counts (any length) -> int64 model input samples now final (any length)."""
        y = self._resample(np.clip(np.asarray(counts, dtype=np.int64), ADC_MIN, ADC_MAX))
        return self._quantise(self._detrend(y))

    def _resample(self, counts: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._x, counts])
        if self.p == self.q:
            self._x0 += len(x)
            self._x = x[:0]
            return x
        last = self._x0 + len(x) - 1  # the newest input index
        # outputs n with floor(n P / Q) + 1 <= last, i.e. n P < last Q
        n_end = (last * self.q - 1) // self.p + 1 if last >= 1 else 0
        n = np.arange(self._n, max(n_end, self._n), dtype=np.int64)
        i, r = np.divmod(n * self.p, self.q)
        i -= self._x0
        y = (x[i] * (self.q - r) + x[i + 1] * r + self.q // 2) // self.q
        self._n = int(n_end) if n_end > self._n else self._n
        keep = self._n * self.p // self.q  # first input index still needed
        self._x = x[keep - self._x0:]
        self._x0 = keep
        return y

    def _detrend(self, y: np.ndarray) -> np.ndarray:
        half = self.config.block // 2
        if self._y0 is None:
            if not len(y):
                return y
            self._y = np.full(half, y[0], dtype=np.int64)  # history before the start
            self._y0 = 0
        buf = np.concatenate([self._y, y])
        # buf[j] is y[self._y0 - half + j]; d[n] needs y[n - half .. n + half - 1]
        n_ready = len(buf) - 2 * half + 1  # windows that fit
        if n_ready <= 0:
            self._y = buf
            return y[:0]
        csum = np.concatenate([[0], np.cumsum(buf)])
        sums = csum[2 * half:2 * half + n_ready] - csum[:n_ready]
        d = np.clip(buf[half:half + n_ready] - (sums >> int(np.log2(self.config.block))),
                    ADC_MIN, ADC_MAX)  # 16 bits, as the C engine stores them
        self._y = buf[n_ready:]
        self._y0 += n_ready
        return d

    def _quantise(self, d: np.ndarray) -> np.ndarray:
        block = self.config.block
        d = np.concatenate([self._d, d])
        n_blocks = len(d) // block
        out = []
        for b in range(n_blocks):
            seg = d[b * block:(b + 1) * block]
            self._sums.append((int(seg.sum()), int(np.dot(seg, seg))))
            self._sums = self._sums[-self.config.span:]
            total = sum(s for s, _ in self._sums)
            total_sq = sum(s for _, s in self._sums)
            k = round_log2_std(block * len(self._sums), total, total_sq)
            e = self.input_frac - k
            q = seg << e if e >= 0 else (seg + (1 << (-e - 1))) >> -e
            out.append(np.clip(q, -self.top - 1, self.top))
        self._d = d[n_blocks * block:]
        return np.concatenate(out) if out else d[:0]
