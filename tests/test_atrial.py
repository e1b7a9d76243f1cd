"""The atrial check: the same wave before every QRS means the window is not AF."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, synthetic_ecg
from test_cli import run

from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.atrial import (
    THRESHOLD_BITS,
    AtrialConfig,
    beat_stretches,
    coherence,
    organised,
    window_terms,
)
from afdetect.monitor.beats import BeatStream
from afdetect.monitor.episodes import EpisodeRule, checked_probabilities
from afdetect.monitor.frontend import IntegerFrontEnd, resample_ratio
from afdetect.monitor.scan import ScanConfig, scan_stream, step_model

RECORD_100 = DATA / "mitdb" / "100.hea"  # sinus rhythm, P waves throughout
A01 = DATA / "aftdb" / "a01.hea"         # atrial fibrillation


@pytest.fixture(scope="module")
def compressed():
    return step_model(load_classifier("compressed"))


def test_identical_stretches_are_coherent_and_unrelated_ones_are_not() -> None:
    config = AtrialConfig()
    rng = np.random.default_rng(0)
    wave = np.round(40 * np.sin(np.linspace(0, np.pi, config.start - config.end))).astype(int)
    q = np.zeros(20 * config.fs, dtype=np.int64)
    peaks = np.arange(config.start + 10, len(q), 250)
    for p in peaks:  # a P wave at a fixed time before every peak
        q[p - config.start:p - config.end] = wave
    assert coherence(window_terms(beat_stretches(q, peaks, config))) == pytest.approx(1.0)
    noise = rng.integers(-60, 61, len(q))  # chaotic atrial activity
    c = float(coherence(window_terms(beat_stretches(noise, peaks, config))))
    assert c < 3 / len(peaks)


def test_the_integer_check_is_the_ratio_against_the_limit() -> None:
    rng = np.random.default_rng(1)
    terms = np.stack([rng.integers(0, 2**40, 500), rng.integers(1, 2**40, 500)], axis=1)
    terms[:, 0] = np.minimum(terms[:, 0], terms[:, 1])
    limit = 144 / 2**THRESHOLD_BITS
    assert np.array_equal(organised(terms, limit),
                          terms[:, 0] * 2**THRESHOLD_BITS > 144 * terms[:, 1])
    assert not organised(np.zeros((1, 2), dtype=np.int64), limit)[0]  # too few beats
    probs = np.array([[0.1, 0.8, 0.05, 0.05], [0.1, 0.8, 0.05, 0.05]])
    checked = checked_probabilities(probs, np.array([[9, 10], [1, 10]]), EpisodeRule())
    assert checked[0, 1] == 0 and checked[0].sum() == pytest.approx(1.0)
    assert np.array_equal(checked[1], probs[1])
    off = EpisodeRule(max_atrial_coherence=None)
    assert np.array_equal(checked_probabilities(probs, np.array([[9, 10], [9, 10]]), off),
                          probs)


def test_config_is_validated() -> None:
    for bad in ({"start_ms": 50, "end_ms": 80}, {"bin_ms": 70}, {"min_beats": 1}):
        with pytest.raises(ValueError):
            AtrialConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EpisodeRule(max_atrial_coherence=1.0)


def _direct_terms(model, path, starts: np.ndarray, window_steps: int) -> np.ndarray:
    """The terms from the whole quantised input at once, beat by beat."""
    stream = open_stream(path)
    front = IntegerFrontEnd(stream.fs, model.fs, model.input_frac, model.input_bits)
    beats = BeatStream(*resample_ratio(stream.fs, model.fs))
    q = np.concatenate([front.push(c) for c in stream.chunks(stream.n_samples)])
    peaks = np.concatenate([beats.push_model(q), beats.finish_model()])
    config = AtrialConfig(fs=model.fs)
    peaks = peaks[peaks >= config.start]
    steps = peaks // model.downsampling
    out = np.zeros((len(starts), 2), dtype=np.int64)
    for i, s in enumerate(starts):
        inside = peaks[(steps >= s) & (steps < s + window_steps)]
        if len(inside) >= config.min_beats:
            out[i] = window_terms(beat_stretches(q, inside, config))
    return out


def test_streamed_terms_equal_the_direct_computation_in_any_chunking(compressed) -> None:
    scans = [scan_stream(compressed, open_stream(RECORD_100), ScanConfig(chunk_s=c))
             for c in (150.0, 7.3, 1000.0)]
    for scan in scans[1:]:
        assert np.array_equal(scan.atrial_terms, scans[0].atrial_terms)
    scan = scans[0]
    assert np.array_equal(scan.atrial_terms, _direct_terms(
        compressed, RECORD_100, scan.window_starts, scan.window_steps))
    # another hop (the tail window lies off the hop grid) is streamed as well
    other = scan_stream(compressed, open_stream(RECORD_100), ScanConfig(hop_s=3.0))
    assert np.array_equal(other.atrial_terms, _direct_terms(
        compressed, RECORD_100, other.window_starts, other.window_steps))


def test_sinus_rhythm_is_organised_and_af_is_not(compressed) -> None:
    sinus = scan_stream(compressed, open_stream(RECORD_100))
    limit = EpisodeRule().max_atrial_coherence
    assert np.mean(sinus.atrial_coherence > limit) > 0.9
    windows = list(sinus.window_dicts())
    assert [w["atrial_organised"] for w in windows] == list(sinus.atrial_coherence > limit)
    af = scan_stream(compressed, open_stream(A01))
    assert np.all(af.atrial_coherence < limit)
    assert af.af_burden == 1.0


def test_scan_json_gives_each_windows_coherence_and_the_checked_label() -> None:
    result = run("scan", A01, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rule"]["max_atrial_coherence"] == EpisodeRule().max_atrial_coherence
    windows = out["recordings"][0]["windows"]
    assert all(0 <= w["atrial_coherence"] < 0.5 for w in windows)
    assert not any(w["atrial_organised"] for w in windows)
    assert {w["label"] for w in windows} == {"A"}


@pytest.mark.parametrize("hop_s", [3.4, 6.8, 10.24])
def test_hops_of_a_few_steps_stream_in_any_recording_length(compressed, hop_s: float) -> None:
    # the last chunk's final beats run past the steps the network has emitted; windows
    # past those must wait, whatever the length (the tail window then lies off the grid)
    from afdetect.io.signal import stream_from_array

    rng = np.random.default_rng(3)
    for k in range(0, 14, 3):
        seconds = 400 + k * 512 / 300
        x = synthetic_ecg(seconds, 300.0, 70.0, seed=k) + 0.02 * rng.standard_normal(
            int(seconds * 300))
        stream = stream_from_array(x, 300.0)
        scan = scan_stream(compressed, stream, ScanConfig(hop_s=hop_s))
        assert len(scan.atrial_terms) == len(scan.window_starts)


def test_a_review_of_a_scan_made_with_the_check_off_names_the_difference() -> None:
    from afdetect.review.recordings import _settings_problem

    document = {"rule": {**EpisodeRule(max_atrial_coherence=None).to_dict()},
                "window_s": 30.72, "hop_s": 10.24}
    problem = _settings_problem(document, ScanConfig())
    assert problem == "max_atrial_coherence off not 0.5625"
