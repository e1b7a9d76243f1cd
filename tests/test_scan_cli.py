"""``afdetect scan``, ``evaluate --episodes`` and the C continuous mode, as a user runs them."""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, SAMPLES, synthetic_ecg
from test_cli import assert_clean_error, run
from test_export import METADATA
from test_monitor import small_model  # noqa: F401  (fixture)

from afdetect import CLASSES
from afdetect.deploy.export import (
    HostRunner,
    _check_stream,
    build,
    c_compiler,
    check,
    export,
    library_sources,
)
from afdetect.errors import AfdetectError
from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.ec57 import compare_record
from afdetect.monitor.scan import IntegerStepModel, ScanConfig, scan_stream, step_model

MITDB_100 = DATA / "mitdb" / "100"


def _stitched(tmp_path: Path, copies: int) -> Path:
    """MIT-BIH 100 repeated ``copies`` times as one WFDB record (format 212), with its
    rhythm annotations shifted along."""
    rec = wfdb.rdrecord(str(MITDB_100), physical=False)
    ann = wfdb.rdann(str(MITDB_100), "atr")
    n = rec.d_signal.shape[0]
    wfdb.wrsamp("long", fs=rec.fs, units=rec.units, sig_name=rec.sig_name,
                d_signal=np.tile(rec.d_signal, (copies, 1)), fmt=rec.fmt, adc_gain=rec.adc_gain,
                baseline=rec.baseline, write_dir=str(tmp_path))
    keep = np.array([s == "+" for s in ann.symbol])
    wfdb.wrann("long", "atr", np.concatenate([ann.sample[keep] + k * n for k in range(copies)]),
               symbol=["+"] * int(keep.sum()) * copies,
               aux_note=[a for _ in range(copies) for a, k in zip(ann.aux_note, keep,
                                                                  strict=True) if k],
               fs=rec.fs, write_dir=str(tmp_path))
    return tmp_path / "long"


