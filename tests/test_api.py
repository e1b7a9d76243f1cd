"""The Python API: afdetect.load / predict / predict_batch / scan, and the documented
examples (README and the manual's Python page)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import wfdb
from conftest import DATA, ROOT, SAMPLES

import afdetect
from afdetect.models import load_classifier
from afdetect.predict import classify_files


@pytest.mark.parametrize("page", ["README.md", "docs/guide/python.md"])
def test_documented_python_example_runs(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)
    assert blocks, f"{page} has no Python example"
    code = "\n".join(blocks)  # a page's blocks build on each other
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("A ") and lines[1].startswith("AF burden 0.0%")


def test_predict_matches_the_command_line_path() -> None:
    model = afdetect.load("float")
    record = wfdb.rdrecord(str(SAMPLES / "A00009"))
    ours = model.predict(record.p_signal[:, 0], fs=record.fs)
    (cli,), _ = classify_files(load_classifier("float"),
                               [SAMPLES / "A00009.hea"])
    assert ours.label == cli.label
    assert ours.probabilities == pytest.approx(cli.probabilities, abs=1e-6)
    assert list(ours.probabilities) == list(afdetect.CLASSES)


def test_predict_batch_takes_one_rate_or_one_each_and_resamples() -> None:
    model = afdetect.load()
    record = wfdb.rdrecord(str(SAMPLES / "A00004"))
    x = record.p_signal[:, 0]
    x250 = np.interp(np.arange(0, len(x) / 300, 1 / 250), np.arange(len(x)) / 300, x)
    same, other = model.predict_batch([x, x250], fs=[300, 250])
    assert same.label == other.label == "A"
    assert model.predict_batch([x, x], fs=300)[1].probabilities == same.probabilities
    with pytest.raises(ValueError, match="one per signal"):
        model.predict_batch([x, x], fs=[300])


def test_scan_of_an_array_equals_the_scan_of_its_file() -> None:
    x = wfdb.rdrecord(str(DATA / "mitdb" / "100"), channels=[0]).p_signal[:, 0]
    from_array = afdetect.load().scan(x, fs=360)
    from_file = afdetect.scan(DATA / "mitdb" / "100.hea")
    # float samples and ADC counts quantise a little differently: the windows agree, and
    # neither finds AF; the N/O split of sinus rhythm may move by a window
    same = (from_array.probabilities.argmax(1) == from_file.probabilities.argmax(1)).mean()
    assert same > 0.97
    assert from_array.af_episodes() == from_file.af_episodes() == []
    assert from_array.af_burden == from_file.af_burden == 0.0
    assert from_array.to_dict()["windows"][0]["start_s"] == 0.0


@pytest.mark.parametrize(("signal", "fs", "message"), [
    (np.zeros((2, 3000)), 300, "1-D"),
    (np.full(3000, np.nan), 300, "NaN"),
    (np.zeros(3000), 300, "flat line"),
    (np.random.default_rng(0).standard_normal(300), 300, "too short"),
    (np.random.default_rng(0).standard_normal(3000), 50, "below the 100 Hz"),
])
def test_bad_signals_raise_input_error(signal: np.ndarray, fs: float, message: str) -> None:
    with pytest.raises(afdetect.InputError, match=message):
        afdetect.load().predict(signal, fs=fs)


def test_load_refuses_what_is_not_a_model(tmp_path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not a model")
    with pytest.raises(afdetect.InputError, match=r"x\.pt"):
        afdetect.load(tmp_path / "x.pt")
    with pytest.raises(afdetect.InputError, match="sampling rate"):
        afdetect.load().scan(np.zeros(100))
