"""CinC 2017 scoring (mean F1 of N, A and O) and the binary AF-vs-rest figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from afdetect import CLASSES

AF = CLASSES.index("A")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray,
                     n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts, shape (n_classes, n_classes): rows are the truth, columns the prediction."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth), np.asarray(predicted)), 1)
    return matrix


def f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """F1_c = 2 TP_c / (row_c + col_c); 0 where the class never occurs nor is predicted."""
    tp = np.diag(confusion).astype(np.float64)
    denom = confusion.sum(axis=1) + confusion.sum(axis=0)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def cinc_score(confusion: np.ndarray) -> float:
    """The official 2017 score: mean F1 over N, A and O (noisy excluded from the mean)."""
    return float(f1_per_class(confusion)[:3].mean())


def summarise(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Every figure `afdetect evaluate` reports, as JSON-ready values."""
    return summarise_confusion(confusion_matrix(truth, predicted))


def summarise_confusion(confusion: np.ndarray) -> dict[str, Any]:
    """:func:`summarise`'s figures from a confusion matrix (rows truth, columns prediction)."""
    confusion = np.asarray(confusion)
    n = int(confusion.sum())
    f1 = f1_per_class(confusion)
    n_af = int(confusion[AF].sum())
    n_rest = n - n_af
    true_af = int(confusion[AF, AF])
    false_af = int(confusion[:, AF].sum()) - true_af
    return {
        "n_records": n,
        "cinc_score": cinc_score(confusion),
        "f1": {c: float(v) for c, v in zip(CLASSES, f1, strict=True)},
        "accuracy": float(np.trace(confusion) / n) if n else 0.0,
        "af_accuracy": float((true_af + n_rest - false_af) / n) if n else 0.0,
        "af_sensitivity": float(true_af / n_af) if n_af else float("nan"),
        "af_specificity": float((n_rest - false_af) / n_rest) if n_rest else float("nan"),
        "confusion": confusion.tolist(),
    }


def choose_offsets(logits: np.ndarray, truth: np.ndarray,
                   grid: np.ndarray | None = None) -> np.ndarray:
    """Per-class constants that, added to ``logits``, maximise the CinC score of the argmax.

    The official score averages F1 over N, A and O only, so the argmax of a model trained
    with class-weighted cross-entropy need not be its best decision. The N offset is fixed
    at 0 (only differences matter) and the other three are searched over ``grid``
    exhaustively; among equal scores the offsets nearest to zero (smallest sum of absolute
    values) win.

    Args:
        logits: (n_records, n_classes) scores of records the model did not train on.
        truth: (n_records,) class indices.
        grid: candidate values of each offset (default -1.5 to 1.5 in steps of 0.1).

    Returns:
        (n_classes,) float64 offsets, the first 0.
    """
    logits = np.asarray(logits, dtype=np.float64)
    truth = np.asarray(truth)
    if logits.ndim != 2 or logits.shape[0] != truth.shape[0] or not len(truth):
        raise ValueError("logits must be (n_records, n_classes) with one truth per record")
    grid = np.round(np.arange(-1.5, 1.5001, 0.1), 10) if grid is None else np.asarray(grid)
    n_classes = logits.shape[1]
    free = np.stack(np.meshgrid(*[grid] * (n_classes - 1), indexing="ij"), -1)
    candidates = np.concatenate([np.zeros((free[..., 0].size, 1)),
                                 free.reshape(-1, n_classes - 1)], axis=1)
    scores = np.empty(len(candidates))
    for start in range(0, len(candidates), 512):
        chunk = candidates[start:start + 512]
        predicted = (logits[None] + chunk[:, None]).argmax(axis=2)
        # every candidate's confusion matrix at once, then the score's own definition
        cells = (np.arange(len(chunk))[:, None] * n_classes + truth) * n_classes + predicted
        confusions = np.bincount(cells.ravel(), minlength=len(chunk) * n_classes ** 2)
        scores[start:start + len(chunk)] = [
            cinc_score(c) for c in confusions.reshape(len(chunk), n_classes, n_classes)]
    best = np.lexsort((np.abs(candidates).sum(axis=1), -scores))[0]
    return candidates[best]
