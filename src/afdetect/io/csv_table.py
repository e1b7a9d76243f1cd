"""ECG tables in CSV files, read in chunks: separators, decimal commas, a header row, a
units row, a time column and the lead columns.

What a CSV is read as:

- **Separator**: ``;`` if a line uses it, else a tab if a line uses one, else ``,``.
- **Decimal mark**: ``.``; a decimal comma (``-0,6950``) with ``;`` or tab separators, or
  in a ``,``-separated file whose header row tells how many columns there are, or in a
  single unnamed column where the numbers show it (``-0,12`` or ``0,05``). Anything
  ambiguous, or a file mixing both marks, is refused.
- **Header**: a first row that is not all numbers names the columns; a second such row
  gives their units (as PhysioNet's exports write: ``'hh:mm:ss.mmm','mV','mV'``).
- **Time column**: named ``time``, ``t``, ``time_s``, ``seconds``, ``timestamp``,
  ``elapsed time``... (``time_ms``/``ms``: milliseconds; ``h:mm:ss.fff`` clock values and
  ISO 8601 timestamps are read too), or, unnamed, a first column of equally spaced
  increasing numbers. It gives the sampling rate when ``--fs`` is not given, is checked
  against ``--fs`` when it is, and every step must be one sample (a gap is refused). A
  first column of whole numbers 0, 1, 2, ... (or one named ``sample``/``index``) is a
  sample number and ignored.
- **Leads**: every other column; ``lead`` picks one by 0-based index or by name.
- **Units**: millivolts, unless the column name (``ecg_uV``, ``MLII (mV)``, ``V1 [µV]``) or
  the units row says ``mV``, ``uV``/``µV`` or ``V``.
- **Rows**: every row must have as many fields as the header (or the first row); an empty
  or ``NaN`` cell is a missing sample (refused); each problem names its line number.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from afdetect.errors import InputError
from afdetect.io.signal import MAX_MV, SignalStream

MV_PER_UNIT = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3,
               "μv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3, "v": 1e3, "volt": 1e3,
               "volts": 1e3}
SECONDS_PER_TIME_UNIT = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
                         "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3}
TIME_NAMES = {"time", "t", "times", "seconds", "second", "sec", "secs", "s", "timestamp",
              "timestamps", "elapsed_time", "elapsed", "datetime", "date_time", "clock",
              "ms", "msec", "milliseconds", "millis", "time_s", "time_sec", "time_ms",
              "timestamp_s", "timestamp_ms", "t_s", "t_ms", "elapsed_time_s"}
INDEX_NAMES = {"sample", "samples", "index", "idx", "n", "#", "sample_#", "sample_number",
               "sample_no", "sample_index", "row"}
CLOCK_UNITS = {"hh:mm:ss.mmm", "hh:mm:ss", "mm:ss.mmm", "h:mm:ss.fff", "hh:mm:ss.fff"}
KNOWN_UNITS = set(MV_PER_UNIT) | set(SECONDS_PER_TIME_UNIT) | CLOCK_UNITS
ROWS_PER_OFFSET = 1024  # rows between remembered byte offsets (random access to chunks)
HEAD_ROWS = 4096  # rows sniffed for the layout and the time step
FS_TOLERANCE = 0.005  # relative: --fs against the time column's rate

_UNIT_SUFFIX = re.compile(r"^(?P<base>.*?)[\s_\-]*[(\[](?P<unit>[^)\]]*)[)\]]$"
                          r"|^(?P<base2>.*?)[\s_\-]+(?P<unit2>mV|mv|uV|uv|µV|μV|V|ms|s)$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class Column:
    """One column of the table: its name split from any unit it states."""

    name: str
    base: str
    unit: str


@dataclass(frozen=True)
class CsvLayout:
    """How a CSV file is read (see the module docstring).

    Attributes:
        delimiter: the field separator.
        decimal_comma: numbers use ``,`` as the decimal mark.
        pair_fields: ``,`` is both separator and decimal mark: two fields make a number.
        columns: the table's columns (names ``""`` when there is no header).
        first_row_line: 1-based line number of the first data row.
        time: index of the time column, or None.
        leads: indices of the lead columns.
    """

    delimiter: str
    decimal_comma: bool
    pair_fields: bool
    columns: tuple[Column, ...]
    first_row_line: int
    time: int | None
    leads: tuple[int, ...]


def open_csv_stream(path: Path, fs: float | None, lead: str | int) -> SignalStream:
    """One lead of a CSV file as a :class:`SignalStream` in mV, read a chunk at a time."""
    table = _Table(path)
    column = table.pick_lead(lead)
    mv_per_unit = _lead_unit(path, table.layout.columns[column])
    time_fs = table.time_rate()
    if fs is None:
        if time_fs is None:
            raise InputError(path, "sampling rate unknown: pass --fs, or give the CSV a time "
                                   "column (e.g. time_s)")
        fs = time_fs
    elif time_fs is not None and abs(fs - time_fs) > FS_TOLERANCE * fs:
        name = table.layout.columns[table.layout.time or 0].name or "column 1"
        raise InputError(path, f"--fs {fs:g} disagrees with the time column {name!r} "
                               f"({time_fs:g} Hz)")
    table.check_not_a_ramp(column)

    def read_mv(start: int, stop: int) -> np.ndarray:
        return table.values(column, start, stop, fs) * mv_per_unit

    return SignalStream(path.stem, str(path), float(fs), table.n_rows, 1000.0,
                        table.layout.columns[column].name, read_mv, integer=False)


class _Table:
    """The layout, row count and row offsets of a CSV file; reads rows on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets, self.lines, self.n_rows, head = self._index()
        self.layout = _sniff(path, head)
        # offsets and lines count every non-blank line: the header rows come first
        self._skip = sum(1 for line_no, _ in head if line_no < self.layout.first_row_line)
        self.n_rows -= self._skip
        inside = [line for line, before in self._blanks if before > self._skip]
        if inside:  # in a one-column file an empty line is an empty cell: never skipped
            raise InputError(path, f"line {inside[0]}: empty row amid the samples (a "
                                   "missing sample?)")
        if self.n_rows <= 0:
            raise InputError(path, "CSV has a header but no samples")

    def _index(self) -> tuple[list[int], list[int], int, list[tuple[int, str]]]:
        """Byte offset and line number of every ROWS_PER_OFFSET-th non-blank line, their
        count, and the first HEAD_ROWS non-blank lines (line number, text)."""
        offsets: list[int] = []
        lines: list[int] = []
        head: list[tuple[int, str]] = []
        n = 0
        blank = 0
        # (line, non-blank lines before it) of empty lines with data after them: the first
        # few (among header rows, where they are harmless) and the first after them
        self._blanks: list[tuple[int, int]] = []
        try:
            with open(self.path, "rb") as fh:
                pos = 0
                for line_no, raw in enumerate(fh, start=1):
                    if not raw.strip():
                        blank = blank or line_no
                    else:
                        if blank and n and (n <= 3 or not self._blanks
                                            or self._blanks[-1][1] <= 3):
                            self._blanks.append((blank, n))
                        blank = 0
                        if n % ROWS_PER_OFFSET == 0:
                            offsets.append(pos)
                            lines.append(line_no)
                        if n < HEAD_ROWS:
                            head.append((line_no, _decode(self.path, raw, line_no,
                                                          first=n == 0)))
                        n += 1
                    pos += len(raw)
        except FileNotFoundError:
            raise InputError(self.path, "no such file") from None
        except IsADirectoryError:
            raise InputError(self.path, "is a folder, not a CSV file") from None
        except OSError as exc:
            raise InputError(self.path, f"unreadable ({exc.strerror or exc})") from None
        if not n:
            raise InputError(self.path, "empty CSV")
        return offsets, lines, n, head

    def _rows(self, start: int, stop: int) -> list[tuple[int, list[str]]]:
        """Data rows ``start`` to ``stop`` as (line number, fields)."""
        first = start + self._skip
        block = first // ROWS_PER_OFFSET
        out: list[tuple[int, str]] = []
        n = block * ROWS_PER_OFFSET
        line_no = self.lines[block]
        with open(self.path, "rb") as fh:
            fh.seek(self.offsets[block])
            for raw in fh:
                if raw.strip():
                    if n >= first:
                        out.append((line_no, _decode(self.path, raw, line_no, False)))
                    n += 1
                    if n >= stop + self._skip:
                        break
                line_no += 1
        if len(out) < stop - start:
            raise InputError(self.path, "the file changed while it was read")
        return [(line, self._fields(line, cells)) for (line, _), cells in
                zip(out, _split(self.path, [t for _, t in out], self.layout.delimiter),
                    strict=True)]

    def _fields(self, line_no: int, cells: list[str]) -> list[str]:
        """A row's cells with any decimal comma made a point, checked for their count."""
        layout = self.layout
        if layout.pair_fields:
            if len(cells) % 2 or any(not c.isdigit() for c in cells[1::2]):
                raise InputError(self.path, f"line {line_no}: {len(cells)} fields do not "
                                            "pair into decimal-comma numbers")
            cells = [f"{a}.{b}" for a, b in zip(cells[::2], cells[1::2], strict=True)]
        elif layout.decimal_comma:
            cells = [c.replace(",", ".") for c in cells]
        if len(cells) != len(layout.columns):
            named = ("the header names" if any(c.name for c in layout.columns)
                     else "the first row has")
            raise InputError(self.path, f"line {line_no}: {len(cells)} field(s), {named} "
                                        f"{len(layout.columns)}")
        return cells

    def values(self, column: int, start: int, stop: int, fs: float) -> np.ndarray:
        """Column ``column`` of rows ``start`` to ``stop`` as float64 (time steps checked)."""
        rows = self._rows(max(0, start - 1), stop)
        if self.layout.time is not None:
            self._check_steps(rows, fs)
        rows = rows[len(rows) - (stop - start):]
        cells = [r[column] for _, r in rows]
        try:
            values = np.asarray(cells).astype(np.float64)
        except ValueError:
            values = np.array([_number(self.path, line, r[column], self.layout, column)
                               for line, r in rows], dtype=np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) >= MAX_MV)
        if bad.any():
            line, row = rows[int(np.argmax(bad))]
            cell = row[column].strip()
            what = "missing sample" if cell.lower() in ("", "nan") else "value"
            raise InputError(self.path, f"line {line}: {what} {cell!r} in column "
                                        f"{self._label(column)} (afdetect does not fill gaps)"
                             if what == "missing sample" else
                             f"line {line}: value {cell!r} in column {self._label(column)} "
                             "is not an ECG sample in mV")
        return values

    def _label(self, column: int) -> str:
        name = self.layout.columns[column].name
        return repr(name) if name else str(column + 1)

    def time_rate(self) -> float | None:
        """The sampling rate the time column gives (Hz), or None without one."""
        time = self.layout.time
        if time is None:
            return None
        head = self._times(self._rows(0, min(self.n_rows, HEAD_ROWS)))
        tail = self._times(self._rows(self.n_rows - 1, self.n_rows))
        if len(head) < 2:
            raise InputError(self.path, "one row: a time column needs two to give a rate")
        step_head = (head[-1] - head[0]) / (len(head) - 1)
        step = (tail[-1] - head[0]) / (self.n_rows - 1)
        if not step > 0 or not step_head > 0:
            raise InputError(self.path, f"time column {self._label(time)} does not increase")
        if abs(step_head - step) > 0.01 * step:
            raise InputError(self.path, f"time column {self._label(time)}: the first rows "
                                        f"step {step_head:.6g} s, the whole file averages "
                                        f"{step:.6g} s (gaps, or a changing rate)")
        fs = 1.0 / step
        return float(round(fs)) if abs(fs - round(fs)) < 1e-4 * fs else fs

    def _times(self, rows: list[tuple[int, list[str]]]) -> np.ndarray:
        time = self.layout.time
        assert time is not None
        unit = self.layout.columns[time].unit
        scale = SECONDS_PER_TIME_UNIT.get(unit, 1.0)
        cells = [r[time] for _, r in rows]
        try:
            return np.asarray(cells).astype(np.float64) * scale
        except ValueError:
            return np.array([_seconds(self.path, line, r[time]) * scale for line, r in rows])

    def _check_steps(self, rows: list[tuple[int, list[str]]], fs: float) -> None:
        """Every step of the time column is one sample period (within half a period)."""
        t = self._times(rows)
        if len(t) < 2:
            return
        bad = np.abs(np.diff(t) * fs - 1.0) > 0.5
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(self.path, f"line {rows[i + 1][0]}: time goes from {t[i]:.6g} "
                                        f"to {t[i + 1]:.6g} s, one sample at {fs:g} Hz is "
                                        f"{1 / fs:.6g} s (missing rows, or a reset)")

    def pick_lead(self, lead: str | int) -> int:
        """The column of ``lead``: an index into the lead columns, or a column name."""
        columns, leads = self.layout.columns, self.layout.leads
        if not leads:
            raise InputError(self.path, "no ECG column: the only column is a time or "
                                        "sample-number column")
        names = [columns[c].name for c in leads]
        if isinstance(lead, str) and not lead.lstrip("-").isdigit():
            for c in leads:
                if lead in (columns[c].name, columns[c].base):
                    return c
            raise InputError(self.path, f"no lead named {lead!r} (leads: "
                                        f"{', '.join(n for n in names if n) or 'unnamed'})")
        index = int(lead)
        if not 0 <= index < len(leads):
            raise InputError(self.path, f"lead index {index} out of range: the file has "
                                        f"{len(leads)} lead column(s)")
        return leads[index]

    def check_not_a_ramp(self, column: int) -> None:
        """Refuse a lead column that rises steadily: a time or sample column, not an ECG."""
        rows = self._rows(0, min(self.n_rows, HEAD_ROWS))
        try:
            x = np.asarray([r[column] for _, r in rows]).astype(np.float64)
        except ValueError:
            return  # the reading itself says which cell is wrong
        if len(x) >= 10 and (np.all(np.diff(x) > 0) or np.all(np.diff(x) < 0)):
            raise InputError(self.path, f"column {self._label(column)} rises steadily, like "
                                        "a time or sample-number column: choose the ECG "
                                        "column with --lead")


