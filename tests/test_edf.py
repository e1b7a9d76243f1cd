"""EDF, EDF+C and BDF input: files written by edfio from real records, read by afdetect
(pyedflib), through the library and the commands a user types."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afdetect.cli import main
from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import open_stream, read_record
from afdetect.models import load_classifier
from afdetect.monitor.scan import ScanConfig, scan_stream, step_model

edfio = pytest.importorskip("edfio")  # the writer: another library than the reader
pytest.importorskip("pyedflib")

MITDB_100 = DATA / "mitdb" / "100"
AFTDB_A01 = DATA / "aftdb" / "a01"
MINUTES = 3  # of MIT-BIH 100: enough for several scan windows, small to write and scan
START = dt.datetime(2021, 3, 4, 22, 15, 30)


def _mitdb(channels: int = 2) -> wfdb.Record:
    return wfdb.rdrecord(str(MITDB_100), sampto=MINUTES * 60 * 360, physical=False,
                         channels=list(range(channels)))


def _digital_signals(rec: wfdb.Record) -> list:
    """The record's stored 11-bit counts as EDF signals, unchanged: an EDF holding exactly
    the samples of the WFDB record (physical = (digital - baseline) / gain mV)."""
    signals = []
    for ch, name in enumerate(rec.sig_name):
        gain, base = rec.adc_gain[ch], rec.baseline[ch]
        signals.append(edfio.EdfSignal.from_digital(
            rec.d_signal[:, ch].astype(np.int16), rec.fs, label=name, physical_dimension="mV",
            physical_range=((-2048 - base) / gain, (2047 - base) / gain),
            digital_range=(-2048, 2047)))
    return signals


def _write_edf(path: Path, signals: list, *, plus: bool = False, date: bool = True) -> Path:
    """EDF (or EDF+C with ``plus``: an annotation signal and a TAL per data record)."""
    recording = edfio.Recording(startdate=START.date()) if date else None
    annotations = [edfio.EdfAnnotation(5.0, None, "recording start")] if plus else None
    edfio.Edf(signals, starttime=START.time(), recording=recording,
              annotations=annotations).write(path)
    return path


@pytest.fixture(scope="module")
def mitdb_edf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_edf(tmp_path_factory.mktemp("edf") / "100.edf", _digital_signals(_mitdb()))


@pytest.fixture(scope="module")
def mitdb_wfdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same minutes of MIT-BIH 100 as a WFDB record, written by wfdb."""
    rec = _mitdb()
    folder = tmp_path_factory.mktemp("wfdb")
    wfdb.wrsamp("100", fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal,
                fmt=rec.fmt, adc_gain=rec.adc_gain, baseline=rec.baseline,
                write_dir=str(folder))
    return folder / "100.hea"


def test_edf_holds_the_wfdb_samples_counts_and_start(mitdb_edf: Path) -> None:
    rec = _mitdb()
    stream = open_stream(mitdb_edf)
    assert (stream.fs, stream.n_samples, stream.lead) == (360.0, rec.sig_len, "MLII")
    assert stream.counts_per_mv == pytest.approx(200.0)
    chunks = np.concatenate(list(stream.chunks(10_000)))
    np.testing.assert_array_equal(chunks, rec.d_signal[:, 0])
    assert stream.start is not None and stream.start.iso() == "2021-03-04T22:15:30.000"
    whole = read_record(mitdb_edf)
    physical = wfdb.rdrecord(str(MITDB_100), sampto=rec.sig_len, channels=[0]).p_signal[:, 0]
    np.testing.assert_allclose(whole.signal, physical, atol=1e-9)


def test_edf_plus_continuous_with_annotations_and_lead_by_label(tmp_path: Path) -> None:
    path = _write_edf(tmp_path / "plus.edf", _digital_signals(_mitdb()), plus=True)
    assert path.read_bytes()[192:197] == b"EDF+C"
    stream = open_stream(path, lead="V5")  # the annotation signal is no lead
    assert stream.lead == "V5"
    np.testing.assert_array_equal(stream.read(1000, 1010), _mitdb().d_signal[1000:1010, 1])
    assert open_stream(path, lead=1).lead == "V5"
    with pytest.raises(InputError, match=r"lead index 2 out of range: the file has 2"):
        open_stream(path, lead=2)
    with pytest.raises(InputError, match=r"no lead named 'EDF Annotations' \(leads: MLII, V5\)"):
        open_stream(path, lead="EDF Annotations")
    assert read_record(path, lead="V5").lead == "V5"


