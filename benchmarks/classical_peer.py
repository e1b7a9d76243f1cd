"""The classical peer of ``benchmarks/peers.py``: R peaks, hand-made features, boosted trees.

What a practitioner builds first for CinC 2017:

1. **R peaks** from neurokit2 (``ecg_clean`` then ``ecg_peaks``, its default method);
2. **features** per recording (:data:`FEATURES`): RR-interval statistics (rate, spread,
   successive differences, pNNx, Poincare SD1/SD2, a histogram entropy, the share of
   irregular triplets), the median beat's shape (20 samples of the template and its R, Q,
   S, T amplitudes and QRS width), beat-to-beat template correlation, neurokit2's signal
   quality, and the power in the bands where f waves, QRS and noise live;
3. **LightGBM**, multiclass, class-weighted, its number of trees chosen by early stopping
   on a validation split drawn from the training folds only.

Features are cached in ``runs/peers/features.npz`` (arrays only, no pickles).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import welch
from tqdm import tqdm

if TYPE_CHECKING:
    from lightgbm import Booster

TEMPLATE_POINTS = 20
RR_FEATURES = ["n_beats", "hr_mean", "rr_mean", "rr_median", "rr_std", "rr_cv", "rr_min",
               "rr_max", "rr_range_rel", "rr_iqr_rel", "rmssd", "rmssd_rel", "sdsd_rel",
               "pnn20", "pnn50", "pnn_rel10", "sd1", "sd2", "sd1_sd2", "rr_entropy",
               "irregular_triplets", "rr_skew", "rr_kurt", "max_dev_rel"]
SHAPE_FEATURES = [f"template_{i}" for i in range(TEMPLATE_POINTS)] + [
    "r_amp", "q_amp", "s_amp", "t_amp", "qrs_width", "template_corr_mean",
    "template_corr_min", "r_amp_cv", "quality_mean", "quality_min"]
SPECTRAL_FEATURES = ["band_0_3", "band_4_9", "band_10_25", "band_25_50", "band_50_150",
                     "spectral_entropy", "zero_crossings"]
FEATURES = RR_FEATURES + SHAPE_FEATURES + SPECTRAL_FEATURES


def rr_statistics(rr: np.ndarray, duration_s: float) -> list[float]:
    """RR statistics; ``rr`` in seconds, shape (n_intervals,)."""
    if len(rr) < 3:
        return [len(rr) + 1, 60.0 * (len(rr) + 1) / duration_s] + [np.nan] * (
            len(RR_FEATURES) - 2)
    d = np.diff(rr)
    mean = rr.mean()
    q1, q3 = np.percentile(rr, [25, 75])
    sd1 = np.sqrt(0.5) * d.std()
    sd2 = np.sqrt(max(2 * rr.std() ** 2 - 0.5 * d.std() ** 2, 0.0))
    hist, _ = np.histogram(rr, bins=np.arange(0.2, 2.05, 0.05))
    p = hist[hist > 0] / max(hist.sum(), 1)
    rel = np.abs(d) / rr[:-1]
    triplets = (np.abs(d[:-1]) > 0.1 * mean) & (np.abs(d[1:]) > 0.1 * mean) \
        if len(d) > 1 else np.zeros(1, bool)
    centred = (rr - mean) / max(rr.std(), 1e-9)
    return [len(rr) + 1, 60.0 / mean, mean, float(np.median(rr)), rr.std(), rr.std() / mean,
            rr.min(), rr.max(), (rr.max() - rr.min()) / mean, (q3 - q1) / mean,
            float(np.sqrt(np.mean(d ** 2))), float(np.sqrt(np.mean(d ** 2))) / mean,
            d.std() / mean, float(np.mean(np.abs(d) > 0.02)), float(np.mean(np.abs(d) > 0.05)),
            float(np.mean(rel > 0.1)), sd1, sd2, sd1 / max(sd2, 1e-9),
            float(-(p * np.log2(p)).sum()), float(triplets.mean()),
            float(np.mean(centred ** 3)), float(np.mean(centred ** 4)),
            float(np.max(np.abs(rr - np.median(rr))) / mean)]


def _shape_features(x: np.ndarray, peaks: np.ndarray, quality: np.ndarray,
                    fs: float) -> list[float]:
    """Median-beat morphology; ``x`` the cleaned signal, ``peaks`` R-peak sample indices."""
    before, after = round(0.25 * fs), round(0.45 * fs)
    keep = peaks[(peaks >= before) & (peaks + after < len(x))]
    if len(keep) < 2:
        return [np.nan] * (len(SHAPE_FEATURES) - 2) + [
            float(np.mean(quality)), float(np.min(quality))]
    beats = x[keep[:, None] + np.arange(-before, after)[None, :]]
    template = np.median(beats, axis=0)
    r = before
    q_win = template[r - round(0.06 * fs):r]
    s_win = template[r:r + round(0.06 * fs)]
    t_win = template[r + round(0.1 * fs):]
    above = np.flatnonzero(np.abs(template) > 0.5 * abs(template[r]))
    corr = [np.corrcoef(b, template)[0, 1] if b.std() > 0 else 0.0 for b in beats]
    points = template[np.linspace(0, len(template) - 1, TEMPLATE_POINTS).astype(int)]
    r_amps = x[keep]
    return [*points.tolist(), float(template[r]), float(q_win.min()), float(s_win.min()),
            float(t_win.max()), (above.max() - above.min()) / fs if len(above) else np.nan,
            float(np.mean(corr)), float(np.min(corr)),
            float(r_amps.std() / max(abs(r_amps.mean()), 1e-9)),
            float(np.mean(quality)), float(np.min(quality))]


def _spectral_features(x: np.ndarray, fs: float) -> list[float]:
    f, p = welch(x, fs=fs, nperseg=min(len(x), 4 * round(fs)))
    total = max(p.sum(), 1e-12)
    bands = [(0, 3), (4, 9), (10, 25), (25, 50), (50, fs / 2)]
    shares = [float(p[(f >= lo) & (f < hi)].sum() / total) for lo, hi in bands]
    q = p / total
    q = q[q > 0]
    return [*shares, float(-(q * np.log2(q)).sum()),
            float(np.mean(np.diff(np.signbit(x - x.mean())) != 0))]


def record_features(signal: np.ndarray, fs: float) -> np.ndarray:
    """Every feature of :data:`FEATURES` for one recording, float64 (n_features,).

    Args:
        signal: shape (n_samples,), the recording (any amplitude unit; the features that
            carry amplitude are in that unit).
        fs: sampling rate in Hz.
    """
    import neurokit2 as nk  # the peer's dependency, not the product's

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = np.asarray(nk.ecg_clean(signal, sampling_rate=fs), dtype=np.float64)
        try:
            _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        except Exception:  # neurokit2 raises on signals it finds no beat in
            peaks = np.zeros(0, dtype=np.int64)
        try:
            quality = np.asarray(nk.ecg_quality(cleaned, rpeaks=peaks, sampling_rate=fs))
        except Exception:
            quality = np.zeros(1)
    rr = np.diff(peaks) / fs
    duration = len(signal) / fs
    values = (rr_statistics(rr, duration) + _shape_features(cleaned, peaks, quality, fs)
              + _spectral_features(cleaned, fs))
    return np.asarray(values, dtype=np.float64)


def dataset_features(signals: list[np.ndarray], fs: float, names: np.ndarray,
                     cache: Path) -> tuple[np.ndarray, float]:
    """Features of every recording, (n_records, n_features), and mean seconds per record.

    Cached in ``cache`` keyed by the record names and feature names.
    """
    if cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if (list(stored["feature_names"]) == FEATURES
                and np.array_equal(stored["names"], names.astype(str))):
            return stored["features"], float(stored["seconds_per_record"])
    started = time.perf_counter()
    rows = [record_features(s, fs) for s in tqdm(signals, desc="peer features", unit="rec")]
    seconds = (time.perf_counter() - started) / max(len(signals), 1)
    features = np.vstack(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, features=features, names=names.astype(str),
             feature_names=np.array(FEATURES), seconds_per_record=seconds)
    tmp.replace(cache)
    return features, seconds


def class_weights(y: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """A weight per class, (n_classes,): (records / class count) ** 0.5, so the rare
    classes count more, but less than inverse-frequency weighting would make them."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return (counts.sum() / np.maximum(counts, 1)) ** 0.5


