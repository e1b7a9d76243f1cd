"""``scan --report``: a printable AF report of one recording, as a PDF (matplotlib).

What a Holter AF summary holds: the recording (identity, start, duration, analysed time,
lead, rate); AF burden, episodes, the longest one, heart rate in AF and outside it; the
episode table; the hourly trend of AF burden and heart rate; and ECG strips at the onset
of the AF episodes on ECG paper at true scale. The report of a reviewed recording
(:class:`ReviewMark`, from ``afdetect review``) has the reviewed episodes in place of the
detected ones, says so in its title and on every page, and gives who reviewed it, when,
what they decided, and the algorithm's burden beside the reviewed one.

True scale: every page is an A4 sheet (210 x 297 mm, strips in landscape) whose figure
size is set in inches and whose strip axes are placed in millimetres, so that printed at
100 % (no "fit to page") 1 s is 25 mm and 1 mV is 10 mm, with the 1-mm and 5-mm grid of
ECG paper. Text is embedded as TrueType (Type 42), so the PDF's text can be searched and
extracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages

from afdetect import __version__
from afdetect.atomic import atomic_path
from afdetect.clock import StartTime
from afdetect.monitor.rate import HeartRate, as_heart_rate

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.figure import Figure

    from afdetect.io.records import SignalStream
    from afdetect.monitor.episodes import EpisodeRule
    from afdetect.monitor.scan import RecordingScan

MM = 1 / 25.4  # inches per millimetre
A4 = (210.0, 297.0)  # width, height in mm (portrait)
STRIP_S = 10.0
STRIP_BEFORE_S = 3.0  # seconds of the strip before the onset
MM_PER_S, MM_PER_MV = 25.0, 10.0
PAPER_MINOR, PAPER_MAJOR = "#f6c3c3", "#e58a8a"
DISCLAIMER = ("Decision aid, not a diagnosis: automatically detected; every finding must be "
              "reviewed by a qualified clinician on the ECG.")
TABLE_ROWS_FIRST, TABLE_ROWS_MORE = 14, 40
LINE_MM = 5.2  # between the lines of the summary
TREND_MM = (22.0, 140.0, 168.0, 62.0)  # left, bottom, width, height of the hourly trend


@dataclass(frozen=True)
class ReviewMark:
    """The review behind a report's episodes: the report is then marked as reviewed.

    Attributes:
        reviewers: who changed the review, in the order they first did.
        first_at, last_at: the first and the last change (ISO 8601, UTC); None without any.
        signed_off: (by, at) of the sign-off, None when not signed off.
        decisions: the episodes under review by decision, printed in this order (e.g.
            ``{"confirmed": 3, "moved": 1, "relabelled": 0, "rejected": 1, "added": 1,
            "pending": 0}``).
        algorithm_burden: the algorithm's AF burden (0 to 1), beside the reviewed one.
    """

    reviewers: tuple[str, ...]
    first_at: str | None
    last_at: str | None
    signed_off: tuple[str, str] | None
    decisions: dict[str, int]
    algorithm_burden: float

    def by(self) -> str:
        return ", ".join(self.reviewers) or "nobody yet"

    def signed(self) -> str:
        return (f"signed off by {self.signed_off[0]}, {_utc(self.signed_off[1])}"
                if self.signed_off else "not signed off")

    def changes(self) -> str:
        if self.first_at is None or self.last_at is None:
            return "no change yet"
        first, last = _utc(self.first_at), _utc(self.last_at)
        return f"changes {first}" if first == last else f"changes {first} to {last}"


def _utc(iso: str) -> str:
    """An ISO 8601 moment as ``YYYY-MM-DD HH:MM UTC`` (as it is when it has no zone)."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo else "")


@dataclass(frozen=True)
class ReportOptions:
    """What goes in the report beyond the scan.

    Attributes:
        model: the model's name.
        rule: the episode rule the scan used (printed).
        start: the recording's clock start, when known (a time of day without a date is
            printed as such).
        max_strips: onset strips drawn, for the longest AF episodes; the rest are listed.
        review: the review whose episodes the scan carries, or None for the algorithm's.
    """

    model: str
    rule: EpisodeRule | None = None
    start: StartTime | None = None
    max_strips: int = 12
    review: ReviewMark | None = None

    @property
    def title(self) -> str:
        if self.review is None:
            return "AF report"
        return "AF report (reviewed)" if self.review.reviewers else \
            "AF report (review not started)"


