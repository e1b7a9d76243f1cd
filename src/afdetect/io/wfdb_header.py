"""WFDB headers, parsed and checked field by field before any sample is read.

wfdb's own parser fills in defaults where a field is missing *or unreadable* (a sampling
rate of ``-300``, ``abc`` or ``nan`` becomes 250 Hz), so afdetect parses the record line
and the signal lines itself and refuses any field it cannot use, naming the header, the
field and the value. Only the stored samples are then read with wfdb, as integers; their
conversion to millivolts uses the fields checked here.

Format (https://physionet.org/physiotools/wag/header-5.htm)::

    record[/n_segments] n_signals [fs[/counter[(base)]] [n_samples [time [date]]]]
    file format[xframes][:skew][+offset] [gain[(baseline)][/units] [adc_bits [adc_zero
        [initial [checksum [block_size [description]]]]]]]
    segment n_samples                         (multi-segment records, one per segment)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from wfdb.io._signal import INVALID_SAMPLE_VALUE

from afdetect.errors import InputError

# Millivolts per physical unit, for the voltage units a WFDB header may state.
MV_PER_UNIT = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}
DEFAULT_GAIN = 200.0  # adu per mV, WFDB's value when a signal line gives no gain
NULL_SEGMENT = "~"  # a multi-segment record's gap: no signal for its duration
NULL_FORMAT = "0"  # a signal with no samples (the layout segment of a multi-segment record)

_RECORD_NAME = re.compile(r"^[-\w]+$", re.ASCII)
# What wfdb's own header parser accepts (it reads the samples after these checks)
_FILE_NAME = re.compile(r"^~?[-\w]*\.?\w*$")
_UNITS = re.compile(r"^[\w^\-?%/]*$")
_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<off>\d+))?$")
_GAIN = re.compile(r"^(?P<gain>[^(/]+)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?$")


@dataclass(frozen=True)
class SignalSpec:
    """One signal line of a header.

    Attributes:
        file: signal file name, relative to the header's folder.
        fmt: WFDB storage format (``"16"``, ``"212"``, ...).
        gain: adu per physical unit (may be negative: the stored signal is inverted).
        baseline: adu of 0 physical units.
        mv_per_unit: millivolts per physical unit.
        units: the unit as written (``mV`` when the header gives none).
        name: the description field (the lead name), or ``""``.
    """

    file: str
    fmt: str
    gain: float
    baseline: int
    mv_per_unit: float
    units: str
    name: str

    @property
    def counts_per_mv(self) -> float:
        """Stored adu per millivolt, sign included."""
        return self.gain / self.mv_per_unit

    @property
    def missing_value(self) -> int | None:
        """The stored value WFDB writes for "no sample" in this format (None: format 8)."""
        return INVALID_SAMPLE_VALUE.get(self.fmt)


@dataclass(frozen=True)
class Segment:
    """A stretch of a record: a single-segment record is one of these.

    Attributes:
        base: path of the segment's record without ``.hea`` (None for a null segment).
        n_samples: samples in the segment.
        signals: its signal lines (empty for a null segment).
    """

    base: Path | None
    n_samples: int
    signals: tuple[SignalSpec, ...]


@dataclass(frozen=True)
class Header:
    """A checked WFDB header.

    Attributes:
        path: the ``.hea`` file.
        fs: sampling rate in Hz.
        n_samples: samples per signal in the whole record.
        names: signal names (of the layout segment for a variable-layout record).
        segments: the record's segments, in order (one for an ordinary record).
    """

    path: Path
    fs: float
    n_samples: int
    names: tuple[str, ...]
    segments: tuple[Segment, ...]


def header_path(base: Path) -> Path:
    """``base.hea``, keeping any dots in the record name (``rec.v2`` -> ``rec.v2.hea``)."""
    return base.with_name(base.name + ".hea")


def read_header(base: Path) -> Header:
    """Parse and check the header of record ``base`` (a path without ``.hea``).

    Raises:
        InputError: naming the header, the field and the value, for anything afdetect
            cannot read correctly.
    """
    path = header_path(base)
    if path.is_dir():
        raise InputError(path, "is a folder, not a record")
    if not path.is_file():
        raise InputError(path, "no such WFDB header")
    lines = _header_lines(path)
    record = lines[0].split()
    name_field = record[0]
    if not _RECORD_NAME.match(name_field.split("/", 1)[0]):
        raise InputError(path, f"record line: record name {name_field.split('/', 1)[0]!r} "
                               "may hold only letters, digits, - and _ (WFDB's rule; the "
                               "file name may differ)")
    n_sig = _whole(path, "number of signals", record[1] if len(record) > 1 else None)
    if len(record) < 4:  # wfdb reads no stretch of such a record: refused, not guessed
        raise InputError(path, "record line: no number of samples" if len(record) == 3 else
                               "record line: no sampling rate (WFDB would assume 250 Hz) and "
                               "no number of samples")
    fs = _sampling_rate(path, record[2])
    n_total = _whole(path, "number of samples", record[3])
    if "/" in name_field:
        n_seg = _whole(path, "number of segments", name_field.split("/", 1)[1])
        return _multi_segment(path, base, lines[1:], n_seg, n_sig, fs, n_total)
    signals = tuple(_signal(path, line) for line in lines[1:1 + n_sig])
    if len(signals) < n_sig:
        raise InputError(path, f"the record line announces {n_sig} signal(s), the header "
                               f"describes {len(signals)}")
    if n_sig == 0:
        raise InputError(path, "the record holds no signals")
    return Header(path, fs, n_total, tuple(s.name for s in signals),
                  (Segment(base, n_total, signals),))


def _header_lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise InputError(path, "not a WFDB header (it is not plain ASCII text)") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({exc.strerror or exc})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise InputError(path, "empty WFDB header")
    return lines


def _whole(path: Path, field: str, text: str | None) -> int:
    if text is None or not text.isdigit():
        raise InputError(path, f"record line: {field} {text!r} is not a whole number")
    return int(text)


def _sampling_rate(path: Path, text: str) -> float:
    """The record line's sampling rate in Hz (``fs[/counter[(base)]]``)."""
    value = text.split("/", 1)[0]
    try:
        fs = float(value)
    except ValueError:
        fs = math.nan
    if not (math.isfinite(fs) and fs > 0):
        raise InputError(path, f"record line: sampling rate {value!r} is not a positive "
                               "number of Hz")
    return fs