def fit_lightgbm(x: np.ndarray, y: np.ndarray, seed: int = 0, val_share: float = 0.15,
                 n_classes: int = 4, num_leaves: int = 31, learning_rate: float = 0.03,
                 max_rounds: int = 3000) -> Booster:
    """LightGBM on the training folds: trees chosen on an inner stratified validation split.

    Returns the booster refitted on all of ``x`` with the chosen number of rounds (one
    tree per class per round, at most ``max_rounds``).
    """
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val[members[:round(val_share * len(members))]] = True
    weight = class_weights(y, n_classes)
    params = {"objective": "multiclass", "num_class": n_classes,
              "learning_rate": learning_rate, "num_leaves": num_leaves,
              "min_data_in_leaf": 20, "feature_fraction": 0.7,
              "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
              "seed": seed, "verbose": -1, "num_threads": 1}
    inner = lgb.train(params, lgb.Dataset(x[~val], y[~val], weight=weight[y[~val]]),
                      num_boost_round=max_rounds,
                      valid_sets=[lgb.Dataset(x[val], y[val], weight=weight[y[val]])],
                      callbacks=[lgb.early_stopping(100, verbose=False)])
    rounds = max(int(inner.best_iteration), 1)
    return lgb.train(params, lgb.Dataset(x, y, weight=weight[y]), num_boost_round=rounds)
