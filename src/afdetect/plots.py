"""Figures: the confusion matrix and an ECG trace with its verdict."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from afdetect import CLASSES
from afdetect.atomic import atomic_path

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
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
