"""CinC 2017 scoring (DESIGN.md contract) and the binary AF-vs-rest figures."""

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
