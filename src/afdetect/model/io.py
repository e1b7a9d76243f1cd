"""Float model files: ``torch.save`` of a state dict plus configuration, loaded safely.

Loading always uses ``weights_only=True``: a file a user hands in is never unpickled.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from afdetect.atomic import atomic_path
from afdetect.data.preprocess import PreprocessConfig
from afdetect.errors import InputError
from afdetect.model.cnn import AFNet, CNNConfig

FLOAT_FORMAT = "afdetect-float"
FLOAT_VERSION = 1


@dataclass
class FloatModel:
    """A float network with the preprocessing it expects and free-form metadata."""

    network: AFNet
    preprocess: PreprocessConfig
    metadata: dict[str, Any]


def save_float_model(path: str | Path, network: AFNet, preprocess: PreprocessConfig,
                     metadata: dict[str, Any] | None = None) -> None:
    """Write ``network`` atomically to ``path``."""
    state = {
        "format": FLOAT_FORMAT,
        "version": FLOAT_VERSION,
        "model_config": json.dumps(network.config.to_dict()),
        "preprocess": json.dumps(preprocess.to_dict()),
        "metadata": json.dumps(metadata or {}),
        "state_dict": network.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_float_model(path: str | Path) -> FloatModel:
    """Read a file written by :func:`save_float_model`; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not an afdetect model ({first[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FLOAT_FORMAT:
        raise InputError(path, "not an afdetect float model")
    if state.get("version") != FLOAT_VERSION:
        raise InputError(path, f"float model format version {state.get('version')} is not "
                               f"supported (this afdetect reads version {FLOAT_VERSION})")
    try:
        config = CNNConfig.from_dict(json.loads(state["model_config"]))
        network = AFNet(config)
        network.load_state_dict(state["state_dict"])
        preprocess = PreprocessConfig(**json.loads(state["preprocess"]))
        metadata = json.loads(state["metadata"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(path, f"corrupt float model ({str(exc).splitlines()[0][:120]})") from None
    network.eval()
    return FloatModel(network, preprocess, metadata)
