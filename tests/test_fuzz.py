"""Fuzzing the readers and the model file with hypothesis: every case either works or
raises the one-line InputError; no other exception, hang or engine crash."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.errors import InputError
from afdetect.io.records import open_stream, read_record
from afdetect.models import builtin_path
from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import _DIGEST, _PREFIX, decode_model

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
MODEL_BYTES = builtin_path("compressed").read_bytes()
CASES: dict[str, int] = {}


def _count(name: str) -> None:
    CASES[name] = CASES.get(name, 0) + 1


def _must_be_clean(call, *args, **kwargs):
    """Run ``call``: fine if it returns or raises InputError with a one-line message."""
    try:
        return call(*args, **kwargs)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
        return None


header_line = st.one_of(
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=60),
    st.builds(lambda n, fs, length: f"rec {n} {fs} {length}",
              st.integers(-2, 5), st.sampled_from(["300", "0", "-5", "abc", "1e9", "300/2"]),
              st.integers(-10, 10**7)),
    st.builds(lambda fmt, gain: f"rec.dat {fmt} {gain} 16 0 0 0 0 ECG",
              st.sampled_from(["16", "212", "8", "999", "x"]),
              st.sampled_from(["200", "0", "-1", "1000/mV", "nan"])),
)


@SETTINGS
@given(lines=st.lists(header_line, min_size=0, max_size=4),
       data=st.binary(max_size=3000))
def test_random_wfdb_headers(lines: list[str], data: bytes) -> None:
    _count("wfdb header")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rec.hea").write_text("\n".join(lines) + "\n")
        (Path(tmp) / "rec.dat").write_bytes(data)
        _must_be_clean(read_record, Path(tmp) / "rec.hea")
        stream = _must_be_clean(open_stream, Path(tmp) / "rec.hea")
        if stream is not None:
            _must_be_clean(stream.read, 0, min(stream.n_samples, 1000))


@SETTINGS
@given(record=st.sampled_from(sorted(p.stem for p in SAMPLES.glob("*.hea"))),
       keep=st.floats(0, 1))
def test_truncated_signal_files(record: str, keep: float) -> None:
    _count("truncated .mat")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".hea", ".mat"):
            shutil.copy(SAMPLES / f"{record}{suffix}", tmp)
        mat = Path(tmp) / f"{record}.mat"
        data = mat.read_bytes()
        mat.write_bytes(data[:int(len(data) * keep)])
        recording = _must_be_clean(read_record, Path(tmp) / f"{record}.hea")
        if recording is not None:
            _must_be_clean(preprocess, recording, PreprocessConfig())


@SETTINGS
@given(text=st.one_of(
    st.text(max_size=400),
    st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                st.text(max_size=4)), min_size=1, max_size=3),
             max_size=50).map(lambda rows: "\n".join(",".join(map(str, r)) for r in rows))))
def test_garbage_csv(text: str) -> None:
    _count("csv")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_text(text)
        recording = _must_be_clean(read_record, path, fs=300)
        if recording is not None:
            _must_be_clean(preprocess, recording, PreprocessConfig())
        _must_be_clean(open_stream, path, fs=300)


@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, len(MODEL_BYTES) - 1), st.integers(1, 255)),
                      max_size=3),
       cut=st.one_of(st.none(), st.integers(0, len(MODEL_BYTES) - 1)))
def test_afq_byte_flips_and_truncations(flips: list[tuple[int, int]], cut: int | None
                                        ) -> None:
    _count("afq bytes")
    data = bytearray(MODEL_BYTES)
    for at, mask in flips:
        data[at] ^= mask
    if cut is not None:
        data = data[:cut]
    result = _must_be_clean(decode_model, bytes(data))
    if bytes(data) != MODEL_BYTES:
        assert result is None  # the checksum catches every change


def _with_header(header: dict) -> bytes:
    """The shipped model's payload under another JSON header, correctly checksummed."""
    import hashlib

    _, version, length = _PREFIX.unpack_from(MODEL_BYTES)
    payload = MODEL_BYTES[_PREFIX.size + length:-_DIGEST]
    raw = json.dumps(header).encode()
    body = _PREFIX.pack(b"AFDQ", version, len(raw)) + raw + payload
    return body + hashlib.sha256(body).digest()