def test_scan_json_follows_the_contract(tmp_path: Path) -> None:
    result = run("scan", MITDB_100, "--json", "--annotations", "afd", "--annotations-dir",
                 tmp_path, "--csv", tmp_path / "ep.csv", "--plot", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"] == "compressed"
    (rec,) = out["recordings"]
    assert {"record", "source", "fs", "duration_s", "af_burden", "af_seconds", "episodes",
            "windows"} <= set(rec)
    assert rec["record"] == "100" and rec["fs"] == 360 and rec["duration_s"] > 1800
    assert {e["label"] for e in rec["episodes"]} <= set(CLASSES)
    assert rec["af_burden"] < 0.05  # record 100 is sinus rhythm throughout
    ends = [(e["start_s"], e["end_s"]) for e in rec["episodes"]]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))  # contiguous
    assert ends[0][0] == 0 and ends[-1][1] == rec["duration_s"]  # the whole recording
    assert out["window_s"] == pytest.approx(18 * 512 / 300) and out["hop_s"] == pytest.approx(
        6 * 512 / 300)  # the lengths used, in whole model steps
    w = rec["windows"]
    assert len(w) > 150 and w[0]["start_s"] == 0.0
    assert w[0]["end_s"] == pytest.approx(30.0, abs=1.0)  # 18 steps of 512/300 s
    assert w[1]["start_s"] == pytest.approx(10.0, abs=1.0)
    assert set(w[0]["probabilities"]) == set(CLASSES)
    ann = wfdb.rdann(str(tmp_path / "100"), "afd")
    assert len(ann.sample) == len(rec["episodes"]) and set(ann.symbol) == {"+"}
    assert ann.aux_note[0] in ("(N", "(AFIB", "(OTHER", "(NOISE")
    with open(tmp_path / "ep.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rec["episodes"])
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_scan_reads_csv_and_picks_a_lead(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "patch.csv", synthetic_ecg(150.0, 250.0, 70.0), delimiter=",")
    result = run("scan", tmp_path / "patch.csv", "--fs", "250", "--json")
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(result.stdout)["recordings"]
    assert rec["fs"] == 250 and rec["duration_s"] == 150.0 and len(rec["windows"]) >= 10
    result = run("scan", MITDB_100, "--lead", "V5", "--window", "60", "--hop", "30", "--json")
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(result.stdout)["recordings"]
    assert rec["lead"] == "V5"
    assert rec["windows"][0]["end_s"] == pytest.approx(60.0, abs=1.0)


def test_scan_of_a_stitched_long_record_reads_in_chunks(tmp_path: Path) -> None:
    long = _stitched(tmp_path, 3)  # 1.5 h
    stream = open_stream(long)
    assert stream.n_samples == 3 * 650000
    model = step_model(load_classifier("compressed"))
    small = scan_stream(model, stream, ScanConfig(chunk_s=37.0))
    large = scan_stream(model, stream, ScanConfig(chunk_s=3600.0))
    assert small.integer_logits is not None and large.integer_logits is not None
    assert np.array_equal(small.integer_logits, large.integer_logits)
    assert small.duration_s == pytest.approx(3 * 1805.56, abs=0.1)
    assert len(small.window_starts) > 3 * 170


def test_evaluate_episodes_scores_annotated_records_and_names_the_rest(tmp_path: Path) -> None:
    long = _stitched(tmp_path, 2)
    for suffix in (".hea", ".dat"):
        shutil.copy(DATA / "aftdb" / f"a01{suffix}", tmp_path)  # no .atr
    result = run("evaluate", "--episodes", "--data", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["records"]) == [long.name]
    assert report["records"][long.name]["ref_duration"] == 0  # no AF in record 100
    assert report["gross"]["duration_sensitivity"] is None
    assert report["windows"]["n_windows"] > 300
    assert "a01" in next(iter(report["skipped"])) and "no rhythm annotations" in \
        next(iter(report["skipped"].values()))
    text = run("evaluate", "--episodes", "--data", tmp_path)
    assert "episode Se" in text.stdout and "duration +P" in text.stdout


def test_scan_bad_inputs_are_one_line_and_the_batch_goes_on(tmp_path: Path) -> None:
    shutil.copy(MITDB_100.with_suffix(".dat"), tmp_path / "100.dat")
    header = MITDB_100.with_suffix(".hea").read_text().replace("650000", "990000", 1)
    (tmp_path / "100.hea").write_text(header)
    result = run("scan", tmp_path / "100.hea", SAMPLES / "A00001.hea", DATA / "mitdb" / "100",
                 "--json")
    assert_clean_error(result, "100", "fewer samples than the header", "A00001",
                       "too short to scan", "1 scanned, 2 failed")
    assert [r["record"] for r in json.loads(result.stdout)["recordings"]] == ["100"]
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(300 * 120))
    assert_clean_error(run("scan", flat, "--fs", "300"), "flat.npy", "flat line")
    assert_clean_error(run("scan", flat), "flat.npy", "--fs")
    assert_clean_error(run("evaluate", "--episodes", "--data", SAMPLES),
                       "A00001", "no rhythm annotations", "could be scored")


def test_predict_on_a_long_recording_points_to_scan() -> None:
    result = run("predict", MITDB_100)  # over predict's 10 min: refused (test_memory.py)
    assert_clean_error(result, "too long for predict: 30.1 min", "afdetect scan")


@pytest.mark.skipif(c_compiler() is None, reason="no C compiler on PATH")
def test_c_continuous_mode_equals_scan_at_every_rate(small_model, tmp_path: Path  # noqa: F811
                                                     ) -> None:
    export(small_model, METADATA, tmp_path / "c")
    binary = build(tmp_path / "c")
    records = [str(MITDB_100)]
    for fs in (250, 256, 300, 500):
        np.save(tmp_path / f"ecg{fs}.npy", synthetic_ecg(100.0, fs, 80.0, seed=fs))
        records.append(str(tmp_path / f"ecg{fs}.npy"))
    result = check(small_model, METADATA, binary, records[:1],
                   ScanConfig(window_s=2.0, hop_s=0.5))
    rows = list(result.records)
    for record in records[1:]:
        stream = open_stream(record, fs=float(Path(record).stem[3:]))
        rows.append(_check_stream(IntegerStepModel("t", small_model, 300), HostRunner(binary),
                                  stream,
                                  ScanConfig(window_s=1.5, hop_s=0.4)))
    assert [r["mode"] for r in rows] == ["stream"] * 5
    assert all(r["identical"] and r["windows"] > 100 for r in rows), [
        (r["record"], r["identical"], r["windows"], r["windows_identical"]) for r in rows]
    with pytest.raises(AfdetectError, match="at most 64"):
        check(small_model, METADATA, binary, records[:1])  # 30 s is 563 steps here


