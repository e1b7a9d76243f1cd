"""The conv blocks run once over a stream, in chunks, instead of once per window.

Every block is time-invariant (conv -> activation -> max-pool of pairs), so a stream can be
fed in any chunking: each block keeps the input columns its next output still needs and an
unpaired output awaiting its pooling partner. The left edge is zero-padded as in the strip
engines; a stream has no right edge. What comes out is one column per time step of the
last block (``downsampling`` model samples apart), from which any window's logits are a
sum (:mod:`afdetect.monitor.windows`).

Two builders share the machinery: :func:`integer_stack` (the compressed model, exact
integers carried in float tensors) and :func:`float_stack` (a float :class:`AFNet`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from afdetect.compress.integer import (
    IntegerModel,
    conv_accumulator_bound,
    dense_weights,
    requantise,
)
from afdetect.model.cnn import AFNet

FLOAT32_EXACT = 2**24  # integers below this add exactly in float32


@dataclass(frozen=True)
class StreamBlock:
    """One conv block: ``forward`` maps input columns (1, c_in, L) to the activated
    outputs (1, c_out, (L - kernel) // stride + 1) of an unpadded convolution."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    padding: int
    forward: Callable[[torch.Tensor], torch.Tensor]


class StreamingStack:
    """Feeds input samples through the blocks; returns last-block columns as they complete.

    Args:
        blocks: the conv blocks in order.
        dtype: tensor dtype the blocks compute in.
    """

    def __init__(self, blocks: list[StreamBlock], dtype: torch.dtype) -> None:
        self.blocks = blocks
        self.dtype = dtype
        self._inputs = [torch.zeros(1, b.c_in, b.padding, dtype=dtype) for b in blocks]
        self._unpaired: list[torch.Tensor | None] = [None] * len(blocks)

    @property
    def lag(self) -> int:
        """Input samples from the end of a step's span to the last sample its output
        needs: step t comes out once sample ``(t + 1) * downsampling + lag - 1`` is in
        (each block's pooled output u needs its conv outputs up to ``2u + 1``)."""
        need = 0  # the last block's pooled output 0
        for block in reversed(self.blocks):
            need = (2 * need + 1) * block.stride - block.padding + block.kernel - 1
        return need + 1 - self.blocks[0].stride * 2 ** len(self.blocks)

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> torch.Tensor:
        """Model input samples (n,) -> completed last-block columns (c_last, n_steps)."""
        a = torch.from_numpy(np.asarray(samples)).to(self.dtype)[None, None, :]
        for i, block in enumerate(self.blocks):
            a = self._block(i, block, a)
        return a[0]

    def _block(self, i: int, block: StreamBlock, new: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self._inputs[i], new], dim=2)
        n_out = max(0, (x.shape[2] - block.kernel) // block.stride + 1)
        if n_out == 0:
            self._inputs[i] = x
            return x.new_zeros(1, block.c_out, 0)
        out = block.forward(x[:, :, :(n_out - 1) * block.stride + block.kernel])
        self._inputs[i] = x[:, :, n_out * block.stride:]
        unpaired = self._unpaired[i]
        if unpaired is not None:
            out = torch.cat([unpaired, out], dim=2)
        n_pairs = out.shape[2] // 2
        self._unpaired[i] = out[:, :, 2 * n_pairs:] if out.shape[2] % 2 else None
        return torch.maximum(out[:, :, 0:2 * n_pairs:2], out[:, :, 1:2 * n_pairs:2])


def integer_stack(model: IntegerModel) -> StreamingStack:
    """The compressed model's conv blocks on exact integers.

    They compute in float32 when every accumulator provably stays below 2^24 (then each
    partial sum is an exact integer, whatever order the convolution adds in), else float64;
    oneDNN is bypassed so no transform-based algorithm can round.
    """
    dtype = torch.float32 if conv_accumulator_bound(model) < FLOAT32_EXACT else torch.float64
    blocks = []
    for layer in model.convs:
        weight = torch.from_numpy(dense_weights(layer)).to(dtype)
        bias = torch.from_numpy(layer.bias.astype(np.float64)).to(dtype)

        def forward(x: torch.Tensor, layer=layer, weight=weight, bias=bias) -> torch.Tensor:
            # torch warns about TF32 on Intel GPUs whenever these flags change
            with warnings.catch_warnings(action="ignore"), \
                    torch.backends.mkldnn.flags(enabled=False):
                acc = F.conv1d(x, weight, bias, stride=layer.stride)
            return requantise(acc, layer, model.act_bits)

        c_out, c_in, _ = layer.mask.shape
        blocks.append(StreamBlock(c_in, c_out, layer.kernel, layer.stride, layer.padding,
                                  forward))
    return StreamingStack(blocks, dtype)


def float_stack(network: AFNet) -> StreamingStack:
    """A float :class:`AFNet`'s conv blocks (eval mode: BatchNorm uses its running stats)."""
    network.eval()
    blocks = []
    for block in network.features:
        conv, norm = block[0], block[1]  # type: ignore[index]

        def forward(x: torch.Tensor, conv=conv, norm=norm) -> torch.Tensor:
            return F.relu(norm(F.conv1d(x, conv.weight, conv.bias, stride=conv.stride)))

        blocks.append(StreamBlock(conv.in_channels, conv.out_channels, conv.kernel_size[0],
                                  conv.stride[0], conv.padding[0], forward))
    return StreamingStack(blocks, torch.float32)
