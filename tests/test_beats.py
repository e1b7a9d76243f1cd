"""Beats and heart rate in ``scan``: the streaming detector, the rate statistics, --beats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, synthetic_ecg
from test_cli import assert_clean_error, run

from afdetect.io.records import open_stream
from afdetect.model.rr import RRConfig, detect_beats
from afdetect.models import load_classifier
from afdetect.monitor.beats import SCAN_DETECTOR, STRIP_DETECTOR, BeatConfig, BeatStream
from afdetect.monitor.frontend import IntegerFrontEnd
from afdetect.monitor.rate import SMOOTH_RR, hourly_trend, pooled_rate, span_rates
from afdetect.monitor.scan import ScanConfig, scan_stream, step_model

MITDB_100 = DATA / "mitdb" / "100"
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


def _front_end_output(record: Path) -> np.ndarray:
    """The compressed model's quantised input of a whole record, as the scan computes it."""
    model = step_model(load_classifier("compressed"))
    stream = open_stream(record)
    front = IntegerFrontEnd(stream.fs, model.fs, model.input_frac, model.input_bits)
    return np.concatenate([front.push(c) for c in stream.chunks(100_000)])


def _push_in_chunks(q: np.ndarray, config: BeatConfig, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    stream = BeatStream(1, 1, config)
    i = 0
    while i < len(q):
        k = int(rng.integers(0, 1500))
        stream.push(q[i:i + k])
        i += k
    stream.finish()
    return stream.beats()


def test_streaming_detector_is_the_strip_detector_in_any_chunking() -> None:
    q = _front_end_output(MITDB_100)[:300 * 300]  # 5 min
    strip = detect_beats(q, RRConfig())
    for seed in range(3):
        got = _push_in_chunks(q, STRIP_DETECTOR, seed)
        assert np.array_equal(got, np.maximum(strip - RRConfig().integrate // 2, 0))
    # short signals and a signal that ends mid-segment
    rng = np.random.default_rng(5)
    for n in (0, 1, 3, 7, 601, 1333):
        x = rng.integers(-300, 300, n)
        assert np.array_equal(_push_in_chunks(x, STRIP_DETECTOR, n),
                              np.maximum(detect_beats(x, RRConfig()) - 15, 0))


def _match(reference: np.ndarray, test: np.ndarray, window: float) -> int:
    """Reference beats with a test beat within ``window`` samples (one each, in order)."""
    matched, j = 0, 0
    for r in reference:
        while j < len(test) and test[j] < r - window:
            j += 1
        if j < len(test) and abs(test[j] - r) <= window:
            matched += 1
            j += 1
    return matched


def test_scan_beats_match_the_reference_beats_of_mitdb_100() -> None:
    model = step_model(load_classifier("compressed"))
    stream = open_stream(MITDB_100)
    scan = scan_stream(model, stream, ScanConfig(chunk_s=41.0))
    again = scan_stream(model, stream, ScanConfig(chunk_s=600.0))
    assert np.array_equal(scan.beats, again.beats)  # chunking never changes a beat
    ann = wfdb.rdann(str(MITDB_100), "atr")
    reference = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True)
                          if sym in BEAT_SYMBOLS])
    tp = _match(reference, scan.beats, 0.15 * stream.fs)  # EC57's 150-ms match window
    assert tp / len(reference) > 0.995 and tp / len(scan.beats) > 0.995
    assert scan.beats.dtype == np.int64 and np.all(np.diff(scan.beats) > 0)
    # latency compensated: the detections sit on the R peaks, not 50 ms after them
    j = np.searchsorted(reference, scan.beats).clip(1, len(reference) - 1)
    after, before = reference[j] - scan.beats, reference[j - 1] - scan.beats
    offset = np.where(np.abs(after) < np.abs(before), after, before)
    assert abs(np.median(offset)) / stream.fs < 0.03


def test_scan_detector_only_lowers_the_threshold() -> None:
    assert SCAN_DETECTOR.rr == STRIP_DETECTOR.rr == RRConfig()
    assert SCAN_DETECTOR.threshold_eighths < STRIP_DETECTOR.threshold_eighths == 4
    with pytest.raises(ValueError):
        BeatConfig(threshold_eighths=0)


