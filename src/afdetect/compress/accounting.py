"""Size accounting of a compressed model (DESIGN.md contract).

Baseline bits: 32 x every float parameter of the float parent (conv weights, BatchNorm
scale and shift, classifier weights and bias). Stored bits: everything the integer model
needs to run: weight codes of kept weights, the index structure in full (fillers
included), biases at their packed width (after dropping the trailing zero bits they all
share), and per-layer scalars (code width, exponent window, output fractional bits, index
scheme and parameter, bias width and shift: 8 bits each) plus 3 global bytes (activation and
input bits, input fractional bits). A model with the RR detector also stores its settings,
16 bits each; its features' classifier weights are counted with the classifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from afdetect.compress.integer import IntegerModel
from afdetect.compress.sparse_index import encode, shifted_integers
from afdetect.model.rr import RRConfig

LAYER_SCALAR_BITS = 7 * 8
GLOBAL_BITS = 3 * 8
RR_SETTING_BITS = 16


@dataclass(frozen=True)
class LayerSize:
    name: str
    shape: tuple[int, ...]
    weights: int
    kept: int
    code_bits: int
    index_scheme: str
    index_param: int
    index_bits: int
    bias_bits: int
    scalar_bits: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / self.weights

    @property
    def stored_bits(self) -> int:
        return self.code_bits + self.index_bits + self.bias_bits + self.scalar_bits

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(sparsity=self.sparsity, stored_bits=self.stored_bits,
                 stored_bytes=self.stored_bits / 8)
        return d


def layer_size(name: str, mask: np.ndarray, bias: np.ndarray, code_bits: int,
               bias_width: int | None = None) -> LayerSize:
    """Stored size of one layer whose kept weights take ``code_bits`` bits each
    (32 for unquantised float weights); ``bias_width`` None means packed integers."""
    encoding = encode(mask)
    kept = int(mask.sum())
    width = shifted_integers(bias)[2] if bias_width is None else bias_width
    return LayerSize(name, tuple(mask.shape), int(mask.size), kept, kept * code_bits,
                     encoding.scheme, encoding.param, encoding.bits, len(bias) * width,
                     LAYER_SCALAR_BITS)


def stored_bits(layers: list[LayerSize], rr: RRConfig | None = None) -> int:
    """Bits the whole model stores: its layers, the global scalars and the RR settings."""
    rr_bits = RR_SETTING_BITS * len(rr.to_dict()) if rr is not None else 0
    return sum(layer.stored_bits for layer in layers) + GLOBAL_BITS + rr_bits


def totals(layers: list[LayerSize], baseline_params: int,
           rr: RRConfig | None = None) -> dict[str, Any]:
    """Whole-model figures: ratios against the 32-bit float parent, and bytes."""
    stored = stored_bits(layers, rr)
    n_weights = sum(layer.weights for layer in layers)
    weight_bits = sum(layer.code_bits + layer.index_bits for layer in layers)
    return {
        "baseline_params": baseline_params,
        "baseline_bytes": baseline_params * 4,
        "stored_bits": stored,
        "stored_bytes": int(np.ceil(stored / 8)),
        "compression_ratio": 32 * baseline_params / stored,
        "weights_only_ratio": 32 * n_weights / weight_bits,
        "weights": n_weights,
        "kept": sum(layer.kept for layer in layers),
        "sparsity": 1 - sum(layer.kept for layer in layers) / n_weights,
    }


def integer_model_sizes(model: IntegerModel) -> list[LayerSize]:
    """Per-layer stored sizes of an integer model, exactly as its file stores it."""
    names = [f"conv{i + 1}" for i in range(len(model.convs))] + ["classifier"]
    return [layer_size(name, layer.mask, layer.bias, layer.bits)
            for name, layer in zip(names, model.layers, strict=True)]


def report(model: IntegerModel, baseline_params: int) -> dict[str, Any]:
    """The ``afdetect report`` figures: per-layer table and whole-model totals."""
    layers = integer_model_sizes(model)
    return {"layers": [layer.to_dict() for layer in layers],
            **totals(layers, baseline_params, model.rr)}
