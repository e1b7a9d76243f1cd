"""The one preprocessing definition shared by training, Python inference and export.

Steps, in order: reject unusable signals, resample to the model rate, remove the mean,
and scale by a power of two chosen from the signal's standard deviation. A power-of-two
scale keeps the step exact as a bit shift on integer hardware.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from afdetect.errors import InputError
from afdetect.io.records import Recording

MIN_FS = 100.0  # Hz: below this a QRS complex is a sample or two
# An ECG in mV: the median peak-to-peak over 2-s blocks (each holds a beat at 30 bpm and
# up) of real recordings lies within 0.28..5.7 mV (CinC 2017), and an ADC of a few mV range
# bounds it; int16 counts or microvolts read as mV give hundreds or thousands.
AMPLITUDE_BLOCK_S = 2.0
MAX_TYPICAL_MV = 20.0


@dataclass(frozen=True)
class PreprocessConfig:
    """Signal conditioning shared by every consumer of the model.

    Attributes:
        fs: model sampling rate in Hz; inputs at other rates are resampled.
        min_seconds: shortest accepted recording, in seconds.
        flat_mv: a recording whose peak-to-peak amplitude is below this (mV) is a flat line.
    """

    fs: int = 300
    min_seconds: float = 5.0
    flat_mv: float = 0.05

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def check_signal(recording: Recording, config: PreprocessConfig) -> None:
    """Raise :class:`InputError` if ``recording`` cannot be classified."""
    x = recording.signal
    if x.ndim != 1 or x.size == 0:
        raise InputError(recording.name, "no samples")
    if not np.all(np.isfinite(x)):
        n_bad = int(np.count_nonzero(~np.isfinite(x)))
        raise InputError(recording.name, f"{n_bad} NaN or infinite sample(s)")
    if not np.isfinite(recording.fs) or recording.fs <= 0:
        raise InputError(recording.name, f"invalid sampling rate {recording.fs}")
    if recording.fs < MIN_FS:
        raise InputError(recording.name, f"sampling rate {recording.fs:g} Hz is below the "
                                         f"{MIN_FS:g} Hz an ECG classifier needs")
    if recording.duration_s < config.min_seconds:
        raise InputError(recording.name, f"too short: {recording.duration_s:.1f} s, the model "
                                         f"needs at least {config.min_seconds:g} s")
    if np.ptp(x) < config.flat_mv:
        raise InputError(recording.name, f"flat line: peak-to-peak {np.ptp(x):.3g} mV (no "
                                         "signal, or values in volts rather than mV)")
    check_millivolts(recording.name, float(np.median(block_peak_to_peak(x, recording.fs))))


def block_peak_to_peak(signal: np.ndarray, fs: float) -> np.ndarray:
    """Peak-to-peak of each whole ``AMPLITUDE_BLOCK_S`` block of ``signal`` (any unit),
    shape (n_blocks,); the whole signal's when it is shorter than one block."""
    block = max(1, int(AMPLITUDE_BLOCK_S * fs))
    n = len(signal) // block
    if n == 0:
        return np.array([np.ptp(signal)]) if len(signal) else np.zeros(0)
    blocks = np.asarray(signal[:n * block]).reshape(n, block)
    return blocks.max(axis=1) - blocks.min(axis=1)


def check_millivolts(source: str, typical_mv: float) -> None:
    """Refuse a signal whose typical amplitude (the median of :func:`block_peak_to_peak`,
    in mV) no ECG in millivolts has: the values are in another unit."""
    if not typical_mv <= MAX_TYPICAL_MV:
        raise InputError(source, f"typical peak-to-peak amplitude {typical_mv:.4g} mV is no "
                                 f"ECG in millivolts (0.05 to {MAX_TYPICAL_MV:g} mV): are the "
                                 "values microvolts or ADC counts? Convert them to mV, or "
                                 "state the unit (WFDB header gain/units; a CSV column name "
                                 "such as ecg_uV)")


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling of a 1-D signal from ``fs_in`` to ``fs_out`` Hz."""
    if abs(fs_in - fs_out) < 1e-9:
        return signal
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator)


def normalise(signal: np.ndarray) -> np.ndarray:
    """Remove the mean and divide by the power of two nearest the standard deviation.

    Args:
        signal: shape (n_samples,), mV.
    Returns:
        float32 array of the same shape, unitless, standard deviation in [0.7, 1.4].
    """
    centred = signal - signal.mean()
    std = float(centred.std())
    shift = round(np.log2(std)) if std > 0 else 0
    return np.ldexp(centred, -shift).astype(np.float32)


def preprocess(recording: Recording, config: PreprocessConfig) -> np.ndarray:
    """Validate, resample and normalise one recording into the model's input.

    Returns:
        float32 array, shape (n_samples at ``config.fs``,).
    """
    check_signal(recording, config)
    return normalise(resample(recording.signal, recording.fs, config.fs))
