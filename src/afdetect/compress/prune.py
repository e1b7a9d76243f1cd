"""Magnitude pruning: per-layer sparsity from a sensitivity analysis, reached gradually
with the polynomial schedule of Zhu & Gupta (2017) while fine-tuning.

Weights are pruned one by one (``weight`` granularity) or a whole convolution kernel at a
time (``kernel``: the k taps joining one input channel to one output channel, ranked by
their L2 norm; Mao et al., 2017). A kept kernel is located by one index entry instead of k,
so at the same stored size a kernel-pruned layer keeps several times more weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from afdetect.compress.network import CompressibleNet
from afdetect.model.rr import FLOAT_INPUT_FRAC, batch_features

SENSITIVITY_GRID = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
GRANULARITIES = ("weight", "kernel")


def magnitude_mask(weight: torch.Tensor, sparsity: float, group: int = 1) -> torch.Tensor:
    """Keep the ``round((1 - sparsity) * n_groups)`` groups (at least one) of largest L2
    norm, where a group is ``group`` consecutive entries along the last axis (1: single
    weights ranked by magnitude); 1 for kept entries, else 0."""
    scores = weight.detach().reshape(-1, group).pow(2).sum(dim=1)
    keep = max(1, round((1.0 - sparsity) * scores.numel()))
    mask = torch.zeros(scores.numel(), dtype=weight.dtype)
    mask[torch.topk(scores, keep).indices] = 1
    return mask.repeat_interleave(group).view_as(weight)


def group_sizes(net: CompressibleNet, granularity: str) -> list[int]:
    """Pruning group of each weighted layer: the kernel length for ``kernel`` granularity
    on convolutions with several input channels (with one input channel a kernel is the
    whole filter), else 1."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}")
    sizes = []
    for weight, _ in net.weighted_layers():
        by_kernel = granularity == "kernel" and weight.dim() == 3 and weight.shape[1] > 1
        sizes.append(int(weight.shape[2]) if by_kernel else 1)
    return sizes


def polynomial_sparsity(step: int, total: int, final: float, end_fraction: float = 0.75,
                        power: float = 3.0) -> float:
    """Zhu & Gupta: s_t = s_f (1 - (1 - t / t_end)^power), held at s_f after t_end."""
    t_end = max(1, round(end_fraction * total))
    progress = min(1.0, step / t_end)
    return final * (1.0 - (1.0 - progress) ** power)


@torch.no_grad()
def sensitivity(net: CompressibleNet, x: torch.Tensor, groups: list[int],
                grid: tuple[float, ...] = SENSITIVITY_GRID) -> np.ndarray:
    """Relative output error, shape (n_layers, len(grid)), of each layer pruned alone.

    For layer l and sparsity s: ||y - y_s||^2 / ||y||^2, where y is the layer's linear
    output on its inputs in the unpruned net (calibration batch ``x``) and y_s the same
    with the smallest-magnitude fraction s of its weights (in pruning ``groups``) removed.
    Unlike the loss, this does not saturate at high sparsity, so it still ranks layers
    there.
    """
    net.eval()
    inputs: list[torch.Tensor] = []
    h = x
    for i in range(len(net.convs)):
        inputs.append(h)
        h = F.conv1d(h, net.effective_weight(i), net.effective_bias(i), net.strides[i],
                     net.paddings[i])
        if net.norms is not None:
            h = net.norms[i](h)
        h = F.max_pool1d(F.relu(h), 2)
    pooled = h.mean(dim=2)
    if net.config.rr is not None:  # the classifier also reads the RR features, last
        pooled = torch.cat([pooled, batch_features(x, None, FLOAT_INPUT_FRAC, net.config.rr)],
                           dim=1)
    inputs.append(pooled)
    result = np.zeros((net.n_layers, len(grid)))
    for i, (weight, _) in enumerate(net.weighted_layers()):
        w = weight.detach() * net.mask(i)

        def apply(v: torch.Tensor, i: int = i) -> torch.Tensor:
            if i < len(net.convs):
                return F.conv1d(inputs[i], v, None, net.strides[i], net.paddings[i])
            return F.linear(inputs[-1], v)

        reference = apply(w)
        energy = float((reference ** 2).sum()) or 1.0
        for j, s in enumerate(grid):
            pruned = w * magnitude_mask(net.magnitude(i), s, groups[i])
            result[i, j] = float(((apply(pruned) - reference) ** 2).sum()) / energy
    return result


def allocate_sparsity(errors: np.ndarray, sizes: list[int], target: float,
                      grid: tuple[float, ...] = SENSITIVITY_GRID) -> list[float]:
    """Per-layer sparsities at a common tolerance of the layer output errors.

    Each layer gets the largest sparsity whose error stays under the tolerance (linear
    interpolation between grid points; at most the last grid point); the tolerance is
    bisected until the pruned weights add up to ``target * sum(sizes)``.
    """
    levels = np.array((0.0, *grid))
    curves = np.maximum.accumulate(np.hstack([np.zeros((len(sizes), 1)), errors]), axis=1)
    size = np.array(sizes, dtype=np.float64)

    def sparsities(tolerance: float) -> np.ndarray:
        out = np.empty(len(sizes))
        for i, curve in enumerate(curves):
            if curve[-1] <= tolerance:
                out[i] = levels[-1]
                continue
            j = int(np.argmax(curve > tolerance))  # first level over the tolerance
            lo, hi = curve[j - 1], curve[j]
            frac = 0.0 if hi <= lo else (tolerance - lo) / (hi - lo)
            out[i] = levels[j - 1] + frac * (levels[j] - levels[j - 1])
        return out

    lo, hi = 0.0, float(curves.max()) + 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(sparsities(mid) @ size) < target * size.sum():
            lo = mid
        else:
            hi = mid
    return [float(v) for v in sparsities(hi)]


class GradualPruner:
    """Step hook for :func:`afdetect.train.fit`: raises each layer's sparsity along the
    polynomial schedule, recomputing its magnitude mask every ``every`` steps."""

    def __init__(self, net: CompressibleNet, targets: list[float], groups: list[int],
                 every: int = 16, end_fraction: float = 0.75) -> None:
        self.net = net
        self.targets = targets
        self.groups = groups
        self.every = every
        self.end_fraction = end_fraction

    def on_step(self, step: int, total: int) -> None:
        if step % self.every and step != total - 1:
            return
        with torch.no_grad():
            for i in range(self.net.n_layers):
                s = polynomial_sparsity(step + 1, total, self.targets[i], self.end_fraction)
                self.net.mask(i).copy_(magnitude_mask(
                    self.net.magnitude(i) * self.net.mask(i), s, self.groups[i]))
        self.net.apply_masks()

    def after_step(self) -> None:
        self.net.apply_masks()
