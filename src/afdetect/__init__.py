"""afdetect: atrial fibrillation detection in single-lead ECG with a compressible 1-D CNN."""

from afdetect.errors import AfdetectError, InputError

CLASSES: tuple[str, ...] = ("N", "A", "O", "~")
"""Class labels in the CinC 2017 order: normal, AF, other rhythm, too noisy."""

__version__ = "0.1.0"
__all__ = ["CLASSES", "AfdetectError", "InputError", "__version__"]
