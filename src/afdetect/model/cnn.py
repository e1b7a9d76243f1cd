"""A fully convolutional 1-D CNN for variable-length single-lead ECG.

Every block is ``Conv1d -> BatchNorm -> ReLU -> MaxPool``: BatchNorm folds into the
convolution and ReLU/max-pooling are compares, so the network maps onto shift-add integer
hardware once its weights are powers of two. A global average over time makes the
classifier length-independent; during training it is masked so zero padding of short
recordings in a batch does not dilute the average. ``pooling="mean_max"`` also passes each
channel's maximum over time (a transient event, an ectopic beat or a noise burst, moves a
maximum where it barely moves a mean of a minute).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from afdetect.model.rr import FLOAT_INPUT_FRAC, N_FEATURES, RRConfig, batch_features

POOLINGS = ("mean", "mean_max")


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of :class:`AFNet`.

    Attributes:
        channels: output channels of each conv block; each block halves the time axis.
        kernel_sizes: kernel of each block (same length as ``channels``).
        first_stride: stride of the first convolution (decimates the 300 Hz input).
        n_classes: outputs (N, A, O, ~).
        dropout: dropout before the classifier (training only).
        rr: the integer R-peak detector whose RR features join the pooled CNN features at
            the classifier (:mod:`afdetect.model.rr`); None for the CNN alone.
        pooling: how the time axis is pooled before the classifier: ``"mean"``, or
            ``"mean_max"`` (the mean and the maximum of each channel, concatenated).
    """

    channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 64, 64)
    kernel_sizes: tuple[int, ...] = (15, 9, 9, 9, 9, 9, 9, 9)
    first_stride: int = 2
    n_classes: int = 4
    dropout: float = 0.25
    rr: RRConfig | None = None
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.kernel_sizes) or not self.channels:
            raise ValueError("channels and kernel_sizes must be non-empty and equally long")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")

    @property
    def downsampling(self) -> int:
        """Input samples per output time step of the last block."""
        return self.first_stride * 2 ** len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CNNConfig:
        fields = dict(data)
        for key in ("channels", "kernel_sizes"):
            fields[key] = tuple(int(v) for v in fields[key])
        if fields.get("rr") is not None:
            fields["rr"] = RRConfig(**fields["rr"])
        return cls(**fields)

    @property
    def classifier_inputs(self) -> int:
        """Pooled CNN features, plus the RR features when there are any."""
        pooled = self.channels[-1] * (2 if self.pooling == "mean_max" else 1)
        return pooled + (N_FEATURES if self.rr is not None else 0)


def pool_time(h: torch.Tensor, lengths: torch.Tensor | None, config: CNNConfig) -> torch.Tensor:
    """The classifier's CNN inputs from the last block's activations.

    Args:
        h: (batch, channels, steps) activations (non-negative: after ReLU and max-pooling).
        lengths: (batch,) valid input samples per row when rows are zero-padded; None if not.
    Returns:
        (batch, channels) time means, followed for ``"mean_max"`` by the (batch, channels)
        maxima; padding counts in neither.
    """
    if lengths is None:
        pooled = [h.mean(dim=2)] + ([h.amax(dim=2)] if config.pooling == "mean_max" else [])
        return torch.cat(pooled, dim=1)
    steps = torch.clamp(lengths // config.downsampling, min=1, max=h.shape[2])
    valid = (torch.arange(h.shape[2], device=h.device)[None, :] < steps[:, None])[:, None, :]
    masked = h * valid  # zero where padded: no larger than any valid (non-negative) value
    pooled = [masked.sum(dim=2) / steps[:, None]]
    if config.pooling == "mean_max":
        pooled.append(masked.amax(dim=2))
    return torch.cat(pooled, dim=1)


class ConvBlock(nn.Sequential):
    """Conv1d (no bias: BatchNorm supplies it) -> BatchNorm1d -> ReLU -> MaxPool1d(2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(2),
        )


class AFNet(nn.Module):
    """Input (batch, 1, n_samples) normalised ECG -> logits (batch, n_classes)."""

    def __init__(self, config: CNNConfig | None = None) -> None:
        super().__init__()
        config = config or CNNConfig()
        self.config = config
        blocks = []
        c_in = 1
        for i, (c_out, k) in enumerate(zip(config.channels, config.kernel_sizes, strict=True)):
            blocks.append(ConvBlock(c_in, c_out, k, stride=config.first_stride if i == 0 else 1))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.classifier_inputs, config.n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            x: (batch, 1, n_samples) float32.
            lengths: (batch,) valid samples per row when rows are zero-padded; None if not.
        """
        pooled = self.dropout(pool_time(self.features(x), lengths, self.config))
        if self.config.rr is not None:
            pooled = torch.cat([pooled, batch_features(x, lengths, FLOAT_INPUT_FRAC,
                                                       self.config.rr)], dim=1)
        return self.classifier(pooled)
