"""``afdetect scan ... --out RESULTS [--jobs N] [--cluster ADDRESS]``: cohorts of recordings.

Short real records (AFTDB a01, pieces of MIT-BIH 100) so that each run takes seconds; the
process pools and the Dask cluster are real ones on this machine.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, afdetect_command

from afdetect.cli import main
from afdetect.cohort.inputs import discover

ROOT = Path(__file__).resolve().parent.parent


def _cut(out_dir: Path, name: str, start_s: float, seconds: float) -> None:
    """MIT-BIH 100 from ``start_s`` for ``seconds``, as WFDB record ``out_dir/name``."""
    rec = wfdb.rdrecord(str(DATA / "mitdb" / "100"), sampfrom=int(start_s * 360),
                        sampto=int((start_s + seconds) * 360), physical=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name,
                d_signal=rec.d_signal, fmt=rec.fmt, adc_gain=rec.adc_gain,
                baseline=rec.baseline, write_dir=str(out_dir))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cohort tree: a01 at the top, three 2-min pieces of 100 in ward/."""
    root = tmp_path_factory.mktemp("cohort") / "in"
    root.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(DATA / "aftdb" / f"a01{suffix}", root / f"a01{suffix}")
    for i in range(3):
        _cut(root / "ward", f"p{i}", 300.0 * i, 120.0)
    return root


def _results(folder: Path) -> dict[str, bytes]:
    """Every file under a results folder, by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("serial") / "results"
    assert main(["scan", str(cohort), "--out", str(out), "--jobs", "1"]) == 0
    return _results(out)


def test_results_mirror_the_input_tree(serial: dict[str, bytes], cohort: Path) -> None:
    keys = ["a01", "ward/p0", "ward/p1", "ward/p2"]
    assert set(serial) == {"cohort.csv", "failures.csv", "manifest.json",
                           *(f"{k}{s}" for k in keys for s in (".json", ".episodes.csv", ".af"))}
    rows = list(csv.DictReader(serial["cohort.csv"].decode().splitlines()))
    assert [r["record"] for r in rows] == keys
    assert list(rows[0]) == ["record", "source", "start", "duration_s", "analysed_s",
                             "af_burden", "n_af_episodes", "longest_af_s", "heart_rate_bpm",
                             "heart_rate_af_bpm", "heart_rate_non_af_bpm", "model", "status"]
    a01 = rows[0]
    assert a01["start"] == "17:42:40" and a01["status"] == "ok"  # from the WFDB header
    assert float(a01["af_burden"]) == 1.0 and a01["n_af_episodes"] == "1"  # an AF record
    assert 60 < float(a01["heart_rate_af_bpm"]) < 110 and a01["heart_rate_non_af_bpm"] == ""
    assert all(float(r["duration_s"]) == 120.0 and float(r["af_burden"]) == 0.0
               for r in rows[1:])  # 100 is sinus rhythm
    assert serial["failures.csv"] == b"record,reason\n"
    ann = wfdb.rdann(str(_write(serial, "ward/p1.af")), "af")
    assert ann.aux_note[0] == "(N"


def _write(results: dict[str, bytes], name: str) -> Path:
    """A results file back on disk (for wfdb.rdann, which reads files), without suffix."""
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / Path(name).name).write_bytes(results[name])
    return folder / Path(name).stem


def test_two_processes_give_the_same_results(cohort: Path, serial: dict[str, bytes],
                                             tmp_path: Path) -> None:
    assert main(["scan", str(cohort), "--out", str(tmp_path / "r"), "--jobs", "2"]) == 0
    assert _results(tmp_path / "r") == serial


def test_a_local_dask_cluster_gives_the_same_results(cohort: Path, serial: dict[str, bytes],
                                                     tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["scan", str(cohort), "--out", str(tmp_path / "r"),
                     "--cluster", cluster.scheduler_address]) == 0
    assert _results(tmp_path / "r") == serial


KILL_ONCE = """
import os, signal
from pathlib import Path

