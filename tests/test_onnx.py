"""ONNX export of the float model: onnxruntime matches `afdetect predict --model float`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SAMPLES
from test_cli import assert_clean_error, run

from afdetect.io.records import read_record

ort = pytest.importorskip("onnxruntime")


def test_onnx_float_model_matches_predict_on_real_records(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    result = run("export", "--model", "float", "--format", "onnx", "--out", onnx_path)
    assert result.returncode == 0, result.stderr
    session = ort.InferenceSession(str(onnx_path))
    assert [i.name for i in session.get_inputs()] == ["ecg_mv"]
    records = sorted(SAMPLES.glob("*.hea"))  # 300 Hz, 9 to 30 s
    predicted = json.loads(run("predict", "--model", "float", *records, "--json").stdout)
    assert len(predicted["predictions"]) == len(records) == 12
    for path, expected in zip(records, predicted["predictions"], strict=True):
        signal = read_record(path).signal.astype(np.float32)[None, :]
        (probabilities,) = session.run(None, {"ecg_mv": signal})
        assert probabilities.shape == (1, 4)
        assert np.allclose(probabilities[0], list(expected["probabilities"].values()),
                           atol=1e-4), path


def test_onnx_export_refuses_a_compressed_model(tmp_path: Path) -> None:
    assert_clean_error(run("export", "--format", "onnx", "--model", "compressed", "--out",
                           tmp_path / "m.onnx"), "ONNX export takes a float model")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_graph_takes_any_length(tmp_path: Path) -> None:
    run("export", "--model", "float", "--format", "onnx", "--out", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = read_record(DATA / "mitdb" / "100.hea").signal[:300 * 90].astype(np.float32)
    for n in (1500, 9000, 27000):  # 5 s, 30 s, 90 s (MIT-BIH 100 is 360 Hz: shape only)
        (p,) = session.run(None, {"ecg_mv": x[None, :n]})
        assert p.shape == (1, 4) and abs(float(p.sum()) - 1) < 1e-5
