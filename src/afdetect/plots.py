"""Figures: the confusion matrix and an ECG trace with its verdict."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from afdetect import CLASSES
from afdetect.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from afdetect.clock import StartTime
    from afdetect.io.records import SignalStream
    from afdetect.monitor.rhythm import RhythmInterval
    from afdetect.monitor.scan import RecordingScan

NAMES = {"N": "Normal", "A": "AF", "O": "Other", "~": "Noisy"}


def plot_confusion(confusion: np.ndarray, path: str | Path, title: str = "") -> None:
    """Draw a 4x4 confusion matrix (rows truth, columns prediction) as counts and row %."""
    confusion = np.asarray(confusion)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    labels = [NAMES[c] for c in CLASSES]
    ax.set_xticks(range(len(CLASSES)), labels)
    ax.set_yticks(range(len(CLASSES)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, f"{count}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.6 else "black")
    ax.set_title(title or "Confusion matrix")
    _save(fig, path)


ROW_S = 20.0
"""Seconds per row of a trace, as on a rhythm strip."""
ROWS_PER_PAGE = 12
"""Rows per trace image (4 minutes): longer recordings get an overview and pages."""
OVERVIEW_BINS = 2000


def plot_trace(signal_mv: np.ndarray, fs: float, path: str | Path, title: str,
               probabilities: dict[str, float] | None = None) -> list[Path]:
    """Draw an ECG trace (mV against seconds, ``ROW_S`` seconds a row), with the class
    probabilities as a bar strip; returns the files written.

    Up to ``ROWS_PER_PAGE`` rows it is one image at ``path``. A longer recording gets an
    overview at ``path`` (the whole trace as its min-max envelope, and the probabilities)
    and its rows on pages ``<path stem>_page1.png``, ``_page2.png``, ..., so that no image
    grows with the recording.
    """
    path = Path(path)
    n_rows = max(1, int(np.ceil(len(signal_mv) / fs / ROW_S)))
    if n_rows <= ROWS_PER_PAGE:
        _trace_page(signal_mv, fs, path, title, 0, n_rows, probabilities)
        return [path]
    n_pages = -(-n_rows // ROWS_PER_PAGE)
    pages = [path.with_name(f"{path.stem}_page{k + 1}{path.suffix or '.png'}")
             for k in range(n_pages)]
    _trace_overview(signal_mv, fs, path, title, probabilities,
                    f"{n_pages} pages of {ROWS_PER_PAGE * ROW_S / 60:g} min: "
                    f"{pages[0].name} .. {pages[-1].name}")
    for k, page in enumerate(pages):
        rows = range(k * ROWS_PER_PAGE, min(n_rows, (k + 1) * ROWS_PER_PAGE))
        _trace_page(signal_mv, fs, page, f"{title}, page {k + 1} of {n_pages}", rows.start,
                    rows.stop, None)
    return [path, *pages]


def _trace_page(signal_mv: np.ndarray, fs: float, path: Path, title: str, first: int,
                stop: int, probabilities: dict[str, float] | None) -> None:
    """Rows ``first .. stop - 1`` of the trace (row r: seconds ``r * ROW_S`` on)."""
    rows = stop - first
    fig, axes = plt.subplots(rows + (probabilities is not None), 1,
                             figsize=(11, 1.8 * rows + (1.2 if probabilities else 0)),
                             squeeze=False)
    for k in range(rows):
        ax, a = axes[k, 0], (first + k) * ROW_S
        segment = signal_mv[int(a * fs):int((a + ROW_S) * fs)]
        ax.plot(a + np.arange(len(segment)) / fs, segment, lw=0.6, color="black")
        ax.set_xlim(a, a + ROW_S)
        ax.set_ylabel("mV")
        ax.grid(alpha=0.3)
    axes[rows - 1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title)
    if probabilities is not None:
        _probability_bars(axes[rows, 0], probabilities)
    fig.tight_layout()
    _save(fig, path)


def _trace_overview(signal_mv: np.ndarray, fs: float, path: Path, title: str,
                    probabilities: dict[str, float] | None, pages: str) -> None:
    """The whole trace in one row as its min-max envelope over ``OVERVIEW_BINS`` bins."""
    fig, axes = plt.subplots(1 + (probabilities is not None), 1,
                             figsize=(11, 2.6 + (1.2 if probabilities else 0)), squeeze=False)
    ax = axes[0, 0]
    edges = np.linspace(0, len(signal_mv), OVERVIEW_BINS + 1).astype(int)
    edges = np.unique(edges)
    low = np.minimum.reduceat(signal_mv, edges[:-1])
    high = np.maximum.reduceat(signal_mv, edges[:-1])
    minutes = edges[:-1] / fs / 60
    ax.fill_between(minutes, low, high, step="post", color="black", lw=0)
    ax.set_xlim(0, len(signal_mv) / fs / 60)
    ax.set_xlabel(f"time (min); the trace at full resolution: {pages}")
    ax.set_ylabel("mV")
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}: overview")
    if probabilities is not None:
        _probability_bars(axes[1, 0], probabilities)
    fig.tight_layout()
    _save(fig, path)


def _probability_bars(ax: plt.Axes, probabilities: dict[str, float]) -> None:
    ax.barh([NAMES[c] for c in probabilities], list(probabilities.values()), color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")


def _save(fig: plt.Figure, path: str | Path) -> None:
    """Render ``fig`` in memory in the format of ``path``'s suffix (PNG without one), then
    write it whole (:func:`~afdetect.atomic.write_bytes_atomic`)."""
    path = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def plot_burden(records: dict[str, tuple[float, float]], path: str | Path, title: str) -> None:
    """Reference against detected AF burden (share of each record's time in AF, 0..1), one
    pair of bars per record: what ``evaluate --episodes --plot`` draws."""
    names = list(records)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2.0), 3.6))
    ax.bar(x - 0.2, [records[n][0] for n in names], 0.4, label="reference", color="tab:gray")
    ax.bar(x + 0.2, [records[n][1] for n in names], 0.4, label="detected", color="tab:red")
    ax.set_xticks(x, names, rotation=90 if len(names) > 12 else 0, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AF burden")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


DETECTED = {"A": ("tab:red", "atrial fibrillation"), "N": ("tab:green", "normal sinus rhythm"),
            "O": ("tab:blue", "other rhythm (detected)"), "~": ("lightgray", "noisy (detected)")}
"""Colour and legend name of each detected class (shared with the reference rhythm it
stands for, so the legend names each colour once)."""
REFERENCE = {
    "(AFIB": ("tab:red", "atrial fibrillation"),
    "(AFL": ("tab:orange", "atrial flutter"),
    "(N": ("tab:green", "normal sinus rhythm"),
    "(SBR": ("#98df8a", "sinus bradycardia"),
    "(AB": ("#c49c94", "atrial bigeminy"),
    "(SVTA": ("tab:purple", "supraventricular tachyarrhythmia"),
    "(NOD": ("#bcbd22", "nodal (junctional) rhythm"),
    "(J": ("#dbdb8d", "junctional rhythm"),
    "(PREX": ("tab:pink", "pre-excitation (WPW)"),
    "(BII": ("tab:brown", "2nd degree heart block"),
    "(B": ("#17becf", "ventricular bigeminy"),
    "(T": ("#9edae5", "ventricular trigeminy"),
    "(VT": ("#08306b", "ventricular tachycardia"),
    "(IVR": ("#6b6ecf", "idioventricular rhythm"),
    "(VFL": ("black", "ventricular flutter"),
    "(P": ("tab:gray", "paced rhythm"),
}
"""Colour and legend name of every rhythm the MIT-BIH databases annotate."""
UNKNOWN_RHYTHM = ("#e7e7e7", "other reference rhythm")


def rhythm_style(rhythm: str) -> tuple[str, str]:
    """(colour, legend name) of a reference rhythm code such as ``(AFIB``."""
    return REFERENCE.get(rhythm, (UNKNOWN_RHYTHM[0], f"{UNKNOWN_RHYTHM[1]} {rhythm}"))


def plot_scan(scan: RecordingScan, stream: SignalStream, path: str | Path,
              reference: list[RhythmInterval] | None = None, max_onsets: int = 4,
              threshold: float | None = None) -> None:
    """A monitoring timeline: P(AF) per window with the AF ``threshold``, detected episodes
    and the reference rhythm when given (each colour in the legend), then a 10-s strip
    around each of the first ``max_onsets`` AF onsets on the standard ECG grid (25 mm/s,
    10 mm/mV); ``scan --report`` draws every onset."""
    af = scan.af_episodes()
    onsets = [e.start_s for e in af][:max_onsets]
    fig = plt.figure(figsize=(11.0, 3.9 + 2.3 * len(onsets)))
    grid = fig.add_gridspec(2 + len(onsets), 1, height_ratios=[2.2, 1.7] + [2.0] * len(onsets))
    ax = fig.add_subplot(grid[0])
    hours = scan.duration_s > 3 * 3600
    unit, div = ("h", 3600.0) if hours else ("min", 60.0)
    centres = (scan.window_starts + scan.window_steps / 2) * scan.step_s / div
    network = scan.probabilities[:, CLASSES.index("A")]
    checked = scan.checked_probabilities[:, CLASSES.index("A")]
    if not np.array_equal(network, checked):  # what the atrial check overruled, in grey
        ax.plot(centres, network, lw=0.6, color="0.65", label="P(AF), network alone")
    ax.plot(centres, checked, lw=0.8, color="black", label="P(AF) per window")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", ls="--", lw=0.9,
                   label=f"AF threshold {threshold:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, scan.duration_s / div)
    ax.set_ylabel("P(AF)")
    shown = f"; onset strips of the first {len(onsets)}" if len(af) > len(onsets) else ""
    ax.set_title(f"{scan.record}: AF burden {scan.af_burden:.1%} "
                 f"({scan.af_seconds / 60:.1f} min), {len(af)} AF episode(s){shown}")
    ax.legend(loc="upper right", fontsize=7)
    ax.grid(alpha=0.3)
    bars = fig.add_subplot(grid[1], sharex=ax)
    rows = [("detected", [(*DETECTED[e.label], e.start_s, e.end_s) for e in scan.episodes])]
    if reference is not None:
        rows.append(("reference", [(*rhythm_style(r.rhythm), r.start_s, r.end_s)
                                   for r in reference]))
    legend: dict[str, str] = {}  # name -> colour, in the order first drawn
    for y, (_, spans) in enumerate(reversed(rows)):
        for colour, name, start, end in spans:
            bars.broken_barh([(start / div, (end - start) / div)], (y + 0.1, 0.8),
                             color=colour)
            legend.setdefault(name, colour)
    bars.set_yticks([y + 0.5 for y in range(len(rows))], [name for name, _ in reversed(rows)])
    axis = f"time ({unit})"
    clock = scan.start
    if clock is not None:
        _clock_ticks(bars, clock, scan.duration_s, div)
        axis = f"clock time (start {clock.label(0)})"
    bars.set_xlabel(axis)
    bars.legend(handles=[Patch(facecolor=c, edgecolor="0.5", lw=0.3, label=n)
                         for n, c in legend.items()],
                loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize=7,
                frameon=False)
    for i, onset in enumerate(onsets):
        at = f" ({clock.label(onset)})" if clock is not None else ""
        _ecg_strip(fig.add_subplot(grid[2 + i]), stream, max(0.0, onset - 5.0), 10.0,
                   f"AF onset at {onset / 60:.1f} min{at}")
    fig.tight_layout()
    _save(fig, path)


def _clock_ticks(ax: plt.Axes, clock: StartTime, duration_s: float, div: float) -> None:
    """Label an axis in seconds / ``div`` with clock times, at round times of day."""
    step_s = next((s for s in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
                   if duration_s / s <= 12), 21600)
    day = clock.moment
    into = (day.hour * 3600 + day.minute * 60 + day.second + day.microsecond / 1e6) % step_s
    ax.xaxis.set_major_locator(MultipleLocator(step_s / div, ((step_s - into) % step_s) / div))
    fmt = "%H:%M:%S" if step_s < 60 else "%H:%M"
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock.moment_at(x * div)
                                               .strftime(fmt)))


def _ecg_strip(ax: plt.Axes, stream: SignalStream, start_s: float, seconds: float,
               title: str) -> None:
    """Draw ``seconds`` of the recording on ECG paper: 1 mm = 0.04 s = 0.1 mV."""
    a = int(start_s * stream.fs)
    b = min(stream.n_samples, a + int(seconds * stream.fs))
    mv = stream.read(a, b) / stream.counts_per_mv
    mv = mv - np.median(mv)
    t = start_s + np.arange(len(mv)) / stream.fs
    low, high = np.floor(mv.min() * 2) / 2 - 0.5, np.ceil(mv.max() * 2) / 2 + 0.5
    for step, width in ((0.04, 0.3), (0.2, 0.8)):
        for x in np.arange(start_s, start_s + seconds + 1e-9, step):
            ax.axvline(x, color="#f4a6a6", lw=width, zorder=0)
    for step, width in ((0.1, 0.3), (0.5, 0.8)):
        for y in np.arange(low, high + 1e-9, step):
            ax.axhline(y, color="#f4a6a6", lw=width, zorder=0)
    ax.plot(t, mv, color="black", lw=0.7)
    ax.set_xlim(start_s, start_s + seconds)
    ax.set_ylim(low, high)
    ax.set_aspect(0.04 / 0.1)  # 1 mm squares: 0.04 s wide, 0.1 mV high
    ax.set_title(f"{title} (25 mm/s, 10 mm/mV)", fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mV")
