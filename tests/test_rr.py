"""The integer R-peak detector and RR features: hand-checked values, and C equal to Python."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import SAMPLES, synthetic_ecg
from test_compress import SMALL_RR, _quantised

from afdetect.compress.integer import IntegerModel, to_integer
from afdetect.data.preprocess import PreprocessConfig, normalise, preprocess
from afdetect.data.store import load_dataset
from afdetect.deploy.export import export, library_sources
from afdetect.io.records import read_record
from afdetect.model import AFNet
from afdetect.model.rr import (
    FEATURE_NAMES,
    N_FEATURES,
    SCALE_BITS,
    RRConfig,
    batch_features,
    detect_beats,
    quantise,
    rr_features,
    signal_features,
)

CONFIG = RRConfig()
RECORDS = sorted(SAMPLES.glob("*.hea"))


def _beats_at(times_s: np.ndarray, seconds: float = 30.0, fs: int = 300) -> np.ndarray:
    """A quantised signal with a sharp QRS-like spike at each of ``times_s``."""
    t = np.arange(int(seconds * fs)) / fs
    x = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    for beat in times_s:
        x += np.exp(-0.5 * ((t - beat) / 0.012) ** 2)
    return quantise(normalise(x), 8)


def test_regular_rhythm_is_found_beat_for_beat() -> None:
    times = np.arange(0.5, 29.8, 0.8)  # 75 beats/min
    beats = detect_beats(_beats_at(times), CONFIG)
    assert len(beats) == len(times)
    # the integrated energy peaks up to one integration window after the R peak
    lag = beats - np.round(times * 300)
    assert np.all((lag >= 0) & (lag <= CONFIG.integrate)) and np.ptp(lag) <= 10
    f = dict(zip(FEATURE_NAMES, signal_features(_beats_at(times), CONFIG), strict=True))
    assert f["beat_rate"] == 10 * 300 * len(times) // 9000  # 12 per 10 s
    assert f["rr_mean"] in (59, 60)  # 240 samples / 4
    assert f["rr_irregularity"] <= 1 and f["rr_jumps"] == 0 and f["rr_outliers"] == 0


def test_irregular_rhythm_scores_high() -> None:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.4, 1.1, 60))
    times = times[times < 29.5]
    f = dict(zip(FEATURE_NAMES, signal_features(_beats_at(times), CONFIG), strict=True))
    assert f["rr_irregularity"] > 12 and f["rr_jumps"] > 24 and f["rr_outliers"] > 24


def test_features_hand_computed() -> None:
    # intervals 100, 120, 90, 100: total 410, n 4
    beats = np.array([0, 100, 220, 310, 410])
    f = rr_features(beats, n_samples=3000, fs=300)
    assert f[0] == 10 * 300 * 5 // 3000  # 5 beats in 10 s
    assert f[1] == 410 // 16
    # |diffs| 20, 30, 10: 64 * 60 * 4 // (3 * 410)
    assert f[2] == 64 * 60 * 4 // (3 * 410)
    # jumps: 8 * 20 > 100, 8 * 30 > 120, 8 * 10 < 90
    assert f[3] == 64 * 2 // 3
    assert f[4] == 64 * 30 * 4 // 410
    # outliers against the lower median of the intervals before: 100 vs 120 (8*20 > 100),
    # median(100, 120) = 100 vs 90 (80 < 100: no), median(100, 120, 90) = 100 vs 100: no
    assert f[5] == 64 * 1 // 3
    assert rr_features(np.array([5]), 3000, 300).tolist() == [1, 0, 0, 0, 0, 0]
    assert rr_features(np.array([], dtype=np.int64), 3000, 300).tolist() == [0] * 6


def test_batch_features_ignore_padding_and_match_one_signal() -> None:
    x = normalise(synthetic_ecg(20.0))
    padded = np.zeros((2, 1, 9000), dtype=np.float32)
    padded[0, 0, :6000] = x
    padded[1, 0, :6000] = x
    out = batch_features(torch.from_numpy(padded), torch.tensor([6000, 6000]), 8, CONFIG)
    expected = signal_features(quantise(x, 8), CONFIG) / 64.0
    assert np.allclose(out.numpy(), expected[None, :])


def test_model_with_rr_features_saves_and_loads(tmp_path: Path) -> None:
    from afdetect.model.io import load_float_model, save_float_model

    net = AFNet(SMALL_RR).eval()
    save_float_model(tmp_path / "m.pt", net, PreprocessConfig(), {})
    again = load_float_model(tmp_path / "m.pt").network
    assert again.config.rr == CONFIG
    x = torch.from_numpy(normalise(synthetic_ecg(20.0)).astype(np.float32))[None, None, :]
    with torch.no_grad():
        assert torch.equal(net(x), again(x))


_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "afd_internal.h"
/* reads recordings as lines of integers; prints each one's RR features */
int main(void)
{
    static int16_t x[400000];
    char line[4000000], *p, *end;
    int32_t f[AFD_RR_N_FEATURES], i, n;
    static afd_rr_t s;
    while (fgets(line, sizeof line, stdin)) {
        for (n = 0, p = line;; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            x[n++] = (int16_t)v;
        }
        afd_rr_reset(&s);
        for (i = 0; i < n; i++) afd_rr_push(&s, x[i]);
        afd_rr_features(&s, f);
        for (i = 0; i < AFD_RR_N_FEATURES; i++) printf("%d ", f[i]);
        printf("\n");
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_c_detector_equals_python_on_real_records_and_edge_lengths(tmp_path: Path) -> None:
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, config=SMALL_RR))
    export(model, {"fs": 300, "preprocess": PreprocessConfig().to_dict(),
                   "classes": ["N", "A", "O", "~"]}, tmp_path, max_seconds=70)
    (tmp_path / "harness.c").write_text(_HARNESS)
    subprocess.run(["cc", "-std=c99", "-O1", "-I", str(tmp_path / "src"), "-o",
                    str(tmp_path / "h"), str(tmp_path / "harness.c"),
                    *map(str, library_sources(tmp_path))], check=True)
    signals = [model.quantise_input(preprocess(read_record(p), PreprocessConfig()))
               for p in RECORDS]
    long = signals[0]
    # segment boundaries, a last segment shorter than the refractory period, and signals
    # shorter than one segment or the local-maximum window
    for n in (600, 1200, 1201, 1200 + 59, 1200 + 61, 599, 121, 60, 7, 3):
        signals.append(long[:n])
    rng = np.random.default_rng(0)
    signals.append(rng.integers(-2048, 2048, 4000))  # noise: many candidates
    signals.append(np.zeros(2000, dtype=np.int64))  # flat: ties everywhere
    text = "\n".join(" ".join(map(str, s)) for s in signals) + "\n"
    out = subprocess.run([str(tmp_path / "h")], input=text, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == len(signals)
    for s, line in zip(signals, out, strict=True):
        assert [int(v) for v in line.split()] == signal_features(s, CONFIG).tolist(), len(s)


def test_rr_model_predicts_strips_and_scans_long_recordings(tmp_path: Path) -> None:
    """A model with RR features scans: each window's logits are the CNN's plus the RR
    columns of the beats the scan found in it, on the classifier grid a strip uses."""
    from test_cli import run

    from afdetect.io.records import open_stream
    from afdetect.models import load_classifier
    from afdetect.monitor.beats import BeatStream
    from afdetect.monitor.frontend import IntegerFrontEnd, resample_ratio
    from afdetect.monitor.rr_windows import window_rr_features
    from afdetect.monitor.scan import scan_stream, step_model
    from afdetect.runtime.format import save_compressed

    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, config=SMALL_RR))
    save_compressed(tmp_path / "rr.afq", model, {
        "fs": 300, "preprocess": PreprocessConfig().to_dict(), "classes": ["N", "A", "O", "~"]})
    result = run("predict", "--model", tmp_path / "rr.afq", RECORDS[0], "--json")
    assert result.returncode == 0, result.stderr
    long = Path(__file__).parent / "data" / "mitdb" / "100.hea"
    result = run("scan", "--model", tmp_path / "rr.afq", long, "--json")
    assert result.returncode == 0, result.stderr

    scanner = step_model(load_classifier(tmp_path / "rr.afq"))
    # the same scan with the RR columns' weights zeroed: the difference is the RR term
    blind = step_model(load_classifier(tmp_path / "rr.afq"))
    blind.model.classifier.sign[:, -N_FEATURES:] = 0
    scan = scan_stream(scanner, open_stream(long))
    cnn_only = scan_stream(blind, open_stream(long)).integer_logits
    stream = open_stream(long)
    front = IntegerFrontEnd(stream.fs, 300, model.input_frac, model.input_bits)
    q = np.concatenate([front.push(c) for c in stream.chunks(stream.n_samples)])
    beats = BeatStream(*resample_ratio(stream.fs, 300))
    peaks = np.concatenate([beats.push_model(q), beats.finish_model()])
    steps, ds = scan.window_steps, scanner.downsampling
    features = window_rr_features(peaks, scan.window_starts, steps, ds, 300)
    fc = model.classifier
    columns = (features * steps) << (fc.in_frac - SCALE_BITS)
    weights = fc.sign[:, -N_FEATURES:, 0].astype(np.int64) << fc.shift[:, -N_FEATURES:, 0]
    assert np.array_equal(scan.integer_logits - cnn_only, columns @ weights.T)
    # record 100 is regular sinus rhythm: the scan's beats give almost every window the
    # rate and mean interval the strip detector gives the same stretch of input (its
    # thresholds start afresh at the window's first sample, the scan's run on)
    strips = np.array([signal_features(q[start * ds:(start + steps) * ds], CONFIG)
                       for start in scan.window_starts])
    assert (np.abs(features[:, :2] - strips[:, :2]).max(axis=1) <= 1).mean() > 0.95
    assert features[:, 0].min() > 0  # beats were found in every window


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_rr_stream_equals_the_windows_at_once_in_any_chunking(seed: int) -> None:
    """The scan's streamed RR features of every window (hop grid and tail) are those of
    the whole recording's peaks, however the peaks arrive."""
    from afdetect.monitor.rr_windows import WindowRRStream, window_rr_features

    rng = np.random.default_rng(seed)
    window, hop, ds, fs = 18, 6, 32, 300
    peaks = np.cumsum(rng.integers(61, 400, 600))  # model samples, one beat per 61 or more
    n_steps = int(peaks[-1] // ds) + int(rng.integers(0, 40))
    starts = np.arange(0, n_steps - window + 1, hop)
    if starts[-1] + window < n_steps:
        starts = np.append(starts, n_steps - window)
    stream = WindowRRStream(window, hop, ds, fs)
    i, known = 0, 0
    while i < len(peaks) - 5:
        known = min(int(peaks[i]) + int(rng.integers(0, 3000)), n_steps * ds)
        j = int(np.searchsorted(peaks, known))  # every peak before `known` is final
        stream.push(peaks[i:max(i, j)], known)
        i = max(i, j)
    streamed = stream.finish(peaks[i:], starts)
    assert np.array_equal(streamed, window_rr_features(peaks, starts, window, ds, fs))


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_c_continuous_mode_with_rr_features_equals_scan(tmp_path: Path) -> None:
    """The continuous mode of a model with RR features: every window's logits those of
    afdetect scan (the RR features of the scan's beats in the window), at 360 Hz
    (MIT-BIH 100, sinus rhythm) and at 128 Hz (AF), the second build under ASan/UBSan.
    Its network answers long before the detector does, so the windows wait for their
    beats: the last few, still waiting when the recording stops, never come. That
    geometry takes no atrial check (export leaves it off); the sanitized build compiles it
    in all the same (-DAFD_ATRIAL=1), its ring and stretches on the RR windows' detector,
    and the windows come with their logits unchanged and no atrial terms."""
    from afdetect.deploy.export import HostRunner, _check_stream, build, check
    from afdetect.io.records import open_stream
    from afdetect.monitor.scan import IntegerStepModel, ScanConfig

    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, config=SMALL_RR))
    metadata = {"fs": 300, "preprocess": PreprocessConfig().to_dict(),
                "classes": ["N", "A", "O", "~"]}
    data = Path(__file__).parent / "data"
    export(model, metadata, tmp_path / "c", max_seconds=70)
    export(model, metadata, tmp_path / "asan", max_seconds=70)
    config = (tmp_path / "c" / "src" / "afd_config.h").read_text()
    assert "#define AFD_RR 1" in config and "#define AFD_ATRIAL 0" in config
    binary = build(tmp_path / "c")
    sanitized = build(tmp_path / "asan", ("-g", "-fsanitize=address,undefined",
                                          "-fno-sanitize-recover=all", "-DAFD_ATRIAL=1"))
    result = check(model, metadata, binary, [data / "mitdb" / "100.hea"],
                   ScanConfig(window_s=2.0, hop_s=0.5))
    assert not result.failures
    rows = list(result.records)
    rows.append(_check_stream(IntegerStepModel("t", model, 300), HostRunner(sanitized),
                              open_stream(data / "aftdb" / "a01.hea"),
                              ScanConfig(window_s=1.5, hop_s=0.4)))
    assert [r["mode"] for r in rows] == ["stream"] * 2
    assert all(r["identical"] and r["c_windows"] > 100 for r in rows), rows
    assert all(0 < r["windows"] - r["c_windows"] <= 10 for r in rows), rows
    assert all(r["windows_identical"] == r["c_windows"] for r in rows), rows
    assert not any("atrial_identical" in r for r in rows), rows


