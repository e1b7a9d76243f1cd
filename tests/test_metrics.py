from __future__ import annotations

import numpy as np
import pytest

from afdetect.metrics import (
    choose_offsets,
    cinc_score,
    confusion_matrix,
    f1_per_class,
    summarise,
)


def test_hand_computed_scores() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    cm = confusion_matrix(truth, pred)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 2, 0], [1, 0, 0, 0]]
    # F1_N = 2*2/(3+3), F1_A = 2*1/(2+2), F1_O = 2*2/(2+3), F1_~ = 0
    assert f1_per_class(cm) == pytest.approx([4 / 6, 0.5, 0.8, 0.0])
    assert cinc_score(cm) == pytest.approx((4 / 6 + 0.5 + 0.8) / 3)
    s = summarise(truth, pred)
    assert s["accuracy"] == pytest.approx(5 / 8)
    assert s["af_sensitivity"] == pytest.approx(1 / 2)   # one of two AF found
    assert s["af_specificity"] == pytest.approx(5 / 6)   # one false AF among six others
    assert s["af_accuracy"] == pytest.approx(6 / 8)
    assert s["n_records"] == 8 and s["confusion"] == cm.tolist()


def score_with(logits: np.ndarray, truth: np.ndarray, offsets: np.ndarray) -> float:
    return cinc_score(confusion_matrix(truth, (logits + offsets).argmax(axis=1)))


def test_offsets_zero_when_argmax_is_already_right() -> None:
    truth = np.array([0, 1, 2, 3, 0, 2])
    logits = np.eye(4)[truth] * 2.0
    assert choose_offsets(logits, truth).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_offsets_undo_a_bias_towards_the_noisy_class() -> None:
    # Every O record scores ~ 0.3 above O: argmax calls them noisy, which the score ignores.
    truth = np.array([0] * 4 + [1] * 4 + [2] * 4)
    logits = np.eye(4)[truth] * 2.0
    logits[truth == 2, 3] = 2.3
    offsets = choose_offsets(logits, truth)
    assert score_with(logits, truth, 0.0) < 1.0
    assert score_with(logits, truth, offsets) == 1.0
    assert offsets[0] == 0.0 and offsets[3] - offsets[2] <= -0.3


def test_offsets_are_the_best_on_their_grid() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[truth]
    grid = np.array([-0.5, 0.0, 0.5])
    best = max(score_with(logits, truth, np.array([0.0, a, o, n]))
               for a in grid for o in grid for n in grid)
    chosen = choose_offsets(logits, truth, grid)
    assert score_with(logits, truth, chosen) == pytest.approx(best)
    assert score_with(logits, truth, chosen) >= score_with(logits, truth, 0.0)


def test_offsets_refuse_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        choose_offsets(np.zeros((3, 4)), np.zeros(2, dtype=int))
