"""Outputs: no output lands on an input, every destination is checked before the first is
written, each file is replaced only by a complete verified one (a full disk, a SIGKILL),
and every refusal is one line."""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, SAMPLES, afdetect_command
from test_cli import assert_clean_error, run

from afdetect.atomic import (
    TEMP_PREFIX,
    OutputError,
    atomic_path,
    remove_stale_temporaries,
    write_bytes_atomic,
    write_text_atomic,
)
from afdetect.errors import InputError
from afdetect.model.io import load_float_model
from afdetect.models import builtin_path

MITDB_100 = DATA / "mitdb" / "100"
PNG_MAGIC, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def _one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The single error line of a refused run (progress bars aside)."""
    assert_clean_error(result, *fragments)
    lines = [x for x in result.stderr.replace("\r", "\n").splitlines()
             if x.startswith("afdetect:")]
    assert len(lines) == 1, result.stderr
    assert TEMP_PREFIX not in result.stderr
    return lines[0]


@pytest.fixture()
def record(tmp_path: Path) -> Path:
    """A copy of MIT-BIH 100 (header, signal, the cardiologist's 100.atr) in tmp_path."""
    folder = tmp_path / "rec"
    folder.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(DATA / "mitdb" / f"100.{ext}", folder)
    return folder / "100"


def _short_record(folder: Path, name: str = "short", seconds: float = 120.0) -> Path:
    """The first ``seconds`` of MIT-BIH 100 as WFDB record ``folder/name`` (quick to scan),
    with its rhythm annotations."""
    folder.mkdir(parents=True, exist_ok=True)
    rec = wfdb.rdrecord(str(MITDB_100), physical=False, sampto=int(seconds * 360))
    wfdb.wrsamp(name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal,
                fmt=rec.fmt, adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(folder))
    wfdb.wrann(name, "atr", np.array([0, 2000]), symbol=["+", "+"], aux_note=["(N", "(AFIB"],
               fs=rec.fs, write_dir=str(folder))
    return folder / name


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _strays(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in f.iterdir()
            if p.name.startswith(TEMP_PREFIX)]


# --- no output may be an input ------------------------------------------------------------

def test_annotations_never_overwrite_the_reference_annotator(record: Path,
                                                             tmp_path: Path) -> None:
    before = _snapshot(record.parent)
    line = _one_line(run("scan", record, "--annotations", "atr", "--annotations-dir",
                         record.parent, "--csv", tmp_path / "ep.csv"), "100.atr",
                     "--reference atr", "nothing was written")
    assert "afd" in line
    # the default --annotations-dir is the current folder: the record's own, here
    _one_line(run("scan", "100", "--annotations", "atr", cwd=record.parent), "100.atr")
    # another reference annotator is protected the same way, even when it does not exist
    _one_line(run("scan", record, "--annotations", "afd", "--reference", "afd",
                  "--annotations-dir", record.parent), "100.afd", "--reference afd")
    # any other annotator's file that afdetect did not write: a beat file, say
    shutil.copy(record.with_suffix(".atr"), record.with_suffix(".qrs"))
    before = _snapshot(record.parent)
    _one_line(run("scan", record, "--annotations", "qrs", "--annotations-dir", record.parent),
              "100.qrs", "afdetect did not write")
    assert _snapshot(record.parent) == before
    assert not (tmp_path / "ep.csv").exists()


def test_a_rerun_replaces_its_own_annotations_beside_the_record(tmp_path: Path) -> None:
    rec = _short_record(tmp_path)
    for _ in range(2):
        result = run("scan", rec, "--annotations", "afd", "--annotations-dir", tmp_path)
        assert result.returncode == 0, result.stderr
    assert set(wfdb.rdann(str(rec), "afd").symbol) == {"+"}
    assert wfdb.rdann(str(rec), "atr").aux_note == ["(N", "(AFIB"]  # the reference, as it was


def test_no_output_may_be_an_input_by_path_link_or_companion(record: Path,
                                                             tmp_path: Path) -> None:
    signal_csv = tmp_path / "x.csv"
    np.savetxt(signal_csv, 0.1 * np.sin(np.arange(300 * 40) / 30))
    os.link(signal_csv, tmp_path / "hard.csv")
    (tmp_path / "soft.png").symlink_to(signal_csv)
    (tmp_path / "header.png").symlink_to(record.with_suffix(".hea"))
    (tmp_path / "signal.png").symlink_to(SAMPLES / "A00001.mat")
    before = signal_csv.read_bytes(), _snapshot(record.parent)
    for args, named in [
        (["scan", signal_csv, "--fs", "300", "--csv", signal_csv], "x.csv"),
        (["scan", signal_csv, "--fs", "300", "--csv", tmp_path / "hard.csv"], "hard.csv"),
        (["scan", signal_csv, "--fs", "300", "--plot", tmp_path / "soft.png"], "soft.png"),
        (["predict", signal_csv, "--fs", "300", "--csv", tmp_path / "hard.csv"], "hard.csv"),
        (["scan", record, "--csv", record.with_suffix(".dat")], "100.dat"),
        (["scan", record.parent, "--plot", tmp_path / "header.png"], "header.png"),
        (["predict", record.with_suffix(".hea"), "--csv", record.with_suffix(".atr")],
         "100.atr"),
        (["evaluate", "--data", SAMPLES, "--plot", tmp_path / "signal.png"], "signal.png"),
        (["export", "--format", "onnx", "--model", builtin_path("float"), "--out",
          builtin_path("float")], "float.pt"),
    ]:
        _one_line(run(*args), named, "is an input of this run")
    assert (signal_csv.read_bytes(), _snapshot(record.parent)) == before


def test_every_destination_is_checked_before_the_first_is_written(record: Path,
                                                                 tmp_path: Path) -> None:
    table = tmp_path / "ep.csv"
    table.write_text("the previous table\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _one_line(run("scan", record, "--csv", table, "--annotations", "afd",
                  "--annotations-dir", blocker), "a-file is a file, not a folder")
    _one_line(run("scan", record, "--csv", tmp_path), f"{tmp_path}: is a folder")
    two = tmp_path / "two"
    for sub in ("a", "b"):
        _short_record(two / sub, "same")
    _one_line(run("scan", two / "a" / "same", two / "b" / "same", "--annotations", "afd",
                  "--annotations-dir", tmp_path / "ann"), "same.afd", "written twice")
    assert table.read_text() == "the previous table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "ep.csv", "rec", "two"]


