"""EDF, EDF+ (continuous, EDF+C) and BDF/BDF+C recordings, read with pyedflib.

pyedflib wraps EDFlib, a C library that reads EDF, EDF+, BDF and BDF+ alike and reads any
sample range of a signal from the data records that hold it, so that
:func:`open_edf` streams a recording of any length without loading it. This module
checks what the library would print to stdout or reject obscurely (the file's size
against its header, discontinuous EDF+D, fields that are not numbers), picks the lead
(annotation signals are never leads), converts physical units to mV and reads the start
date and time.

Stream counts are the stored digital values, shifted right just enough that the file's
digital range fits the 16 bits the scan front end takes (BDF stores 24 bits), and negated
when the header's physical range runs downwards, so that counts always grow with voltage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.clock import StartTime
from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import Recording, SignalStream, _pick_lead

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
# Millivolts per physical unit; a lead in any other unit is not a voltage, so not ECG.
MV_PER_UNIT = {"v": 1e3, "mv": 1.0, "uv": 1e-3, "nv": 1e-6, "": 1.0}
FRONT_END_BITS = 16  # the scan front end clamps counts to 16 bits (frontend.ADC_MIN/MAX)


@dataclass(frozen=True)
class _Lead:
    """One lead of a checked file: its channel and what it means."""

    channel: int
    label: str
    fs: float
    n_samples: int
    mv_per_unit: float
    counts_per_unit: float  # stored digital counts per physical unit (may be negative)
    digital_bits: int  # bits the digital range needs, sign included
    start: StartTime


def read_edf(path: str | Path, *, fs: float | None = None, lead: str | int = 0) -> Recording:
    """Read one lead of an EDF/EDF+C/BDF file whole, in mV (for strips: ``predict``).

    Args:
        path: the ``.edf`` or ``.bdf`` file.
        fs: if given, must equal the lead's sampling rate.
        lead: lead label, or 0-based index among the signals that are not annotations.
    """
    path = Path(path)
    chosen = _open_lead(path, fs, lead)
    with _open_reader(path) as reader:
        signal = reader.readSignal(chosen.channel, 0, chosen.n_samples, digital=False)
    return Recording(signal=np.asarray(signal, dtype=np.float64) * chosen.mv_per_unit,
                     fs=chosen.fs, name=path.stem, lead=chosen.label)


def open_edf(path: str | Path, *, fs: float | None = None, lead: str | int = 0
             ) -> SignalStream:
    """Open one lead of an EDF/EDF+C/BDF file for chunked reading (``scan``).

    Each :meth:`~afdetect.io.records.SignalStream.read` opens the file (the header only,
    some microseconds) and reads the data records that hold the samples asked for: the
    stream holds no open file, which EDFlib would refuse to open a second time. The stream's
    ``start`` is the header's start date and time (time of day only when an EDF+ header
    says the date is unknown, ``Startdate X``).
    """
    path = Path(path)
    chosen = _open_lead(path, fs, lead)
    shift = max(0, chosen.digital_bits - FRONT_END_BITS)
    sign = 1 if chosen.counts_per_unit > 0 else -1

    def read_counts(start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= chosen.n_samples:  # EDFlib would print and pad zeros
            raise InputError(path, f"samples {start}..{stop} are outside the recording's "
                                   f"{chosen.n_samples}")
        with _open_reader(path) as reader:
            digital = reader.readSignal(chosen.channel, start, stop - start, digital=True)
        return sign * (np.asarray(digital, dtype=np.int64) >> shift)

    counts_per_mv = abs(chosen.counts_per_unit) / chosen.mv_per_unit / 2.0 ** shift
    return SignalStream(path.stem, str(path), chosen.fs, chosen.n_samples, counts_per_mv,
                        chosen.label, read_counts, start=chosen.start)


def _open_lead(path: Path, fs: float | None, lead: str | int) -> _Lead:
    """Check the header, open the file and choose the lead."""
    date_known = _check_header(path)
    with _open_reader(path, first_annotations=True) as reader:
        labels = [label.strip() for label in reader.getSignalLabels()]
        channels = [i for i, label in enumerate(labels) if label not in ANNOTATION_LABELS]
        if not channels:
            raise InputError(path, "holds only annotations, no signal")
        names = [labels[i] for i in channels]
        channel = channels[_pick_lead(path, names, len(channels), lead)]
        label = labels[channel]
        rate = float(reader.getSampleFrequency(channel))
        if fs is not None and abs(fs - rate) > 1e-6:
            raise InputError(path, f"--fs {fs:g} disagrees with the {rate:g} Hz of lead "
                                   f"{label!r}")
        unit = reader.getPhysicalDimension(channel).strip()
        mv_per_unit = MV_PER_UNIT.get(unit.lower().replace("µ", "u").replace("μ", "u"))
        if mv_per_unit is None:
            raise InputError(path, f"lead {label!r} is in {unit!r}, not a voltage (V, mV, uV):"
                                   " choose the ECG lead with --lead")
        physical = reader.getPhysicalMaximum(channel) - reader.getPhysicalMinimum(channel)
        dmin, dmax = reader.getDigitalMinimum(channel), reader.getDigitalMaximum(channel)
        if physical == 0 or dmax <= dmin:
            raise InputError(path, f"bad header: lead {label!r} has an empty physical or "
                                   "digital range")
        moment = _start_moment(reader)
        start = StartTime(moment) if date_known else StartTime.of(None, moment.time())
        return _Lead(channel, label, rate, int(reader.samples_in_file(channel)),
                     mv_per_unit, (dmax - dmin) / physical,
                     max(int(-dmin - 1).bit_length(), int(dmax).bit_length()) + 1, start)


def _start_moment(reader: Any) -> dt.datetime:
    """The start from the header fields, with EDF+'s fraction of a second (EDFlib gives it
    in units of 100 ns; pyedflib's getStartdatetime reads it as 10 us)."""
    return dt.datetime(reader.startdate_year, reader.startdate_month, reader.startdate_day,
                       reader.starttime_hour, reader.starttime_minute, reader.starttime_second,
                       round(reader.starttime_subsecond / 10))


