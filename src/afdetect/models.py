"""Built-in models by name, and loading any model file behind one interface."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from afdetect.data.preprocess import PreprocessConfig
from afdetect.errors import InputError
from afdetect.model.io import FloatModel, load_float_model
from afdetect.train.inference import predict_logits

BUILTIN = {"float": "float.pt"}
DEFAULT_MODEL = "float"


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


def builtin_path(name: str) -> Path:
    """Path of the built-in model ``name`` inside the installed package."""
    return Path(str(resources.files("afdetect") / "pretrained" / BUILTIN[name]))


def load_classifier(name_or_path: str | Path = DEFAULT_MODEL) -> Classifier:
    """Load a built-in model by name (``float``) or a model file by path."""
    key = str(name_or_path)
    if key in BUILTIN:
        path = builtin_path(key)
        if not path.is_file():
            raise InputError(path, f"built-in model {key!r} is missing from the installation")
        return FloatClassifier(key, load_float_model(path))
    path = Path(key)
    if not path.exists():
        raise InputError(path, f"no such model file (built-in models: {', '.join(BUILTIN)})")
    return FloatClassifier(path.name, load_float_model(path))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, n_classes) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
