"""Mixed code widths: which layers' kept weights get one bit more than the base width.

A b-bit code (sign included) addresses 2^(b-1) exponents, so one more bit doubles the
range of magnitudes a layer keeps instead of clamping its small weights up to the window's
floor (at 2 bits each weight is +-2^e_max or +-2^(e_max-1)). The bit is worth most where
quantising the layer disturbs the network's output most and where the layer keeps few
weights (each kept weight pays it). The sensitivity of a layer is the relative error of the
logits when that layer alone is quantised (everything else float) on the calibration batch;
layers are widened in order of error removed per added bit while the stored size stays
within a budget."""

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
    with _quantisation_state_kept(net):
        for i, (weight, _) in enumerate(net.weighted_layers()):
            for j, bits in enumerate(widths):
                net.layer_bits.zero_()
                net.layer_bits[i] = bits
                net.e_max[i] = best_exponent_window(weight * net.mask(i), bits)
                errors[i, j] = float(((net(x) - reference) ** 2).sum()) / energy
    return errors


def widen_within_budget(errors: np.ndarray, kept: list[int], base: int,
                        fits: Callable[[list[int]], bool]) -> list[int]:
    """Per-layer widths: ``base`` everywhere, then ``base + 1`` for layers in decreasing
    order of error removed per added bit (``errors`` columns: base, base + 1; a layer pays
    one bit per ``kept`` weight) as long as ``fits(widths)`` accepts the result.

    A layer that does not fit is skipped and cheaper ones are still tried."""
    gain = np.maximum(errors[:, 0] - errors[:, 1], 0.0)
    order = np.argsort(-gain / np.maximum(np.array(kept, dtype=np.float64), 1.0),
                       kind="stable")
    widths = [base] * len(kept)
    for i in order:
        if gain[i] <= 0:
            break
        trial = [*widths]
        trial[i] = base + 1
        if fits(trial):
            widths = trial
    return widths


def choose_layer_bits(net: CompressibleNet, x: torch.Tensor, spec: QuantSpec,
                      fractions: list[int], size_budget: int) -> list[int]:
    """Widths for ``net`` (folded and pruned, quantisation not yet enabled): layers widened
    to ``spec.weight_bits + 1`` by :func:`quantisation_errors` on ``x`` while the stored
    size, measured by the accounting on the net quantised with ``fractions``, stays within
    ``size_budget`` bytes. Leaves quantisation disabled."""
    base = spec.weight_bits
    errors = quantisation_errors(net, x, (base, base + 1))
    kept = [int(net.mask(i).sum()) for i in range(net.n_layers)]

    def fits(widths: list[int]) -> bool:
        net.enable_quantisation(spec, fractions, widths)
        model = to_integer(net)
        return stored_bits(integer_model_sizes(model), model.rr) <= 8 * size_budget

    with _quantisation_state_kept(net):
        return widen_within_budget(errors, kept, base, fits)


@contextmanager
def _quantisation_state_kept(net: CompressibleNet) -> Iterator[None]:
    """Restore the net's quantisation buffers (widths, windows, scales) on exit."""
    saved = [(buffer, buffer.clone()) for buffer in (net.bits, net.layer_bits, net.e_max,
                                                     net.frac)]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
