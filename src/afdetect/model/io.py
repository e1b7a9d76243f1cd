"""Float model files: ``torch.save`` of a state dict plus configuration, loaded safely.

Loading always uses ``weights_only=True``: a file a user hands in is never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from afdetect.atomic import save_torch_atomic
from afdetect.data.preprocess import PreprocessConfig
from afdetect.errors import InputError
from afdetect.model.cnn import AFNet, CNNConfig

FLOAT_FORMAT = "afdetect-float"
# 2 adds a SHA-256 of the weights and settings; version 1 files (no checksum) still load.
FLOAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# A float model is about 1 MB and torch.save stores its entries uncompressed; anything
# that would inflate past these is refused before torch.load allocates a byte of it.
MAX_UNPACKED_BYTES = 256 * 2**20
MAX_DEFLATE_RATIO = 100


@dataclass
class FloatModel:
    """A float network with the preprocessing it expects and free-form metadata."""

    network: AFNet
    preprocess: PreprocessConfig
    metadata: dict[str, Any]


def content_digest(state_dict: dict[str, torch.Tensor], *texts: str) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes, in name order) and ``texts``:
    what a float model file is checked against when it loads."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    for text in texts:
        digest.update(text.encode())
    return digest.hexdigest()


def save_float_model(path: str | Path, network: AFNet, preprocess: PreprocessConfig,
                     metadata: dict[str, Any] | None = None) -> None:
    """Write ``network`` atomically to ``path``, with a checksum of its content."""
    texts = (json.dumps(network.config.to_dict()), json.dumps(preprocess.to_dict()),
             json.dumps(metadata or {}))
    state_dict = network.state_dict()
    state = {
        "format": FLOAT_FORMAT,
        "version": FLOAT_VERSION,
        "model_config": texts[0],
        "preprocess": texts[1],
        "metadata": texts[2],
        "state_dict": state_dict,
        "sha256": content_digest(state_dict, *texts),
    }
    save_torch_atomic(path, state)


def load_float_model(path: str | Path) -> FloatModel:
    """Read a file written by :func:`save_float_model`; anything else is refused.

    Never unpickles arbitrary objects (``weights_only=True``); a file holding any is
    refused. Version 2 files are checked against their SHA-256; version 1 files, written
    before the checksum existed, load unchecked.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such model file")
    _check_container(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # garbage, not a pickle of objects
            raise InputError(path, "not an afdetect model (not a PyTorch file)") from None
        raise InputError(path, "refused: it holds Python objects that loading could run as "
                               "code; afdetect model files hold only weights and "
                               "settings") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        kind = type(exc).__name__
        raise InputError(path, f"not an afdetect model (unreadable PyTorch container: "
                               f"{kind})") from None
    if not isinstance(state, dict) or state.get("format") != FLOAT_FORMAT:
        raise InputError(path, "not an afdetect float model")
    if state.get("version") not in READABLE_VERSIONS:
        raise InputError(path, f"float model format version {state.get('version')} is not "
                               f"supported (this afdetect reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))})")
    try:
        texts = (state["model_config"], state["preprocess"], state["metadata"])
        if state["version"] >= 2 and content_digest(state["state_dict"], *texts) != state[
                "sha256"]:
            raise InputError(path, "checksum mismatch: the file is corrupted")
        config = CNNConfig.from_dict(json.loads(texts[0]))
        network = AFNet(config)
        network.load_state_dict(state["state_dict"])
        preprocess = PreprocessConfig(**json.loads(texts[1]))
        metadata = json.loads(texts[2])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise InputError(path, f"corrupt float model ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    network.eval()
    return FloatModel(network, preprocess, metadata)


def _check_container(path: Path) -> None:
    """Refuse a zip container (the format of ``torch.save``) whose entries would unpack to
    more than :data:`MAX_UNPACKED_BYTES`, or that is compressed more than
    :data:`MAX_DEFLATE_RATIO` to 1: a zip bomb, read from the central directory alone."""
    if not zipfile.is_zipfile(path):
        return  # not a zip: torch.load reports what it is
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(path, f"not an afdetect model (unreadable PyTorch container: "
                               f"{type(exc).__name__})") from None
    total = sum(e.file_size for e in entries)
    if total > MAX_UNPACKED_BYTES:
        raise InputError(path, f"refused: it would unpack to {total / 2**20:,.0f} MiB "
                               f"(a model file unpacks to at most "
                               f"{MAX_UNPACKED_BYTES // 2**20} MiB)")
    for e in entries:
        if e.file_size > MAX_DEFLATE_RATIO * max(e.compress_size, 1):
            raise InputError(path, f"refused: entry {e.filename} is compressed "
                                   f"{e.file_size / max(e.compress_size, 1):,.0f} to 1 (a "
                                   "zip bomb?); model files are stored uncompressed")
