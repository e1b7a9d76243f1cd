from __future__ import annotations

import numpy as np
import pytest

from afdetect.metrics import cinc_score, confusion_matrix, f1_per_class, summarise


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
