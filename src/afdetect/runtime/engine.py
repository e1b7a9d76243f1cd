"""The integer-only inference engine in NumPy: shifts, adds and compares.

Each convolution walks the kept weights only: the input row a weight reads, shifted left by
the weight's exponent offset and negated for a negative sign, is added into its output
channel's int64 accumulator (the C engine uses int32; the export checks the bound).
Requantisation is a rounding right shift, ReLU a clamp at zero, pooling a compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from afdetect.compress.integer import IntegerLayer, IntegerModel


@dataclass
class _SparseLayer:
    """Kept weights of one layer sorted by output channel, as flat index arrays."""

    out: np.ndarray       # output channel of each kept weight
    src: np.ndarray       # input channel
    tap: np.ndarray       # kernel position
    shift: np.ndarray     # exponent offset (left shift)
    negative: np.ndarray  # sign < 0
    starts: np.ndarray    # first kept weight of each non-empty output channel
    channels: np.ndarray  # those output channels

    @classmethod
    def of(cls, layer: IntegerLayer) -> _SparseLayer:
        out, src, tap = np.nonzero(layer.mask)  # C order: sorted by output channel
        channels, starts = np.unique(out, return_index=True)
        return cls(out, src, tap, layer.shift[out, src, tap].astype(np.int64),
                   layer.sign[out, src, tap] < 0, starts, channels)


class IntegerEngine:
    """Runs an :class:`IntegerModel` on one recording at a time."""

    def __init__(self, model: IntegerModel) -> None:
        self.model = model
        self._sparse = [_SparseLayer.of(layer) for layer in model.layers]

    def _accumulate(self, sparse: _SparseLayer, columns: np.ndarray, c_out: int) -> np.ndarray:
        """Sum of signed, shifted input columns per output channel.

        ``columns``: (n_kept, n_out) int64, the input value each kept weight reads.
        """
        terms = np.left_shift(columns, sparse.shift[:, None])
        np.negative(terms, out=terms, where=sparse.negative[:, None])
        acc = np.zeros((c_out, columns.shape[1]), dtype=np.int64)
        if len(sparse.starts):
            acc[sparse.channels] = np.add.reduceat(terms, sparse.starts, axis=0)
        return acc

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Integer logits, int64 (n_classes,), of one normalised signal (n_samples,)."""
        top = 2 ** self.model.act_bits - 1
        q = self.model.quantise_input(x)
        a = q.astype(np.int64)[None, :]
        for layer, sparse in zip(self.model.convs, self._sparse, strict=False):
            padded = np.pad(a, ((0, 0), (layer.padding, layer.padding)))
            n_out = (padded.shape[1] - layer.kernel) // layer.stride + 1
            starts = sparse.tap[:, None] + layer.stride * np.arange(n_out)[None, :]
            acc = self._accumulate(sparse, padded[sparse.src[:, None], starts],
                                   layer.mask.shape[0])
            acc += layer.bias[:, None]
            s = layer.requant_shift
            acc = (acc + (1 << (s - 1))) >> s if s > 0 else acc << -s
            np.clip(acc, 0, top, out=acc)
            n_pool = acc.shape[1] // 2
            a = np.maximum(acc[:, 0:2 * n_pool:2], acc[:, 1:2 * n_pool:2])
        total = self.model.classifier_columns(a.sum(axis=1), q, a.shape[1])
        fc = self.model.classifier
        sparse = self._sparse[-1]
        logits = self._accumulate(sparse, total[sparse.src][:, None], fc.mask.shape[0])[:, 0]
        return logits + fc.bias * a.shape[1]

    def float_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits on the float model's scale (for probabilities), float64 (n_classes,)."""
        return self.logits(x) * self.model.logit_scale(self.model.output_steps(len(x)))


def engine_logits(model: IntegerModel, signals: list[np.ndarray],
                  progress: bool = False) -> np.ndarray:
    """Float-scaled logits (n, n_classes) of the integer engine on normalised signals."""
    engine = IntegerEngine(model)
    return np.stack([engine.float_logits(s) for s in tqdm(
        signals, desc="integer engine", unit="rec", disable=not progress)])