def test_span_rates_mean_min_max_and_undefined_spans() -> None:
    fs = 200.0
    beats = np.arange(0, 200 * 600, 160)  # 0.8 s: 75 bpm for 10 minutes
    rates = span_rates(beats, fs, np.array([0, 0, 1000, 5000]), np.array([12000, 100, 1100,
                                                                         5500]))
    assert rates[0] == pytest.approx([75, 75, 75])
    assert np.isnan(rates[1]).all() and np.isnan(rates[2]).all()  # 1 beat, 0 beats
    assert rates[3] == pytest.approx([75, 75, 75])  # 3 intervals: fewer than SMOOTH_RR
    # one missed beat (a 1.6-s interval) lowers the smoothed minimum, not to 37.5 bpm
    gap = np.delete(beats, 20)
    low, mean, high = span_rates(gap, fs, np.array([0]), np.array([12000]))[0]
    assert low == pytest.approx(60 * fs * SMOOTH_RR / (160 * (SMOOTH_RR + 1)))
    assert high == pytest.approx(75) and mean == pytest.approx(60 * fs * 73 / 11840)
    assert span_rates(beats[:1], fs, np.array([0]), np.array([10]))[0] == pytest.approx(
        [np.nan] * 3, nan_ok=True)
    # pooled over two spans at different rates: the mean of all intervals
    fast = np.concatenate([np.arange(0, 12000, 100), np.arange(12000, 24000, 200)])
    pooled = pooled_rate(fast, fs, np.array([0, 12000]), np.array([12000, 24000]))
    assert pooled is not None
    assert pooled["min"] == 60 and pooled["max"] == 120
    assert pooled["mean"] == pytest.approx(60 * fs * 178 / (11900 + 11800), abs=0.05)
    assert pooled_rate(fast, fs, np.array([0]), np.array([50])) is None


def test_hourly_trend_gives_burden_and_rate_per_hour() -> None:
    fs = 100.0
    n = int(2.5 * 3600 * fs)
    beats = np.arange(0, n, 100)  # 60 bpm
    hours = hourly_trend(beats, fs, n, [(1800.0, 5400.0)])
    assert [h["hour"] for h in hours] == [0, 1, 2]
    assert [h["af_burden"] for h in hours] == [0.5, 0.5, 0.0]
    assert hours[2]["end_s"] == 9000.0
    assert all(h["heart_rate_bpm"] == {"min": 60, "mean": 60, "max": 60} for h in hours)


def test_scan_reports_heart_rates_and_writes_beat_annotations(tmp_path: Path) -> None:
    a01 = DATA / "aftdb" / "a01"  # 60 s of AF at 128 Hz, with reference QRS (a01.qrs)
    result = run("scan", f"{a01}.hea", "--json", "--beats", "qrs", "--annotations-dir",
                 tmp_path)
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(result.stdout)["recordings"]
    ann = wfdb.rdann(str(tmp_path / "a01"), "qrs")
    assert set(ann.symbol) == {"N"} and len(ann.sample) == rec["n_beats"] > 40
    assert ann.fs == 128
    reference = wfdb.rdann(str(a01), "qrs").sample
    assert _match(reference, ann.sample, 0.15 * 128) >= 0.95 * len(reference)
    true_rate = 60 * 128 * (len(reference) - 1) / (reference[-1] - reference[0])
    for key in ("heart_rate_bpm", "heart_rate_af_bpm"):
        assert rec[key]["mean"] == pytest.approx(true_rate, rel=0.05)
        assert rec[key]["min"] <= rec[key]["mean"] <= rec[key]["max"]
    assert rec["heart_rate_non_af_bpm"] is None  # AF throughout
    assert rec["episodes"][0]["heart_rate_bpm"] == rec["heart_rate_af_bpm"]
    assert all(w["heart_rate_bpm"]["mean"] > 0 for w in rec["windows"])
    (hour,) = rec["hourly"]
    assert hour["af_burden"] == 1.0 and hour["heart_rate_bpm"] == rec["heart_rate_bpm"]
    assert not list(tmp_path.glob(".afdetect-*"))  # the safe writer leaves nothing behind



def test_beat_annotations_for_any_file_name_and_a_bad_annotator(tmp_path: Path) -> None:
    np.save(tmp_path / "my patch-1.npy", synthetic_ecg(60.0, 250.0, 72.0))
    result = run("scan", tmp_path / "my patch-1.npy", "--fs", "250", "--beats", "qrs",
                 "--annotations-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    ann = wfdb.rdann(str(tmp_path / "out" / "my patch-1"), "qrs")
    assert 68 <= len(ann.sample) <= 73  # 72 beats/min for a minute, the last 1.7 s unseen
    assert_clean_error(run("scan", tmp_path / "my patch-1.npy", "--fs", "250", "--beats",
                           "q-1", "--annotations-dir", tmp_path / "out"),
                       "--beats 'q-1'", "annotator name")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["my patch-1.qrs"]
