"""Shared fixtures: paths to the real sample records and small synthetic signals."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "cinc2017"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test's dataset cache out of the user's ~/.cache."""
    monkeypatch.setenv("AFDETECT_CACHE", str(tmp_path_factory.mktemp("cache")))


def synthetic_ecg(seconds: float = 20.0, fs: float = 300.0, rate_bpm: float = 70.0,
                  seed: int = 0) -> np.ndarray:
    """A crude ECG in mV: Gaussian QRS spikes at a steady rate on a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    x = 0.02 * rng.standard_normal(len(t))
    for beat in np.arange(0.3, seconds, 60.0 / rate_bpm):
        x += 1.0 * np.exp(-0.5 * ((t - beat) / 0.012) ** 2)
    return x


def afdetect_command() -> list[str]:
    """The console command as a user types it, from this interpreter's environment."""
    script = Path(sys.executable).parent / ("afdetect.exe" if os.name == "nt" else "afdetect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "afdetect.cli"]