def _open_reader(path: Path, first_annotations: bool = False) -> Any:
    """The pyedflib reader of a file whose header :func:`_check_header` passed; with
    ``first_annotations``, EDFlib reads the EDF+ annotations (one pass over the file, for
    the start's fraction of a second), otherwise only the header."""
    try:
        import pyedflib
    except ImportError:
        raise AfdetectError("reading EDF/BDF needs pyedflib: pip install 'afdetect[edf]'"
                            ) from None
    try:
        # _check_header compared the size already; EDFlib's own check prints to stdout.
        annotations = (pyedflib.READ_ANNOTATIONS if first_annotations
                       else pyedflib.DO_NOT_READ_ANNOTATIONS)
        return pyedflib.EdfReader(str(path), annotations, pyedflib.DO_NOT_CHECK_FILE_SIZE)
    except OSError as exc:
        problem = str(exc).strip().removeprefix(f"{path}:").strip()
        raise InputError(path, f"not a valid EDF/BDF file ({problem})") from None


def _check_header(path: Path) -> bool:
    """Refuse what EDFlib would misreport; return whether the start date is known.

    The fixed EDF header: 256 bytes, then 256 per signal, ASCII fields of fixed width.
    """
    try:
        with path.open("rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise InputError(path, "not an EDF/BDF file: its header is incomplete")
            if fixed[:8] not in (b"0       ", b"\xffBIOSEMI"):
                raise InputError(path, "not an EDF/BDF file: its header does not start with "
                                       "EDF's version 0 or BDF's BIOSEMI mark")
            n_signals = _number(path, fixed[252:256], "number of signals", int)
            signals = f.read(256 * max(n_signals, 0))
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({exc.strerror or exc})") from None
    if n_signals <= 0 or len(signals) < 256 * n_signals:
        raise InputError(path, "not an EDF/BDF file: its header is incomplete")
    bdf = fixed[:8] == b"\xffBIOSEMI"
    reserved = fixed[192:236].decode("ascii", "replace").strip()
    if reserved.startswith(("EDF+D", "BDF+D")):
        raise InputError(path, f"{reserved[:5]} (discontinuous) recordings are not supported: "
                               "their samples have gaps in time (export it as EDF+C)")
    n_records = _number(path, fixed[236:244], "number of data records", int)
    record_s = _number(path, fixed[244:252], "data record duration", float)
    if n_records <= 0:
        unclosed = " (-1: the recorder did not close the file)" if n_records == -1 else ""
        raise InputError(path, f"the header gives no data records{unclosed}")
    if not record_s > 0:
        raise InputError(path, f"bad header: data record duration {record_s:g} s, so no "
                               "sampling rate")
    at = 216 * n_signals  # samples per data record follow 216 bytes of other fields each
    per_record = [_number(path, signals[at + 8 * i:at + 8 * i + 8],
                          "samples per data record", int) for i in range(n_signals)]
    for i, count in enumerate(per_record):
        if count <= 0:
            label = signals[16 * i:16 * i + 16].decode("ascii", "replace").strip()
            raise InputError(path, f"bad header: signal {label!r} has {count} samples per "
                                   "data record (sampling rate 0)")
    expected = 256 * (n_signals + 1) + n_records * sum(per_record) * (3 if bdf else 2)
    if size < expected:
        raise InputError(path, f"truncated: the header promises {n_records} data records "
                               f"({expected} bytes), the file holds {size} bytes")
    # EDF+ (and writers of plain EDF that follow it) says "Startdate X" when the date is
    # unknown; the date field then holds a dummy, 01.01.85.
    return fixed[88:168].decode("ascii", "replace").split()[:2] != ["Startdate", "X"]


def _number(path: Path, field: bytes, name: str, kind: type[int] | type[float]) -> Any:
    text = field.decode("ascii", "replace").strip()
    try:
        return kind(text)
    except ValueError:
        raise InputError(path, f"not an EDF/BDF file: its {name} is {text!r}, not a "
                               "number") from None

