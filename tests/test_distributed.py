"""`torchrun --nproc_per_node 2 afdetect train`: DistributedDataParallel on CPU (gloo)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SAMPLES, afdetect_command

TORCHRUN = Path(sys.executable).parent / "torchrun"
pytestmark = pytest.mark.skipif(not TORCHRUN.exists() or (shutil.which("afdetect") is None
                                and len(afdetect_command()) > 1),
                                reason="needs torchrun and the afdetect script")


def _torchrun(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2",
                           afdetect_command()[0], *map(str, args)], capture_output=True,
                          text=True, timeout=240)


def test_two_ranks_train_to_identical_weights_and_resume(tmp_path: Path) -> None:
    args = ["train", "--data", SAMPLES, "--out", tmp_path / "ddp", "--epochs", "3",
            "--threads", "1"]
    result = _torchrun(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(2 ranks)" in result.stdout
    state = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert json.loads(state["metadata"])["distributed"] == {"world_size": 2,
                                                            "ranks_identical": True}
    result = _torchrun(*args, "--resume")  # every rank resumes from rank 0's checkpoint
    assert result.returncode == 0, result.stderr[-2000:]
    again = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert all(torch.equal(state["state_dict"][k], again["state_dict"][k])
               for k in state["state_dict"])
