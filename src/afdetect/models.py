"""Built-in models by name, and loading any model file behind one interface."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from afdetect.compress.integer import IntegerModel
from afdetect.data.preprocess import PreprocessConfig
from afdetect.errors import InputError
from afdetect.model.io import FloatModel, load_float_model
from afdetect.runtime.engine import engine_logits
from afdetect.runtime.format import is_compressed_file, load_compressed
from afdetect.train.inference import predict_logits

BUILTIN = {"float": "float.pt", "compressed": "compressed.afq",
           "compressed-4kb": "compressed_4kb.afq", "compressed-rr": "compressed_rr.afq"}
DEFAULT_MODEL = "compressed"


class Classifier(Protocol):
    """What prediction and evaluation need from a model."""

    @property
    def name(self) -> str: ...

    @property
    def preprocess(self) -> PreprocessConfig: ...

    @property
    def metadata(self) -> dict[str, Any]: ...

    def logits(self, signals: list[np.ndarray]) -> np.ndarray:
        """Logits, shape (len(signals), 4), of preprocessed signals."""
        ...


@dataclass
class FloatClassifier:
    """A float PyTorch model."""

    name: str
    model: FloatModel

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.model.preprocess

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def logits(self, signals: list[np.ndarray]) -> np.ndarray:
        return predict_logits(self.model.network, signals)


@dataclass
class CompressedClassifier:
    """A compressed model run by the integer-only shift-add engine."""

    name: str
    model: IntegerModel
    metadata: dict[str, Any]

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(**self.metadata["preprocess"])

    def logits(self, signals: list[np.ndarray]) -> np.ndarray:
        return engine_logits(self.model, signals)


def builtin_path(name: str) -> Path:
    """Path of the built-in model ``name`` inside the installed package."""
    return Path(str(resources.files("afdetect") / "pretrained" / BUILTIN[name]))


def resolve_model(name_or_path: str | Path) -> tuple[str, Path]:
    """(display name, file) of a built-in model name or a model file path."""
    key = str(name_or_path)
    if key in BUILTIN:
        path = builtin_path(key)
        if not path.is_file():
            raise InputError(path, f"built-in model {key!r} is missing from the installation")
        return key, path
    path = Path(key)
    if not path.is_file():
        raise InputError(path, f"no such model file (built-in models: {', '.join(BUILTIN)})")
    return path.name, path


def load_classifier(name_or_path: str | Path = DEFAULT_MODEL) -> Classifier:
    """Load a built-in model by name (``compressed``, ``compressed-4kb``, ``compressed-rr``,
    ``float``) or a
    model file by path; compressed files are recognised by their magic bytes, anything
    else must be a float model file."""
    name, path = resolve_model(name_or_path)
    if is_compressed_file(path):
        model, metadata = load_compressed(path)
        return CompressedClassifier(name, model, metadata)
    return FloatClassifier(name, load_float_model(path))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, n_classes) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