@pytest.mark.parametrize("name", ["a/b", "a.b", "..", "", "x y", "a" * 33])
def test_an_annotator_name_that_is_no_plain_suffix_is_refused_up_front(
        record: Path, tmp_path: Path, name: str) -> None:
    _one_line(run("scan", record, "--annotations", name, "--csv", tmp_path / "ep.csv"),
              "--annotations", "letters, digits or underscores")
    assert not (tmp_path / "ep.csv").exists()


def test_an_unknown_figure_suffix_is_refused_up_front(record: Path, tmp_path: Path) -> None:
    for command in (["scan", record, "--csv", tmp_path / "t.csv"],
                    ["predict", record, "--csv", tmp_path / "t.csv"],
                    ["evaluate", "--data", SAMPLES]):
        _one_line(run(*command, "--plot", tmp_path / "t.xyz"), "t.xyz",
                  "unknown figure format .xyz")
    assert list(tmp_path.iterdir()) == [record.parent]


# --- what is written ---------------------------------------------------------------------

def test_scan_writes_annotators_with_digits_names_with_spaces_and_each_format(
        tmp_path: Path) -> None:
    rec = _short_record(tmp_path / "in")
    strip = tmp_path / "in" / "my strip.v2.csv"
    np.savetxt(strip, wfdb.rdrecord(str(rec), physical=True).p_signal[:, 0])
    out = tmp_path / "out"
    result = run("scan", rec.with_suffix(".hea"), strip, "--fs", "360", "--annotations",
                 "afd2", "--annotations-dir", out, "--csv", out / "ep.csv",
                 "--plot", out / "t.svg")
    assert result.returncode == 0, result.stderr
    for name in ("short", "my strip.v2"):
        ann = wfdb.rdann(str(out / name), "afd2")
        assert ann.symbol and set(ann.symbol) == {"+"}
        assert (out / f"t_{name}.svg").read_text().rstrip().endswith("</svg>")
    rows = list(csv.DictReader((out / "ep.csv").open()))
    assert {r["record"] for r in rows} == {"short", "my strip.v2"}
    result = run("scan", rec, "--plot", out / "one.pdf")  # one recording: the name given
    assert result.returncode == 0, result.stderr
    assert (out / "one.pdf").read_bytes().startswith(b"%PDF")
    assert _strays(out) == []