def write_report(scan: RecordingScan, stream: SignalStream, path: str | Path,
                 options: ReportOptions) -> Path:
    """Write the report of ``scan`` (its ECG read from ``stream``) to ``path`` atomically."""
    af = scan.af_episodes()
    longest = sorted(range(len(af)), key=lambda i: -af[i].duration_s)[:options.max_strips]
    stripped = sorted(longest)  # strips in time order
    rates = scan.episode_rates(af)
    strip_pages = {i: 2 + _table_pages(len(af)) + k // 3 for k, i in enumerate(stripped)}
    pages = [_summary_page(scan, options, rates, strip_pages)]
    for first in range(TABLE_ROWS_FIRST, len(af), TABLE_ROWS_MORE):
        pages.append(_table_page(scan, options, rates, strip_pages, first))
    for k in range(0, len(stripped), 3):
        pages.append(_strip_page(scan, stream, options, stripped[k:k + 3]))
    total = len(pages)
    path = Path(path)
    metadata = {"Title": f"{options.title}: {scan.record}",
                "Creator": f"afdetect {__version__}"}
    with (plt.rc_context({"pdf.fonttype": 42, "font.size": 8}), atomic_path(path) as tmp,
          PdfPages(tmp, metadata=metadata) as pdf):
        for n, draw in enumerate(pages, start=1):
            fig = draw()
            _footer(fig, options, n, total)
            pdf.savefig(fig)
            plt.close(fig)
    return path


def _table_pages(n_af: int) -> int:
    """Pages after the first that the episode table continues on."""
    return max(0, -(-(n_af - TABLE_ROWS_FIRST) // TABLE_ROWS_MORE))


def clock(scan_seconds: float, start: StartTime | None) -> str:
    """A time in the recording: local clock time when the start is known, else H:MM:SS
    from the start."""
    if start is not None:
        return start.label(scan_seconds)
    whole = round(scan_seconds)
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _tick(scan_seconds: float, start: StartTime | None) -> str:
    """A strip's time label: the time of day when the start is known."""
    if start is not None:
        return start.moment_at(round(float(scan_seconds))).strftime("%H:%M:%S")
    return clock(scan_seconds, None)


def duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600:d} h {whole // 60 % 60:02d} min {whole % 60:02d} s"


def _rate(rate: HeartRate | None) -> str:
    if rate is None:
        return "n/a (fewer than 2 beats)"
    return f"mean {rate['mean']:.0f} bpm (min {rate['min']:.0f}, max {rate['max']:.0f})"


def _summary_page(scan: RecordingScan, options: ReportOptions, rates: np.ndarray,
                  strip_pages: dict[int, int]) -> Callable[[], Figure]:
    def draw() -> Figure:
        fig = plt.figure(figsize=(A4[0] * MM, A4[1] * MM))
        af = scan.af_episodes()
        longest = max((e.duration_s for e in af), default=0.0)
        start = (options.start.label(0) if options.start
                 else "not recorded (times are from the start of the recording)")
        fig.text(15 / A4[0], 1 - 15 / A4[1], f"{options.title}: {scan.record}",
                 fontsize=16, weight="bold", va="top")
        review = options.review
        burden = f"{scan.af_burden:.1%} ({duration(scan.af_seconds)})"
        lines = [
            ("Recording", f"{scan.record} ({Path(scan.source).name})"),
            ("Start", start),
            ("Duration", duration(scan.duration_s)),
            ("Analysed", f"{duration(scan.covered_s)} (model output resolution "
                         f"{scan.step_s:.2f} s)"),
            ("Lead, rate", f"{scan.lead or 'unnamed'}, {scan.fs:g} Hz"),
            *(_review_lines(review, burden) if review else [("AF burden", burden)]),
            ("AF episodes", f"{len(af)}"),
            ("Longest AF episode", duration(longest) if af else "none"),
            ("Heart rate in AF", _rate(scan.heart_rate("A"))),
            ("Heart rate, non-AF", _rate(scan.heart_rate("A", exclude=True))),
            ("Heart rate, all", f"{_rate(scan.heart_rate())}; {len(scan.beats)} beats"),
        ]
        y = 1 - 27 / A4[1]
        for key, value in lines:
            fig.text(15 / A4[0], y, key, weight="bold", va="top", fontsize=9)
            fig.text(55 / A4[0], y, value, va="top", fontsize=9)
            y -= LINE_MM / A4[1]
        # the trend gives up the height the lines beyond the usual eleven take
        left, bottom, width, height = TREND_MM
        height -= max(0, len(lines) - 11) * LINE_MM
        _trend(fig.add_axes((left / A4[0], bottom / A4[1], width / A4[0], height / A4[1])),
               scan)
        _episode_table(fig, scan, options, rates, strip_pages, 0, TABLE_ROWS_FIRST,
                       top_mm=112)
        return fig
    return draw


def _review_lines(review: ReviewMark, burden: str) -> list[tuple[str, str]]:
    """The summary's lines on the review, the reviewed burden beside the algorithm's."""
    decisions = ", ".join(f"{n} {name}" for name, n in review.decisions.items())
    return [("Reviewed by", f"{review.by()} ({review.changes()})"),
            ("Sign-off", review.signed()),
            ("Episodes reviewed", f"{decisions} (of {sum(review.decisions.values())})"),
            ("AF burden", f"{burden} after review; the algorithm's "
                          f"{review.algorithm_burden:.1%}")]


def _table_page(scan: RecordingScan, options: ReportOptions, rates: np.ndarray,
                strip_pages: dict[int, int], first: int) -> Callable[[], Figure]:
    def draw() -> Figure:
        fig = plt.figure(figsize=(A4[0] * MM, A4[1] * MM))
        fig.text(15 / A4[0], 1 - 15 / A4[1], f"{options.title}: {scan.record}, AF episodes "
                 "(continued)", fontsize=12, weight="bold", va="top")
        _episode_table(fig, scan, options, rates, strip_pages, first, TABLE_ROWS_MORE,
                       top_mm=A4[1] - 28)
        return fig
    return draw


def _episode_table(fig: Figure, scan: RecordingScan, options: ReportOptions,
                   rates: np.ndarray, strip_pages: dict[int, int], first: int, rows: int,
                   top_mm: float) -> None:
    """AF episodes ``first .. first + rows - 1`` as a table whose top is ``top_mm`` from
    the bottom of the page."""
    af = scan.af_episodes()
    columns = (("#", 15), ("start", 24), ("end", 62), ("duration", 100),
               ("heart rate min / mean / max", 128), ("strip", 178))
    y = top_mm / A4[1]
    if first == 0:
        fig.text(15 / A4[0], y + 6 / A4[1], "AF episodes after review" if options.review
                 else "AF episodes", weight="bold", fontsize=10)
        if not af:
            fig.text(15 / A4[0], y, "No AF episode after review." if options.review
                     else "No AF episode detected.", va="top")
            return
        if len(strip_pages) < len(af):
            fig.text(60 / A4[0], y + 6 / A4[1], f"onset strips for the {len(strip_pages)} "
                     f"longest of {len(af)}; the others are listed here only", fontsize=8)
    for name, x in columns:
        fig.text(x / A4[0], y, name, weight="bold", va="top")
    for i in range(first, min(first + rows, len(af))):
        y -= 5 / A4[1]
        e, r = af[i], as_heart_rate(rates[i])
        cells = (str(i + 1), clock(e.start_s, options.start),
                 clock(e.end_s, options.start), duration(e.duration_s),
                 "n/a" if r is None else
                 f"{r['min']:.0f} / {r['mean']:.0f} / {r['max']:.0f} bpm",
                 f"page {strip_pages[i]}" if i in strip_pages else "listed only")
        for (_, x), text in zip(columns, cells, strict=True):
            fig.text(x / A4[0], y, text, va="top")


def _trend(ax: plt.Axes, scan: RecordingScan) -> None:
    """AF burden (bars) and heart rate (line, min-max band) per hour from the start."""
    hours = scan.hourly()
    x = np.array([h["hour"] for h in hours], dtype=float)
    widths = np.array([(h["end_s"] - h["start_s"]) / 3600 for h in hours])
    ax.bar(x, [100 * h["af_burden"] for h in hours], width=widths, align="edge",
           color="#d62728", alpha=0.35, edgecolor="white", label="AF burden (%)")
    ax.set_ylim(0, 100)
    ax.set_ylabel("AF burden per hour (%)")
    ax.set_xlabel("hour from the start of the recording")
    ax.set_xlim(0, scan.duration_s / 3600)
    ax.set_title("Hourly trend", loc="left", fontsize=10, weight="bold")
    hr = ax.twinx()
    rated = [(h["hour"] + w / 2, h["heart_rate_bpm"]) for h, w in zip(hours, widths,
                                                                     strict=True)
             if h["heart_rate_bpm"] is not None]
    if rated:
        mean = np.array([r["mean"] for _, r in rated])
        spread = [mean - [r["min"] for _, r in rated], [r["max"] for _, r in rated] - mean]
        hr.errorbar([c for c, _ in rated], mean, yerr=spread, fmt="o-", color="black", ms=3,
                    lw=0.8, capsize=2, label="heart rate mean (bar: min-max)")
    hr.set_ylim(0, 200)
    hr.set_ylabel("heart rate (bpm)")
    handles = ax.get_legend_handles_labels()
    more = hr.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right", fontsize=7)


def _strip_page(scan: RecordingScan, stream: SignalStream, options: ReportOptions,
                episodes: list[int]) -> Callable[[], Figure]:
    def draw() -> Figure:
        width, height = A4[1], A4[0]  # landscape
        fig = plt.figure(figsize=(width * MM, height * MM))
        fig.text(15 / width, 1 - 10 / height, f"{options.title}: {scan.record}, AF onset "
                 "strips (25 mm/s, 10 mm/mV: print at 100 %, no page scaling)", fontsize=11,
                 weight="bold", va="top")
        af = scan.af_episodes()
        for k, i in enumerate(episodes):
            e = af[i]
            start = min(max(0.0, e.start_s - STRIP_BEFORE_S),
                        max(0.0, scan.duration_s - STRIP_S))
            top = height - 22 - k * 60  # mm from the bottom to the top of this strip's axes
            _ecg_strip(fig, stream, start, e.start_s, (23.5, top - 40), (width, height),
                       f"AF episode {i + 1}: onset at {clock(e.start_s, options.start)}"
                       f", lasting {duration(e.duration_s)}", options.start)
        return fig
    return draw


def _ecg_strip(fig: Figure, stream: SignalStream, start_s: float, onset_s: float,
               origin_mm: tuple[float, float], page_mm: tuple[float, float],
               title: str, start: StartTime | None, span_mv: float = 4.0) -> None:
    """``STRIP_S`` seconds from ``start_s`` on ECG paper, at true scale: axes of
    ``STRIP_S * 25`` by ``span_mv * 10`` mm with their lower left corner at ``origin_mm``."""
    a = round(start_s * stream.fs)
    b = min(stream.n_samples, a + round(STRIP_S * stream.fs))
    mv = stream.read(a, b) / stream.counts_per_mv
    mv = mv - np.median(mv) if len(mv) else mv
    # the window keeps the QRS peaks, up or down, in view: centred on the signal's range
    low = np.floor(((mv.max() + mv.min()) / 2 - span_mv / 2) * 2) / 2 if len(mv) else -2.0
    high = low + span_mv
    w, h = STRIP_S * MM_PER_S, span_mv * MM_PER_MV
    ax = fig.add_axes((origin_mm[0] / page_mm[0], origin_mm[1] / page_mm[1],
                       w / page_mm[0], h / page_mm[1]))
    for step, colour, lw in ((0.04, PAPER_MINOR, 0.25), (0.2, PAPER_MAJOR, 0.6)):
        ax.vlines(np.arange(start_s, start_s + STRIP_S + 1e-9, step), low, high,
                  colors=colour, lw=lw, zorder=0)
    for step, colour, lw in ((0.1, PAPER_MINOR, 0.25), (0.5, PAPER_MAJOR, 0.6)):
        ax.hlines(np.arange(low, high + 1e-9, step), start_s, start_s + STRIP_S,
                  colors=colour, lw=lw, zorder=0)
    ax.plot(start_s + np.arange(len(mv)) / stream.fs, mv, color="black", lw=0.6)
    ax.axvline(onset_s, color="#1f5fbf", lw=0.8, ls="--")
    ax.text(onset_s, high, " onset", color="#1f5fbf", va="top", fontsize=7)
    ax.set_xlim(start_s, start_s + STRIP_S)
    ax.set_ylim(low, high)
    ax.set_xticks(np.arange(np.ceil(start_s), start_s + STRIP_S + 1e-9, 1.0))
    ax.set_xticklabels([_tick(t, start) for t in ax.get_xticks()], fontsize=6)
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, loc="left", fontsize=8)


def _footer(fig: Figure, options: ReportOptions, page: int, total: int) -> None:
    width_mm = fig.get_figwidth() / MM
    height_mm = fig.get_figheight() / MM
    rule = options.rule
    settings = (f"; AF from mean P(AF) >= {rule.af_threshold:g}, episodes >= "
                f"{rule.min_af_s:g} s" if rule is not None else "")
    fig.text(15 / width_mm, 13 / height_mm,
             f"afdetect {__version__}, model {options.model}{settings}.", fontsize=6.5,
             va="bottom")
    review = options.review
    if review is None:
        note = DISCLAIMER
    elif review.reviewers:
        note = (f"Reviewed: the detected AF episodes were checked on the ECG by "
                f"{review.by()} ({review.signed()}).")
    else:
        note = ("Review not started: the AF episodes are the algorithm's, not yet checked on "
                "the ECG; every finding must be reviewed by a qualified clinician.")
    fig.text(15 / width_mm, 9 / height_mm, note, fontsize=6.5, va="bottom", weight="bold")
    fig.text(1 - 15 / width_mm, 10 / height_mm, f"page {page} of {total}", fontsize=6.5,
             ha="right", va="bottom")
