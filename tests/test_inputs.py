"""Every input path refuses what it cannot read correctly, in one line, and reads the rest
the same way in ``predict`` and ``scan``: WFDB header fields, units, missing samples,
negative gains, multi-segment records, CSV layouts, folders and record names."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA, synthetic_ecg
from test_cli import assert_clean_error, run

from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.errors import InputError
from afdetect.io.records import open_stream, read_record

MITDB_100 = DATA / "mitdb" / "100"


def _wfdb(folder: Path, name: str, counts: np.ndarray, *, fs: str = "360",
          gain: str = "200", fmt: str = "16", units: str = "mV") -> Path:
    """A one-lead WFDB record written by hand (so any header field can be made wrong)."""
    np.asarray(counts, dtype="<i2").tofile(folder / f"{name}.dat")
    (folder / f"{name}.hea").write_text(
        f"{name} 1 {fs} {len(counts)}\n{name}.dat {fmt} {gain}(0)/{units} 16 0 0 0 0 ECG\n")
    return folder / f"{name}.hea"


def _counts(seconds: float = 60.0, fs: float = 360.0, gain: float = 200.0) -> np.ndarray:
    return np.round(synthetic_ecg(seconds, fs) * gain).astype(np.int16)


# 1. header fields ------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "message"), [
    ("fs", "-300", "sampling rate '-300' is not a positive number"),
    ("fs", "abc", "sampling rate 'abc'"),
    ("fs", "nan", "sampling rate 'nan'"),
    ("fs", "inf", "sampling rate 'inf'"),
    ("fs", "0", "sampling rate '0'"),
    ("gain", "0", "gain '0' adu per unit is not usable"),
    ("gain", "1e-300", "gain '1e-300'"),
    ("gain", "1e300", "gain '1e300'"),
    ("gain", "nan", "gain 'nan'"),
    ("gain", "abc", "gain 'abc' is not a number"),
    ("gain", "200(x)", "baseline 'x' is not a whole number"),
    ("units", "mmHg", "is in 'mmHg', not a voltage"),
    ("fmt", "999", "storage format '999'"),
])
def test_bad_header_fields_are_refused_naming_file_field_and_value(
        tmp_path: Path, field: str, value: str, message: str) -> None:
    kwargs = {"gain": value.split("(")[0]} if field == "gain" else {field: value}
    header = _wfdb(tmp_path, "rec", _counts(10.0), **kwargs)
    if field == "gain" and "(" in value:
        header.write_text(header.read_text().replace("200(0)", value))
    for reader in (read_record, open_stream):
        with pytest.raises(InputError, match=r"rec\.hea: .*" + message.replace("(", r"\(")):
            reader(header)


def test_header_without_rate_or_length(tmp_path: Path) -> None:
    header = _wfdb(tmp_path, "rec", _counts(10.0))
    header.write_text(header.read_text().replace("rec 1 360 3600", "rec 1"))
    with pytest.raises(InputError, match=r"rec\.hea: record line: no sampling rate \(WFDB "
                                         r"would assume 250 Hz\)"):
        read_record(header, fs=360)
    header.write_text(header.read_text().replace("rec 1", "rec 1 360"))
    with pytest.raises(InputError, match=r"rec\.hea: record line: no number of samples"):
        read_record(header)
    header.write_text(header.read_text().replace("rec 1 360", "rec 1 360 3600"))
    assert read_record(header).fs == 360


def test_header_units_are_converted_to_mv(tmp_path: Path) -> None:
    counts = _counts(10.0)
    mv = read_record(_wfdb(tmp_path, "mv", counts)).signal
    assert np.allclose(read_record(_wfdb(tmp_path, "uv", counts, gain="0.2", units="uV")
                                   ).signal, mv)
    assert np.allclose(read_record(_wfdb(tmp_path, "v", counts, gain="200000", units="V")
                                   ).signal, mv)
    assert open_stream(tmp_path / "uv.hea").counts_per_mv == pytest.approx(200.0)


def test_values_that_cannot_be_millivolts_are_refused(tmp_path: Path) -> None:
    ecg = synthetic_ecg(20.0, 300.0)
    np.save(tmp_path / "adc.npy", np.round(ecg * 1000).astype(np.int16))  # ADC counts
    (tmp_path / "uv.csv").write_text("\n".join(f"{v * 1000:.1f}" for v in ecg))  # uV
    _wfdb(tmp_path, "gain1", np.round(ecg * 1000), fs="300", gain="1")  # gain wrong
    result = run("predict", tmp_path, "--fs", "300")
    assert_clean_error(result, "adc.npy: typical peak-to-peak amplitude",
                       "uv.csv: typical peak-to-peak amplitude", "gain1.hea: typical",
                       "microvolts or ADC counts")
    assert result.stderr.count("afdetect: error:") == 3
    # stated in the CSV header, the unit is converted
    (tmp_path / "stated.csv").write_text("ecg_uV\n" + "\n".join(f"{v * 1000:.1f}" for v in ecg))
    assert np.allclose(read_record(tmp_path / "stated.csv", fs=300).signal, ecg, atol=1e-4)
    long = np.tile(np.round(ecg * 1000).astype(np.int16), 3)
    np.save(tmp_path / "long_adc.npy", long)
    assert_clean_error(run("scan", tmp_path / "long_adc.npy", "--fs", "300"),
                       "long_adc.npy: typical peak-to-peak amplitude")


# 2. missing samples: one rule in every command ---------------------------------------------

def test_wfdb_no_sample_value_is_missing_in_predict_and_scan(tmp_path: Path) -> None:
    counts = _counts(60.0)
    counts[7200:7300] = -32768  # WFDB's "no sample" in format 16, 20 s in
    header = _wfdb(tmp_path, "gap", counts)
    expected = "missing samples (WFDB's 'no sample' value -32768): 100 in the stretch read, " \
               "the first at 20.000 s"
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_record(header)
    for command in ("predict", "scan"):
        result = run(command, header)
        assert_clean_error(result, f"gap.hea: {expected}")
        assert result.stderr.count("afdetect: error:") == 1


def test_nan_is_missing_in_npy_and_csv(tmp_path: Path) -> None:
    x = synthetic_ecg(60.0, 300.0)
    x[900] = np.nan
    np.save(tmp_path / "gap.npy", x)
    (tmp_path / "gap.csv").write_text("\n".join("" if np.isnan(v) else f"{v:.5f}" for v in x))
    (tmp_path / "cell.csv").write_text("t,ecg\n" + "\n".join(
        f"{i / 300:.5f}," + ("" if np.isnan(v) else f"{v:.5f}") for i, v in enumerate(x)))
    for command in ("predict", "scan"):
        result = run(command, tmp_path / "gap.npy", tmp_path / "gap.csv", tmp_path / "cell.csv",
                     "--fs", "300")
        assert_clean_error(result, "gap.npy: missing samples (NaN): 1 in the stretch read, "
                                   "the first at 3.000 s",
                           "gap.csv: line 901: empty row amid the samples",
                           "cell.csv: line 902: missing sample '' in column 'ecg'")
        assert result.stderr.count("afdetect: error:") == 3


# 3. a negative gain: applied, sign included, in both commands ----------------------------

def test_negative_gain_inverts_the_signal_in_predict_and_scan(tmp_path: Path) -> None:
    counts = _counts(120.0)
    neg = _wfdb(tmp_path, "neg", counts, gain="-200")
    pos = _wfdb(tmp_path, "pos", -counts)
    assert np.array_equal(read_record(neg).signal, read_record(pos).signal)
    assert np.array_equal(open_stream(neg).read(0, 43200), open_stream(pos).read(0, 43200))
    assert open_stream(neg).counts_per_mv == 200.0
    outs = []
    for header in (neg, pos):
        result = run("scan", header, "--json")
        assert result.returncode == 0, result.stderr
        outs.append(json.loads(result.stdout)["recordings"][0]["windows"])
    assert outs[0] == outs[1]


# 4. multi-segment records, read in chunks --------------------------------------------------

def _segments(folder: Path, bounds: list[int], gains: list[float] | None = None,
              gap: int = 0) -> Path:
    """Record 100 cut into segments (``gap`` samples of no signal before the last one)."""
    rec = wfdb.rdrecord(str(MITDB_100), physical=False, sampto=bounds[-1])
    lines = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        scale = (gains[i] if gains else 200.0) / 200.0
        d = np.round((rec.d_signal[a:b] - 1024) * scale).astype(np.int64)
        wfdb.wrsamp(f"seg{i}", fs=360, units=rec.units, sig_name=rec.sig_name, d_signal=d,
                    fmt=["16", "16"], adc_gain=[200.0 * scale] * 2, baseline=[0, 0],
                    write_dir=str(folder))
        if gap and i == len(bounds) - 2:
            lines.append(f"~ {gap}")
        lines.append(f"seg{i} {b - a}")
    total = bounds[-1] + gap
    (folder / "multi.hea").write_text(f"multi/{len(lines)} 2 360 {total}\n" + "\n".join(lines)
                                      + "\n")
    return folder / "multi.hea"


def test_multi_segment_records_stream_like_single_ones(tmp_path: Path) -> None:
    bounds = [0, 5000, 13000, 36000]
    multi = _segments(tmp_path, bounds)
    single = open_stream(MITDB_100)
    stream = open_stream(multi)
    assert (stream.n_samples, stream.fs, stream.lead) == (36000, 360.0, "MLII")
    for a, b in ((4990, 5010), (0, 36000), (12000, 14000)):
        assert np.array_equal(stream.read(a, b), single.read(a, b))
    assert np.allclose(read_record(multi).signal, read_record(MITDB_100).signal[:36000])
    assert np.array_equal(open_stream(multi, lead="V5").read(0, 100),
                          open_stream(MITDB_100, lead="V5").read(0, 100))
    result = run("scan", multi, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recordings"][0]["duration_s"] == 100.0
    # segments at another gain are rescaled to the first one's
    (tmp_path / "b").mkdir()
    rescaled = open_stream(_segments(tmp_path / "b", bounds, gains=[200.0, 400.0, 1000.0]))
    assert np.array_equal(rescaled.read(0, 36000), single.read(0, 36000))


def test_a_gap_in_a_multi_segment_record_is_missing(tmp_path: Path) -> None:
    multi = _segments(tmp_path, [0, 20000, 30000], gap=360)
    stream = open_stream(multi)
    assert stream.n_samples == 30360
    with pytest.raises(InputError, match=r"missing samples \(a gap in the multi-segment "
                                         r"record\): 360 .* at 55.556 s"):
        stream.read(19000, 21000)
    for command in ("predict", "scan"):
        assert_clean_error(run(command, multi), "multi.hea: missing samples (a gap")


# 5. --fs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-250", "nan", "inf"])
def test_fs_must_be_a_positive_finite_rate(tmp_path: Path, value: str) -> None:
    np.save(tmp_path / "x.npy", synthetic_ecg(60.0, 250.0))
    for command in ("predict", "scan"):
        result = run(command, tmp_path / "x.npy", "--fs", value)
        assert_clean_error(result, f"afdetect: error: --fs {float(value):g}: the sampling rate "
                                   "must be a positive, finite number of Hz")
        assert result.stderr.count("afdetect: error:") == 1
    with pytest.raises(InputError, match="not a positive number of Hz"):
        open_stream(tmp_path / "x.npy", fs=float(value))


# 6. CSV as users have it -------------------------------------------------------------------

def _rows(fs: float, seconds: float, fmt: str) -> tuple[np.ndarray, str]:
    x = synthetic_ecg(seconds, fs)
    return x, "\n".join(fmt.format(t=i / fs, ms=1000 * i / fs, i=i, x=v, y=-v)
                        for i, v in enumerate(x))


def test_csv_time_column_gives_the_rate_and_is_no_lead(tmp_path: Path) -> None:
    x, body = _rows(250.0, 40.0, "{t:.4f},{x:.5f},{y:.5f}")
    (tmp_path / "t.csv").write_text("time_s,MLII,V1\n" + body)
    rec = read_record(tmp_path / "t.csv")
    assert (rec.fs, rec.lead) == (250.0, "MLII")
    assert np.allclose(rec.signal, x, atol=1e-5)
    v1 = read_record(tmp_path / "t.csv", lead="V1")
    assert v1.lead == "V1" and np.allclose(v1.signal, -x, atol=1e-5)
    assert read_record(tmp_path / "t.csv", lead=1).lead == "V1"
    assert read_record(tmp_path / "t.csv", fs=250).fs == 250
    with pytest.raises(InputError, match=r"t\.csv: --fs 300 disagrees with the time column "
                                         r"'time_s' \(250 Hz\)"):
        read_record(tmp_path / "t.csv", fs=300)
    with pytest.raises(InputError, match="no lead named 'V2' \\(leads: MLII, V1\\)"):
        read_record(tmp_path / "t.csv", lead="V2")
    # milliseconds, a clock, and an unnamed ramp are time columns too
    _, body = _rows(360.0, 20.0, "{ms:.3f},{x:.5f}")
    (tmp_path / "ms.csv").write_text("Time (ms),ECG\n" + body)
    assert read_record(tmp_path / "ms.csv").fs == 360.0
    _, body = _rows(250.0, 20.0, "{t:.4f},{x:.5f}")
    (tmp_path / "ramp.csv").write_text(body)
    assert read_record(tmp_path / "ramp.csv").fs == 250.0
    _, body = _rows(250.0, 20.0, "{i},{x:.5f}")
    (tmp_path / "index.csv").write_text(body)  # sample numbers: no rate, not a lead
    rec = read_record(tmp_path / "index.csv", fs=250)
    assert np.allclose(rec.signal, synthetic_ecg(20.0, 250.0), atol=1e-5)
    with pytest.raises(InputError, match="pass --fs"):
        read_record(tmp_path / "index.csv")


def test_physionet_export_with_quotes_units_row_and_clock(tmp_path: Path) -> None:
    x = synthetic_ecg(20.0, 360.0)
    rows = [f"'{int(i / 360 // 60)}:{i / 360 % 60:06.3f}',{v:.3f},{v / 2:.3f}"
            for i, v in enumerate(x)]
    (tmp_path / "atm.csv").write_text("'Elapsed time','MLII','V5'\n'hh:mm:ss.mmm','mV','mV'\n"
                                      + "\n".join(rows) + "\n")
    rec = read_record(tmp_path / "atm.csv", lead="V5")
    assert rec.fs == 360.0 and np.allclose(rec.signal, x / 2, atol=1e-3)
    (tmp_path / "uv.csv").write_text("time,ecg\ns,uV\n" + "\n".join(
        f"{i / 360:.5f},{v * 1000:.1f}" for i, v in enumerate(x)))
    assert np.allclose(read_record(tmp_path / "uv.csv").signal, x, atol=1e-4)


def test_decimal_commas_and_semicolons(tmp_path: Path) -> None:
    x, body = _rows(250.0, 20.0, "{t:.4f};{x:.5f}")
    (tmp_path / "eu.csv").write_text("Zeit_s;EKG\n" + body.replace(".", ","))
    (tmp_path / "eu_time.csv").write_text("time;EKG\n" + body.replace(".", ","))
    assert np.allclose(read_record(tmp_path / "eu.csv", fs=250, lead="EKG").signal, x,
                       atol=1e-5)
    assert read_record(tmp_path / "eu_time.csv").fs == 250.0
    (tmp_path / "one.csv").write_text("\n".join(f"{v:.4f}".replace(".", ",") for v in x))
    assert np.allclose(read_record(tmp_path / "one.csv", fs=250).signal, x, atol=1e-4)
    (tmp_path / "named.csv").write_text("ecg\n" + "\n".join(f"{v:.4f}".replace(".", ",")
                                                            for v in x))
    assert np.allclose(read_record(tmp_path / "named.csv", fs=250).signal, x, atol=1e-4)
    (tmp_path / "mixed.csv").write_text("a;b\n0,5;1.5\n" * 10)
    with pytest.raises(InputError, match="mix decimal points and decimal commas"):
        read_record(tmp_path / "mixed.csv", fs=250)
    (tmp_path / "both.csv").write_text("\n".join(f"{v:.4f},{v:.4f}".replace(".", ",")
                                                 for v in x))
    with pytest.raises(InputError, match="both the decimal mark and the separator"):
        read_record(tmp_path / "both.csv", fs=250)


def test_csv_rows_must_match_the_header_and_time_must_not_jump(tmp_path: Path) -> None:
    _, body = _rows(250.0, 20.0, "{t:.4f},{x:.5f}")
    lines = body.splitlines()
    (tmp_path / "wide.csv").write_text("time_s,ecg\n" + "\n".join(
        [*lines[:99], lines[99] + ",7", *lines[100:]]))
    with pytest.raises(InputError, match=r"wide\.csv: line 101: 3 field\(s\), the header names "
                                         "2"):
        read_record(tmp_path / "wide.csv")
    (tmp_path / "jump.csv").write_text("time_s,ecg\n" + "\n".join(lines[:3000] + lines[3001:]))
    with pytest.raises(InputError, match=r"jump\.csv: line 3002: time goes from 11\.996 to "
                                         r"12\.004 s"):
        read_record(tmp_path / "jump.csv", fs=250)
    (tmp_path / "ramp_lead.csv").write_text("x,y\n" + "\n".join(
        f"{i},{i * 2}" for i in range(9000)))
    with pytest.raises(InputError, match="column 'x' rises steadily"):
        read_record(tmp_path / "ramp_lead.csv", fs=300)


def test_csv_streams_in_chunks(tmp_path: Path) -> None:
    x, body = _rows(300.0, 100.0, "{t:.5f},{x:.5f}")
    (tmp_path / "long.csv").write_text("time_s,ecg\n\n" + body + "\n\n")
    stream = open_stream(tmp_path / "long.csv")
    assert (stream.n_samples, stream.fs) == (30000, 300.0)
    for a, b in ((0, 10), (1020, 1030), (29990, 30000), (5000, 17000)):
        assert np.allclose(stream.read_mv(a, b), x[a:b], atol=1e-5)
    assert np.array_equal(np.concatenate(list(stream.chunks(4096))), stream.read(0, 30000))
    result = run("scan", tmp_path / "long.csv", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recordings"][0]["fs"] == 300


# 7. folders --------------------------------------------------------------------------------

def test_empty_folder_and_folder_named_like_a_record_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "rec.hea").mkdir()
    for command in ("predict", "scan"):
        result = run(command, tmp_path / "empty", tmp_path / "rec.hea")
        assert_clean_error(result, "empty: no recordings found in this folder",
                           "rec.hea: is a folder, not a record")
        assert result.stdout.strip() == "" or command == "scan"
    with pytest.raises(InputError, match="is a folder, not a record"):
        read_record(tmp_path / "rec.hea")


# 8. record names with dots and spaces ------------------------------------------------------

def test_record_names_with_dots_and_spaces(tmp_path: Path) -> None:
    counts = _counts(40.0)
    header = _wfdb(tmp_path, "rec_v2", counts)
    dotted = header.rename(tmp_path / "rec.v2.hea")  # a file name with a dot: fine
    assert read_record(dotted).name == "rec.v2" and read_record(tmp_path / "rec.v2").fs == 360
    result = run("scan", dotted, "--annotations", "afd", "--annotations-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "rec.v2.afd").is_file()
    assert_clean_error(run("scan", dotted, "--annotations", "a.b"), "annotator name")
    # names WFDB itself cannot parse are refused in one line, naming the field
    (tmp_path / "bad.v2.hea").write_text(dotted.read_text().replace("rec_v2 1", "rec.v2 1"))
    with pytest.raises(InputError, match=r"bad\.v2\.hea: record line: record name 'rec\.v2'"):
        read_record(tmp_path / "bad.v2.hea")
    (tmp_path / "my rec.hea").write_text(dotted.read_text().replace("rec_v2.dat", "my rec.dat"))
    with pytest.raises(InputError, match=r"my rec\.hea: signal line: storage format 'rec\.dat"):
        read_record(tmp_path / "my rec.hea")  # 'my rec.dat' is two fields of a header
    (tmp_path / "dots.hea").write_text(dotted.read_text().replace("rec_v2.dat", "a.b.dat"))
    assert_clean_error(run("predict", tmp_path / "my rec.hea", tmp_path / "bad.v2.hea",
                           tmp_path / "dots.hea"),
                       "my rec.hea: signal line", "bad.v2.hea: record line",
                       "dots.hea: signal line: file name 'a.b.dat' is not one wfdb reads")


def test_preprocess_never_overflows_on_extreme_gains(tmp_path: Path) -> None:
    header = _wfdb(tmp_path, "tiny", _counts(20.0), gain="1e-6")
    with pytest.raises(InputError, match="typical peak-to-peak"):
        preprocess(read_record(header), PreprocessConfig())
