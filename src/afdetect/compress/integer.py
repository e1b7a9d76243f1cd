"""The integer form of a quantised :class:`CompressibleNet`, and its exact simulation.

Every quantity is an integer: weights are (sign, shift) pairs, w = sign * 2^(e_min + shift);
activations A with value A * 2^-frac; biases in accumulator units. Layer l computes

    acc = sum_kept sign * (A_in << shift) + bias          (accumulator frac: in_frac - e_min)
    A_out = clamp((acc + 2^(s-1)) >> s, 0, 2^act_bits - 1) with s = in_frac - e_min - out_frac
    A_out = maxpool2(A_out)

then S = sum over time of the last activations and logits = sum_kept sign * (S << shift)
+ bias * T, in units of 2^(e_min - in_frac) * T. A model with RR features
(:mod:`afdetect.model.rr`) appends them to S as ``f * T``; S and the features (frac
``SCALE_BITS``) are first shifted left onto the classifier's input grid ``in_frac``, the
finer of the two. :func:`simulate_logits` evaluates this with
float64 PyTorch convolutions (exact: every value stays far below 2^53); the shift-add engine
in :mod:`afdetect.runtime.engine` must reproduce it bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from afdetect.compress.network import CompressibleNet
from afdetect.compress.quantise import pow2_exponents
from afdetect.model.rr import SCALE_BITS, RRConfig, quantise, signal_features


@dataclass
class IntegerLayer:
    """One weighted layer. Arrays are shaped (c_out, c_in, kernel); kernel 1 for linear.

    Attributes:
        mask: kept weights.  sign: -1/+1 where kept, 0 elsewhere.
        shift: exponent offset e - e_min in [0, 2^(bits-1) - 1] where kept, 0 elsewhere.
        e_min: lowest exponent of the layer's window.
        bias: int64 (c_out,), in units of 2^(e_min - in_frac).
        in_frac / out_frac: fractional bits of the input and output activations
            (``out_frac`` unused for the classifier).
        stride / padding: convolution geometry (1 / 0 for the classifier).
        bits: code width of each kept weight, sign included.
    """

    mask: np.ndarray
    sign: np.ndarray
    shift: np.ndarray
    e_min: int
    bias: np.ndarray
    in_frac: int
    out_frac: int
    stride: int
    padding: int
    bits: int

    @property
    def requant_shift(self) -> int:
        return self.in_frac - self.e_min - self.out_frac

    @property
    def kernel(self) -> int:
        return int(self.mask.shape[2])


@dataclass
class IntegerModel:
    """A network the shift-add engine executes; the last layer is the classifier."""

    layers: list[IntegerLayer]
    act_bits: int
    input_bits: int
    input_frac: int
    rr: RRConfig | None = None

    @property
    def weight_bits(self) -> list[int]:
        """Code bits of each layer's kept weights."""
        return [layer.bits for layer in self.layers]

    @property
    def weight_bits_text(self) -> str:
        """``"2"``, or ``"2/3"`` when layers differ."""
        return "/".join(str(b) for b in sorted(set(self.weight_bits)))

    @property
    def convs(self) -> list[IntegerLayer]:
        return self.layers[:-1]

    @property
    def classifier(self) -> IntegerLayer:
        return self.layers[-1]

    def quantise_input(self, x: np.ndarray) -> np.ndarray:
        """Normalised float signal (n_samples,) -> int32 fixed point, round half up."""
        return quantise(x, self.input_frac, self.input_bits).astype(np.int32)

    def classifier_columns(self, total: np.ndarray, q: np.ndarray, n_steps: int) -> np.ndarray:
        """The classifier's integer input, int64 (c_in,).

        Args:
            total: (c_last,) the last activations summed over the ``n_steps`` time steps.
            q: (n_samples,) the quantised input signal (the RR detector reads it).
        """
        fc = self.classifier
        columns = np.asarray(total, dtype=np.int64) << (fc.in_frac - self.convs[-1].out_frac)
        if self.rr is None:
            return columns
        rr = signal_features(np.asarray(q, dtype=np.int64), self.rr) * n_steps
        return np.concatenate([columns, rr << (fc.in_frac - SCALE_BITS)])

    def logit_scale(self, n_steps: int) -> float:
        """Multiply integer logits by this to get the float logits."""
        fc = self.classifier
        return 2.0 ** (fc.e_min - fc.in_frac) / n_steps

    def output_steps(self, n_samples: int) -> int:
        """Time steps left after the conv blocks for an input of ``n_samples``."""
        length = n_samples
        for layer in self.convs:
            length = (length + 2 * layer.padding - layer.kernel) // layer.stride + 1
            length //= 2
        return length


