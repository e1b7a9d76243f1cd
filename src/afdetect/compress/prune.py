"""Magnitude pruning: per-layer sparsity from a sensitivity analysis, reached gradually
with the polynomial schedule of Zhu & Gupta (2017) while fine-tuning."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from afdetect.compress.network import CompressibleNet

SENSITIVITY_GRID = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """1 for the ``round((1 - sparsity) * n)`` largest magnitudes (at least one), else 0."""
    keep = max(1, round((1.0 - sparsity) * weight.numel()))
    mask = torch.zeros(weight.numel(), dtype=weight.dtype)
    mask[torch.topk(weight.detach().abs().flatten(), keep).indices] = 1
    return mask.view_as(weight)


def polynomial_sparsity(step: int, total: int, final: float, end_fraction: float = 0.75,
                        power: float = 3.0) -> float:
    """Zhu & Gupta: s_t = s_f (1 - (1 - t / t_end)^power), held at s_f after t_end."""
    t_end = max(1, round(end_fraction * total))
    progress = min(1.0, step / t_end)
    return final * (1.0 - (1.0 - progress) ** power)


@torch.no_grad()
def sensitivity(net: CompressibleNet, x: torch.Tensor, lengths: torch.Tensor,
                y: torch.Tensor, grid: tuple[float, ...] = SENSITIVITY_GRID) -> np.ndarray:
    """Loss increase, shape (n_layers, len(grid)), when one layer alone is pruned.

    Args:
        x, lengths, y: a calibration batch (batch, 1, n), (batch,), (batch,).
    """
    net.eval()
    base = float(F.cross_entropy(net(x, lengths), y))
    result = np.zeros((net.n_layers, len(grid)))
    for i, (weight, _) in enumerate(net.weighted_layers()):
        original = weight.detach().clone()
        for j, s in enumerate(grid):
            weight.copy_(original * magnitude_mask(original, s))
            result[i, j] = float(F.cross_entropy(net(x, lengths), y)) - base
        weight.copy_(original)
    return result


def allocate_sparsity(losses: np.ndarray, sizes: list[int], target: float,
                      grid: tuple[float, ...] = SENSITIVITY_GRID) -> list[float]:
    """Per-layer sparsities reaching the overall ``target`` at the least estimated loss.

    Greedy on the sensitivity curves: repeatedly move the layer whose next grid step
    removes weights at the lowest loss increase per weight, until the pruned weights reach
    ``target * sum(sizes)``; the last step is interpolated to land on the target exactly.
    Small, sensitive layers (the first convolution, the classifier) thus stay dense.
    """
    levels = np.array((0.0, *grid))
    curves = np.maximum.accumulate(np.hstack([np.zeros((len(sizes), 1)), losses]), axis=1)
    size = np.array(sizes, dtype=np.float64)
    goal = target * size.sum()
    at = np.zeros(len(sizes), dtype=np.int64)
    sparsity = np.zeros(len(sizes))
    while float(sparsity @ size) < goal:
        movable = np.flatnonzero(at < len(levels) - 1)
        if not len(movable):
            break
        step = levels[at[movable] + 1] - levels[at[movable]]
        cost = (curves[movable, at[movable] + 1] - curves[movable, at[movable]]) / (
            step * size[movable])
        layer = int(movable[np.argmin(cost)])
        at[layer] += 1
        before = float(sparsity @ size) - sparsity[layer] * size[layer]
        sparsity[layer] = min(levels[at[layer]], (goal - before) / size[layer])
    return [float(v) for v in sparsity]


class GradualPruner:
    """Step hook for :func:`afdetect.train.fit`: raises each layer's sparsity along the
    polynomial schedule, recomputing its magnitude mask every ``every`` steps."""

    def __init__(self, net: CompressibleNet, targets: list[float], every: int = 16,
                 end_fraction: float = 0.75) -> None:
        self.net = net
        self.targets = targets
        self.every = every
        self.end_fraction = end_fraction

    def on_step(self, step: int, total: int) -> None:
        if step % self.every and step != total - 1:
            return
        with torch.no_grad():
            for i, (weight, _) in enumerate(self.net.weighted_layers()):
                s = polynomial_sparsity(step + 1, total, self.targets[i], self.end_fraction)
                self.net.mask(i).copy_(magnitude_mask(weight * self.net.mask(i), s))
        self.net.apply_masks()

    def after_step(self) -> None:
        self.net.apply_masks()
