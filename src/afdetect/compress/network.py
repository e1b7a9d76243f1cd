"""The compressible network: BatchNorm folded into the convolutions, weight masks, and
optional power-of-two weights and fixed-point activations (quantisation-aware training).

Layer i is ``conv_i -> ReLU -> MaxPool(2)`` for the convolutions, then a global average
over time and the linear classifier, as in :class:`~afdetect.model.cnn.AFNet`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from afdetect.compress.quantise import (
    best_exponent_window,
    fixed_point_ste,
    pow2_quantise_ste,
    window_size,
)
from afdetect.model.cnn import AFNet, CNNConfig, pool_time
from afdetect.model.rr import FLOAT_INPUT_FRAC, SCALE_BITS, batch_features


@dataclass(frozen=True)
class QuantSpec:
    """Bit widths of the quantised network.

    Attributes:
        weight_bits: bits per kept weight, sign included (0: float weights).
        act_bits: unsigned bits of every post-ReLU activation (0: float activations).
        input_bits: signed bits of the quantised input signal.
    """

    weight_bits: int = 4
    act_bits: int = 8
    input_bits: int = 12


class CompressibleNet(nn.Module):
    """Input (batch, 1, n_samples) normalised ECG -> logits (batch, n_classes)."""

    bits: torch.Tensor
    layer_bits: torch.Tensor
    e_max: torch.Tensor
    frac: torch.Tensor

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        self.convs = nn.ModuleList()
        self.strides = [config.first_stride] + [1] * (len(config.channels) - 1)
        self.paddings = [k // 2 for k in config.kernel_sizes]
        c_in = 1
        for c_out, k, stride, pad in zip(config.channels, config.kernel_sizes, self.strides,
                                         self.paddings, strict=True):
            self.convs.append(nn.Conv1d(c_in, c_out, k, stride=stride, padding=pad))
            c_in = c_out
        self.classifier = nn.Linear(config.classifier_inputs, config.n_classes)
        self.dropout = nn.Dropout(config.dropout)
        # BatchNorm stays while pruning (the net keeps training well); fold() removes it
        # before quantisation.
        self.norms: nn.ModuleList | None = nn.ModuleList(
            nn.BatchNorm1d(c) for c in config.channels)
        n = self.n_layers
        for i, (weight, _) in enumerate(self.weighted_layers()):
            self.register_buffer(f"mask{i}", torch.ones_like(weight))
        # Quantisation state lives in buffers so checkpoints carry it.
        self.register_buffer("bits", torch.zeros(3, dtype=torch.int64))  # w, act, input
        self.register_buffer("e_max", torch.zeros(n, dtype=torch.int64))
        self.register_buffer("frac", torch.zeros(n, dtype=torch.int64))  # f_0..f_{L-1}
        self.register_buffer("layer_bits", torch.zeros(n, dtype=torch.int64))  # per layer
        self.register_load_state_dict_pre_hook(_uniform_layer_bits)

    @property
    def n_layers(self) -> int:
        """Weighted layers: the convolutions plus the classifier."""
        return len(self.convs) + 1

    def weighted_layers(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for conv in self.convs:
            yield cast(nn.Conv1d, conv).weight, cast(torch.Tensor, cast(nn.Conv1d, conv).bias)
        yield self.classifier.weight, self.classifier.bias

    def mask(self, i: int) -> torch.Tensor:
        return cast(torch.Tensor, getattr(self, f"mask{i}"))

    @property
    def spec(self) -> QuantSpec:
        w, a, x = (int(v) for v in self.bits)
        return QuantSpec(w, a, x)

    def folded_scale(self, i: int) -> torch.Tensor:
        """Per-output-channel factor BatchNorm will multiply layer i's weights by."""
        if self.norms is None or i >= len(self.convs):
            return torch.ones(1)
        bn = cast(nn.BatchNorm1d, self.norms[i])
        assert bn.running_var is not None
        return (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()

    def magnitude(self, i: int) -> torch.Tensor:
        """|weight| as it will be after folding: the pruning criterion."""
        weight = list(self.weighted_layers())[i][0].detach()
        scale = self.folded_scale(i)
        return weight.abs() * scale.abs().view(-1, *([1] * (weight.dim() - 1)))

    def effective_weight(self, i: int) -> torch.Tensor:
        weight = list(self.weighted_layers())[i][0] * self.mask(i)
        bits = int(self.layer_bits[i])
        if bits:
            weight = pow2_quantise_ste(weight, int(self.e_max[i]), bits) * self.mask(i)
        return weight

    def effective_bias(self, i: int) -> torch.Tensor:
        bias: torch.Tensor = list(self.weighted_layers())[i][1]
        if int(self.bits[0]) and int(self.bits[1]):
            # An integer bias in the accumulator's units 2^(e_min - f_in), on a grid no finer
            # than the layer's output: finer detail moves an output by under one step, and
            # the coarse bias is stored in far fewer bits.
            frac = self.input_frac(i) - self.e_min(i)
            if i < len(self.convs):
                frac = min(frac, int(self.frac[i + 1]))
            bias = fixed_point_ste(bias, frac, -(2 ** 62), 2 ** 62)
        return bias

    def input_frac(self, i: int) -> int:
        """Fractional bits of layer i's input. The RR features (f / 2^SCALE_BITS) join the
        pooled activations at the classifier, whose input grid is the finer of the two."""
        if i == len(self.convs) and self.config.rr is not None:
            return max(int(self.frac[i]), SCALE_BITS)
        return int(self.frac[i])

    def e_min(self, i: int) -> int:
        return int(self.e_max[i]) - window_size(int(self.layer_bits[i])) + 1

    def activation_range(self) -> tuple[int, int]:
        return 0, 2 ** int(self.bits[1]) - 1

    def quantise_input(self, x: torch.Tensor) -> torch.Tensor:
        if not int(self.bits[1]):
            return x
        half = 2 ** (int(self.bits[2]) - 1)
        return fixed_point_ste(x, int(self.frac[0]), -half, half - 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations after each conv block (after quantisation when enabled)."""
        h = self.quantise_input(x)
        out = []
        for i in range(len(self.convs)):
            h = F.conv1d(h, self.effective_weight(i), self.effective_bias(i), self.strides[i],
                         self.paddings[i])
            if self.norms is not None:
                h = self.norms[i](h)
            h = F.max_pool1d(F.relu(h), 2)
            if int(self.bits[1]):
                lo, hi = self.activation_range()
                h = fixed_point_ste(h, int(self.frac[i + 1]), lo, hi)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.dropout(pool_time(self.features(x)[-1], lengths, self.config))
        if self.config.rr is not None:
            # the detector reads the quantised input the integer engine receives
            frac = int(self.frac[0]) if int(self.bits[1]) else FLOAT_INPUT_FRAC
            pooled = torch.cat([pooled, batch_features(x, lengths, frac, self.config.rr)], 1)
        last = self.n_layers - 1
        return F.linear(pooled, self.effective_weight(last), self.effective_bias(last))

    def apply_masks(self) -> None:
        """Zero the pruned weights in place (after an optimiser step)."""
        with torch.no_grad():
            for i, (weight, _) in enumerate(self.weighted_layers()):
                weight.mul_(self.mask(i))

    def fold(self) -> None:
        """Merge BatchNorm into the convolutions (eval statistics); masks are preserved."""
        if self.norms is None:
            return
        with torch.no_grad():
            for i, (weight, bias) in enumerate(list(self.weighted_layers())[:-1]):
                bn = cast(nn.BatchNorm1d, self.norms[i])
                assert bn.running_mean is not None
                scale = self.folded_scale(i)
                weight.mul_(scale[:, None, None])
                bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
        self.norms = None

    def enable_quantisation(self, spec: QuantSpec, frac: list[int],
                            layer_bits: list[int] | None = None) -> None:
        """Switch on quantisation: weight windows from the current weights, the given
        fractional bits for the input (``frac[0]``) and each conv block's output.

        ``layer_bits`` gives each weighted layer its own code width (default: every layer
        ``spec.weight_bits``)."""
        widths = layer_bits or [spec.weight_bits] * self.n_layers
        if len(widths) != self.n_layers:
            raise ValueError(f"layer_bits needs {self.n_layers} entries")
        with torch.no_grad():
            self.bits.copy_(torch.tensor([spec.weight_bits, spec.act_bits, spec.input_bits]))
            self.layer_bits.copy_(torch.tensor(widths if spec.weight_bits else [0] * len(widths)))
            self.frac.copy_(torch.tensor(frac))
            if spec.weight_bits:
                for i, (weight, _) in enumerate(self.weighted_layers()):
                    self.e_max[i] = best_exponent_window(weight * self.mask(i), widths[i])


def _uniform_layer_bits(_: nn.Module, state: dict[str, Any], prefix: str, *__: Any) -> None:
    """Checkpoints written before per-layer widths existed had one width for all layers."""
    key = prefix + "layer_bits"
    if key not in state and prefix + "bits" in state and prefix + "e_max" in state:
        state[key] = torch.full_like(state[prefix + "e_max"], int(state[prefix + "bits"][0]))


def from_float(model: AFNet) -> CompressibleNet:
    """A :class:`CompressibleNet` with ``model``'s weights and BatchNorm (not yet folded)."""
    net = CompressibleNet(model.config)
    assert net.norms is not None
    with torch.no_grad():
        for block, (weight, bias), norm in zip(model.features, net.weighted_layers(),
                                               net.norms, strict=False):
            weight.copy_(cast(nn.Conv1d, cast(nn.Sequential, block)[0]).weight)
            bias.zero_()
            norm.load_state_dict(cast(nn.Sequential, block)[1].state_dict())
        net.classifier.load_state_dict(model.classifier.state_dict())
    return net.eval()


def fold_batchnorm(model: AFNet) -> CompressibleNet:
    """A BatchNorm-free :class:`CompressibleNet` computing ``model``'s eval function."""
    net = from_float(model)
    net.fold()
    return net
