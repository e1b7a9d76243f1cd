"""Classifying recording files: expand folders, read, preprocess, run the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.data.preprocess import preprocess
from afdetect.errors import InputError
from afdetect.io.records import WFDB_SUFFIXES, Recording, read_record, recording_seconds
from afdetect.models import Classifier, softmax

RECORD_SUFFIXES = (".hea", ".csv", ".npy")
LONG_RECORDING_S = 120.0  # twice the longest training strip (61 s)
# predict reads a recording whole and runs the network over all of it at once, in memory
# that grows with the length (peak RSS 0.75 GB at 10 min, 1.5 GB at 30 min, 24 GB at 24 h),
# for one label that says little about hours of ECG; longer recordings are scan's.
MAX_PREDICT_S = 600.0


@dataclass(frozen=True)
class Prediction:
    """The verdict on one recording.

    Attributes:
        source: where the recording came from (a file, or ``"<array>"``).
        recording: the recording classified.
        label: the most probable class, one of :data:`afdetect.CLASSES`.
        probabilities: ``{class: probability}`` in :data:`afdetect.CLASSES` order.
    """

    source: str
    recording: Recording
    label: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": self.recording.name,
            "source": self.source,
            "label": self.label,
            "probabilities": dict(self.probabilities),
            "duration_s": round(self.recording.duration_s, 3),
            "fs": self.recording.fs,
        }


def long_recording_note(prediction: Prediction) -> str | None:
    """A pointer to ``afdetect scan`` when one label covers a recording far longer than the
    strips the model was trained on; None otherwise."""
    seconds = prediction.recording.duration_s
    if seconds <= LONG_RECORDING_S:
        return None
    return (f"{prediction.source}: {seconds / 60:.1f} min long, but predict gives one label "
            "for the whole recording (the model was trained on strips of 9 to 61 s); use "
            "`afdetect scan` for AF episodes and AF burden")


def check_strip_length(source: str | Path, seconds: float) -> None:
    """Refuse a recording longer than :data:`MAX_PREDICT_S`, pointing to ``scan``.

    Raises:
        InputError: naming ``source``, when ``seconds`` exceeds the limit.
    """
    if seconds > MAX_PREDICT_S:
        raise InputError(source, f"too long for predict: {seconds / 60:.1f} min, over its "
                                 f"{MAX_PREDICT_S / 60:g} min (one label for the whole "
                                 "recording, which it reads whole into memory); use "
                                 "`afdetect scan` for long recordings: AF episodes and AF "
                                 "burden in memory that does not grow with the length")


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files named directly, plus the recordings inside any folder, in a stable order.

    A WFDB record named by its ``.hea``, ``.mat`` or ``.dat`` appears once; a folder's
    ``REFERENCE*.csv`` label files are not recordings.
    """
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir()
                                if p.suffix.lower() in RECORD_SUFFIXES and p.is_file()
                                and not p.name.upper().startswith("REFERENCE")))
        else:
            files.append(item)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.with_suffix("") if f.suffix.lower() in WFDB_SUFFIXES else f
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def classify_recordings(classifier: Classifier, recordings: list[Recording],
                        sources: list[str]) -> list[Prediction]:
    """Run ``classifier`` on already-read recordings (all must pass preprocessing and be
    at most :data:`MAX_PREDICT_S` long)."""
    for recording in recordings:
        check_strip_length(recording.name, recording.duration_s)
    signals = [preprocess(r, classifier.preprocess) for r in recordings]
    probabilities = softmax(classifier.logits(signals).astype(np.float64))
    return [Prediction(src, rec, CLASSES[int(p.argmax())],
                       {c: float(v) for c, v in zip(CLASSES, p, strict=True)})
            for src, rec, p in zip(sources, recordings, probabilities, strict=True)]


def classify_files(classifier: Classifier, inputs: list[str | Path], *, fs: float | None = None,
                   lead: str | int = 0, progress: bool = False
                   ) -> tuple[list[Prediction], list[InputError]]:
    """Classify every recording in ``inputs``; bad files are returned, not raised.

    A recording longer than :data:`MAX_PREDICT_S` is refused from its header (or array
    shape, or CSV row count) before its samples are read.

    Returns:
        the predictions in input order, and one :class:`InputError` per failed file.
    """
    predictions: list[Prediction] = []
    failures: list[InputError] = []
    for path in tqdm(expand_inputs(inputs), desc="classifying", unit="rec", disable=not progress):
        try:
            seconds = recording_seconds(path, fs=fs, lead=lead)
            if seconds is not None:
                check_strip_length(path, seconds)
            recording = read_record(path, fs=fs, lead=lead)
            predictions.extend(classify_recordings(classifier, [recording], [str(path)]))
        except InputError as exc:
            if exc.path != str(path):  # preprocessing names the record, the user the file
                exc = InputError(path, exc.problem)
            failures.append(exc)
    return predictions, failures