def test_edf_plus_unknown_date_gives_a_time_of_day(tmp_path: Path) -> None:
    path = _write_edf(tmp_path / "nodate.edf", _digital_signals(_mitdb(1)), plus=True,
                      date=False)  # EDF+ writes "Startdate X": the date is unknown
    start = open_stream(path).start
    assert start is not None and not start.has_date
    assert start.iso() == "22:15:30.000" and start.at(7200) == "00:15:30.000"


def test_edf_plus_start_keeps_its_fraction_of_a_second(tmp_path: Path) -> None:
    signals = _digital_signals(_mitdb(1))
    with pytest.warns(UserWarning, match="EDF"):  # edfio: a fraction needs EDF+C
        edfio.Edf(signals, starttime=dt.time(22, 15, 30, 250_000),
                  recording=edfio.Recording(startdate=START.date())).write(tmp_path / "f.edf")
    start = open_stream(tmp_path / "f.edf").start
    assert start is not None and start.iso() == "2021-03-04T22:15:30.250"


def test_bdf_in_microvolts_reads_in_millivolts(tmp_path: Path) -> None:
    """a01 (AF, 128 Hz) as a 24-bit BDF in uV: physical values honoured, counts scaled to
    the scan's 16 bits."""
    ref = wfdb.rdrecord(str(AFTDB_A01), channels=[0])
    mv = ref.p_signal[:, 0]
    signal = edfio.BdfSignal(mv * 1000.0, ref.fs, label="ECG", physical_dimension="uV",
                             physical_range=(-20_000.0, 20_000.0))
    edfio.Bdf([signal], starttime=dt.time(17, 42, 40)).write(tmp_path / "a01.bdf")
    rec = read_record(tmp_path / "a01.bdf")
    np.testing.assert_allclose(rec.signal, mv, atol=1e-5)  # 40 mV / 2^24 resolution
    stream = open_stream(tmp_path / "a01.bdf")
    counts = stream.read(0, stream.n_samples)
    assert np.abs(counts).max() < 2**15  # 24-bit samples shifted into the front end's range
    assert stream.counts_per_mv == pytest.approx((2**24 - 1) / 40.0 / 2**8)
    np.testing.assert_allclose(counts / stream.counts_per_mv, mv, atol=0.002)


def test_edf_in_microvolts_reads_in_millivolts(tmp_path: Path) -> None:
    rec = wfdb.rdrecord(str(MITDB_100), sampto=60 * 360, channels=[0])
    signal = edfio.EdfSignal(rec.p_signal[:, 0] * 1000.0, rec.fs, label="MLII",
                             physical_dimension="uV", physical_range=(-5000.0, 5000.0))
    _write_edf(tmp_path / "uv.edf", [signal])
    np.testing.assert_allclose(read_record(tmp_path / "uv.edf").signal, rec.p_signal[:, 0],
                               atol=2e-4)  # 10 mV over 16 bits
    stream = open_stream(tmp_path / "uv.edf")
    assert stream.counts_per_mv == pytest.approx(65535 / 10.0)


def _discontinuous(path: Path, continuous: Path, gap_s: int = 100) -> Path:
    """An EDF+D: the EDF+C file with its header marked discontinuous and the timekeeping
    annotations of data records 100 on moved ``gap_s`` later (a gap in time)."""
    data = continuous.read_bytes()
    data = data[:192] + b"EDF+D" + data[197:]
    for record in range(179, 99, -1):  # three-digit onsets keep the TALs' lengths
        data = data.replace(b"+%d\x14\x14\x00" % record, b"+%d\x14\x14\x00" % (record + gap_s))
    path.write_bytes(data)
    return path


