"""Pruning, logarithmic quantisation with QAT, and size accounting."""

from afdetect.compress.network import CompressibleNet, QuantSpec, fold_batchnorm
from afdetect.compress.recipe import CompressConfig, compress

__all__ = ["CompressConfig", "CompressibleNet", "QuantSpec", "compress", "fold_batchnorm"]