@pytest.mark.skipif(c_compiler() is None, reason="no C compiler on PATH")
def test_exported_monitor_example_runs_clean_under_sanitizers(small_model,  # noqa: F811
                                                              tmp_path: Path) -> None:
    export(small_model, METADATA, tmp_path)
    readme = (tmp_path / "README.md").read_text()
    snippet = re.findall(r"```c\n(.*?)```", readme, re.S)[1]  # the continuous-mode example
    counts = np.round(synthetic_ecg(60.0, 250.0, 90.0) * 400).astype(int)
    (tmp_path / "fw.c").write_text(snippet.replace("(void)logits; (void)atrial; (void)user;",
                                                   "(void)logits; (void)atrial; ++*(int *)user;")
                                   .replace("on_window, 0)", "on_window, &windows)")
                                   .replace("void start_monitor", "static int windows;\n"
                                            "void start_monitor") + f"""
#include <stdio.h>
static const int16_t ecg[] = {{{", ".join(map(str, counts.tolist()))}}};
int main(void)
{{
    unsigned i;
    start_monitor();
    for (i = 0; i < sizeof ecg / sizeof ecg[0]; i++) adc_isr(ecg[i]);
    printf("%d\\n", windows);
    return 0;
}}
""")
    binary = tmp_path / "fw"
    subprocess.run([c_compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    f"-I{tmp_path / 'src'}", "-o", str(binary), str(tmp_path / "fw.c"),
                    *map(str, library_sources(tmp_path))],
                   check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # 60 s at 300 Hz = 1,125 steps of 16 samples, less the front end's latency and the
    # first window: one decision every 6 steps
    assert 170 <= int(out.stdout) <= 188


def test_scan_rule_options_and_a_one_minute_af_record(tmp_path: Path) -> None:
    a01 = DATA / "aftdb" / "a01.hea"  # 60 s of AF at 128 Hz
    (rec,) = json.loads(run("scan", a01, "--json").stdout)["recordings"]
    assert [e["label"] for e in rec["episodes"]] == ["A"] and rec["af_burden"] == 1.0
    result = run("scan", a01, "--json", "--threshold", "0.99", "--min-episode", "0",
                 "--min-gap", "0", "--min-rhythm", "0", "--atrial-check", "off")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rule"] == {"af_threshold": 0.99, "min_af_s": 0.0, "min_gap_s": 0.0,
                           "min_rhythm_s": 0.0, "max_atrial_coherence": None}
    assert out["recordings"][0]["af_burden"] < 1.0
    for bad, words in ((["--threshold", "1.5"], "threshold"),
                       (["--min-gap", "-1"], "min_gap_s"),
                       (["--atrial-check", "1.5"], "atrial coherence"),
                       (["--atrial-check", "often"], "'off'"),
                       (["--window", "30", "--hop", "40"], "longer than the window")):
        assert_clean_error(run("scan", a01, *bad), words)


def test_annotation_file_json_and_evaluate_describe_one_detection(tmp_path: Path) -> None:
    # a01 with a hand-made reference: sinus for 20 s, then AF to the end (never closed).
    for suffix in (".hea", ".dat"):
        shutil.copy(DATA / "aftdb" / f"a01{suffix}", tmp_path)
    wfdb.wrann("a01", "atr", np.array([0, 20 * 128]), symbol=["+", "+"],
               aux_note=["(N", "(AFIB"], fs=128, write_dir=str(tmp_path))
    out = tmp_path / "out"
    result = run("scan", tmp_path / "a01.hea", "--json", "--annotations", "afd",
                 "--annotations-dir", out, "--min-episode", "0")
    (rec,) = json.loads(result.stdout)["recordings"]
    ann = wfdb.rdann(str(out / "a01"), "afd")
    marks = list(zip(ann.sample.tolist(), ann.aux_note, strict=True))
    assert marks == [(round(e["start_s"] * 128), {"A": "(AFIB", "N": "(N", "O": "(OTHER",
                                                  "~": "(NOISE"}[e["label"]])
                     for e in rec["episodes"]]
    report = json.loads(run("evaluate", "--episodes", "--data", tmp_path, "--json",
                            "--min-episode", "0").stdout)
    r = report["records"]["a01"]
    assert r["detected_burden"] == pytest.approx(rec["af_burden"], abs=1 / 7680)
    n = 7680  # samples in a01: the file's last episode runs to the end, as in the JSON
    expected = compare_record([(0, "(N"), (2560, "(AFIB")], marks, n, 128.0)
    assert r["det_duration"] == expected.det_duration == round(rec["af_seconds"] * 128)
    assert r["ref_duration"] == n - 2560