def _one_line_error(capfd: pytest.CaptureFixture[str], *args: str | Path) -> str:
    """Run the CLI; assert a clean failure: rc 1, nothing on stdout (EDFlib prints there
    when misused), one ``afdetect: error:`` line naming the file on stderr."""
    assert main([*map(str, args)]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith("afdetect")]
    assert len(lines) == 1 and lines[0].startswith("afdetect: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_bad_edf_files_are_refused_in_one_line(tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    continuous = _write_edf(tmp_path / "c.edf", _digital_signals(_mitdb()), plus=True)
    data = continuous.read_bytes()
    cases = {"d.edf": (_discontinuous(tmp_path / "d.edf", continuous), "EDF+D (discontinuous)")}
    (tmp_path / "cut.edf").write_bytes(data[:-1000])
    cases["cut.edf"] = (tmp_path / "cut.edf", "truncated: the header promises 180 data records")
    n_signals = int(data[252:256])
    at = 256 + 216 * n_signals  # samples per data record of the first signal
    (tmp_path / "fs0.edf").write_bytes(data[:at] + b"0       " + data[at + 8:])
    cases["fs0.edf"] = (tmp_path / "fs0.edf", "signal 'MLII' has 0 samples per data record")
    (tmp_path / "dur0.edf").write_bytes(data[:244] + b"0       " + data[252:])
    cases["dur0.edf"] = (tmp_path / "dur0.edf", "data record duration 0 s")
    (tmp_path / "words.edf").write_bytes(data[:236] + b"many    " + data[244:])
    cases["words.edf"] = (tmp_path / "words.edf", "number of data records is 'many'")
    (tmp_path / "dat.edf").write_bytes((MITDB_100.with_suffix(".dat")).read_bytes())
    cases["dat.edf"] = (tmp_path / "dat.edf", "not an EDF/BDF file: its header does not")
    (tmp_path / "empty.bdf").write_bytes(b"")
    cases["empty.bdf"] = (tmp_path / "empty.bdf", "header is incomplete")
    annotations = edfio.read_edf(continuous)
    annotations.drop_signals(["MLII", "V5"])
    annotations.write(tmp_path / "notes.edf")
    cases["notes.edf"] = (tmp_path / "notes.edf", "holds only annotations, no signal")
    for name, (path, problem) in cases.items():
        for command in ("scan", "predict"):
            line = _one_line_error(capfd, command, path)
            assert f"{name}: " in line and problem in line, line
    # a batch goes on past them
    assert main(["predict", str(cases["cut.edf"][0]), str(continuous), "--json"]) == 1
    out, err = capfd.readouterr()
    assert [p["record"] for p in json.loads(out)["predictions"]] == ["c"]
    assert "cut.edf: truncated" in err


def test_a_lead_that_is_not_a_voltage_is_refused(tmp_path: Path) -> None:
    rec = _mitdb(1)
    pressure = edfio.EdfSignal(np.full(rec.sig_len, 90.0), 360, label="BP",
                               physical_dimension="mmHg", physical_range=(0.0, 300.0))
    path = _write_edf(tmp_path / "bp.edf", [pressure, *_digital_signals(rec)])
    with pytest.raises(InputError, match=r"lead 'BP' is in 'mmHg', not a voltage"):
        open_stream(path)
    assert open_stream(path, lead="MLII").lead == "MLII"
    with pytest.raises(InputError, match=r"--fs 250 disagrees with the 360 Hz of lead 'MLII'"):
        read_record(path, lead="MLII", fs=250.0)


def test_scan_reads_an_edf_by_data_record_ranges(mitdb_edf: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A long recording is never loaded whole: each read asks for one chunk's samples."""
    import pyedflib

    asked: list[tuple[int, int]] = []
    real = pyedflib.EdfReader.readSignal

    def spy(self, chn, start=0, n=None, digital=False):  # type: ignore[no-untyped-def]
        asked.append((start, n))
        return real(self, chn, start, n, digital)

    monkeypatch.setattr(pyedflib.EdfReader, "readSignal", spy)
    scan = scan_stream(step_model(load_classifier("compressed")), open_stream(mitdb_edf),
                       ScanConfig(chunk_s=40.0))
    assert scan.duration_s == MINUTES * 60
    assert len(asked) == 5 and max(n for _, n in asked) == 40 * 360
    assert [s for s, _ in asked] == [0, 14400, 28800, 43200, 57600]


def test_scan_of_an_edf_equals_the_scan_of_the_same_samples_in_wfdb(
        mitdb_edf: Path, mitdb_wfdb: Path, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    def scan_json(path: Path) -> dict:
        assert main(["scan", str(path), "--json"]) == 0
        (rec,) = json.loads(capfd.readouterr().out)["recordings"]
        return rec

    wfdb_scan, edf_scan = scan_json(mitdb_wfdb), scan_json(mitdb_edf)
    assert edf_scan["start_time"] == "2021-03-04T22:15:30.000" and wfdb_scan["start_time"] is None

    def probabilities(rec: dict) -> np.ndarray:
        return np.array([list(w["probabilities"].values()) for w in rec["windows"]])

    def episodes(rec: dict) -> list:
        return [(e["label"], e["start_s"], e["end_s"]) for e in rec["episodes"]]

    assert episodes(edf_scan) == episodes(wfdb_scan)
    np.testing.assert_allclose(probabilities(edf_scan), probabilities(wfdb_scan), atol=1e-6)
    # as a recorder exports it: physical values, the exporter's own 16-bit scaling
    rec = wfdb.rdrecord(str(MITDB_100), sampto=MINUTES * 60 * 360, channels=[0])
    exported = _write_edf(tmp_path / "export.edf", [edfio.EdfSignal(
        rec.p_signal[:, 0], 360, label="MLII", physical_dimension="mV")], plus=True)
    exported_scan = scan_json(exported)
    assert episodes(exported_scan) == episodes(wfdb_scan)
    # another gain moves the front end's power-of-two scale against the signal's std, so
    # the model sees the same ECG up to a factor under 2: close, not equal (max 0.055 here)
    difference = np.abs(probabilities(exported_scan) - probabilities(wfdb_scan))
    assert difference.max() < 0.1 and difference.mean() < 0.01


def test_predict_and_scan_take_edf_and_bdf_files_and_folders(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    ref = wfdb.rdrecord(str(AFTDB_A01), channels=[0])
    signal = edfio.BdfSignal(ref.p_signal[:, 0], ref.fs, label="ECG", physical_dimension="mV")
    edfio.Bdf([signal], starttime=dt.time(17, 42, 40)).write(tmp_path / "a01.bdf")
    _write_edf(tmp_path / "100.edf", _digital_signals(_mitdb()))
    assert main(["predict", str(tmp_path), "--json"]) == 0
    predictions = {p["record"]: p for p in json.loads(capfd.readouterr().out)["predictions"]}
    assert set(predictions) == {"a01", "100"}
    assert main(["predict", str(AFTDB_A01) + ".hea", "--json"]) == 0
    (reference,) = json.loads(capfd.readouterr().out)["predictions"]
    assert predictions["a01"]["label"] == reference["label"] == "A"
    assert predictions["a01"]["probabilities"]["A"] == pytest.approx(
        reference["probabilities"]["A"], abs=0.01)
    assert main(["scan", str(tmp_path), "--json"]) == 0
    scans = {r["record"]: r for r in json.loads(capfd.readouterr().out)["recordings"]}
    assert scans["a01"]["af_burden"] == 1.0 and scans["100"]["af_burden"] == 0.0
    assert scans["a01"]["start_time"] == "17:42:40.000"  # "Startdate X": no date


def test_without_pyedflib_the_message_names_the_extra(mitdb_edf: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyedflib", None)  # import pyedflib now fails
    with pytest.raises(AfdetectError, match=r"needs pyedflib: pip install 'afdetect\[edf\]'"):
        open_stream(mitdb_edf)


@pytest.fixture(scope="module")
def small_edf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """a01 (one minute, two leads) as EDF+C."""
    rec = wfdb.rdrecord(str(AFTDB_A01))
    signals = [edfio.EdfSignal(rec.p_signal[:, ch], rec.fs, label=f"ECG{ch}",
                               physical_dimension="mV") for ch in range(2)]
    return _write_edf(tmp_path_factory.mktemp("fuzz") / "a01.edf", signals,
                      plus=True).read_bytes()


header_field = st.one_of(
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=8),
    st.sampled_from(["0", "-1", "1e9", "nan", "-32768", "32767", "99999999", " ", "EDF+D",
                     "EDF+C", "uV", "mV", "\xb5V", "%"]),
)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 767), header_field), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 30_000)))
def test_mutated_edf_headers_are_read_or_refused_in_one_line(
        small_edf_bytes: bytes, capfd: pytest.CaptureFixture[str],
        edits: list[tuple[int, str]], cut: int | None) -> None:
    """Any field of the header (3 x 256 bytes) overwritten, the file cut anywhere: it reads,
    or it is refused with a one-line InputError; nothing is printed."""
    data = bytearray(small_edf_bytes if cut is None else small_edf_bytes[:cut])
    for at, text in edits:
        field = text.encode("latin-1")
        data[at:at + len(field)] = field[:max(0, len(data) - at)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.edf"
        path.write_bytes(bytes(data))
        for call in (read_record, open_stream):
            try:
                result = call(path)
            except InputError as exc:
                assert "\n" not in str(exc) and str(exc).startswith(f"{path}: ")
                continue
            if call is open_stream:
                result.read(0, min(result.n_samples, 1000))
    assert capfd.readouterr().out == ""
