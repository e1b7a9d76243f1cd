"""The Python API: ``afdetect.load(...)`` and ``afdetect.scan(...)``.

It wraps the same library functions the command line calls (:mod:`afdetect.predict`,
:mod:`afdetect.monitor.scan`), for signals already in memory::

    import afdetect
    model = afdetect.load("compressed")
    prediction = model.predict(signal_mv, fs=300)      # one strip
    prediction.label, prediction.probabilities         # "A", {"N": ..., "A": ..., ...}
    result = afdetect.scan("holter.hea")               # a long recording: AF episodes
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from afdetect import CLASSES
from afdetect.clock import StartTime
from afdetect.errors import InputError
from afdetect.io.records import Recording, SignalStream, open_stream, stream_from_array
from afdetect.models import DEFAULT_MODEL, Classifier, load_classifier
from afdetect.monitor.episodes import EpisodeRule
from afdetect.monitor.scan import RecordingScan, ScanConfig, scan_stream, step_model
from afdetect.predict import Prediction, classify_recordings


class Model:
    """A loaded afdetect model (built-in ``compressed``, ``compressed-4kb``,
    ``compressed-rr`` or ``float``, or a model file).

    Use :func:`load` to get one.
    """

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier

    @property
    def name(self) -> str:
        return self._classifier.name

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES

    @property
    def fs(self) -> int:
        """The model's sampling rate in Hz (other rates are resampled)."""
        return int(self._classifier.preprocess.fs)

    def predict(self, signal_mv: np.ndarray | Sequence[float], fs: float) -> Prediction:
        """Classify one strip (5 s to 10 min; the model was trained on 9 to 61 s; use
        :meth:`scan` for longer recordings).

        Args:
            signal_mv: one lead, shape (n_samples,), millivolts.
            fs: its sampling rate in Hz.
        Returns:
            a :class:`~afdetect.predict.Prediction`: ``.label`` and ``.probabilities``
            (``{class: probability}``).
        Raises:
            InputError: the signal cannot be classified (not 1-D, NaN, flat, too short,
            over :data:`~afdetect.predict.MAX_PREDICT_S` long, sampling rate under 100 Hz).
        """
        return self.predict_batch([signal_mv], fs)[0]

    def predict_batch(self, signals_mv: Sequence[np.ndarray | Sequence[float]],
                      fs: float | Sequence[float]) -> list[Prediction]:
        """Classify several strips; ``fs`` is one rate for all or one per signal."""
        rates = ([float(fs)] * len(signals_mv) if isinstance(fs, (int, float, np.number))
                 else [float(f) for f in fs])
        if len(rates) != len(signals_mv):
            raise ValueError("give one sampling rate, or one per signal")
        recordings = []
        for i, (signal, rate) in enumerate(zip(signals_mv, rates, strict=True)):
            array = np.asarray(signal, dtype=np.float64)
            if array.ndim != 1:
                raise InputError(f"signal {i}", f"expected one lead (a 1-D array), got shape "
                                                f"{array.shape}")
            recordings.append(Recording(array, rate, f"signal {i}"))
        with torch.inference_mode():
            return classify_recordings(self._classifier, recordings,
                                       ["<array>"] * len(recordings))

    def scan(self, source: str | Path | np.ndarray | Sequence[float], fs: float | None = None,
             *, lead: str | int = 0, window_s: float = 30.0, hop_s: float = 10.0,
             rule: EpisodeRule | None = None, start: str | None = None) -> RecordingScan:
        """Monitor a recording of any length: windows, episodes, AF burden.

        Args:
            source: a file (WFDB, EDF/BDF, CSV or .npy; read in chunks) or a 1-D array in
                mV.
            fs: sampling rate in Hz; needed for arrays, CSV and .npy.
            lead: lead name or index for multi-lead files.
            window_s: window length in seconds.
            hop_s: seconds between window starts.
            rule: how windows become episodes (default: the shipped rule).
            start: the clock time at which the recording started, ISO 8601 local time
                (``"2020-01-02T17:42:40"``, or ``"17:42:40"``), in place of the file's own;
                by default the file's (WFDB, EDF), none for arrays, CSV and .npy.
        Returns:
            a :class:`~afdetect.monitor.scan.RecordingScan` (``.episodes``,
            ``.af_burden``, ``.probabilities`` per window (the network's;
            ``.window_labels`` after the atrial check), ``.start``, ``.beats``,
            ``.heart_rate()``, ``.hourly()``, ``.to_dict()``).
        """
        config = dataclasses.replace(ScanConfig(), window_s=window_s, hop_s=hop_s,
                                     rule=rule or EpisodeRule())
        stream: SignalStream
        if isinstance(source, (str, Path)):
            stream = open_stream(source, fs=fs, lead=lead)
        else:
            if fs is None:
                raise InputError("<array>", "a signal array needs its sampling rate (fs)")
            stream = stream_from_array(np.asarray(source, dtype=np.float64), fs)
        if start is not None:
            stream = dataclasses.replace(stream, start=StartTime.parse(start))
        return scan_stream(step_model(self._classifier), stream, config)


def load(name_or_path: str | Path = DEFAULT_MODEL) -> Model:
    """Load a built-in model (``"compressed"``, the default, ``"compressed-4kb"``,
    ``"compressed-rr"`` or ``"float"``) or a model file; a file that is not an afdetect model raises
    :class:`InputError`."""
    return Model(load_classifier(name_or_path))


def scan(source: str | Path | np.ndarray | Sequence[float], fs: float | None = None, *,
         model: str | Path = DEFAULT_MODEL, lead: str | int = 0, window_s: float = 30.0,
         hop_s: float = 10.0, rule: EpisodeRule | None = None, start: str | None = None
         ) -> RecordingScan:
    """``load(model).scan(...)``: see :meth:`Model.scan`."""
    return load(model).scan(source, fs, lead=lead, window_s=window_s, hop_s=hop_s, rule=rule,
                            start=start)
