"""Deterministic stratified K-fold splits by record, stored in a JSON file for reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from afdetect.atomic import write_json_atomic
from afdetect.errors import InputError


def stratified_folds(names: np.ndarray, labels: np.ndarray, k: int = 5,
                     seed: int = 0) -> dict[str, int]:
    """Assign each record a fold in ``range(k)``, class proportions equal across folds.

    The assignment depends only on the sorted record names, labels, ``k`` and ``seed``.
    """
    order = np.argsort(names, kind="stable")
    rng = np.random.default_rng(seed)
    folds: dict[str, int] = {}
    for cls in np.unique(labels):
        members = order[labels[order] == cls]
        for rank, i in enumerate(rng.permutation(members)):
            folds[str(names[i])] = rank % k
    return folds


def load_or_make_splits(path: str | Path, names: np.ndarray, labels: np.ndarray, k: int = 5,
                        seed: int = 0) -> dict[str, int]:
    """Read the fold assignment from ``path``, creating it on first use."""
    path = Path(path)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            folds = {str(n): int(f) for n, f in stored["folds"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(path, "not a splits file written by afdetect") from None
        missing = set(map(str, names)) - set(folds)
        if missing:
            raise InputError(path, f"{len(missing)} record(s) of the dataset are not in the splits")
        return folds
    folds = stratified_folds(names, labels, k, seed)
    write_json_atomic(path, {"k": k, "seed": seed, "folds": folds}, indent=0)
    return folds
