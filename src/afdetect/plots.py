"""Figures: the confusion matrix and an ECG trace with its verdict."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
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


def plot_trace(signal_mv: np.ndarray, fs: float, path: str | Path, title: str,
               probabilities: dict[str, float] | None = None) -> None:
    """Draw an ECG trace (mV against seconds), with class probabilities as a bar strip."""
    t = np.arange(len(signal_mv)) / fs
    rows = max(1, int(np.ceil(t[-1] / 20)) if len(t) else 1)  # 20 s per row, like a strip
    fig, axes = plt.subplots(rows + (probabilities is not None), 1,
                             figsize=(11, 1.8 * rows + (1.2 if probabilities else 0)),
                             squeeze=False)
    for r in range(rows):
        ax = axes[r, 0]
        sel = (t >= 20 * r) & (t < 20 * (r + 1))
        ax.plot(t[sel], signal_mv[sel], lw=0.6, color="black")
        ax.set_xlim(20 * r, 20 * (r + 1))
        ax.set_ylabel("mV")
        ax.grid(alpha=0.3)
    axes[rows - 1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title)
    if probabilities is not None:
        ax = axes[rows, 0]
        names = [NAMES[c] for c in probabilities]
        ax.barh(names, list(probabilities.values()), color="tab:blue")
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")
    fig.tight_layout()
    _save(fig, path)


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


RHYTHM_COLOURS = {"A": "tab:red", "N": "tab:green", "O": "tab:blue", "~": "tab:gray"}


def plot_scan(scan: RecordingScan, stream: SignalStream, path: str | Path,
              reference: list[RhythmInterval] | None = None, max_onsets: int = 4) -> None:
    """A monitoring timeline: P(AF) per window, detected episodes, the reference rhythm
    when given, then a 10-s strip around each of the first ``max_onsets`` AF onsets on the
    standard ECG grid (25 mm/s, 10 mm/mV)."""
    onsets = [e.start_s for e in scan.af_episodes()][:max_onsets]
    fig = plt.figure(figsize=(11.0, 3.2 + 2.3 * len(onsets)))
    grid = fig.add_gridspec(2 + len(onsets), 1, height_ratios=[2.2, 1.0] + [2.0] * len(onsets))
    ax = fig.add_subplot(grid[0])
    hours = scan.duration_s > 3 * 3600
    unit, div = ("h", 3600.0) if hours else ("min", 60.0)
    centres = (scan.window_starts + scan.window_steps / 2) * scan.step_s / div
    ax.plot(centres, scan.probabilities[:, CLASSES.index("A")], lw=0.8, color="black")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, scan.duration_s / div)
    ax.set_ylabel("P(AF) per window")
    ax.set_title(f"{scan.record}: AF burden {scan.af_burden:.1%} "
                 f"({scan.af_seconds / 60:.1f} min), {len(scan.af_episodes())} AF episode(s)")
    ax.grid(alpha=0.3)
    bars = fig.add_subplot(grid[1], sharex=ax)
    rows = [("detected", [(e.label, e.start_s, e.end_s) for e in scan.episodes])]
    if reference is not None:
        rows.append(("reference", [("A" if r.rhythm == "(AFIB" else r.rhythm, r.start_s,
                                    r.end_s) for r in reference]))
    for y, (_, spans) in enumerate(reversed(rows)):
        for label, start, end in spans:
            bars.broken_barh([(start / div, (end - start) / div)], (y + 0.1, 0.8),
                             color=RHYTHM_COLOURS.get(label, "lightgray"))
    bars.set_yticks([y + 0.5 for y in range(len(rows))], [name for name, _ in reversed(rows)])
    axis = f"time ({unit})"
    clock = scan.start
    if clock is not None:
        _clock_ticks(bars, clock, scan.duration_s, div)
        axis = f"clock time (start {clock.label(0)})"
    bars.set_xlabel(f"{axis}; red AF, green normal, blue other, gray noisy/other "
                    "reference rhythms")
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
