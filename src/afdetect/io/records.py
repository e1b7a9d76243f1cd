"""Readers for ECG recordings: WFDB (any format wfdb reads, CinC 2017 ``.mat`` included,
single- and multi-segment), EDF/EDF+C/BDF (:mod:`afdetect.io.edf`), CSV and NumPy ``.npy``.

:func:`open_stream` opens one lead for chunked reading; :func:`read_record` reads it
whole, through the same stream, so ``predict`` and ``scan`` see the same samples in the
same units. Every problem with a file raises :class:`~afdetect.errors.InputError` naming
the file (and, for a header, the field and its value).

What each format is read as:

- **WFDB**: the header is parsed and checked by :mod:`afdetect.io.wfdb_header`; samples
  are ``(stored - baseline) / gain`` in the header's units (mV, uV/µV or V; converted to
  mV). A negative gain is legal WFDB (the stored signal is inverted) and is applied, sign
  included, in every command. The format's "no sample" value (-32768 in format 16,
  -2048 in 212, ...) and the gaps of a multi-segment record are missing samples.
- **CSV**: see :mod:`afdetect.io.csv_table` (header, units, time column, separators).
- **.npy**: shape (n_samples,) or (n_samples, n_leads), numbers in mV; NaN is a missing
  sample. No pickles are ever loaded.

Missing samples are refused, never filled (:func:`~afdetect.io.signal.refuse_missing`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import wfdb

from afdetect.clock import wfdb_start
from afdetect.errors import InputError
from afdetect.io.csv_table import open_csv_stream
from afdetect.io.signal import (
    FLOAT_COUNTS_PER_MV,
    MissingSamples,
    Recording,
    SignalStream,
    refuse_missing,
    stream_from_array,
)
from afdetect.io.wfdb_header import NULL_FORMAT, Header, Segment, header_path, read_header

__all__ = ["FLOAT_COUNTS_PER_MV", "WFDB_SUFFIXES", "Recording", "SignalStream", "open_stream",
           "read_record", "read_wfdb", "record_base", "stream_from_array"]

WFDB_SUFFIXES = (".hea", ".mat", ".dat")
EDF_SUFFIXES = (".edf", ".bdf")  # EDF, EDF+C, BDF, BDF+C (afdetect.io.edf)


def read_record(path: str | Path, *, fs: float | None = None, lead: str | int = 0) -> Recording:
    """Read one lead of a recording whole, in mV.

    Args:
        path: a WFDB record (``rec``, ``rec.hea``, ``rec.mat`` or ``rec.dat``), a ``.csv``
            or a ``.npy`` array (see the module docstring for what each is read as).
        fs: sampling rate in Hz; required for ``.npy`` and for CSV without a time column;
            checked against the WFDB header or the CSV time column, which must agree.
        lead: lead name or 0-based index for multi-lead records.
    """
    if Path(path).suffix.lower() in EDF_SUFFIXES:  # physical values, at full resolution
        from afdetect.io.edf import read_edf

        return read_edf(path, fs=fs, lead=lead)
    return open_stream(path, fs=fs, lead=lead).recording()


def read_wfdb(path: str | Path, *, lead: str | int = 0) -> Recording:
    """Read one lead of a WFDB record whole, in mV (see :func:`read_record`)."""
    return _wfdb_stream(Path(path), None, lead).recording()


def open_stream(path: str | Path, *, fs: float | None = None,
                lead: str | int = 0) -> SignalStream:
    """Open one lead of a recording for chunked reading (see :func:`read_record`).

    WFDB records and EDF/BDF files are read a chunk at a time as stored integers, CSV
    files a chunk of rows at a time, and ``.npy`` arrays memory-mapped; memory does not
    grow with the recording. The stream carries the recording's clock start when the
    file has one (a WFDB header's base time and date, an EDF start).
    """
    path = Path(path)
    if fs is not None and not (math.isfinite(fs) and fs > 0):
        raise InputError(path, f"sampling rate {fs:g} is not a positive number of Hz")
    if path.is_dir():
        raise InputError(path, "is a folder, not a record")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if fs is None:
            raise InputError(path, "sampling rate unknown: pass --fs for .npy files")
        return stream_from_array(_npy_lead(path, lead), fs, path.stem, str(path))
    if suffix == ".csv":
        return open_csv_stream(path, fs, lead)
    if suffix in EDF_SUFFIXES:
        from afdetect.io.edf import open_edf  # it builds on this module's types

        return open_edf(path, fs=fs, lead=lead)
    if suffix in WFDB_SUFFIXES or suffix == "" or header_path(path).is_file():
        return replace(_wfdb_stream(path, fs, lead), start=wfdb_start(path))
    raise InputError(path, f"unsupported file type {suffix!r} "
                           "(expected WFDB, EDF/BDF, .csv or .npy)")


def recording_seconds(path: str | Path, *, fs: float | None = None,
                      lead: str | int = 0) -> float:
    """How long a recording lasts, in seconds, found without reading its samples (the
    opened stream's length: from the header, the ``.npy`` shape or the CSV's rows).

    Raises:
        InputError: for a file the readers refuse (a CSV or ``.npy`` without ``fs``, ...).
    """
    return open_stream(path, fs=fs, lead=lead).duration_s


def record_base(path: Path) -> Path:
    """A WFDB record's path without ``.hea``/``.mat``/``.dat`` (dots in names kept)."""
    return path.with_suffix("") if path.suffix.lower() in WFDB_SUFFIXES else path


def _pick_lead(path: Path, names: list[str], n_leads: int, lead: str | int) -> int:
    if isinstance(lead, str) and not lead.lstrip("-").isdigit():
        if lead not in names:
            raise InputError(path, f"no lead named {lead!r} (leads: {', '.join(names) or 'none'})")
        return names.index(lead)
    index = int(lead)
    if not 0 <= index < n_leads:
        raise InputError(path, f"lead index {index} out of range: the file has {n_leads} lead(s)")
    return index


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _npy_lead(path: Path, lead: str | int) -> np.ndarray:
    """One lead of a ``.npy`` array, memory-mapped (never unpickled)."""
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception as exc:
        raise InputError(path, f"not a readable .npy array ({_one_line(exc)})") from None
    if array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        raise InputError(path, f"expected a 1-D or 2-D numeric array, got {array.dtype} "
                               f"with shape {array.shape}")
    if array.ndim == 1:
        return array
    if array.shape[0] < array.shape[1]:  # never an ECG: fewer samples than leads
        raise InputError(path, f"shape {array.shape} looks like (leads, samples); save the "
                               "array as (samples, leads)")
    return array[:, _pick_lead(path, [], array.shape[1], lead)]


def _wfdb_stream(path: Path, fs: float | None, lead: str | int) -> SignalStream:
    """One lead of a WFDB record (one segment or several) as counts, chunk by chunk."""
    header = read_header(record_base(path))
    rate = header.fs
    if fs is not None and abs(fs - rate) > 1e-6 * rate:
        raise InputError(path, f"--fs {fs:g} disagrees with the header's {rate:g} Hz")
    channel = _pick_lead(header.path, list(header.names), len(header.names), lead)
    pieces = _segment_channels(header, channel)
    reference = next(seg.signals[i] for seg, i in pieces if i is not None)
    counts_per_mv = abs(reference.counts_per_mv)
    starts = np.cumsum([0] + [seg.n_samples for seg, _ in pieces])
    source = str(path)

    def read_counts(start: int, stop: int) -> np.ndarray:
        out = []
        for k, (seg, i) in enumerate(pieces):
            a, b = max(start, starts[k]), min(stop, starts[k + 1])
            if a < b:
                out.append(_segment_counts(source, seg, i, int(a - starts[k]),
                                           int(b - starts[k]), int(starts[k]), rate,
                                           counts_per_mv))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # A signal file shorter than its header fails here, not hours into a scan.
    for k, (seg, i) in enumerate(pieces):
        if i is not None and seg.n_samples:
            try:
                read_counts(int(starts[k + 1]) - 1, int(starts[k + 1]))
            except MissingSamples:
                raise
            except InputError as exc:
                raise InputError(path, f"signal file holds fewer samples than the header's "
                                       f"{seg.n_samples} ({exc.problem})") from None
    return SignalStream(record_base(path).name, source, float(rate), header.n_samples,
                        counts_per_mv, header.names[channel], read_counts)


def _segment_channels(header: Header, channel: int) -> list[tuple[Segment, int | None]]:
    """Each segment with the index of the chosen lead in it (None: a gap)."""
    name = header.names[channel]
    pieces: list[tuple[Segment, int | None]] = []
    for seg in header.segments:
        names = [s.name for s in seg.signals]
        if channel < len(names) and names[channel] == name:
            index: int | None = channel
        else:  # a variable-layout segment: the lead by name, if it holds it
            index = names.index(name) if name and name in names else None
        if index is not None and seg.signals[index].fmt == NULL_FORMAT:
            index = None  # stored as format 0: no samples, a gap
        if index is not None and not math.isfinite(seg.signals[index].mv_per_unit):
            raise InputError(header_path(seg.base) if seg.base else header.path,
                             f"lead {name or channel!r} is in {seg.signals[index].units!r}, "
                             "not a voltage (mV, uV or V): choose an ECG lead with --lead")
        pieces.append((seg, index))
    if all(i is None for _, i in pieces):
        raise InputError(header.path, f"no segment holds lead {name or channel!r}")
    return pieces


def _segment_counts(source: str, seg: Segment, index: int | None, a: int, b: int,
                    offset: int, fs: float, counts_per_mv: float) -> np.ndarray:
    """Samples ``a`` to ``b`` of one segment's lead as counts at ``counts_per_mv``."""
    if index is None or seg.base is None:
        refuse_missing(source, np.ones(b - a, dtype=bool), offset + a, fs,
                       "a gap in the multi-segment record")
    assert index is not None and seg.base is not None
    spec = seg.signals[index]
    try:
        rec = wfdb.rdrecord(str(seg.base), sampfrom=a, sampto=b, channels=[index],
                            physical=False)
        stored = np.asarray(rec.d_signal, dtype=np.int64)[:, 0]
    except Exception as exc:  # wfdb raises bare Exceptions, ValueErrors, IndexErrors...
        raise InputError(source, f"unreadable WFDB signal ({_one_line(exc)})") from None
    if len(stored) < b - a:
        raise InputError(source, f"signal file holds fewer samples than the header's "
                                 f"{seg.n_samples}")
    if spec.missing_value is not None:
        refuse_missing(source, stored == spec.missing_value, offset + a, fs,
                       f"WFDB's 'no sample' value {spec.missing_value}")
    counts = (stored - spec.baseline) * (1 if spec.gain > 0 else -1)
    if abs(abs(spec.counts_per_mv) - counts_per_mv) > 1e-9 * counts_per_mv:
        # another segment's gain: rescaled to the first one's, to the nearest count
        counts = np.round(counts * (counts_per_mv / abs(spec.counts_per_mv))).astype(np.int64)
    return counts
