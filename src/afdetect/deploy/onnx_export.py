"""ONNX export of a float model, self-contained for other runtimes.

The graph takes one lead in millivolts at the model's sampling rate, shape (1, n) float32
with n variable, applies the model's own normalisation (:func:`afdetect.data.preprocess.
normalise`: remove the mean, divide by the power of two nearest the standard deviation)
and returns the class probabilities, shape (1, 4), in :data:`afdetect.CLASSES` order.
Resampling to the model's rate is left to the caller.

It uses PyTorch's TorchScript-based exporter: the newer dynamo exporter cannot yet solve
the symbolic lengths that the pooling layers produce for a variable n.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from afdetect.atomic import atomic_path
from afdetect.errors import AfdetectError
from afdetect.model.io import FloatModel

INPUT_NAME = "ecg_mv"
OUTPUT_NAME = "probabilities"


class NormalisedClassifier(nn.Module):
    """(1, n) mV -> (1, n_classes) probabilities, normalisation included."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        std = torch.sqrt((centred * centred).mean(dim=1, keepdim=True))
        scale = torch.pow(2.0, -torch.round(torch.log2(std)))  # round half to even, as numpy
        return torch.softmax(self.network((centred * scale)[:, None, :]), dim=1)


def export_onnx(model: FloatModel, path: str | Path, opset: int = 17) -> None:
    """Write ``model`` as an ONNX graph to ``path`` (atomically)."""
    if model.network.config.rr is not None:
        raise AfdetectError("models with RR features do not export to ONNX: their R-peak "
                            "detector is integer code outside the graph")
    module = NormalisedClassifier(model.network.eval()).eval()
    example = torch.randn(1, int(model.preprocess.fs * 30))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (example,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {1: "n_samples"}})
