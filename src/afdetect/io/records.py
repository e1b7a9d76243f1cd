"""Plain readers for ECG recordings: WFDB (any format wfdb reads), CSV and NumPy ``.npy``.

Every reader returns a :class:`Recording` holding one lead in millivolts. Problems with a
file raise :class:`~afdetect.errors.InputError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from afdetect.errors import InputError

WFDB_SUFFIXES = (".hea", ".mat", ".dat")


@dataclass(frozen=True)
class Recording:
    """One ECG lead.

    Attributes:
        signal: shape (n_samples,), float64, millivolts.
        fs: sampling rate in Hz.
        name: record name (file stem).
        lead: lead name, or ``""`` when the file carries none.
    """

    signal: np.ndarray
    fs: float
    name: str
    lead: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


def read_record(path: str | Path, *, fs: float | None = None, lead: str | int = 0) -> Recording:
    """Read one recording, choosing the reader from the file suffix.

    Args:
        path: a WFDB record (``rec``, ``rec.hea``, ``rec.mat`` or ``rec.dat``), a ``.csv``
            with one column in mV, or a ``.npy`` array in mV.
        fs: sampling rate in Hz; required for CSV and ``.npy``, ignored by WFDB (which
            stores it in the header) unless it disagrees, which is an error.
        lead: lead name or 0-based index for multi-lead records (WFDB, 2-D ``.npy``/CSV).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, fs=_require_fs(path, fs), lead=lead)
    if suffix == ".npy":
        return read_npy(path, fs=_require_fs(path, fs), lead=lead)
    if suffix in WFDB_SUFFIXES or suffix == "":
        record = read_wfdb(path, lead=lead)
        if fs is not None and abs(fs - record.fs) > 1e-6:
            raise InputError(path, f"--fs {fs:g} disagrees with the header's {record.fs:g} Hz")
        return record
    raise InputError(path, f"unsupported file type {suffix!r} (expected WFDB, .csv or .npy)")