def _decode(path: Path, raw: bytes, line_no: int, first: bool) -> str:
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError:
        raise InputError(path, f"line {line_no}: not UTF-8 text (is it a CSV file?)") from None
    if "\x00" in text:
        raise InputError(path, f"line {line_no}: binary data, not a CSV file")
    return text.rstrip("\r\n")


def _split(path: Path, lines: list[str], delimiter: str) -> list[list[str]]:
    """The fields of each line (``"`` quotes a field)."""
    try:
        return list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(path, f"not a CSV table ({exc})") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column(name: str) -> Column:
    """A header cell: its name, the name without a unit, and the unit (lower case)."""
    name = name.strip().strip("'\"").strip()
    match = _UNIT_SUFFIX.match(name)
    if match and (match["unit"] is not None or match["unit2"] is not None):
        base = match["base"] if match["unit"] is not None else match["base2"]
        unit = match["unit"] if match["unit"] is not None else match["unit2"]
        return Column(name, base.strip(), unit.strip().lower())
    return Column(name, name, "")


def _unit_key(cell: str) -> str:
    return cell.strip().strip("'\"").strip().lower()


def _key(base: str) -> str:
    return re.sub(r"[\s_]+", "_", base.strip().lower())


def _sniff(path: Path, head: list[tuple[int, str]]) -> CsvLayout:
    """The layout of a CSV from its first rows (see the module docstring)."""
    texts = [t for _, t in head]
    delimiter = ";" if any(";" in t for t in texts) else "\t" if any(
        "\t" in t for t in texts) else ","
    rows = _split(path, texts, delimiter)
    header: list[str] = []
    units: list[str] = []
    if rows and not all(_is_number(c.replace(",", ".")) for c in rows[0]):
        header = rows.pop(0)
        if rows and any(_unit_key(c) in KNOWN_UNITS for c in rows[0]):
            units = rows.pop(0)
    if not rows:
        raise InputError(path, "CSV has a header but no samples")
    first_line = head[len(head) - len(rows)][0]
    cells = [c.strip() for r in rows for c in r]
    points = any("." in c for c in cells)
    commas = any(_DECIMAL_COMMA.match(c) for c in cells)
    decimal_comma = pair = False
    width = len(rows[0])
    if delimiter != ",":
        if points and commas:
            raise InputError(path, "the numbers mix decimal points and decimal commas")
        decimal_comma = commas
    elif not points and all(len(r) % 2 == 0 and all(c.strip().isdigit() for c in r[1::2])
                            for r in rows):
        # ',' could be the decimal mark: only a header's column count, or numbers that
        # only a decimal comma writes (-0,5 or 0,05), tell
        shown = any(r[0].strip() in ("-0", "+0") or any(
            len(c.strip()) > 1 and c.strip().startswith("0") for c in r[1::2]) for r in rows)
        if header and width == 2 * len(header):
            pair = decimal_comma = True
        elif not header and shown:
            if width != 2:
                raise InputError(path, "',' seems to be both the decimal mark and the "
                                       "separator: save the file with ';' between columns, "
                                       "or add a header row")
            pair = decimal_comma = True
    if pair:
        width //= 2
    names = header if header else [""] * width
    if len(names) != width:
        raise InputError(path, f"line {first_line}: {width} field(s), the header names "
                               f"{len(names)}")
    columns = [_column(n) for n in names]
    if units:
        if len(units) != len(columns):
            raise InputError(path, f"the units row has {len(units)} field(s), the header "
                                   f"names {len(columns)}")
        columns = [Column(c.name, c.base, _unit_key(u))
                   for c, u in zip(columns, units, strict=True)]
    time, skip = _time_and_index(columns, rows, pair, decimal_comma)
    leads = tuple(i for i in range(len(columns)) if i != time and i not in skip)
    return CsvLayout(delimiter, decimal_comma, pair, tuple(columns), first_line, time, leads)