def to_integer(net: CompressibleNet) -> IntegerModel:
    """Read the integer model out of a quantised net (weights and activations on)."""
    spec = net.spec
    if not (spec.weight_bits and spec.act_bits):
        raise ValueError("the network is not quantised")
    layers = []
    for i, (weight, _) in enumerate(net.weighted_layers()):
        mask = net.mask(i).detach().numpy().astype(bool)
        w = (weight.detach() * net.mask(i)).double()
        if w.dim() == 2:
            w, mask = w[:, :, None], mask[:, :, None]
        e_min = net.e_min(i)
        bits = int(net.layer_bits[i])
        shift = (pow2_exponents(w, int(net.e_max[i]), bits) - e_min).numpy()
        sign = np.sign(w.numpy()).astype(np.int8)
        in_frac = net.input_frac(i)
        acc_frac = in_frac - e_min
        is_conv = i < len(net.convs)
        layers.append(IntegerLayer(
            mask=mask,
            sign=np.where(mask, sign, 0).astype(np.int8),
            shift=np.where(mask, shift, 0).astype(np.int8),
            e_min=e_min,
            bias=np.floor(net.effective_bias(i).detach().double().numpy() * 2.0 ** acc_frac
                          + 0.5).astype(np.int64),
            in_frac=in_frac,
            out_frac=int(net.frac[i + 1]) if is_conv else 0,
            stride=net.strides[i] if is_conv else 1,
            padding=net.paddings[i] if is_conv else 0,
            bits=bits,
        ))
    return IntegerModel(layers, spec.act_bits, spec.input_bits, int(net.frac[0]),
                        net.config.rr)


def conv_accumulator_bound(model: IntegerModel) -> int:
    """Largest |accumulator| any conv layer can reach, whatever the input (it saturates)."""
    bound = 0
    peak_in = 2 ** (model.input_bits - 1)
    for layer in model.convs:
        terms = np.where(layer.mask, peak_in * np.exp2(layer.shift.astype(np.float64)), 0)
        per_channel = terms.reshape(terms.shape[0], -1).sum(axis=1) + np.abs(layer.bias)
        bound = max(bound, int(per_channel.max()))
        peak_in = 2 ** model.act_bits - 1
    return bound


def dense_weights(layer: IntegerLayer) -> np.ndarray:
    """sign * 2^shift as float64, shape (c_out, c_in, kernel): exact integer values."""
    return layer.sign.astype(np.float64) * np.exp2(layer.shift.astype(np.float64))


def requantise(acc: torch.Tensor, layer: IntegerLayer, act_bits: int) -> torch.Tensor:
    """Accumulators (integers held in a float tensor) -> activations: rounding right shift
    by the layer's requantisation shift, then ReLU and saturation at ``act_bits``."""
    s = layer.requant_shift
    acc = torch.floor((acc + 2.0 ** (s - 1)) * 2.0 ** -s) if s > 0 else acc * 2.0 ** -s
    return torch.clamp(acc, 0, 2 ** act_bits - 1)


@torch.no_grad()
def simulate_logits(model: IntegerModel, x: np.ndarray) -> np.ndarray:
    """Integer logits, int64 (n_classes,), of one normalised signal (n_samples,)."""
    q = model.quantise_input(x)
    a = torch.from_numpy(q.astype(np.float64))[None, None, :]
    for layer in model.convs:
        acc = F.conv1d(a, torch.from_numpy(dense_weights(layer)),
                       torch.from_numpy(layer.bias.astype(np.float64)),
                       stride=layer.stride, padding=layer.padding)
        a = F.max_pool1d(requantise(acc, layer, model.act_bits), 2)
    total = model.classifier_columns(a[0].sum(dim=1).numpy().astype(np.int64), q, a.shape[2])
    fc = model.classifier
    logits = torch.from_numpy(dense_weights(fc)[:, :, 0]) @ torch.from_numpy(
        total.astype(np.float64))
    logits += torch.from_numpy(fc.bias.astype(np.float64)) * a.shape[2]
    return logits.numpy().astype(np.int64)
