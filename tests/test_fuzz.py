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


def test_report_cases_run() -> None:
    print("\nfuzz cases run:", CASES, "total", sum(CASES.values()))
    assert sum(CASES.values()) >= 5 * 150 or not CASES  # run with the others: all of them

