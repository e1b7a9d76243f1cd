"""The ``afdetect`` command as a user types it (subprocess), with the built-in models."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SAMPLES, afdetect_command, synthetic_ecg

from afdetect import CLASSES


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*afdetect_command(), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_predict_one_record_json() -> None:
    result = run("predict", SAMPLES / "A00001.hea", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (pred,) = out["predictions"]
    assert pred["record"] == "A00001" and pred["label"] in CLASSES
    assert sum(pred["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert list(pred["probabilities"]) == list(CLASSES)


def test_predict_folder_table_csv_and_plot(tmp_path: Path) -> None:
    result = run("predict", SAMPLES, "--csv", tmp_path / "out.csv", "--plot", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["record", "label"] and len(lines) == 13
    with open(tmp_path / "out.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["record"] for r in rows][:2] == ["A00001", "A00002"] and len(rows) == 12
    assert len(list(tmp_path.glob("t_*.png"))) == 12


def test_predict_other_formats(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "ecg.csv", synthetic_ecg(20.0, fs=250.0))
    np.save(tmp_path / "ecg.npy", synthetic_ecg(20.0, fs=500.0))
    result = run("predict", tmp_path / "ecg.csv", "--fs", "250", "--json")
    assert result.returncode == 0, result.stderr
    result = run("predict", tmp_path / "ecg.npy", "--fs", "500", "--plot", tmp_path / "p.png")
    assert result.returncode == 0 and (tmp_path / "p.png").stat().st_size > 1000
    result = run("predict", DATA / "aftdb" / "a01.hea", "--lead", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"][0]["fs"] == 128
    # 30 min is over predict's 10: refused, pointing to scan (tests/test_memory.py)
    assert_clean_error(run("predict", DATA / "mitdb" / "100.hea", "--lead", "V5"),
                       "100.hea: too long for predict", "afdetect scan")


def test_af_record_from_another_database_is_called_af() -> None:
    result = run("predict", DATA / "aftdb" / "a01", "--json")
    assert json.loads(result.stdout)["predictions"][0]["label"] == "A"


def test_evaluate_json_table_and_plot(tmp_path: Path) -> None:
    result = run("evaluate", "--data", SAMPLES, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("cinc_score", "f1", "accuracy", "af_accuracy", "af_sensitivity",
                "af_specificity", "confusion", "n_records"):
        assert key in summary
    assert summary["n_records"] == 12 and np.array(summary["confusion"]).sum() == 12
    assert set(summary["f1"]) == set(CLASSES)
    result = run("evaluate", "--data", SAMPLES, "--model", "float", "--plot", tmp_path / "c.png")
    assert result.returncode == 0 and "CinC score" in result.stdout
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_batch_keeps_going_past_bad_files(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "A00004.hea", tmp_path)
    shutil.copy(SAMPLES / "A00004.mat", tmp_path)
    shutil.copy(SAMPLES / "A00013.hea", tmp_path)  # header without its signal file
    (tmp_path / "A00013.mat").write_bytes((SAMPLES / "A00013.mat").read_bytes()[:300])
    (tmp_path / "nan.npy").write_bytes(b"")
    np.savetxt(tmp_path / "flat.csv", np.zeros(3000))
    (tmp_path / "words.csv").write_text("ecg\nhello\n")
    result = run("predict", tmp_path, "--fs", "300")
    assert result.returncode == 1
    assert "A00004" in result.stdout  # the good record is still classified
    assert_clean_error(result, "A00013", "flat.csv: flat line", "words.csv: CSV holds non-numeric",
                       "nan.npy: not a readable .npy", "1 classified, 4 failed")


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda d: d / "missing.hea", "missing.hea: no such WFDB header"),
    (lambda d: _write(d / "nan.csv", "0.1\nnan\n" * 2000), "nan.csv: 2000 NaN"),
    (lambda d: _write(d / "short.csv", "\n".join(["0.1", "0.5"] * 300)), "too short: 2.0 s"),
    (lambda d: _write(d / "empty.csv", ""), "empty.csv: empty CSV"),
])
def test_bad_single_inputs(tmp_path: Path, make, fragment: str) -> None:
    assert_clean_error(run("predict", make(tmp_path), "--fs", "300"), fragment)


def test_model_path_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_text("definitely not a model")
    assert_clean_error(run("predict", SAMPLES / "A00001.hea", "--model", tmp_path / "model.pt"),
                       "model.pt: not an afdetect model")
    assert_clean_error(run("evaluate", "--data", SAMPLES, "--model", "nosuchmodel"),
                       "nosuchmodel: no such model file")
    assert_clean_error(run("evaluate", "--data", tmp_path), "no REFERENCE")


def test_train_then_predict_with_the_trained_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("train", "--data", SAMPLES, "--out", out, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    result = run("predict", SAMPLES / "A00001.hea", "--model", out / "model.pt", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "model.pt"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
