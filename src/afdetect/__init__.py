"""afdetect: atrial fibrillation detection in single-lead ECG with a compressible 1-D CNN."""

from afdetect.errors import AfdetectError, InputError

CLASSES: tuple[str, ...] = ("N", "A", "O", "~")
"""Class labels in the CinC 2017 order: normal, AF, other rhythm, too noisy."""

__version__ = "0.1.0"
__all__ = ["CLASSES", "AfdetectError", "InputError", "__version__", "load", "scan"]


def __getattr__(name: str) -> object:
    # load and scan import PyTorch; importing afdetect (as the CLI does) should not
    if name in ("load", "scan", "Model"):
        from afdetect import api

        return getattr(api, name)
    raise AttributeError(f"module 'afdetect' has no attribute {name!r}")