HEADER = json.loads(MODEL_BYTES[_PREFIX.size:_PREFIX.size + _PREFIX.unpack_from(
    MODEL_BYTES)[2]])
LAYER_KEYS = sorted(HEADER["layers"][0])
odd_value = st.one_of(st.integers(-5, 70000), st.none(), st.text(max_size=3),
                      st.lists(st.integers(-2, 40), max_size=4), st.floats())


@SETTINGS
@given(layer=st.integers(0, len(HEADER["layers"]) - 1), key=st.sampled_from(LAYER_KEYS),
       value=odd_value, top=st.sampled_from(["act_bits", "input_bits", "input_frac", None]),
       top_value=st.integers(-3, 40))
def test_afq_mutated_json_headers_never_crash_the_engine(layer: int, key: str, value: object,
                                                         top: str | None, top_value: int
                                                         ) -> None:
    _count("afq header")
    header = json.loads(json.dumps(HEADER))
    header["layers"][layer][key] = value
    if top:
        header[top] = top_value
    decoded = _must_be_clean(decode_model, _with_header(header))
    if decoded is not None:  # a header the reader accepts must run, or be refused cleanly
        model, _ = decoded
        signal = np.random.default_rng(0).standard_normal(1500).astype(np.float32)
        _must_be_clean(lambda: IntegerEngine(model).logits(signal))



# The whole command, end to end: random batches of WFDB records, CSVs and .npy files, some
# good, some subtly wrong, through `afdetect predict` and `afdetect scan` (in process, as
# main() runs for a user). Each file ends as a result or as exactly one error line.

CLI_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.too_slow])


def _ecg(seconds: float, fs: int, seed: int) -> np.ndarray:
    from conftest import synthetic_ecg

    return synthetic_ecg(seconds, float(fs), seed=seed)


wfdb_spec = st.fixed_dictionaries({
    "kind": st.just("wfdb"),
    "fs_token": st.sampled_from(["{fs}"] * 6 + ["-300", "abc", "nan", "inf", "0", ""]),
    "gain": st.sampled_from(["200"] * 3 + ["1000", "-200", "0", "1e-300", "1e300", "nan", "1"]),
    "units": st.sampled_from(["mV", "mV", "mV", "uV", "V", "mmHg", ""]),
    "missing": st.sampled_from([False, False, False, True]),
    "extra_length": st.sampled_from([0, 0, 0, 500]),
})
csv_spec = st.fixed_dictionaries({
    "kind": st.just("csv"),
    "header": st.sampled_from(["", "ecg", "time_s,MLII,V1", "Time (ms),ECG", "t,ecg_uV",
                               "'Elapsed time','MLII'"]),
    "semicolon": st.booleans(),
    "decimal_comma": st.booleans(),
    "wide_line": st.sampled_from([None, None, None, 3, 200]),
    "gap": st.sampled_from([False, False, False, True]),
    "unit_scale": st.sampled_from([1.0, 1.0, 1000.0]),
})
npy_spec = st.fixed_dictionaries({
    "kind": st.just("npy"),
    "dtype": st.sampled_from(["float64", "float32", "int16"]),
    "layout": st.sampled_from(["1d", "2d", "transposed"]),
    "nan": st.sampled_from([False, False, False, True]),
})
# (what the file is, seconds, its sampling rate, noise seed)
file_spec = st.tuples(st.one_of(wfdb_spec, csv_spec, npy_spec), st.sampled_from([8, 45, 60]),
                      st.sampled_from([250, 360, 500]), st.integers(0, 3))