def read_wfdb(path: str | Path, *, lead: str | int = 0) -> Recording:
    """Read one lead of a WFDB record (header plus ``.mat``/``.dat`` signal file) in mV."""
    base, meta, names, channel = _wfdb_header(Path(path), lead)
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel], physical=True)
    except Exception as exc:
        raise InputError(base, f"unreadable WFDB signal ({_one_line(exc)})") from None
    signal = np.asarray(rec.p_signal, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[0] == 0:
        raise InputError(base, "WFDB record holds no samples")
    if meta.sig_len and signal.shape[0] < meta.sig_len:
        raise InputError(base, f"signal truncated: {signal.shape[0]} of {meta.sig_len} samples")
    return Recording(
        signal=signal[:, 0] * _mv_per_unit((rec.units or ["mV"])[0]),
        fs=float(rec.fs),
        name=base.name,
        lead=names[channel] if names else "",
    )


def read_csv(path: str | Path, *, fs: float, lead: str | int = 0) -> Recording:
    """Read a CSV of samples in mV: one column, or several with ``lead`` picking one.

    A first row of non-numeric column names is taken as a header (and names the leads).
    """
    path = Path(path)
    text = _read_text(path)
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    if not rows:
        raise InputError(path, "empty CSV")
    names: list[str] = []
    first = [cell.strip() for cell in rows[0].split(",")]
    if not _is_numeric_row(first):
        names, rows = first, rows[1:]
        if not rows:
            raise InputError(path, "CSV has a header but no samples")
    try:
        table = np.array([[float(c) for c in row.split(",")] for row in rows], dtype=np.float64)
    except ValueError:
        raise InputError(path, "CSV holds non-numeric values") from None
    n_cols = table.shape[1] if table.ndim == 2 else 1
    channel = _pick_lead(path, names, n_cols, lead)
    return Recording(signal=table.reshape(len(rows), -1)[:, channel], fs=float(fs),
                     name=path.stem, lead=names[channel] if names else "")


def read_npy(path: str | Path, *, fs: float, lead: str | int = 0) -> Recording:
    """Read a ``.npy`` array in mV, shape (n_samples,) or (n_samples, n_leads)."""
    path = Path(path)
    return Recording(signal=_npy_lead(path, lead).astype(np.float64), fs=float(fs),
                     name=path.stem)


def _pick_lead(path: Path, names: list[str], n_leads: int, lead: str | int) -> int:
    if isinstance(lead, str) and not lead.lstrip("-").isdigit():
        if lead not in names:
            raise InputError(path, f"no lead named {lead!r} (leads: {', '.join(names) or 'none'})")
        return names.index(lead)
    index = int(lead)
    if not 0 <= index < n_leads:
        raise InputError(path, f"lead index {index} out of range: the file has {n_leads} lead(s)")
    return index


def _require_fs(path: Path, fs: float | None) -> float:
    if fs is None:
        raise InputError(path, "sampling rate unknown: pass --fs for CSV and .npy files")
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(path, f"invalid sampling rate {fs}")
    return float(fs)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable ({_one_line(exc)})") from None


def _is_numeric_row(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True)
class SignalStream:
    """One lead of a recording of any length, read in bounded chunks of integer counts.

    Attributes:
        name: record name (file stem).
        source: the file it reads.
        fs: sampling rate in Hz.
        n_samples: samples in the recording.
        counts_per_mv: ADC gain: the counts of :meth:`chunks` per millivolt.
        lead: lead name, or ``""``.
    """

    name: str
    source: str
    fs: float
    n_samples: int
    counts_per_mv: float
    lead: str
    _read: Callable[[int, int], np.ndarray]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` (exclusive) as int64 counts, shape (stop - start,)."""
        return self._read(start, stop)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The whole lead, ``size`` samples at a time (the last chunk may be shorter)."""
        for start in range(0, self.n_samples, size):
            yield self.read(start, min(start + size, self.n_samples))


# Floating-point inputs (CSV, .npy in mV) become counts at this gain: 1 uV per count.
FLOAT_COUNTS_PER_MV = 1000.0


def open_stream(path: str | Path, *, fs: float | None = None,
                lead: str | int = 0) -> SignalStream:
    """Open one lead of a recording for chunked reading (see :func:`read_record`).

    WFDB records are read a chunk at a time from the signal file as stored integers, so
    memory does not grow with the recording; CSV files are read whole and ``.npy`` arrays
    memory-mapped, both converted to counts of 1 uV.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return stream_from_array(_npy_lead(path, lead, mmap=True), _require_fs(path, fs),
                                 path.stem, str(path))
    if suffix == ".csv":
        rec = read_csv(path, fs=_require_fs(path, fs), lead=lead)
        return stream_from_array(rec.signal, rec.fs, rec.name, str(path), rec.lead)
    if suffix not in WFDB_SUFFIXES and suffix != "":
        raise InputError(path, f"unsupported file type {suffix!r} (expected WFDB, .csv or .npy)")
    return _wfdb_stream(path, fs, lead)


def stream_from_array(signal_mv: np.ndarray, fs: float, name: str = "signal",
                      source: str = "<array>", lead: str = "") -> SignalStream:
    """A :class:`SignalStream` over a 1-D array in mV (or a memory map), as counts of
    1 uV."""
    array = np.asarray(signal_mv)  # a memory map stays one: chunks are read on demand
    if array.ndim != 1:
        raise InputError(source, f"expected one lead (a 1-D array), got shape {array.shape}")
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(source, f"invalid sampling rate {fs}")
    if array.size and not np.all(np.isfinite(array)):
        raise InputError(source, "NaN or infinite samples")

    def read_float(start: int, stop: int) -> np.ndarray:
        return np.round(np.asarray(array[start:stop], dtype=np.float64)
                        * FLOAT_COUNTS_PER_MV).astype(np.int64)

    return SignalStream(name, source, float(fs), len(array), FLOAT_COUNTS_PER_MV, lead,
                        read_float)


def _npy_lead(path: Path, lead: str | int, mmap: bool = False) -> np.ndarray:
    """One lead of a ``.npy`` array, memory-mapped with ``mmap``."""
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy array ({_one_line(exc)})") from None
    if array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        raise InputError(path, f"expected a 1-D or 2-D numeric array, got {array.dtype} "
                               f"with shape {array.shape}")
    if array.ndim == 1:
        return array
    return array[:, _pick_lead(path, [], array.shape[1], lead)]


def _wfdb_header(path: Path, lead: str | int) -> tuple[Path, wfdb.Record, list[str], int]:
    """(record base path, header, lead names, chosen channel) of a WFDB record."""
    base = path.with_suffix("") if path.suffix.lower() in WFDB_SUFFIXES else path
    header = base.with_suffix(".hea")
    if not header.is_file():
        raise InputError(header, "no such WFDB header")
    try:
        meta = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare Exceptions/ValueErrors on bad headers
        raise InputError(header, f"unreadable WFDB header ({_one_line(exc)})") from None
    names = list(meta.sig_name or [])
    return base, meta, names, _pick_lead(header, names, meta.n_sig, lead)


def _mv_per_unit(units: str | None) -> float:
    """Millivolts per physical unit of a WFDB signal (mV unless it says uV or V)."""
    return {"mv": 1.0, "uv": 1e-3, "v": 1e3}.get((units or "mV").lower().replace("µ", "u"),
                                                   1.0)


def _wfdb_stream(path: Path, fs: float | None, lead: str | int) -> SignalStream:
    base, meta, names, channel = _wfdb_header(path, lead)
    if fs is not None and abs(fs - float(meta.fs)) > 1e-6:
        raise InputError(path, f"--fs {fs:g} disagrees with the header's {meta.fs:g} Hz")
    n_samples = int(meta.sig_len or 0)
    if n_samples <= 0:
        raise InputError(base.with_suffix(".hea"), "the header gives no signal length")
    gain = float((meta.adc_gain or [0])[channel] or 0) or 200.0  # WFDB's default gain
    gain /= _mv_per_unit((meta.units or ["mV"])[channel])  # counts per mV

    def read_wfdb_counts(start: int, stop: int) -> np.ndarray:
        try:
            rec = wfdb.rdrecord(str(base), sampfrom=start, sampto=stop, channels=[channel],
                                physical=False)
        except Exception as exc:
            raise InputError(base, f"unreadable WFDB signal ({_one_line(exc)})") from None
        counts = np.asarray(rec.d_signal, dtype=np.int64)[:, 0]
        if len(counts) < stop - start:
            raise InputError(base, f"signal file holds fewer samples than the header's "
                                   f"{n_samples}")
        return counts

    # A header claiming more samples than the signal file holds fails here, not hours in.
    try:
        read_wfdb_counts(n_samples - 1, n_samples)
    except InputError as exc:
        raise InputError(base, f"signal file holds fewer samples than the header's "
                               f"{n_samples} ({exc.problem})") from None
    return SignalStream(base.name, str(path), float(meta.fs), n_samples, gain,
                        names[channel] if names else "", read_wfdb_counts)


def recording_seconds(path: str | Path, *, fs: float | None = None,
                      lead: str | int = 0) -> float | None:
    """How long a recording lasts, in seconds, found without reading its samples.

    From the WFDB header's signal length (or, when the header gives none, the signal
    file's size), a ``.npy`` array's shape (memory-mapped), or a CSV's count of non-blank
    rows (read a block at a time). None when the rate of a CSV or ``.npy`` is not given or
    the length cannot be known beforehand (a compressed WFDB format without a length): the
    reader then reports the problem, or reads the file. Raises :class:`InputError` for
    files the readers would refuse anyway (no such file, unreadable header, bad lead).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".npy") and (fs is None or not np.isfinite(fs) or fs <= 0):
        return None
    if suffix == ".npy":
        return len(_npy_lead(path, lead, mmap=True)) / float(fs or 1.0)
    if suffix == ".csv":
        return _csv_rows(path) / float(fs or 1.0)
    if suffix not in WFDB_SUFFIXES and suffix != "":
        return None
    base, meta, _, channel = _wfdb_header(path, lead)
    n_samples = meta.sig_len
    if not n_samples:
        name = meta.file_name[channel]
        per_frame = sum(n for n, f in zip(meta.samps_per_frame, meta.file_name, strict=True)
                        if f == name)
        try:  # what wfdb.rdrecord does for a header without a length
            n_samples = wfdb.io._signal._infer_sig_len(
                name, meta.fmt[channel], per_frame, (meta.byte_offset or [0] * meta.n_sig)[
                    channel], str(base.parent))
        except Exception:  # a compressed format, a missing file: the reader will say
            return None
    return int(n_samples) / float(meta.fs) if n_samples and meta.fs else None


def _csv_rows(path: Path) -> int:
    """Non-blank rows of a CSV, a first row of column names excluded, counted a line at a
    time (memory does not grow with the file)."""
    rows, first = 0, None
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    first = line if first is None else first
                    rows += 1
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({_one_line(exc)})") from None
    if first is not None:
        cells = first.decode("utf-8-sig", errors="replace").split(",")
        rows -= not _is_numeric_row([c.strip() for c in cells])
    return rows
