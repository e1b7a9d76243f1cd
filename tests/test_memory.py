"""Memory bounded by design: predict refuses long recordings before reading them, and the
scan's stream reader reads bounded chunks (``benchmarks/scan_memory.py`` measures the
whole scan from 1 h to 14 days)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, SAMPLES, synthetic_ecg
from test_cli import assert_clean_error, run

import afdetect
from afdetect.errors import InputError
from afdetect.io import records
from afdetect.io.records import open_stream, recording_seconds
from afdetect.predict import MAX_PREDICT_S

FS = 300
LONG = int(MAX_PREDICT_S * FS) + FS  # one second over the limit


def _ecg(n: int) -> np.ndarray:
    """``n`` samples at FS of a synthetic ECG in mV (a 10-s strip repeated)."""
    return np.tile(synthetic_ecg(10.0, fs=FS), n // (10 * FS) + 1)[:n]


def _long_inputs(folder: Path) -> list[Path]:
    """Four recordings over predict's limit, none of which may be read whole."""
    # a header claiming 24 h whose signal file holds 4 samples: reading it would fail
    (folder / "holter.hea").write_text(f"holter 1 {FS} {24 * 3600 * FS}\n"
                                       "holter.dat 16 200 16 0 0 0 0 ECG\n")
    (folder / "holter.dat").write_bytes(bytes(8))
    # a header without a length: the signal file's size gives it
    (folder / "nolength.hea").write_text(f"nolength 1 {FS}\n"
                                         "nolength.dat 16 200 16 0 0 0 0 ECG\n")
    (folder / "nolength.dat").write_bytes(
        (_ecg(LONG) * 200).astype("<i2").tobytes())
    np.lib.format.open_memmap(folder / "long.npy", mode="w+", dtype=np.float32,
                              shape=(LONG,)).flush()
    np.savetxt(folder / "long.csv", _ecg(LONG), fmt="%.3f",
               header="ecg", comments="")
    return [folder / "holter.hea", folder / "nolength.hea", folder / "long.npy",
            folder / "long.csv"]


def test_recording_seconds_without_reading_samples(tmp_path: Path) -> None:
    holter, nolength, npy, csv_file = _long_inputs(tmp_path)
    assert recording_seconds(holter) == 24 * 3600
    assert recording_seconds(nolength) == pytest.approx(LONG / FS)
    assert recording_seconds(npy, fs=FS) == recording_seconds(csv_file, fs=FS) == LONG / FS
    assert recording_seconds(npy) is None and recording_seconds(csv_file) is None  # no --fs
    assert recording_seconds(DATA / "mitdb" / "100.hea", lead="V5") == 650000 / 360
    with pytest.raises(InputError, match="no lead named 'V1'"):
        recording_seconds(DATA / "mitdb" / "100", lead="V1")


def test_predict_refuses_long_recordings_before_reading_them(tmp_path: Path) -> None:
    long = _long_inputs(tmp_path)
    result = run("predict", *long, SAMPLES / "A00001.hea", "--fs", str(FS))
    assert "A00001" in result.stdout  # the batch goes on
    assert_clean_error(result, "1 classified, 4 failed",
                       *(f"{p}: too long for predict" for p in long),
                       "holter.hea: too long for predict: 1440.0 min, over its 10 min")
    assert "afdetect scan" in result.stderr and "truncated" not in result.stderr
    # the same refusal for a signal already in memory
    with pytest.raises(InputError, match="signal 0: too long for predict"):
        afdetect.load().predict(_ecg(LONG), fs=FS)


@pytest.mark.parametrize("kind", ["wfdb", "npy"])
def test_stream_reads_bounded_chunks(tmp_path: Path, kind: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    n, chunk = 2_000_000, 30 * FS  # 1.9 h of samples; 30-s chunks
    signal = np.round(_ecg(n) * 200)
    if kind == "wfdb":
        wfdb.wrsamp("long", fs=FS, units=["mV"], sig_name=["ECG"],
                    d_signal=signal[:, None].astype(np.int64), fmt=["212"], adc_gain=[200.0],
                    baseline=[0], write_dir=str(tmp_path))
        path = tmp_path / "long.hea"
    else:
        path = tmp_path / "long.npy"
        np.save(path, signal / 200)  # 16 MB of float64
    spans = []
    rdrecord = wfdb.rdrecord

    def spying(*args, **kwargs):
        spans.append(kwargs["sampto"] - kwargs["sampfrom"])
        return rdrecord(*args, **kwargs)

    monkeypatch.setattr(records.wfdb, "rdrecord", spying)
    stream = open_stream(path, fs=FS)
    tracemalloc.start()
    total, checksum = 0, 0
    for counts in stream.chunks(chunk):
        total += len(counts)
        checksum += int(counts.sum())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == n and checksum == round(signal.sum() * stream.counts_per_mv / 200)
    assert peak < 20 * chunk * 8  # a few chunks' worth, never the 16-MB recording
    if kind == "wfdb":
        assert spans and max(spans) <= chunk