def _time_and_index(columns: list[Column], rows: list[list[str]], pair: bool,
                    decimal_comma: bool) -> tuple[int | None, set[int]]:
    """(time column or None, sample-number columns): by name, else the first column when
    its values rise in equal steps."""
    time = next((i for i, c in enumerate(columns)
                 if _key(c.base) in TIME_NAMES or c.unit in CLOCK_UNITS), None)
    skip = {i for i, c in enumerate(columns) if _key(c.base) in INDEX_NAMES}
    if time is not None or len(columns) < 2 or 0 in skip or _key(columns[0].base):
        return time, skip
    cells = [(f"{r[0]}.{r[1]}" if pair else r[0].replace(",", ".") if decimal_comma else r[0])
             for r in rows]
    try:
        x = np.asarray(cells).astype(np.float64)
    except ValueError:
        return None, skip
    steps = np.diff(x)
    if len(x) < 10 or not np.all(steps > 0):
        return None, skip
    step = float(np.median(steps))
    if np.max(np.abs(steps - step)) > 0.5 * step:
        return None, skip
    if step == 1 and np.all(x == np.round(x)):
        return None, {0}  # 0, 1, 2, ...: sample numbers, no rate in them
    return 0, skip


def _number(path: Path, line: int, cell: str, layout: CsvLayout, column: int) -> float:
    text = cell.strip().strip("'\"").strip()
    if text == "" or text.lower() == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        name = layout.columns[column].name
        raise InputError(path, f"CSV holds non-numeric value {cell!r} at line {line}, "
                               f"column {repr(name) if name else column + 1}") from None


def _seconds(path: Path, line: int, cell: str) -> float:
    """A time cell: a number of the column's unit, ``[h:]m:ss.fff``, or ISO 8601."""
    text = cell.strip().strip("'\"").strip()
    clock = _CLOCK.match(text)
    if clock:
        return (int(clock["h"] or 0) * 3600 + int(clock["m"]) * 60 + float(clock["s"]))
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InputError(path, f"line {line}: time {cell!r} is not a number, [h:]m:ss.fff "
                               "or an ISO 8601 timestamp") from None


def _lead_unit(path: Path, column: Column) -> float:
    """Millivolts per unit of a lead column: mV unless its name or units row says."""
    if not column.unit:
        return 1.0
    mv = MV_PER_UNIT.get(column.unit)
    if mv is None:
        raise InputError(path, f"column {column.name!r}: unit {column.unit!r} is not a "
                               "voltage (mV, uV or V)")
    return mv
