"""Shared by the cross-validation benchmarks: run one command per fold, two at a time; the
AFTDB records every fold model is also scored on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.io.records import read_wfdb


def afdetect(*args: str) -> list[str]:
    """The ``afdetect`` command line, run with this interpreter."""
    return [sys.executable, "-m", "afdetect.cli", *args]


def run_folds(folds: list[int], command: Callable[[int], list[str]], log: Callable[[int], Path],
              jobs: int = 2) -> dict[int, float]:
    """Run ``command(fold)`` for every fold, ``jobs`` at a time; return wall seconds each."""

    def one(fold: int) -> float:
        started = time.perf_counter()
        log(fold).parent.mkdir(parents=True, exist_ok=True)
        with open(log(fold), "a") as fh:
            subprocess.run(command(fold), check=True, stdout=fh, stderr=subprocess.STDOUT)
        return time.perf_counter() - started

    with ThreadPoolExecutor(jobs) as pool:
        return dict(zip(folds, pool.map(one, folds), strict=True))


def read_aftdb(folder: Path, config: PreprocessConfig) -> list[np.ndarray]:
    """Lead 0 of every record in ``folder/RECORDS`` (AFTDB: all AF), preprocessed."""
    names = (folder / "RECORDS").read_text().split()
    return [preprocess(read_wfdb(folder / n), config) for n in names]
