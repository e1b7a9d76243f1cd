"""The integer runtime: the compressed model file (``.afq``) and the NumPy integer engine.

It sits below :mod:`afdetect.models`, which loads and runs compressed models through it;
the export of the C library, its targets and packaging sit above the monitor, in
:mod:`afdetect.deploy`.
"""

from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import load_compressed, save_compressed

__all__ = ["IntegerEngine", "load_compressed", "save_compressed"]