def shipped_with_rr() -> tuple[IntegerModel, dict[str, Any]]:
    """The shipped network with RR columns added to its classifier (weights 1), and its
    metadata: the shipped geometry (network lag, step, front-end block) with RR features."""
    from afdetect.models import load_classifier

    shipped = load_classifier("compressed-4kb")
    model, fc = shipped.model, shipped.model.classifier

    def padded(a: np.ndarray, value: int) -> np.ndarray:
        extra = np.full((a.shape[0], N_FEATURES, a.shape[2]), value, dtype=a.dtype)
        return np.concatenate([a, extra], axis=1)

    rr_fc = dataclasses.replace(fc, mask=padded(fc.mask, 1), sign=padded(fc.sign, 1),
                                shift=padded(fc.shift, 0), in_frac=max(fc.in_frac, SCALE_BITS))
    rr_model = dataclasses.replace(model, layers=[*model.layers[:-1], rr_fc], rr=RRConfig())
    return rr_model, shipped.metadata


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_c_continuous_mode_with_rr_features_on_the_shipped_geometry(tmp_path: Path) -> None:
    """The shipped network with RR columns added to its classifier: it answers after the
    detector, so every window is reported at its last step; its activation sums move 2
    bits left onto the classifier's grid (RR features are finer), in the scan as in C.
    Its geometry takes the atrial check, on the RR windows' detector (one for both): every
    window's terms and verdict are afdetect scan's (sinus rhythm: organised), also under
    ASan/UBSan."""
    from afdetect.deploy.export import HostRunner, _check_stream, build, check
    from afdetect.io.records import open_stream
    from afdetect.monitor.scan import IntegerStepModel, ScanConfig

    rr_model, metadata = shipped_with_rr()
    assert rr_model.classifier.in_frac - rr_model.convs[-1].out_frac == 2
    for name in ("c", "asan"):
        export(rr_model, metadata, tmp_path / name)
    config = (tmp_path / "c" / "src" / "afd_config.h").read_text()
    assert "#define AFD_RR 1" in config and "#define AFD_ATRIAL 1" in config
    binaries = [build(tmp_path / "c"), build(tmp_path / "asan", (
        "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"))]
    data = Path(__file__).parent / "data"
    scanner = IntegerStepModel("t", rr_model, int(metadata["fs"]))
    for binary in binaries:
        result = check(rr_model, metadata, binary, [data / "mitdb" / "100.hea"])
        (row,) = result.records
        assert row["identical"] and row["windows"] == row["c_windows"] > 150, row
        assert row["atrial_identical"] and row["organised_windows"] == row["windows"], row
        # AF (60 s, in the continuous mode all the same): the stretches are unrelated
        row = _check_stream(scanner, HostRunner(binary), open_stream(data / "aftdb" / "a01.hea"),
                            ScanConfig())
        assert row["identical"] and row["windows"] == row["c_windows"] == 3, row
        assert row["atrial_identical"] and row["organised_windows"] == 0, row