def test_evaluate_episodes_plot_draws_the_burden_per_record(tmp_path: Path) -> None:
    _short_record(tmp_path / "data", "r1")
    _short_record(tmp_path / "data", "r2")
    result = run("evaluate", "--episodes", "--data", tmp_path / "data", "--plot",
                 tmp_path / "burden.png")
    assert result.returncode == 0, result.stderr
    png = (tmp_path / "burden.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and png.endswith(PNG_END) and len(png) > 5000


def test_exit_code_is_zero_only_when_every_input_gave_its_outputs(tmp_path: Path) -> None:
    rec = _short_record(tmp_path / "in")
    bad = tmp_path / "in" / "bad.csv"
    bad.write_text("not,a,signal\n")
    result = run("scan", rec, bad, "--fs", "360", "--csv", tmp_path / "ep.csv")
    assert result.returncode == 1
    assert "bad.csv" in result.stderr and "1 scanned, 1 failed" in result.stderr
    assert {r["record"] for r in csv.DictReader((tmp_path / "ep.csv").open())} == {"short"}
    # every input failed: the previous table stays, exit 1
    (tmp_path / "ep.csv").write_text("previous\n")
    assert run("scan", bad, "--fs", "360", "--csv", tmp_path / "ep.csv").returncode == 1
    assert (tmp_path / "ep.csv").read_text() == "previous\n"


# --- the writer itself -------------------------------------------------------------------

def test_a_failed_check_or_sync_keeps_the_old_file_and_names_the_destination(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "out.csv"
    write_text_atomic(dest, "old\n")

    def no_space(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("afdetect.atomic.fsync_path", no_space)
    with pytest.raises(OutputError, match=r"out\.csv: could not be written \(no space left "
                                          r"on device\); the previous out\.csv is unchanged"):
        write_text_atomic(dest, "new\n")
    monkeypatch.undo()

    def short(tmp: Path) -> None:
        raise ValueError("3 of 4 bytes")

    with pytest.raises(OutputError, match="did not read back whole: 3 of 4 bytes"), \
            atomic_path(dest, short) as tmp:
        tmp.write_text("new\n")
    with pytest.raises(OutputError, match="it is empty"), atomic_path(dest) as tmp:
        tmp.write_bytes(b"")
    assert dest.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_leftovers_of_killed_runs_are_removed_but_not_a_live_write(tmp_path: Path) -> None:
    stale = tmp_path / f"{TEMP_PREFIX}dead"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"\x89PNG half")
    with atomic_path(tmp_path / "live.txt") as tmp:
        tmp.write_text("being written")
        remove_stale_temporaries(tmp_path)  # another writer's clean-up meanwhile
        assert tmp.exists() and not stale.exists()
    assert (tmp_path / "live.txt").read_text() == "being written"
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "live.txt"]


# --- a zip bomb in place of a model ------------------------------------------------------

def _bomb(path: Path, declared: int | None = None) -> Path:
    """A zip whose one entry inflates 1000 to 1 (or, with ``declared``, claims that many
    bytes in its central directory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x00" * (2**20 if declared is None else 10))
    if declared is not None:
        data = bytearray(path.read_bytes())
        central = data.rindex(b"PK\x01\x02")
        data[central + 24:central + 28] = declared.to_bytes(4, "little")
        path.write_bytes(bytes(data))
    return path


def test_a_zip_bomb_model_is_refused_before_it_inflates(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"compressed .* to 1"):
        load_float_model(_bomb(tmp_path / "ratio.pt"))
    declared = _bomb(tmp_path / "huge.pt", declared=0xF000_0000)  # 3.75 GiB
    with pytest.raises(InputError, match="would unpack to 3,840 MiB"):
        load_float_model(declared)
    start = time.monotonic()
    _one_line(run("predict", SAMPLES / "A00001.hea", "--model", declared), "huge.pt",
              "refused")
    assert time.monotonic() - start < 60


# --- full disk ---------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system but about ``leave`` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with (folder / "filler").open("wb") as fh:
        fh.write(b"\x00" * max(0, free - leave))


def _valid(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix == ".png":
        return data.startswith(PNG_MAGIC) and data.endswith(PNG_END)
    if path.suffix == ".csv":
        return data.startswith(b"record,") and data.endswith(b"\n")
    ann = wfdb.rdann(str(path.with_suffix("")), path.suffix.lstrip("."))
    return len(ann.sample) > 0 and set(ann.symbol) == {"+"}


def test_a_full_disk_leaves_every_previous_output_whole(small_disk: Path,
                                                        tmp_path: Path) -> None:
    rec = _short_record(tmp_path / "in")
    second = _short_record(tmp_path / "in", "other")
    args = ["scan", rec, second, "--annotations", "afd", "--annotations-dir", small_disk,
            "--csv", small_disk / "ep.csv"]
    assert run(*args).returncode == 0  # the previous results, then the disk fills up
    before = _snapshot(small_disk)
    _fill(small_disk, 0)
    result = run(*args, "--plot", small_disk / "t.png")
    assert result.returncode == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("afdetect: error:")]
    assert len(errors) == 5, result.stderr  # the table, two annotation files, two figures
    assert all("no space left on device" in x for x in errors)
    for name in ("ep.csv", "short.afd", "other.afd", "t_short.png", "t_other.png"):
        assert any(f"{small_disk / name}: could not be written" in x for x in errors), name
    assert "Traceback" not in result.stderr and TEMP_PREFIX not in result.stderr
    after = _snapshot(small_disk)
    assert {k: v for k, v in after.items() if k != "filler"} == {
        k: v for k, v in before.items()}
    # nearly full: what fits is written whole, the rest keeps its previous version
    (small_disk / "filler").unlink()
    _fill(small_disk, 8 * 1024)
    result = run(*args, "--plot", small_disk / "t.png")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for path in small_disk.iterdir():
        if path.name != "filler":
            assert _valid(path), path.name
    assert _strays(small_disk) == []


# --- SIGKILL and SIGINT ------------------------------------------------------------------

def test_sigkill_at_any_moment_leaves_no_partial_output(tmp_path: Path) -> None:
    rec = _short_record(tmp_path / "in", seconds=180.0)
    out = tmp_path / "out"
    out.mkdir()
    args = ["scan", str(rec), "--annotations", "afd", "--annotations-dir", str(out), "--csv",
            str(out / "ep.csv"), "--plot", str(out / "t.png")]
    start = time.monotonic()
    assert run(*args).returncode == 0
    whole = time.monotonic() - start
    rng = random.Random(0)
    for i in range(4):
        for name in ("ep.csv", "short.afd", "t.png"):
            (out / name).unlink(missing_ok=True)
        proc = subprocess.Popen([*afdetect_command(), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if i % 2:  # at any moment of the run
            time.sleep(rng.uniform(0.2, 1.0) * whole)
        else:  # among the writes: the table comes first, then annotations and figure
            while not (out / "ep.csv").exists() and proc.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for name in ("ep.csv", "short.afd", "t.png"):
            assert not (out / name).exists() or _valid(out / name), name
    left = out / f"{TEMP_PREFIX}killed"  # what a kill inside a write leaves (rarely hit)
    left.mkdir()
    (left / "t.png").write_bytes(PNG_MAGIC)
    assert run(*args).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["ep.csv", "short.afd", "t.png"]
    assert _strays(out, rec.parent) == []


def test_ctrl_c_during_start_up_is_one_line(tmp_path: Path) -> None:
    rng = random.Random(0)
    for _ in range(8):
        proc = subprocess.Popen([*afdetect_command(), "scan", str(MITDB_100), "--csv",
                                 str(tmp_path / "ep.csv")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
        # Before afdetect's first line runs, Python itself owns Ctrl-C (it may print its
        # own traceback from importlib); from then on it is one line and exit 130.
        if "Traceback" in err:
            assert "afdetect/cli.py" not in err and proc.returncode != 130, err
        elif proc.returncode == 130:
            assert err.strip().splitlines()[-1].startswith("afdetect: interrupted"), err
        else:
            assert proc.returncode in (-signal.SIGINT, 0), err