def _signal(path: Path, line: str) -> SignalSpec:
    fields = line.split()
    if len(fields) < 2:
        raise InputError(path, f"signal line {line!r}: no storage format")
    if not _FILE_NAME.match(fields[0]):
        raise InputError(path, f"signal line: file name {fields[0]!r} is not one wfdb reads "
                               "(letters, digits, - and _, and one dot)")
    fmt = _FORMAT.match(fields[1])
    if fmt is None or (fmt["fmt"] not in INVALID_SAMPLE_VALUE and fmt["fmt"] != NULL_FORMAT):
        raise InputError(path, f"signal line: storage format {fields[1]!r} is not one wfdb "
                               f"reads ({', '.join(sorted(INVALID_SAMPLE_VALUE, key=int))})")
    gain, baseline, units = DEFAULT_GAIN, None, "mV"
    if len(fields) > 2:
        parts = _GAIN.match(fields[2])
        if parts is None:
            raise InputError(path, f"signal line: gain field {fields[2]!r} is not "
                                   "gain[(baseline)][/units]")
        gain = _number(path, "gain", parts["gain"])
        if gain == 0 or not math.isfinite(gain) or not 1e-6 <= abs(gain) <= 1e9:
            raise InputError(path, f"signal line: gain {parts['gain']!r} adu per unit is not "
                                   "usable (a calibrated signal has a finite, nonzero gain; "
                                   "0 means uncalibrated)")
        if parts["baseline"] is not None:
            baseline = _integer(path, "baseline", parts["baseline"])
        units = parts["units"] if parts["units"] is not None else "mV"
        if not _UNITS.match(units):
            raise InputError(path, f"signal line: units {units!r} are not a WFDB unit name")
    if baseline is None:  # WFDB: the baseline defaults to the ADC zero
        baseline = _integer(path, "ADC zero", fields[4]) if len(fields) > 4 else 0
    mv = MV_PER_UNIT.get(units.strip().lower() or "mv")
    if mv is None:
        mv = math.nan  # not a voltage: refused when this signal is chosen (see units)
    return SignalSpec(fields[0], fmt["fmt"], gain, baseline, mv, units or "mV",
                      " ".join(fields[8:]))


def _number(path: Path, field: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(path, f"signal line: {field} {text!r} is not a number") from None


def _integer(path: Path, field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(path, f"signal line: {field} {text!r} is not a whole number of adu"
                         ) from None


def _multi_segment(path: Path, base: Path, lines: list[str], n_seg: int, n_sig: int,
                   fs: float, n_total: int) -> Header:
    """A multi-segment record: every segment header read and checked too."""
    if len(lines) < n_seg:
        raise InputError(path, f"the record line announces {n_seg} segment(s), the header "
                               f"lists {len(lines)}")
    segments: list[Segment] = []
    names: tuple[str, ...] = ()
    for i, line in enumerate(lines[:n_seg]):
        fields = line.split()
        if len(fields) != 2:
            raise InputError(path, f"segment line {line!r} is not 'name n_samples'")
        seg_name, seg_len = fields[0], _whole(path, "segment length", fields[1])
        if seg_name == NULL_SEGMENT:
            segments.append(Segment(None, seg_len, ()))
            continue
        if "/" in seg_name or seg_name in ("..", "."):
            raise InputError(path, f"segment name {seg_name!r} is not a record in this folder")
        seg = read_header(base.parent / seg_name)
        if len(seg.segments) != 1:
            raise InputError(path, f"segment {seg_name!r} is itself multi-segment")
        if abs(seg.fs - fs) > 1e-6 * fs:
            raise InputError(seg.path, f"sampling rate {seg.fs:g} Hz differs from the "
                                       f"multi-segment record's {fs:g} Hz")
        if i == 0 and seg_len == 0:  # the layout segment of a variable-layout record
            names = seg.names
            continue
        if seg.n_samples < seg_len:
            raise InputError(seg.path, f"holds {seg.n_samples} samples, the multi-segment "
                                       f"header {path.name} says {seg_len}")
        segments.append(Segment(seg.segments[0].base, seg_len, seg.segments[0].signals))
    real = [s for s in segments if s.base is not None]
    if not real:
        raise InputError(path, "every segment is empty")
    if not names:  # fixed layout: every segment has the same signals
        names = tuple(s.name for s in real[0].signals)
    if len(names) != n_sig:
        raise InputError(path, f"the record line announces {n_sig} signal(s), its segments "
                               f"hold {len(names)}")
    total = sum(s.n_samples for s in segments)
    if n_total != total:
        raise InputError(path, f"record line: {n_total} samples, the segments add up to "
                               f"{total}")
    return Header(path, fs, total, names, tuple(segments))
