"""Scoring a model on every labelled record of a dataset directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afdetect import metrics
from afdetect.data.store import load_dataset
from afdetect.models import Classifier


def evaluate(classifier: Classifier, data_dir: str | Path, *, progress: bool = True,
             cache_dir: str | Path | None = None) -> dict[str, Any]:
    """CinC 2017 figures of ``classifier`` on ``data_dir`` (see :func:`metrics.summarise`).

    Records that fail to load are listed under ``skipped`` with the reason.
    """
    dataset = load_dataset(data_dir, classifier.preprocess, cache_dir=cache_dir,
                           progress=progress)
    predicted = classifier.logits(dataset.signals).argmax(axis=1)
    summary = metrics.summarise(dataset.labels, predicted)
    summary["model"] = classifier.name
    summary["data"] = str(data_dir)
    summary["skipped"] = dataset.skipped
    return summary
