"""Plain readers for ECG recordings: WFDB (any format wfdb reads), CSV and NumPy ``.npy``.

Every reader returns a :class:`Recording` holding one lead in millivolts. Problems with a
file raise :class:`~afdetect.errors.InputError` naming the file.
"""

from __future__ import annotations

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
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in WFDB_SUFFIXES else path
    header = base.with_suffix(".hea")
    if not header.is_file():
        raise InputError(header, "no such WFDB header")
    try:
        meta = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare Exceptions/ValueErrors on bad headers
        raise InputError(header, f"unreadable WFDB header ({_one_line(exc)})") from None
    names = list(meta.sig_name or [])
    channel = _pick_lead(header, names, meta.n_sig, lead)
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel], physical=True)
    except Exception as exc:
        raise InputError(base, f"unreadable WFDB signal ({_one_line(exc)})") from None
    signal = np.asarray(rec.p_signal, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[0] == 0:
        raise InputError(base, "WFDB record holds no samples")
    if meta.sig_len and signal.shape[0] < meta.sig_len:
        raise InputError(base, f"signal truncated: {signal.shape[0]} of {meta.sig_len} samples")
    units = (rec.units or ["mV"])[0] or "mV"
    scale = {"mv": 1.0, "uv": 1e-3, "v": 1e3}.get(units.lower().replace("µ", "u"), 1.0)
    return Recording(
        signal=signal[:, 0] * scale,
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
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy array ({_one_line(exc)})") from None
    if array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        raise InputError(path, f"expected a 1-D or 2-D numeric array, got {array.dtype} "
                               f"with shape {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    channel = _pick_lead(path, [], array.shape[1], lead)
    return Recording(signal=array[:, channel].astype(np.float64), fs=float(fs), name=path.stem)


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
