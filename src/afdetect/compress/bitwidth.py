"""Mixed code widths: which layers' kept weights get a bit or two more than the base width.

A b-bit code (sign included) addresses 2^(b-1) exponents, so each added bit doubles the
range of magnitudes a layer keeps instead of clamping its small weights up to the window's
floor (at 2 bits each weight is +-2^e_max or +-2^(e_max-1)). A bit is worth most where
quantising the layer disturbs the network's output most and where the layer keeps few
weights (each kept weight pays it). The sensitivity of a layer is the relative error of the
logits when that layer alone is quantised (everything else float) on the calibration batch;
bits are added one at a time, each to the layer where it removes the most error per added
bit, while the stored size stays within a budget. Heavily pruned layers whose folded
weights span a wide range (a few large survivors beside small ones) can need two."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from afdetect.compress.accounting import integer_model_sizes, stored_bits
from afdetect.compress.integer import to_integer
from afdetect.compress.network import CompressibleNet, QuantSpec
from afdetect.compress.quantise import best_exponent_window


@torch.no_grad()
def quantisation_errors(net: CompressibleNet, x: torch.Tensor, widths: tuple[int, ...]
                        ) -> np.ndarray:
    """Relative logit error ||z_l,b - z||^2 / ||z||^2, shape (n_layers, len(widths)), of
    ``net`` (folded, masked, not yet quantised) with layer l alone quantised to b bits in
    its best exponent window; ``x`` is (batch, 1, samples)."""
    if int(net.bits[0]):
        raise ValueError("measure the sensitivity before quantisation is enabled")
    net.eval()
    reference = net(x)
    energy = float((reference ** 2).sum()) or 1.0
    errors = np.zeros((net.n_layers, len(widths)))
    with quantisation_state_kept(net):
        for i, (weight, _) in enumerate(net.weighted_layers()):
            for j, bits in enumerate(widths):
                net.layer_bits.zero_()
                net.layer_bits[i] = bits
                net.e_max[i] = best_exponent_window(weight * net.mask(i), bits)
                errors[i, j] = float(((net(x) - reference) ** 2).sum()) / energy
    return errors


def widen_within_budget(errors: np.ndarray, kept: list[int], base: int,
                        fits: Callable[[list[int]], bool]) -> list[int]:
    """Per-layer widths: ``base`` everywhere, then one bit at a time to the layer whose
    next bit removes the most error per added bit (``errors`` columns: widths ``base``,
    ``base + 1``, ...; a layer pays one bit per ``kept`` weight) as long as
    ``fits(widths)`` accepts the result.

    A layer whose next bit does not fit, or removes no error, gets no more bits; the
    others are still tried. Ties go to the lower layer index."""
    errors = np.minimum.accumulate(errors, axis=1)  # a wider code never needs to be worse
    cost = np.maximum(np.array(kept, dtype=np.float64), 1.0)
    widths = [base] * len(kept)
    open_layers = set(range(len(kept)))
    while open_layers:
        gain = {i: float(errors[i, widths[i] - base] - errors[i, widths[i] - base + 1])
                for i in open_layers}
        best = min(open_layers, key=lambda i: (-gain[i] / cost[i], i))
        if gain[best] <= 0:
            break
        trial = [*widths]
        trial[best] += 1
        if fits(trial):
            widths = trial
            if widths[best] - base < errors.shape[1] - 1:
                continue
        open_layers.discard(best)
    return widths


def choose_layer_bits(net: CompressibleNet, x: torch.Tensor, spec: QuantSpec,
                      fractions: list[int], size_budget: int, extra_bits: int = 1
                      ) -> list[int]:
    """Widths for ``net`` (folded and pruned, quantisation not yet enabled): layers widened
    up to ``spec.weight_bits + extra_bits`` by :func:`quantisation_errors` on ``x`` while
    the stored size, measured by the accounting on the net quantised with ``fractions``,
    stays within ``size_budget`` bytes. Leaves quantisation disabled."""
    base = spec.weight_bits
    errors = quantisation_errors(net, x, tuple(range(base, base + extra_bits + 1)))
    kept = [int(net.mask(i).sum()) for i in range(net.n_layers)]

    def fits(widths: list[int]) -> bool:
        net.enable_quantisation(spec, fractions, widths)
        model = to_integer(net)
        return stored_bits(integer_model_sizes(model), model.rr) <= 8 * size_budget

    with quantisation_state_kept(net):
        return widen_within_budget(errors, kept, base, fits)


@contextmanager
def quantisation_state_kept(net: CompressibleNet) -> Iterator[None]:
    """Restore the net's quantisation buffers (widths, windows, scales) on exit."""
    saved = [(buffer, buffer.clone()) for buffer in (net.bits, net.layer_bits, net.e_max,
                                                     net.frac)]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