def _write_wfdb(folder: Path, name: str, spec: dict, x: np.ndarray, fs: int) -> Path:
    usable = spec["gain"] not in ("0", "nan", "1e-300", "1e300")
    counts = np.clip(np.round(x * (float(spec["gain"]) if usable else 200.0)), -32767, 32767)
    counts = counts.astype("<i2")
    if spec["missing"]:
        counts[len(counts) // 3] = -32768  # WFDB's "no sample" in format 16
    counts.tofile(folder / f"{name}.dat")
    units = f"/{spec['units']}" if spec["units"] else ""
    fields = [name, "1", spec["fs_token"].format(fs=fs), str(len(counts) + spec["extra_length"])]
    (folder / f"{name}.hea").write_text(
        " ".join(f for f in fields if f) + f"\n{name}.dat 16 {spec['gain']}(0){units} 16 0 0 0 0 "
        "ECG\n")
    return folder / f"{name}.hea"


def _write_csv(folder: Path, name: str, spec: dict, x: np.ndarray, fs: int) -> Path:
    sep = ";" if spec["semicolon"] else ","
    header = spec["header"].replace(",", sep)
    n_cols = header.count(sep) + 1 if header else 1
    timed = header.lower().startswith(("time", "t", "'elapsed"))
    rows = []
    for i, v in enumerate(x * spec["unit_scale"]):
        cells = [f"{v:.4f}"] * n_cols
        if timed:
            cells[0] = f"{(i * 1000 if 'ms' in header else i) / fs:.4f}"
        row = sep.join(cells)
        rows.append(row.replace(".", ",") if spec["decimal_comma"] else row)
    if spec["wide_line"] is not None:
        rows[spec["wide_line"]] += sep + "1"
    if spec["gap"]:
        del rows[len(rows) // 2]
    path = folder / f"{name}.csv"
    path.write_text((header + "\n" if header else "") + "\n".join(rows) + "\n")
    return path


def _write_npy(folder: Path, name: str, spec: dict, x: np.ndarray, fs: int) -> Path:
    array = (np.round(x * 1000) if spec["dtype"] == "int16" else x).astype(spec["dtype"])
    if spec["nan"] and spec["dtype"] != "int16":
        array[len(array) // 2] = np.nan
    if spec["layout"] != "1d":
        array = np.stack([array, -array], axis=1)
        array = array.T if spec["layout"] == "transposed" else array
    np.save(folder / f"{name}.npy", array)
    return folder / f"{name}.npy"


WRITERS = {"wfdb": _write_wfdb, "csv": _write_csv, "npy": _write_npy}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``afdetect ARGV`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from afdetect.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)  # any exception but the one-line errors fails the test here
    return code, out.getvalue(), err.getvalue()


@CLI_SETTINGS
@given(files=st.lists(file_spec, min_size=1, max_size=3),
       fs_option=st.sampled_from(["same", "same", "none", "wrong"]))
def test_cli_on_random_batches_answers_each_file_once(files: list, fs_option: str) -> None:
    _count("cli batch")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        fs = files[0][2]  # --fs: the first file's rate, none, or a wrong one
        paths = []
        for i, (spec, seconds, rate, seed) in enumerate(files):
            rate = fs if spec["kind"] == "npy" else rate
            paths.append(WRITERS[spec["kind"]](folder, f"r{i}", spec,
                                               _ecg(seconds, rate, seed), rate))
        before = _snapshot(folder)
        fs_args = {"same": ["--fs", str(fs)], "none": [], "wrong": ["--fs", "123"]}[fs_option]
        for command, key in (("predict", "predictions"), ("scan", "recordings")):
            code, out, err = _run_cli([command, *map(str, paths), *fs_args, "--json"])
            result = json.loads(out)
            errors = [line for line in err.splitlines() if line.startswith("afdetect: error:")]
            assert "Traceback" not in err
            assert len(result[key]) + len(errors) == len(paths), err
            assert len(errors) == len(result["errors"]) and code == (1 if errors else 0)
            named = [next((str(p) for p in paths if f"{p}:" in line), None) for line in errors]
            assert None not in named and len(set(named)) == len(named), errors
            assert _snapshot(folder) == before  # no input changed, nothing written there


def test_report_cases_run() -> None:
    print("\nfuzz cases run:", CASES, "total", sum(CASES.values()))
    assert sum(CASES.values()) >= 5 * 150 + 30 or not CASES  # run with the others: all
