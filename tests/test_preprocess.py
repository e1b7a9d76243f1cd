from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, synthetic_ecg

from afdetect.data.preprocess import PreprocessConfig, normalise, preprocess, resample
from afdetect.errors import InputError
from afdetect.io.records import Recording, read_record

CONFIG = PreprocessConfig()


def test_resample_length_and_waveform() -> None:
    x = synthetic_ecg(10.0, fs=360.0)
    y = resample(x, 360.0, 300.0)
    assert len(y) == 3000
    # the beats stay where they were: compare with direct synthesis at 300 Hz
    assert np.corrcoef(y, synthetic_ecg(10.0, fs=300.0))[0, 1] > 0.95


def test_real_records_at_other_rates_are_resampled() -> None:
    a01 = read_record(DATA / "aftdb" / "a01")
    assert len(preprocess(a01, CONFIG)) == 60 * 300


def test_normalise_is_a_power_of_two_scale() -> None:
    x = 3.3 * synthetic_ecg() + 0.7
    y = normalise(x)
    ratio = (x - x.mean()) / y
    scale = ratio[np.abs(y) > 1e-3]
    assert np.allclose(scale, scale[0], rtol=1e-5)
    assert np.log2(scale[0]) == pytest.approx(round(np.log2(scale[0])))
    assert 0.7 <= y.std() <= 1.42 and abs(float(y.mean())) < 1e-5


@pytest.mark.parametrize(("signal", "fs", "problem"), [
    (np.full(3000, np.nan), 300, "NaN"),
    (np.zeros(6000), 300, "flat line"),
    (synthetic_ecg(3.0), 300, "too short: 3.0 s"),
    (synthetic_ecg(20.0, fs=50.0), 50, "below the 100 Hz"),
])
def test_unusable_signals(signal: np.ndarray, fs: float, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        preprocess(Recording(signal, fs, "bad"), CONFIG)
