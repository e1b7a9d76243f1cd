"""Monitoring long recordings: the streaming front end and conv blocks, episodes, EC57."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SAMPLES, synthetic_ecg
from test_compress import _quantised

from afdetect.compress.integer import requantise, to_integer
from afdetect.data.store import load_dataset
from afdetect.monitor.ec57 import compare_episodes, summarise_records
from afdetect.monitor.episodes import EpisodeRule, episodes_of, step_labels, step_probabilities
from afdetect.monitor.frontend import IntegerFrontEnd, round_log2_std
from afdetect.monitor.stack import integer_stack


@pytest.fixture(scope="module")
def small_model():
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    return to_integer(_quantised(samples, granularity="kernel"))


def _counts(seconds: float, fs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wander = 0.3 * np.sin(2 * np.pi * 0.2 * np.arange(int(seconds * fs)) / fs)
    return np.round((synthetic_ecg(seconds, fs, 75.0, seed) + wander) * 200
                    + rng.integers(-3, 4, int(seconds * fs))).astype(np.int64)


def _push_in_chunks(front: IntegerFrontEnd, x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=25, replace=False))
    return np.concatenate([front.push(part) for part in np.split(x, cuts)])


@pytest.mark.parametrize("fs", [128, 250, 300, 360, 500])
def test_front_end_output_does_not_depend_on_chunking(fs: int) -> None:
    x = _counts(40.0, fs)
    whole = IntegerFrontEnd(fs, 300, 7, 12).push(x)
    chunked = _push_in_chunks(IntegerFrontEnd(fs, 300, 7, 12), x, seed=fs)
    assert np.array_equal(whole, chunked)
    # every complete block of 512 samples is out; 768 samples of latency at most
    n_model = int(40.0 * 300)
    assert n_model - 768 - 512 <= len(whole) <= n_model and len(whole) % 512 == 0
    assert np.abs(whole).max() <= 2048


def test_front_end_normalises_like_the_strip_definition() -> None:
    # After the baseline is removed the scale is the power of two nearest the std, so
    # the 12-bit input with 7 fraction bits has a standard deviation in [0.7, 1.4] * 2^7.
    q = IntegerFrontEnd(360, 300, 7, 12).push(_counts(60.0, 360) * 7)
    assert 0.7 * 128 <= q[2048:].std() <= 1.42 * 128


def test_round_log2_std_is_exact() -> None:
    rng = np.random.default_rng(1)
    for scale in (0.3, 1.0, 5.0, 300.0, 20000.0):
        v = np.round(rng.standard_normal(4096) * scale).astype(np.int64)
        n, s, sq = len(v), int(v.sum()), int(np.dot(v, v))
        var = (n * sq - s * s) / (n * n)
        if var > 0:
            assert round_log2_std(n, s, sq) == np.floor((np.floor(np.log2(var)) + 1) / 2)
    assert round_log2_std(8, 8, 8) == 0  # zero variance
    # exactly at a rounding boundary: var = 2 (std = sqrt(2), log2 = 0.5 rounds up)
    assert round_log2_std(2, 0, 4) == 1


def test_streaming_blocks_equal_a_direct_left_padded_computation(small_model) -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-2048, 2048, 5000)
    stack = integer_stack(small_model)
    streamed = torch.cat([stack.push(part) for part in np.array_split(q, 17)], dim=1)
    a = torch.from_numpy(q.astype(np.float64))[None, None, :]
    from afdetect.compress.integer import dense_weights
    for layer in small_model.convs:
        acc = F.conv1d(F.pad(a, (layer.padding, 0)), torch.from_numpy(dense_weights(layer)),
                       torch.from_numpy(layer.bias.astype(np.float64)), stride=layer.stride)
        a = F.max_pool1d(requantise(acc, layer, small_model.act_bits), 2)
    assert streamed.shape == a[0].shape
    assert torch.equal(streamed.double(), a[0])


def test_step_probabilities_average_the_covering_windows() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    steps = step_probabilities(np.array([0, 2, 4]), 4, probs)
    # steps 0-1: window 0 only; 2-3: windows 0 and 1; 4-5: windows 1 and 2; 6-7: window 2
    expected = [[1, 0], [1, 0], [.5, .5], [.5, .5], [.25, .75], [.25, .75], [.5, .5], [.5, .5]]
    assert np.allclose(steps, expected)


def test_episode_rule_fills_short_gaps_then_drops_short_af() -> None:
    # P(AF) per 1-s step; AF from 0.5; a 2-s gap is filled (min_gap 3 s), a 2-s AF run
    # is dropped (min_af 3 s); the other steps take the likelier of N and O.
    p_af = [.9, .9, .9, .1, .1, .9, .9, .2, .2, .2, .2, .8, .8, .1, .1]
    p = np.zeros((len(p_af), 4))
    p[:, 1] = p_af
    p[:, 0] = np.where(np.arange(len(p_af)) < 13, 1 - p[:, 1], 0.0)
    p[:, 2] = 1 - p[:, 1] - p[:, 0]
    labels = step_labels(p, 1.0, EpisodeRule(af_threshold=0.5, min_af_s=3, min_gap_s=3))
    assert "".join("NAO~"[v] for v in labels) == "AAAAAAANNNNNNOO"
    episodes = episodes_of(labels, 1.0)
    assert [(e.label, e.start_s, e.end_s) for e in episodes] == [
        ("A", 0, 7), ("N", 7, 13), ("O", 13, 15)]


def test_ec57_statistics_on_hand_made_annotations() -> None:
    # Record 1: reference AF 0-100, 200-220 (under 30 s: not an episode for Se), 300-400;
    # detected 50-150, 250-260 (false), 390-450. Record 2: no AF, a false 10-50 detection.
    r1 = compare_episodes([(0, 100), (200, 220), (300, 400)], [(50, 150), (250, 260),
                                                                 (390, 450)], 500)
    assert (r1.ref_episodes, r1.ref_detected, r1.det_episodes, r1.det_true) == (2, 2, 3, 2)
    assert (r1.ref_seconds, r1.det_seconds, r1.both_seconds, r1.seconds) == (220, 170, 60, 500)
    r2 = compare_episodes([], [(10, 50)], 100)
    assert (r2.ref_episodes, r2.det_episodes, r2.det_true, r2.det_seconds) == (0, 1, 0, 40)
    report = summarise_records({"r1": r1, "r2": r2})
    gross, average = report["gross"], report["average"]
    assert gross["episode_sensitivity"] == 1.0 and gross["episode_ppv"] == 0.5
    assert gross["duration_sensitivity"] == pytest.approx(60 / 220)
    assert gross["duration_ppv"] == pytest.approx(60 / 210)
    assert average["episode_sensitivity"] == 1.0  # record 2 has no reference episode
    assert average["episode_ppv"] == pytest.approx((2 / 3 + 0) / 2)
    assert average["duration_sensitivity"] == pytest.approx(60 / 220)
    assert average["duration_ppv"] == pytest.approx((60 / 170 + 0) / 2)
    assert report["burden_mae"] == pytest.approx((0.1 + 0.4) / 2)
    assert report["records"]["r2"]["episode_sensitivity"] is None


def test_ec57_overlap_counts_and_touching_does_not() -> None:
    counts = compare_episodes([(0, 40)], [(39.5, 60), (40, 45)], 60)
    assert (counts.ref_detected, counts.det_true) == (1, 1)
