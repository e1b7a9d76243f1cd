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
from afdetect.monitor.ec57 import Ec57Options, compare_record, summarise_records
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
    labels = step_labels(p, 1.0, EpisodeRule(af_threshold=0.5, min_af_s=3, min_gap_s=3,
                                             min_rhythm_s=2))
    assert "".join("NAO~"[v] for v in labels) == "AAAAAAANNNNNNOO"
    episodes = episodes_of(labels, 1.0, duration_s=15.8)
    assert [(e.label, e.start_s, e.end_s) for e in episodes] == [
        ("A", 0, 7), ("N", 7, 13), ("O", 13, 15.8)]  # the last lasts to the end


def test_other_rhythms_do_not_flicker_and_af_is_untouched() -> None:
    # 1-s steps: N/O alternate in short runs around a 5-s AF run; min_rhythm 4 s merges the
    # short N/O runs into their longer neighbours, shortest first, never across AF.
    labels = "NNNNNONNOOAAAAAOOONOOOOO~"
    p = np.zeros((len(labels), 4))
    for i, c in enumerate(labels):
        p[i, "NAO~".index(c)] = 0.9
    rule = EpisodeRule(af_threshold=0.5, min_af_s=3, min_gap_s=3, min_rhythm_s=4)
    out = "".join("NAO~"[v] for v in step_labels(p, 1.0, rule))
    assert out == "NNNNNNNNNNAAAAAOOOOOOOOOO"


def test_a_short_recording_that_is_af_throughout_stays_af() -> None:
    p = np.tile([0.05, 0.9, 0.05, 0.0], (20, 1))
    labels = step_labels(p, 1.7, EpisodeRule())  # 34 s, under the 60-s minimum episode
    assert set(labels.tolist()) == {1}
    p[:3] = [0.9, 0.05, 0.05, 0.0]  # not AF throughout: the short AF run is dropped
    assert 1 not in step_labels(p, 1.7, EpisodeRule()).tolist()


def af(*spans: tuple[int, int], other: str = "(N") -> list[tuple[int, str]]:
    """Rhythm marks: (AFIB at each span's start, ``other`` at its end."""
    return [m for a, b in spans for m in ((a, "(AFIB"), (b, other))]


def test_ec57_counts_every_reference_episode_sample_exact() -> None:
    # fs 10 Hz, 500 s. Reference AF 0-100 s, 200-220 s (short: counted by epicmp, not by
    # the 30-s figure), 300-400 s; detected 50-150 s, 250-260 s (false), 390-450 s.
    ref = af((0, 1000), (2000, 2200), (3000, 4000))
    det = af((500, 1500), (2500, 2600), (3900, 4500))
    r1 = compare_record(ref, det, 5000, 10.0)
    assert (r1.ref_matched, r1.ref_missed, r1.det_matched, r1.det_false) == (2, 1, 2, 1)
    assert (r1.ref_duration, r1.ref_overlap) == (2200, 500 + 100)
    assert (r1.det_duration, r1.det_overlap) == (1700, 500 + 100)
    assert (r1.ref_long, r1.ref_long_detected) == (2, 2)
    # Record 2: no AF; a false detection from 10 s that is never closed: it lasts to the end.
    r2 = compare_record([(0, "(N")], [(0, "(N"), (100, "(AFIB")], 1000, 10.0)
    assert (r2.ref_matched + r2.ref_missed, r2.det_false, r2.det_duration) == (0, 1, 900)
    report = summarise_records({"r1": r1, "r2": r2})
    gross, average = report["gross"], report["average"]
    assert gross["episode_sensitivity"] == pytest.approx(2 / 3)
    assert gross["episode_ppv"] == pytest.approx(2 / 4)
    assert gross["duration_sensitivity"] == pytest.approx(600 / 2200)
    assert gross["duration_ppv"] == pytest.approx(60 / (170 + 90))
    assert gross["long_episode_sensitivity"] == 1.0
    assert average["episode_sensitivity"] == pytest.approx(2 / 3)  # r2 has no reference
    assert average["episode_ppv"] == pytest.approx((2 / 3 + 0) / 2)
    assert report["burden_mae"] == pytest.approx((abs(0.34 - 0.44) + 0.9) / 2)
    assert report["records"]["r2"]["episode_sensitivity"] is None


def test_ec57_touching_is_no_overlap_and_afib_marks_continue_an_episode() -> None:
    counts = compare_record(af((0, 400)), [(395, "(AFIB"), (400, "(AFIB"), (600, "(N")], 600,
                            10.0)
    assert (counts.ref_matched, counts.det_matched, counts.det_false) == (1, 1, 0)
    assert counts.ref_overlap == 5 and counts.det_duration == 205  # one episode 395-600
    touching = compare_record(af((0, 400)), af((400, 450)), 600, 10.0)
    assert (touching.ref_matched, touching.det_false) == (0, 1)


def test_ec57_comparison_start_clips_and_drops_episodes() -> None:
    # -f 30 s at 10 Hz: the 0-20 s episode is ignored, the 25-60 s one counts from 30 s.
    ref = af((0, 200), (250, 600))
    det = af((100, 350))
    counts = compare_record(ref, det, 1000, 10.0, Ec57Options(start_s=30))
    assert (counts.ref_matched, counts.ref_missed, counts.ref_duration) == (1, 0, 300)
    assert (counts.det_duration, counts.det_overlap, counts.ref_overlap) == (50, 50, 50)
    assert counts.samples == 700
    with pytest.raises(ValueError, match="after the end"):
        compare_record(ref, det, 1000, 10.0, Ec57Options(start_s=200))


def test_ec57_flutter_is_cut_out_of_detections_for_ppv_only() -> None:
    # Reference: AF 0-100, flutter 100-200, AF 300-400 (samples); detected AF 50-350.
    ref = [(0, "(AFIB"), (100, "(AFL"), (200, "(N"), (300, "(AFIB"), (400, "(N")]
    det = af((50, 350))
    plain = compare_record(ref, det, 500, 1.0)
    cut = compare_record(ref, det, 500, 1.0, Ec57Options(exclude_flutter=True))
    assert (plain.det_duration, plain.det_overlap) == (300, 100)
    # flutter 100-200 lies inside the detection: its length leaves the duration only
    assert (cut.det_duration, cut.det_overlap) == (200, 100)
    assert (cut.ref_duration, cut.ref_overlap) == (plain.ref_duration, plain.ref_overlap)
    # a detection wholly inside flutter is not counted at all
    inside = compare_record(ref, af((120, 180)), 500, 1.0, Ec57Options(exclude_flutter=True))
    assert (inside.det_matched, inside.det_false, inside.det_duration) == (0, 0, 0)
    # one that starts in flutter is counted from the flutter's end
    tail = compare_record(ref, af((150, 250)), 500, 1.0, Ec57Options(exclude_flutter=True))
    assert (tail.det_false, tail.det_duration) == (1, 50)
