"""Faults: SIGKILL in the middle of training or compression, then a resume, ends with the
weights an uninterrupted run reaches; a failed write leaves nothing half-written; two
runs into one output folder cannot interleave."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLES, afdetect_command
from test_cli import assert_clean_error, run

from afdetect.atomic import OutputError
from afdetect.models import builtin_path
from afdetect.runtime.format import load_compressed

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")


def _kill_when(command: list[str], ready: Callable[[], bool], delay_s: float) -> None:
    """Start ``command``, SIGKILL it ``delay_s`` after ``ready()`` turns true."""
    proc = subprocess.Popen([*afdetect_command(), *command], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_sigkill_during_train_then_resume_reaches_the_same_weights(tmp_path: Path) -> None:
    args = ["train", "--data", str(SAMPLES), "--epochs", "30", "--threads", "1"]
    assert run(*args, "--out", tmp_path / "whole").returncode == 0
    cut = tmp_path / "cut"
    _kill_when([*args, "--out", str(cut)], (cut / "checkpoint.pt").exists, 0.2)
    assert not (cut / "model.pt").exists()
    result = run(*args, "--out", cut, "--resume")
    assert result.returncode == 0, result.stderr
    whole, resumed = _weights(tmp_path / "whole" / "model.pt"), _weights(cut / "model.pt")
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_sigkill_during_compress_then_rerun_reaches_the_same_model(tmp_path: Path) -> None:
    assert run("train", "--data", SAMPLES, "--out", tmp_path / "float", "--epochs",
               "1").returncode == 0
    args = ["compress", "--model", str(tmp_path / "float" / "model.pt"), "--data",
            str(SAMPLES), "--sparsity", "0.8", "--bits", "4", "--prune-epochs", "4",
            "--qat-epochs", "2", "--threads", "1"]
    assert run(*args, "--out", tmp_path / "whole.afq").returncode == 0
    work = tmp_path / "cut.afq.work"

    def pruning_checkpointed() -> bool:
        return any(work.glob("prune-*/checkpoint.pt"))

    _kill_when([*args, "--out", str(tmp_path / "cut.afq")], pruning_checkpointed, 0.3)
    assert not (tmp_path / "cut.afq").exists()
    result = run(*args, "--out", tmp_path / "cut.afq")
    assert result.returncode == 0, result.stderr
    (whole, _), (resumed, _) = (load_compressed(tmp_path / "whole.afq"),
                                load_compressed(tmp_path / "cut.afq"))
    for a, b in zip(whole.layers, resumed.layers, strict=True):
        for field in ("mask", "sign", "shift", "bias"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_a_write_into_a_read_only_folder_fails_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert_clean_error(run("export", "--model", "float", "--format", "onnx", "--out",
                               out / "m.onnx"), str(out))
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o700)


def test_a_write_that_cannot_happen_fails_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    result = run("export", "--model", "float", "--format", "onnx", "--out",
                 blocker / "m.onnx")
    assert_clean_error(result, "m.onnx", "file.txt is a file, not a folder")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from afdetect.runtime.format import save_compressed

    model, metadata = load_compressed(builtin_path("compressed"))
    dest = tmp_path / "m.afq"
    save_compressed(dest, model, metadata)
    before = dest.read_bytes()

    def disk_full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("afdetect.atomic.fsync_path", disk_full)
    with pytest.raises(OutputError, match=r"m\.afq: could not be written \(no space left"):
        save_compressed(dest, model, metadata)
    monkeypatch.undo()
    assert dest.read_bytes() == before  # the old file survives, whole
    assert [p.name for p in tmp_path.iterdir()] == ["m.afq"]  # no temporary left behind


def test_json_is_written_whole_with_numpy_numbers_as_numbers(tmp_path: Path) -> None:
    import json

    from afdetect.atomic import write_json_atomic

    dest = tmp_path / "new" / "figures.json"  # the folder is made
    write_json_atomic(dest, {"score": np.float32(0.5), "count": np.int64(3), "rows": [1, 2]})
    text = dest.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"score": 0.5, "count": 3, "rows": [1, 2]}
    assert '"count": 3,' in text
    assert [p.name for p in dest.parent.iterdir()] == ["figures.json"]


def test_a_second_run_into_the_same_out_is_refused(tmp_path: Path) -> None:
    args = ["train", "--data", str(SAMPLES), "--epochs", "150", "--threads", "1", "--out",
            str(tmp_path / "run")]  # long enough (about 15 s) for the second to start
    first = subprocess.Popen([*afdetect_command(), *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / ".lock").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    second = run(*args)
    assert_clean_error(second, str(tmp_path / "run"), "in use by another afdetect run")
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert (tmp_path / "run" / "model.pt").exists()
    assert not (tmp_path / "run" / ".lock").exists()
