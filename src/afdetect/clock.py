"""Clock time of recordings: when one started, and the wall-clock time of any second in it.

Times are ISO 8601 local time without a timezone (recorders store none), to the
millisecond: ``2020-01-02T17:42:40.000``. A WFDB header may give a start time without a
date (``a01 2 128 7680 17:42:40``); the recording's times are then ISO 8601 times of day
(``17:42:40.000``), which wrap at midnight: the seconds from the start (``start_s``) stay
the unambiguous position.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from afdetect.errors import AfdetectError, InputError

# The date under a time-only start: never shown, it only lets time-of-day arithmetic wrap.
_NO_DATE = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class StartTime:
    """The local wall-clock time at which a recording starts.

    Attributes:
        moment: the start, a naive datetime; its date is meaningless when ``has_date`` is
            False.
        has_date: whether the date is known.
    """

    moment: dt.datetime
    has_date: bool = True

    @classmethod
    def of(cls, date: dt.date | None, time: dt.time) -> StartTime:
        """A start from a time of day and, when known, a date."""
        return cls(dt.datetime.combine(date or _NO_DATE, time.replace(tzinfo=None)),
                   date is not None)

    @classmethod
    def parse(cls, text: str) -> StartTime:
        """A start from ISO 8601 local time: ``2020-01-02T17:42:40`` (or with a space for the
        ``T``, or fractions of a second), or a time of day alone (``17:42:40``).

        Raises:
            AfdetectError: not such a time, or one with a timezone.
        """
        text = text.strip()
        try:
            if "T" in text or " " in text:  # a date and a time
                moment = dt.datetime.fromisoformat(text)
                start, zone = cls(moment, True), moment.tzinfo
            else:
                time = dt.time.fromisoformat(text)
                start, zone = cls.of(None, time), time.tzinfo
        except ValueError:
            raise AfdetectError(f"start time {text!r}: not an ISO 8601 local time such as "
                                "2020-01-02T17:42:40 or 17:42:40") from None
        if zone is not None:  # recorders keep local time; a zone would be silently dropped
            raise AfdetectError(f"start time {text!r}: give local time without a timezone, "
                                "such as 2020-01-02T17:42:40")
        return start

    def at(self, seconds: float) -> str:
        """ISO 8601 local time ``seconds`` after the start, to the nearest millisecond."""
        moment = self.moment_at(seconds)
        # isoformat truncates to milliseconds; round instead, as start_s is rounded
        moment = moment.replace(microsecond=0) + dt.timedelta(
            milliseconds=round(moment.microsecond / 1000))
        if self.has_date:
            return moment.isoformat(timespec="milliseconds")
        return moment.time().isoformat(timespec="milliseconds")

    def iso(self) -> str:
        """The start itself in ISO 8601."""
        return self.at(0.0)

    def moment_at(self, seconds: float) -> dt.datetime:
        """The wall-clock moment ``seconds`` after the start (its date is meaningless
        without ``has_date``)."""
        return self.moment + dt.timedelta(seconds=float(seconds))

    def label(self, seconds: float) -> str:
        """``seconds`` after the start for people: ``2020-01-02 17:42:40`` (whole seconds),
        or ``17:42:40`` without a date."""
        moment = self.moment_at(round(float(seconds)))
        return moment.strftime("%Y-%m-%d %H:%M:%S" if self.has_date else "%H:%M:%S")

    def span(self, start_s: float, end_s: float) -> dict[str, str]:
        """``{"start_time", "end_time"}`` of an interval in seconds from the start."""
        return {"start_time": self.at(start_s), "end_time": self.at(end_s)}


def span_of(start: StartTime | None, start_s: float, end_s: float) -> dict[str, str | None]:
    """:meth:`StartTime.span`, or both None when the start is unknown."""
    if start is None:
        return {"start_time": None, "end_time": None}
    return dict(start.span(start_s, end_s))


def wfdb_start(path: str | Path) -> StartTime | None:
    """The start a WFDB header gives (its base time and, when present, base date), or None.

    ``path``: the record (``rec``, ``rec.hea``, ``rec.dat`` or ``rec.mat``).
    """
    import wfdb

    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".mat") else path
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare Exceptions on bad headers
        problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(base.with_suffix(".hea"), f"unreadable WFDB header ({problem})") from None
    if header.base_time is None:
        return None
    return StartTime.of(header.base_date, header.base_time)
