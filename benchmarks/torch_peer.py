"""PyTorch's own compression tools on our float parent, the second peer of
``benchmarks/peers.py``.

- **int8 alone**: ``torch.ao`` FX post-training static quantisation (x86 backend:
  per-channel int8 weights, uint8 activations, Conv-BatchNorm-ReLU fused), calibrated on
  256 training records of the fold.
- **prune + int8**: ``torch.nn.utils.prune.global_unstructured`` L1 magnitude pruning of
  every conv and the classifier to the sparsity whose int8 codes and index fit the byte
  budget (our compressed model's stored bytes, counted with our accounting), fine-tuned
  with the masks in place (``fit`` with our recipe, shorter), then int8 as above.

Stored bytes use our accounting (``afdetect.compress.accounting.layer_size``): 8-bit codes
of the kept weights, the cheapest of our sparse indexes, 32-bit biases, and per output
channel a 32-bit scale and zero point.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.nn.utils import prune

from afdetect.compress.accounting import GLOBAL_BITS, layer_size
from afdetect.data.store import Dataset
from afdetect.model.cnn import AFNet
from afdetect.train import FitConfig, fit

CALIBRATION_RECORDS = 256


class PlainNet(nn.Module):
    """AFNet's eval function without the padding mask, so FX can trace it."""

    def __init__(self, net: AFNet) -> None:
        super().__init__()
        self.features = net.features
        self.classifier = net.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=2))


def weighted(net: nn.Module) -> list[nn.Conv1d | nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Conv1d | nn.Linear)]


def int8(net: AFNet, calibration: list[np.ndarray]) -> nn.Module:
    """Post-training static int8 quantisation of ``net`` (float, eval mode)."""
    plain = PlainNet(net).eval()
    example = torch.from_numpy(calibration[0][None, None, :])
    with warnings.catch_warnings():  # torch.ao's own deprecation notices
        warnings.simplefilter("ignore", UserWarning)
        prepared = prepare_fx(plain, get_default_qconfig_mapping("x86"), (example,))
        with torch.no_grad():
            for signal in calibration:
                prepared(torch.from_numpy(signal[None, None, :]))
        return convert_fx(prepared)


def stored_bytes(net: AFNet) -> int:
    """Bytes of ``net`` pruned (zeros are pruned) and quantised to int8, our accounting."""
    bits = GLOBAL_BITS
    for i, m in enumerate(weighted(net)):
        w = m.weight.detach().numpy()
        mask = (w != 0).reshape(w.shape[0], w.shape[1], -1)
        size = layer_size(f"layer{i}", mask, np.zeros(w.shape[0], dtype=np.int64), 8,
                          bias_width=32)
        bits += size.stored_bits + 64 * w.shape[0]  # scale and zero point per channel
    return int(np.ceil(bits / 8))


def calibration_set(train_set: Dataset, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_set), size=min(CALIBRATION_RECORDS, len(train_set)),
                      replace=False)
    return [train_set.signals[i] for i in pick]


def pruned_to_budget(parent: AFNet, budget_bytes: int) -> float:
    """The smallest global sparsity whose int8 model fits ``budget_bytes`` (bisection)."""
    lo, hi = 0.5, 0.999
    for _ in range(20):
        mid = (lo + hi) / 2
        trial = _globally_pruned(parent, mid)
        if stored_bytes(trial) <= budget_bytes:
            hi = mid
        else:
            lo = mid
    return hi


def _with_pruning(parent: AFNet, sparsity: float) -> AFNet:
    """A copy of ``parent`` with torch's global L1 pruning masks attached (still trainable)."""
    net = AFNet(parent.config)
    net.load_state_dict(parent.state_dict())
    prune.global_unstructured([(m, "weight") for m in weighted(net)],
                              pruning_method=prune.L1Unstructured, amount=sparsity)
    return net


def _made_permanent(net: AFNet) -> AFNet:
    for m in weighted(net):
        prune.remove(m, "weight")
    return net.eval()


def _globally_pruned(parent: AFNet, sparsity: float) -> AFNet:
    return _made_permanent(_with_pruning(parent, sparsity))


def prune_and_finetune(parent: AFNet, train_set: Dataset, sparsity: float, out: Path,
                       epochs: int, seed: int) -> AFNet:
    """Global magnitude pruning to ``sparsity``, then fine-tuning with fixed masks.

    Checkpoints in ``out`` (resumable); returns the pruned float net in eval mode.
    """
    net = _with_pruning(parent, sparsity)
    config = dataclasses.replace(FitConfig(), epochs=epochs, lr=1e-3, seed=seed)
    fit(net, config, train_set, out,
        fingerprint={"torch_peer": sparsity, "fit": dataclasses.asdict(config)},
        n_classes=parent.config.n_classes, resume=True, progress=False)
    return _made_permanent(net)
