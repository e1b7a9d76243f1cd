"""Batched float inference over variable-length signals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from afdetect.model.cnn import CNNConfig


class Network(Protocol):
    """What inference needs of a network: :class:`~afdetect.model.cnn.AFNet`, or the
    compression stages' :class:`~afdetect.compress.network.CompressibleNet`."""

    config: CNNConfig
    training: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def parameters(self) -> Iterator[torch.nn.Parameter]: ...
    def eval(self) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...


@torch.no_grad()
def predict_logits(model: Network, signals: list[np.ndarray],
                   batch_size: int = 64) -> np.ndarray:
    """Logits, shape (len(signals), n_classes), of preprocessed signals.

    Signals of equal length share a batch; none is padded, so each result equals the
    one-recording-at-a-time result. Runs where ``model``'s parameters are.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros((len(signals), model.config.n_classes), dtype=np.float32)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, signal in enumerate(signals):
        by_length[len(signal)].append(i)
    for indices in by_length.values():
        for begin in range(0, len(indices), batch_size):
            chunk = indices[begin:begin + batch_size]
            x = torch.from_numpy(np.stack([signals[i] for i in chunk])[:, None, :])
            out[chunk] = model(x.to(device)).cpu().numpy()
    model.train(was_training)
    return out
