from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SAMPLES

from afdetect.errors import InputError
from afdetect.io.records import read_record


@pytest.mark.parametrize("suffix", ["", ".hea", ".mat"])
def test_cinc_wfdb_record_any_suffix(suffix: str) -> None:
    rec = read_record(SAMPLES / f"A00001{suffix}")
    assert rec.fs == 300 and rec.name == "A00001" and rec.signal.shape == (9000,)
    # header: gain 1000 adu/mV, so the first sample -127 adu reads -0.127 mV
    assert rec.signal[0] == pytest.approx(-0.127)


def test_multilead_record_by_index_and_name() -> None:
    first = read_record(DATA / "aftdb" / "a01")
    second = read_record(DATA / "aftdb" / "a01", lead=1)
    assert first.fs == 128 and len(first.signal) == 7680
    assert not np.allclose(first.signal, second.signal)
    mlii = read_record(DATA / "mitdb" / "100.hea", lead="MLII")
    v5 = read_record(DATA / "mitdb" / "100.hea", lead="V5")
    assert (mlii.lead, v5.lead, mlii.fs) == ("MLII", "V5", 360)
    assert np.array_equal(read_record(DATA / "mitdb" / "100").signal, mlii.signal)


def test_bad_lead_names_the_file() -> None:
    with pytest.raises(InputError, match=r"100\.hea: no lead named 'V1' \(leads: MLII, V5\)"):
        read_record(DATA / "mitdb" / "100.hea", lead="V1")
    with pytest.raises(InputError, match="lead index 2 out of range"):
        read_record(DATA / "aftdb" / "a01", lead=2)


def test_csv_and_npy(tmp_path: Path) -> None:
    x = np.sin(np.arange(1000) / 10.0)
    (tmp_path / "plain.csv").write_text("\n".join(f"{v:.6f}" for v in x))
    (tmp_path / "header.csv").write_text("time,ecg\r\n" + "\r\n".join(
        f"{i / 250:.4f},{v:.6f}" for i, v in enumerate(x)))
    np.save(tmp_path / "x.npy", x)
    assert np.allclose(read_record(tmp_path / "plain.csv", fs=250).signal, x, atol=1e-6)
    named = read_record(tmp_path / "header.csv", fs=250, lead="ecg")
    assert named.lead == "ecg" and np.allclose(named.signal, x, atol=1e-6)
    assert np.array_equal(read_record(tmp_path / "x.npy", fs=250).signal, x)


@pytest.mark.parametrize(("content", "problem"), [
    ("", "empty CSV"),
    ("ecg\n", "header but no samples"),
    ("0.1\nabc\n0.2\n", "non-numeric"),
])
def test_bad_csv(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        read_record(path, fs=300)


def test_csv_and_npy_need_fs(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros(10))
    with pytest.raises(InputError, match="pass --fs"):
        read_record(tmp_path / "x.npy")


def test_object_npy_is_refused_without_unpickling(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: not a readable \.npy"):
        read_record(tmp_path / "obj.npy", fs=300)


def test_missing_truncated_and_garbage_records(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.hea: no such WFDB header"):
        read_record(tmp_path / "nothere.hea")
    shutil.copy(SAMPLES / "A00001.hea", tmp_path / "A00001.hea")
    (tmp_path / "A00001.mat").write_bytes((SAMPLES / "A00001.mat").read_bytes()[:5000])
    with pytest.raises(InputError, match="A00001"):
        read_record(tmp_path / "A00001.hea")
    (tmp_path / "junk.hea").write_text("this is not a header\n")
    with pytest.raises(InputError, match=r"junk\.hea: record line: number of signals 'is'"):
        read_record(tmp_path / "junk.hea")
    with pytest.raises(InputError, match="unsupported file type"):
        read_record(tmp_path / "notes.txt")
