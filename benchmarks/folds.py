"""Shared by the cross-validation benchmarks: run one command per fold, two at a time; the
out-of-fold logits of the leave-two-out pair models (nested selection); the AFTDB records
and MIT-BIH windows every fold model is also scored on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from afdetect import metrics
from afdetect.data.preprocess import PreprocessConfig, normalise, preprocess
from afdetect.data.splits import load_or_make_splits
from afdetect.data.store import Dataset
from afdetect.io.records import read_wfdb
from afdetect.models import load_classifier
from afdetect.monitor.rhythm import af_intervals, read_rhythm

Job = TypeVar("Job")


def afdetect(*args: str) -> list[str]:
    """The ``afdetect`` command line, run with this interpreter."""
    return [sys.executable, "-m", "afdetect.cli", *args]


def run_folds(folds: list[Job], command: Callable[[Job], list[str]], log: Callable[[Job], Path],
              jobs: int = 2) -> dict[Job, float]:
    """Run ``command(fold)`` for every fold (or pair of folds), ``jobs`` at a time; return
    wall seconds each."""

    def one(fold: Job) -> float:
        started = time.perf_counter()
        log(fold).parent.mkdir(parents=True, exist_ok=True)
        with open(log(fold), "a") as fh:
            subprocess.run(command(fold), check=True, stdout=fh, stderr=subprocess.STDOUT)
        return time.perf_counter() - started

    with ThreadPoolExecutor(jobs) as pool:
        return dict(zip(folds, pool.map(one, folds), strict=True))


def fold_numbers(splits: Path, dataset: Dataset, k: int = 5) -> np.ndarray:
    """Fold of every record of ``dataset``, (n_records,) int, read from ``splits`` (a
    stratified ``k``-fold file made there first if it is missing)."""
    folds = load_or_make_splits(splits, dataset.names, dataset.labels, k)
    return np.array([folds[str(n)] for n in dataset.names])


def read_aftdb(folder: Path, config: PreprocessConfig) -> list[np.ndarray]:
    """Lead 0 of every record in ``folder/RECORDS`` (AFTDB: all AF), preprocessed."""
    names = (folder / "RECORDS").read_text().split()
    return [preprocess(read_wfdb(folder / n), config) for n in names]


def read_mitdb_windows(folder: Path, config: PreprocessConfig, window_s: float = 30.0,
                       hop_s: float = 10.0) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Strips cut from long annotated records (MIT-BIH), each classified as a CinC record.

    Lead 0 of every record in ``folder/RECORDS`` is preprocessed, cut into ``window_s``
    windows every ``hop_s`` seconds (the monitoring benchmark's grid), and each window is
    normalised on its own.

    Returns:
        windows: preprocessed (round(window_s * fs),) float32 arrays;
        is_af: (n_windows,) bool, at least half of the window in reference ``(AFIB``;
        names: ``record@start_s`` of each window.
    """
    windows, is_af, names = [], [], []
    width, hop = round(window_s * config.fs), round(hop_s * config.fs)
    for name in (folder / "RECORDS").read_text().split():
        recording = read_wfdb(folder / name)
        signal = preprocess(recording, config)
        duration = len(recording.signal) / recording.fs
        af = af_intervals(read_rhythm(folder / name, "atr", recording.fs, duration))
        for start in range(0, len(signal) - width + 1, hop):
            begin, end = start / config.fs, (start + width) / config.fs
            inside = sum(max(0.0, min(end, b) - max(begin, a)) for a, b in af)
            windows.append(normalise(signal[start:start + width]))
            is_af.append(inside >= window_s / 2)
            names.append(f"{name}@{begin:g}")
    return windows, np.array(is_af), names


@dataclass
class Outside:
    """Recordings from other devices that every fold model also classifies.

    Attributes:
        aftdb: preprocessed AFTDB records, all AF.
        mitdb: preprocessed 30-s MIT-BIH windows; ``mitdb_af`` (n_windows,) bool truth.
        names: of ``aftdb + mitdb``, for the feature cache.
    """

    aftdb: list[np.ndarray]
    mitdb: list[np.ndarray]
    mitdb_af: np.ndarray
    names: list[str]

    @classmethod
    def read(cls, aftdb: Path, mitdb: Path) -> Outside:
        """Every AFTDB record and the MIT-BIH windows of ``folds.read_mitdb_windows``."""
        config = PreprocessConfig()
        windows, is_af, window_names = read_mitdb_windows(mitdb, config)
        return cls(read_aftdb(aftdb, config), windows, is_af,
                   [f"aftdb/{n}" for n in (aftdb / "RECORDS").read_text().split()]
                   + [f"mitdb/{n}" for n in window_names])

    @property
    def signals(self) -> list[np.ndarray]:
        return self.aftdb + self.mitdb

    def figures(self, per_fold: list[np.ndarray]) -> dict[str, float]:
        """AFTDB share called AF and MIT-BIH window AF Se / Sp, means over the fold models'
        probabilities or logits (n_aftdb + n_mitdb, n_classes)."""
        called = [p.argmax(axis=1) == metrics.AF for p in per_fold]
        n, truth = len(self.aftdb), self.mitdb_af
        return {
            "aftdb_af_share": float(np.mean([c[:n].mean() for c in called])),
            "mitdb_af_sensitivity": float(np.mean([c[n:][truth].mean() for c in called])),
            "mitdb_af_specificity": float(np.mean([1 - c[n:][~truth].mean()
                                                   for c in called])),
        }


def cached_logits(cache: Path, model: Path, signals: list[np.ndarray]) -> np.ndarray:
    """Logits of ``model`` on ``signals``, (n_signals, n_classes), kept in ``cache`` (.npy)."""
    if cache.is_file():
        return np.load(cache, allow_pickle=False)
    logits = load_classifier(model).logits(signals)
    np.save(cache, logits)
    return logits


def fold_logits(pattern: str, fold: int, signals: list[np.ndarray], tag: str) -> np.ndarray:
    """Logits of fold ``fold``'s model (``pattern`` with ``{fold}`` standing for the fold
    number) on ``signals``, cached beside the model as ``MODEL.logits_TAG.npy``."""
    model = Path(pattern.replace("{fold}", str(fold)))
    return cached_logits(model.with_name(f"{model.name}.logits_{tag}.npy"), model, signals)


def pair_run(nested: Path, pair: tuple[int, int]) -> Path:
    """The folder of the model trained without folds ``pair`` (``benchmarks/cv_offsets.py``)."""
    return nested / f"pair{min(pair)}{max(pair)}"


def inner_logits(nested: Path, dataset: Dataset, fold_of: np.ndarray,
                 outer: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold logits for every training record of fold ``outer``, from models that saw
    neither the record nor fold ``outer``: the pair model without {j, outer} scores fold j.

    Returns:
        rows: (n_train,) indices into ``dataset``, fold by fold;
        logits: (n_train, n_classes), aligned with ``rows``.
    """
    rows, logits = [], []
    for j in sorted(set(np.unique(fold_of).tolist()) - {outer}):
        held_out = np.flatnonzero(fold_of == j)
        run = pair_run(nested, (j, outer))
        rows.append(held_out)
        logits.append(cached_logits(run / f"logits_fold{j}.npy", run / "model.pt",
                                    dataset.subset(held_out).signals))
    return np.concatenate(rows), np.concatenate(logits)
