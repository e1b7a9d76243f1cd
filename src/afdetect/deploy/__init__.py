"""Deployment: the compressed model file and the integer-only engine."""

from afdetect.deploy.engine import IntegerEngine
from afdetect.deploy.format import load_compressed, save_compressed

__all__ = ["IntegerEngine", "load_compressed", "save_compressed"]