import afdetect.cohort.worker as worker

_scan_task = worker.scan_task


def scan_task(task):
    # test only: a worker given this recording dies as the OOM killer would; only the
    # first one if AFDETECT_TEST_KILLED names a marker file
    marker = os.environ.get("AFDETECT_TEST_KILLED")
    if task.key == os.environ["AFDETECT_TEST_KILL"] and not (marker and Path(marker).exists()):
        if marker:
            Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _scan_task(task)


worker.scan_task = scan_task
"""


def _kill_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_ONCE)  # run by every spawned worker
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(ROOT / "src"),
                                                      os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("AFDETECT_TEST_KILL", key)


def test_a_worker_killed_mid_recording_costs_a_retry(cohort: Path, serial: dict[str, bytes],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _kill_hook(tmp_path, monkeypatch, "ward/p1")
    monkeypatch.setenv("AFDETECT_TEST_KILLED", str(tmp_path / "killed"))
    assert main(["scan", str(cohort), "--out", str(tmp_path / "r"), "--jobs", "2"]) == 0
    assert (tmp_path / "killed").exists()  # a worker did die
    assert _results(tmp_path / "r") == serial


def test_a_recording_that_always_kills_its_worker_fails_alone(
        cohort: Path, serial: dict[str, bytes], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _kill_hook(tmp_path, monkeypatch, "ward/p0")
    assert main(["scan", str(cohort), "--out", str(tmp_path / "r"), "--jobs", "2"]) == 1
    failures = list(csv.reader((tmp_path / "r" / "failures.csv").read_text().splitlines()))
    assert failures[1:] == [["ward/p0", f"{cohort / 'ward' / 'p0.hea'}: the worker process "
                             "died 3 time(s) while scanning it (killed, or out of memory)"]]
    results = _results(tmp_path / "r")
    for name in ("a01.json", "ward/p1.json", "ward/p2.json"):  # the others were not blamed
        assert results[name] == serial[name]
    assert "afdetect: error: " in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_driver_killed_and_resumed_gives_the_same_results(
        cohort: Path, serial: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "r"
    command = [*afdetect_command(), "scan", str(cohort), "--out", str(out), "--jobs", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list(out.rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(driver.pid)
    driver.send_signal(signal.SIGKILL)  # right after the first recording's results
    driver.wait()
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)  # its workers see that it is gone and stop
    assert workers and not any(map(_alive, workers))
    assert not (out / "cohort.csv").exists()
    # resumed on one process: the results do not depend on where they were computed
    resumed = subprocess.run([*command[:-1], "1"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stdout
    assert _results(out) == serial  # and no temporary file left over


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(cohort: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    inputs = tmp_path / "in"
    shutil.copytree(cohort, inputs)
    out = tmp_path / "r"
    scan = ["scan", str(inputs), "--out", str(out), "--jobs", "1"]
    assert main(scan) == 0
    assert "4 scanned" in capsys.readouterr().out
    assert main(scan) == 0
    assert "0 scanned (0.0 h), 4 already done" in capsys.readouterr().out
    _cut(inputs / "ward", "p2", 900.0, 90.0)  # a recording replaced
    (out / "a01.episodes.csv").unlink()  # a result removed
    assert main(scan) == 0
    assert "2 scanned" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "cohort.csv").read_text().splitlines()))
    assert float(rows[-1]["duration_s"]) == 90.0
    assert main([*scan, "--threshold", "0.7"]) == 0
    assert "4 scanned" in capsys.readouterr().out  # other settings: everything again


def test_a_mixed_cohort_lists_its_bad_files_and_goes_on(cohort: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    data = tmp_path / "data"
    shutil.copytree(cohort, data)
    (data / "ward" / "p1.dat").write_bytes((data / "ward" / "p1.dat").read_bytes()[:1000])
    wfdb.wrsamp("flat", fs=360, units=["mV"], sig_name=["I"], fmt=["16"],
                d_signal=np.zeros((360 * 90, 1), dtype=np.int64), adc_gain=[200.0],
                baseline=[0], write_dir=str(data))
    (data / "short.csv").write_text("0.1\n0.2\n")
    (data / "manifest.csv").write_text(
        "patient,record,start\nP1,a01.hea,2024-03-01T08:00:00\nP2,ward/p0.hea,\n"
        "P2,ward/p1.hea,\nP3,flat.hea,\nP4,missing.hea,\n")
    (data / "more.txt").write_text("# extra recordings\nshort.csv\nward/p2\n")
    code = main(["scan", str(data / "manifest.csv"), str(data / "more.txt"),
                 "--out", str(tmp_path / "r"), "--jobs", "1"])
    assert code == 1
    err = capsys.readouterr().err
    failures = list(csv.DictReader((tmp_path / "r" / "failures.csv").read_text().splitlines()))
    assert [f["record"] for f in failures] == ["ward/p1", "flat", "missing", "short"]
    for f in failures:  # one line each, naming the file
        assert "\n" not in f["reason"] and str(data) in f["reason"]
        assert f"afdetect: error: {f['reason']}" in err
    assert "truncated" in failures[0]["reason"] or "fewer samples" in failures[0]["reason"]
    assert "flat line" in failures[1]["reason"]
    rows = {r["record"]: r for r in csv.DictReader(
        (tmp_path / "r" / "cohort.csv").read_text().splitlines())}
    assert rows["a01"]["start"] == "2024-03-01T08:00:00" and rows["a01"]["patient"] == "P1"
    assert rows["ward/p0"]["status"] == "ok" and rows["ward/p1"]["status"] == "failed"
    assert rows["ward/p2"]["status"] == "ok" and rows["ward/p2"]["patient"] == ""
    assert not (tmp_path / "r" / "ward" / "p1.json").exists()


def test_inputs_folders_lists_and_manifests(tmp_path: Path) -> None:
    for name in ("a/x/1.hea", "a/x/1.dat", "a/2.csv", "a/REFERENCE.csv", "a/.hidden/3.hea",
                 "a/out/4.hea", "b/5.npy"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    (tmp_path / "list.txt").write_text(f"\n# comment\nb/5.npy\n{tmp_path / 'a/2.csv'}\n")
    records, problems = discover([tmp_path / "a", tmp_path / "list.txt",
                                  tmp_path / "nothing.txt"], exclude=tmp_path / "a" / "out")
    assert [r.key for r in records] == ["a/2", "a/x/1", "b/5"]  # each once, in input order
    assert [str(p) for p in problems] == [f"{tmp_path / 'nothing.txt'}: no such file"]
    records, _ = discover([tmp_path / "a"])
    assert [r.key for r in records] == ["2", "out/4", "x/1"]


def test_cluster_without_dask_says_how_to_install(cohort: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    assert main(["scan", str(cohort), "--out", str(tmp_path / "r"),
                 "--cluster", "tcp://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "afdetect: error: --cluster needs Dask: pip install 'afdetect[cluster]' " \
                  "(Dask distributed)"


def test_options_that_need_a_cohort(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(cohort), "--jobs", "2"]) == 1
    assert "give --out RESULTS too" in capsys.readouterr().err


def test_reports_and_beats_per_recording(cohort: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    assert main(["scan", str(cohort / "a01.hea"), "--out", str(out), "--jobs", "1",
                 "--report", "--beats", "qrs"]) == 0
    pdf = out / "a01.report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    beats = wfdb.rdann(str(out / "a01"), "qrs")
    assert 60 <= len(beats.sample) <= 100 and set(beats.symbol) == {"N"}  # 60 s of AF
    assert main(["scan", str(cohort), "--out", str(out), "--report", "x.pdf"]) != 0
    assert "--report FILE: not with --out" in capsys.readouterr().err
    assert main(["scan", str(cohort), "--out", str(out), "--beats", "af"]) != 0
    assert "--beats af" in capsys.readouterr().err
