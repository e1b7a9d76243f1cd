"""Power-of-two weight quantisation and fixed-point activations, with straight-through
gradients.

Weights: w -> sign(w) * 2^e, e in a per-layer window [e_max - 2^(b-1) + 1, e_max], so a
kept weight needs b bits (sign + (b-1)-bit exponent offset); zeros are carried by the
sparsity structure. Rounding is to the nearest power of two on the linear scale.

Activations: value = integer * 2^-f with the integer clamped to the layer's bit width;
rounding is half-up (``floor(v + 0.5)``), exactly what an arithmetic right shift with a
rounding offset computes in the integer engine.
"""

from __future__ import annotations

import torch


def window_size(bits: int) -> int:
    """Exponents a b-bit code (sign included) can address: 2^(b-1)."""
    return 2 ** (bits - 1)


def pow2_exponents(w: torch.Tensor, e_max: int, bits: int) -> torch.Tensor:
    """Exponent e of the nearest power of two of |w|, clamped to the layer window.

    Zero entries get an arbitrary exponent; callers mask them.
    """
    magnitude = w.abs().clamp_min(torch.finfo(w.dtype).tiny)
    e_lo = torch.floor(torch.log2(magnitude))
    e = e_lo + (magnitude >= 1.5 * torch.pow(2.0, e_lo)).to(w.dtype)
    return e.clamp(e_max - window_size(bits) + 1, e_max)


def pow2_quantise(w: torch.Tensor, e_max: int, bits: int) -> torch.Tensor:
    """sign(w) * 2^e (zeros stay zero), without gradient tricks."""
    return torch.sign(w) * torch.pow(2.0, pow2_exponents(w, e_max, bits))


def pow2_quantise_ste(w: torch.Tensor, e_max: int, bits: int) -> torch.Tensor:
    """:func:`pow2_quantise` forward, identity gradient backward (straight-through)."""
    return w + (pow2_quantise(w.detach(), e_max, bits) - w).detach()


def best_exponent_window(w: torch.Tensor, bits: int) -> int:
    """The window top ``e_max`` minimising the squared quantisation error of ``w``'s
    nonzero entries; candidates lie around the exponent of the largest magnitude."""
    kept = w[w != 0]
    if kept.numel() == 0:
        return 0
    top = int(torch.floor(torch.log2(kept.abs().max())).item()) + 1
    errors = {e: float(((pow2_quantise(kept, e, bits) - kept) ** 2).sum())
              for e in range(top - 3, top + 1)}
    return min(errors, key=lambda e: errors[e])


def fixed_point(v: torch.Tensor, frac_bits: int, lo: int, hi: int) -> torch.Tensor:
    """Round-half-up onto the grid 2^-frac_bits, clamped to [lo, hi] grid steps."""
    scale = 2.0 ** frac_bits
    return torch.clamp(torch.floor(v * scale + 0.5), lo, hi) / scale


def fixed_point_ste(v: torch.Tensor, frac_bits: int, lo: int, hi: int) -> torch.Tensor:
    """:func:`fixed_point` forward, straight-through gradient backward."""
    return v + (fixed_point(v.detach(), frac_bits, lo, hi) - v).detach()


def frac_bits_for(peak: float, bits: int, signed: bool) -> int:
    """Largest fractional bit count whose integer range still covers ``peak``."""
    top = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    if peak <= 0:
        return bits
    return int(torch.floor(torch.log2(torch.tensor(top / peak))).item())
