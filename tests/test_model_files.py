"""Float model files: a checksum refuses corruption, pickles are refused in plain words."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from test_cli import assert_clean_error, run

from afdetect.errors import InputError
from afdetect.model.io import load_float_model
from afdetect.models import builtin_path


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    shutil.copy(builtin_path("float"), path)
    return path


def test_a_byte_flipped_in_the_middle_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"checksum mismatch|unreadable PyTorch container"):
        load_float_model(path)
    assert_clean_error(run("predict", "--model", path, "samples/cinc2017/A00001.hea"),
                       str(path))


def test_every_flipped_tensor_byte_is_caught(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    state = torch.load(path, weights_only=True)
    weight = state["state_dict"]["classifier.weight"]
    weight.view(-1)[3] = weight.view(-1)[3] + 1e-3  # a change the container would accept
    torch.save(state, path)
    with pytest.raises(InputError, match="checksum mismatch: the file is corrupted"):
        load_float_model(path)


def test_truncated_and_wrong_version_files_are_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match="unreadable PyTorch container"):
        load_float_model(path)
    path = _copy(tmp_path)
    state = torch.load(path, weights_only=True)
    state["version"] = 99
    torch.save(state, path)
    with pytest.raises(InputError, match="version 99 is not supported"):
        load_float_model(path)


def test_a_pickle_payload_gets_one_plain_sentence(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"payload": pickle.dumps}, path)  # an object loading would import
    result = run("predict", "--model", path, "samples/cinc2017/A00001.hea")
    assert_clean_error(result, f"{path}: refused: it holds Python objects that loading could "
                               "run as code; afdetect model files hold only weights and "
                               "settings")
    assert "Weights only" not in result.stderr and "PyTorch 2.6" not in result.stderr


def test_version_1_files_without_a_checksum_still_load(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    state = torch.load(path, weights_only=True)
    state["version"] = 1
    del state["sha256"]
    torch.save(state, path)
    assert load_float_model(path).network is not None
