"""Clock time: the start a recording carries (WFDB base time/date, EDF start, ``--start``)
and the ISO 8601 times of every episode and window in the JSON, CSV, text and plots."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import wfdb
from conftest import DATA

import afdetect
from afdetect.cli import main
from afdetect.clock import StartTime, wfdb_start
from afdetect.errors import AfdetectError
from afdetect.io.records import open_stream
from afdetect.plots import _clock_ticks

A01 = DATA / "aftdb" / "a01"  # header: "a01 2 128 7680 17:42:40" (a time, no date)
MITDB_100 = DATA / "mitdb" / "100"  # header without a start time


def test_start_times_parse_and_count_on() -> None:
    start = StartTime.parse("2020-01-02T23:59:30")
    assert start.has_date and start.iso() == "2020-01-02T23:59:30.000"
    assert start.at(45.25) == "2020-01-03T00:00:15.250"  # over midnight into the next day
    assert start.at(0.0006) == "2020-01-02T23:59:30.001"  # rounded, not truncated
    assert start.label(45.25) == "2020-01-03 00:00:15"
    assert StartTime.parse("2020-01-02 23:59:30.5").iso() == "2020-01-02T23:59:30.500"
    day = StartTime.parse("17:42:40")
    assert not day.has_date and day.iso() == "17:42:40.000"
    assert day.at(8 * 3600) == "01:42:40.000" and day.label(60) == "17:43:40"  # wraps
    assert day.span(0, 60) == {"start_time": "17:42:40.000", "end_time": "17:43:40.000"}
    for bad, problem in (("2020-01-02", "not an ISO 8601"), ("noon", "not an ISO 8601"),
                         ("2020-01-02T17:42:40+01:00", "without a timezone"),
                         ("17:42:40Z", "without a timezone")):
        with pytest.raises(AfdetectError, match=problem):
            StartTime.parse(bad)


def test_wfdb_headers_give_a_time_a_date_or_nothing(tmp_path: Path) -> None:
    start = wfdb_start(A01.with_suffix(".hea"))
    assert start is not None and not start.has_date and start.iso() == "17:42:40.000"
    assert wfdb_start(MITDB_100) is None
    assert open_stream(A01.with_suffix(".hea")).start == start
    assert open_stream(MITDB_100.with_suffix(".dat")).start is None
    rec = wfdb.rdrecord(str(A01), physical=False, channels=[0])
    wfdb.wrsamp("dated", fs=rec.fs, units=rec.units, sig_name=rec.sig_name,
                d_signal=rec.d_signal, fmt=rec.fmt, adc_gain=rec.adc_gain,
                baseline=rec.baseline, base_time=dt.time(17, 42, 40),
                base_date=dt.date(1999, 12, 31), write_dir=str(tmp_path))
    dated = open_stream(tmp_path / "dated")
    assert dated.start is not None and dated.start.iso() == "1999-12-31T17:42:40.000"


def _scan(capfd: pytest.CaptureFixture[str], *args: str | Path) -> dict:
    assert main(["scan", *map(str, args), "--json"]) == 0
    (rec,) = json.loads(capfd.readouterr().out)["recordings"]
    return rec


def test_scan_json_gives_clock_times_beside_the_seconds(
        capfd: pytest.CaptureFixture[str]) -> None:
    rec = _scan(capfd, A01.with_suffix(".hea"))
    assert rec["start_time"] == "17:42:40.000"
    clock = StartTime.parse("17:42:40")
    for item in rec["episodes"] + rec["windows"]:
        keys = list(item)
        assert keys[keys.index("end_s") + 1:keys.index("end_s") + 3] == ["start_time",
                                                                          "end_time"]
        assert item["start_time"] == clock.at(item["start_s"])
        assert item["end_time"] == clock.at(item["end_s"])
    assert rec["episodes"][-1]["end_time"] == "17:43:40.000"  # a01 lasts one minute
    assert rec["windows"][1]["start_time"] == clock.at(rec["windows"][1]["start_s"])


def test_without_a_start_the_clock_times_are_null(tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    rec = wfdb.rdrecord(str(MITDB_100), sampto=120 * 360, channels=[0])
    np.save(tmp_path / "strip.npy", rec.p_signal[:, 0])
    scan = _scan(capfd, tmp_path / "strip.npy", "--fs", "360")
    assert scan["start_time"] is None
    assert all(e["start_time"] is None and e["end_time"] is None
               for e in scan["episodes"] + scan["windows"])


def test_start_option_sets_or_overrides_the_clock(tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    rec = wfdb.rdrecord(str(A01), channels=[0])
    np.savetxt(tmp_path / "a01.csv", rec.p_signal[:, 0], delimiter=",")
    scan = _scan(capfd, tmp_path / "a01.csv", "--fs", "128", "--start", "2020-01-02T03:04:05")
    assert scan["start_time"] == "2020-01-02T03:04:05.000"
    assert scan["episodes"][0]["end_time"] == "2020-01-02T03:05:05.000"
    scan = _scan(capfd, A01.with_suffix(".hea"), "--start", "2021-06-07 08:00:00")
    assert scan["start_time"] == "2021-06-07T08:00:00.000"  # over the header's 17:42:40
    assert main(["scan", str(A01), "--start", "tomorrow"]) == 1
    out, err = capfd.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip() == ("afdetect: error: start time 'tomorrow': not an ISO 8601 local "
                           "time such as 2020-01-02T17:42:40 or 17:42:40")


def test_episodes_csv_and_text_output_carry_the_clock(tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "plain.npy", wfdb.rdrecord(str(A01), channels=[0]).p_signal[:, 0])
    assert main(["scan", str(A01), str(tmp_path / "plain.npy"), "--fs", "128", "--csv",
                 str(tmp_path / "ep.csv")]) == 0  # --fs 128 agrees with a01's header
    out, _ = capfd.readouterr()
    assert "a01: 0.02 h at 128 Hz, started 17:42:40, AF burden 100.0%" in out
    assert "clock start" in out and "17:43:40" in out
    plain = out[out.index("plain:"):]
    assert "started" not in plain and "clock start" not in plain
    with open(tmp_path / "ep.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["record", "label", "start_s", "end_s", "duration_s",
                             "start_time", "end_time"]
    by_record = {r["record"]: r for r in rows}
    assert by_record["a01"]["start_time"] == "17:42:40.000"
    assert by_record["a01"]["end_time"] == "17:43:40.000"
    assert by_record["plain"]["start_time"] == by_record["plain"]["end_time"] == ""


def test_plot_axis_ticks_fall_on_round_clock_times() -> None:
    fig, ax = plt.subplots()
    ax.set_xlim(0, 8.0)  # hours of a recording that starts at 22:17:30
    _clock_ticks(ax, StartTime.parse("2020-01-02T22:17:30"), 8 * 3600, 3600.0)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if 0 <= t.get_position()[0] <= 8]
    plt.close(fig)
    assert labels == ["23:00", "00:00", "01:00", "02:00", "03:00", "04:00", "05:00",
                      "06:00"]


def test_the_python_api_takes_a_start_for_arrays() -> None:
    signal = wfdb.rdrecord(str(A01), channels=[0]).p_signal[:, 0]
    result = afdetect.scan(signal, fs=128, start="09:30:00")
    assert result.start is not None and result.to_dict()["start_time"] == "09:30:00.000"
