"""Stacked teachers: a combiner of per-record features and the CNN's logits, nested.

The plain mean of the float CNN's and the classical peer's probabilities gains 0.010 in
5-fold CV (``benchmarks/peers.py``): the two see different things. A learned combiner can
weigh them record by record (trust the RR features when the beats are clean, the CNN when
they are not), but it must learn from CNN outputs on records the CNN did not train on, or
it learns to trust an over-confident CNN.

Nesting: for outer fold k the CNN logits of the training records come from the four
leave-two-out pair models of ``benchmarks/cv_offsets.py`` (the model trained without
folds {j, k} scores fold j), so no logit a combiner learns from was fitted on its own
record, and fold k is seen by nothing. The combiner reads per-record features plus the
four logits. Fold k is then scored with the outer fold model's logits
(``RUNS/foldK/model.pt``, and any ``--model``: the combiners learnt on the standard float
pair models read those models' logits unchanged). Variants (combiner on features):

- LightGBM (``classical_peer.fit_lightgbm``: the classical peer's parameters, trees chosen
  on a validation split of the training folds, seed k) on every classical feature (61),
  and on its 24 RR-interval statistics alone;
- LightGBM and a logistic regression (4 x 11 numbers, a head a microcontroller holds) on
  the product's own 6 integer RR features (``afdetect.model.rr``, bit-exact in C);
- LightGBM, at most 100 trees of 4 leaves, a logistic regression and a 16-unit
  MLP on the classical peer's 24 RR statistics computed on the beats of the product's
  integer detector (is it the detector or the six features that fall short?).

They were declared in batches, each before it was scored: the first two; then the two on
the product's six features; then LightGBM on the detector's beats; then the linear and MLP
heads on those; then the small trees.

For the tree combiners, each input column's share of the total split gain (mean over the
folds) says which features carry the gain, and the number of trees per fold their size.
Rows for comparison, on the same folds: each outer model alone, the classical peer
(reproducing ``peers.py``) and the mean of the two.
Per row: CinC score (mean +- std over folds), AF Se / Sp, and on the 30 AFTDB records and
the MIT-BIH 30-s windows of ``peers.py`` the share called AF and the window AF Se / Sp
(means over the fold models).

    python benchmarks/cv_stack.py --data ../shared/data/cinc2017 [--runs runs/cv]
        [--nested runs/nested] [--model "NAME=runs/small/fold{fold}/compressed_4kb.afq"]

Needs the pair models (run ``benchmarks/cv_offsets.py`` first) and ``pip install -e
".[peers]"``. Writes ``--json`` (default benchmarks/results/cv_stack.json).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from classical_peer import (
    FEATURES,
    RR_FEATURES,
    class_weights,
    dataset_features,
    fit_lightgbm,
    rr_statistics,
)
from folds import fold_logits, inner_logits
from peers import Outcome, add_data_arguments, describe, ensemble, read_data
from provenance import command_line
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.atomic import write_json_atomic
from afdetect.model.rr import (
    FEATURE_NAMES,
    FLOAT_INPUT_FRAC,
    RRConfig,
    detect_beats,
    quantise,
    rr_features,
)
from afdetect.models import softmax

CLASSICAL = "classical (neurokit2 + LightGBM)"
LOGITS = [f"CNN logit {c}" for c in CLASSES]


@dataclass
class Head:
    """A fitted combiner.

    Attributes:
        predict: inputs (n, d) -> class probabilities (n, 4).
        importance: trees only: the total gain of the splits on each input column, (d,).
        trees: trees only: how many (one per class per boosting round).
    """

    predict: Callable[[np.ndarray], np.ndarray]
    importance: np.ndarray | None = None
    trees: int | None = None


Combiner = Callable[[np.ndarray, np.ndarray, int], Head]
"""(inputs (n, d), labels (n,), seed) -> the fitted combiner."""


def boosted(x: np.ndarray, y: np.ndarray, seed: int, **params: Any) -> Head:
    """``classical_peer.fit_lightgbm`` (its parameters unless ``params`` say otherwise)."""
    booster = fit_lightgbm(x, y, seed=seed, **params)
    return Head(lambda rows: np.asarray(booster.predict(rows, num_threads=1)),
                booster.feature_importance("gain"), booster.num_trees())


def small_trees(x: np.ndarray, y: np.ndarray, seed: int) -> Head:
    """At most 25 rounds of 4-leaf trees (100 trees, 300 splits), a size a microcontroller
    could hold beside a 4 KB network."""
    return boosted(x, y, seed, num_leaves=4, learning_rate=0.1, max_rounds=25)


def linear(x: np.ndarray, y: np.ndarray, seed: int) -> Head:
    """Multinomial logistic regression on standardised inputs: 4 x (d + 1) numbers, a head
    a microcontroller can hold."""
    return _head(LogisticRegression(C=1.0, max_iter=2000), x, y)


def small_mlp(x: np.ndarray, y: np.ndarray, seed: int) -> Head:
    """One hidden layer of 16 ReLUs on standardised inputs: 16 (d + 1) + 4 x 17 numbers."""
    return _head(MLPClassifier((16,), alpha=1e-3, max_iter=1000, early_stopping=True,
                               random_state=seed), x, y)


def _head(estimator: BaseEstimator, x: np.ndarray, y: np.ndarray) -> Head:
    """``estimator`` fitted on standardised ``x``, classes weighted as ``fit_lightgbm``
    weighs them."""
    weight = class_weights(y, len(CLASSES))
    model = Pipeline([("scale", StandardScaler()), ("head", estimator)])
    model.fit(x, y, head__sample_weight=weight[y])
    return Head(model.predict_proba)


def integer_rr(signals: list[np.ndarray], fs: int) -> tuple[np.ndarray, np.ndarray]:
    """RR features from the product's own integer beat detector (``afdetect.model.rr``,
    what ``train --rr`` and the C engine run) on preprocessed ``signals`` at ``fs`` Hz.

    Returns:
        product: (n_signals, 6), the product's own integer features;
        statistics: (n_signals, 24), the classical peer's RR statistics of the same beats.
    """
    config = RRConfig()
    product, statistics = [], []
    for s in tqdm(signals, desc="integer RR features", unit="rec"):
        beats = detect_beats(quantise(s, FLOAT_INPUT_FRAC), config)
        product.append(rr_features(beats, len(s), fs))
        statistics.append(rr_statistics(np.diff(beats) / fs, len(s) / fs))
    return np.array(product, dtype=np.float64), np.array(statistics, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"),
                        help="the outer fold models (foldK/model.pt) and splits.json")
    parser.add_argument("--nested", type=Path, default=Path("runs/nested"),
                        help="the ten pair models of benchmarks/cv_offsets.py")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATTERN",
                        help="more outer models, {fold} standing for the fold number; the "
                             "combiners (learnt on the pair models' logits) read theirs")
    parser.add_argument("--features", type=Path, default=Path("runs/peers/features.npz"),
                        help="the classical peer's feature cache (made if missing)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cv_stack.json"))
    args = parser.parse_args()

    dataset, fold_of, outside = read_data(args)
    k = int(fold_of.max()) + 1
    x, _ = dataset_features(dataset.signals, dataset.fs, dataset.names, args.features)
    x_out, _ = dataset_features(outside.signals, dataset.fs, np.array(outside.names),
                                args.features.with_name("outside_features.npz"))
    rr24 = [FEATURES.index(f) for f in RR_FEATURES]
    own, own_out = integer_rr(dataset.signals, dataset.fs), integer_rr(outside.signals, dataset.fs)
    # per source: its columns for the dataset and for the outside records, and their names
    inputs = {"61 features": (x, x_out, FEATURES),
              "24 RR features": (x[:, rr24], x_out[:, rr24], RR_FEATURES),
              "the product's 6 integer RR features": (own[0], own_out[0], list(FEATURE_NAMES)),
              "24 RR features of the product's beats": (own[1], own_out[1], RR_FEATURES)}
    variants: dict[str, tuple[str, Combiner]] = {
        "stack (LightGBM): 61 features + CNN logits": ("61 features", boosted),
        "stack (LightGBM): 24 RR features + CNN logits": ("24 RR features", boosted),
        "stack (LightGBM): 6 integer RR features + CNN logits":
            ("the product's 6 integer RR features", boosted),
        "stack (linear, 44 numbers): 6 integer RR features + CNN logits":
            ("the product's 6 integer RR features", linear),
        "stack (LightGBM): 24 RR features of the integer detector's beats + CNN logits":
            ("24 RR features of the product's beats", boosted),
        "stack (LightGBM, at most 100 trees of 4 leaves): 24 RR features of the integer "
        "detector's beats + CNN logits": ("24 RR features of the product's beats", small_trees),
        "stack (linear, 116 numbers): 24 RR features of the integer detector's beats + "
        "CNN logits": ("24 RR features of the product's beats", linear),
        "stack (MLP 16 hidden, 532 numbers): 24 RR features of the integer detector's beats "
        "+ CNN logits": ("24 RR features of the product's beats", small_mlp),
    }
    outer = {"float (ours)": str(args.runs / "fold{fold}" / "model.pt")}
    outer.update(dict(m.split("=", 1) for m in args.model))

    names = [CLASSICAL] + [f"{m}{v}" for m in outer for v in ["", *(f" | {v}" for v in variants)]]
    probabilities = {name: np.zeros((len(dataset), len(CLASSES))) for name in names}
    on_outside: dict[str, list[np.ndarray]] = {name: [] for name in names}
    gain: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    trees: dict[str, list[int | None]] = {v: [] for v in variants}
    for f in range(k):
        held_out = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        classical = boosted(x[train], dataset.labels[train], f).predict
        probabilities[CLASSICAL][held_out] = classical(x[held_out])
        on_outside[CLASSICAL].append(classical(x_out))
        rows, inner = inner_logits(args.nested, dataset, fold_of, f)
        combiners = {v: fit(np.hstack([inputs[source][0][rows], inner]), dataset.labels[rows], f)
                     for v, (source, fit) in variants.items()}
        for v, head in combiners.items():
            if head.importance is not None:
                gain[v].append(head.importance / head.importance.sum())
                trees[v].append(head.trees)
        for m, pattern in outer.items():
            logits = fold_logits(pattern, f, dataset.subset(held_out).signals, f"fold{f}")
            logits_out = fold_logits(pattern, f, outside.signals, "outside")
            probabilities[m][held_out] = softmax(logits)
            on_outside[m].append(softmax(logits_out))
            for v, (source, _) in variants.items():
                mine, theirs, _ = inputs[source]
                combine = combiners[v].predict
                probabilities[f"{m} | {v}"][held_out] = combine(np.hstack([mine[held_out],
                                                                           logits]))
                on_outside[f"{m} | {v}"].append(combine(np.hstack([theirs, logits_out])))
        print(f"fold {f} fitted")

    outcomes = {name: Outcome(probabilities[name], on_outside[name], [0] * k, float("nan"))
                for name in names}
    for m in outer:
        outcomes[f"{m} + classical, mean probabilities"] = ensemble([outcomes[m],
                                                                    outcomes[CLASSICAL]])
    table = []
    for name, outcome in outcomes.items():
        row = outcome.row(name, dataset.labels, fold_of, k, outside, costs=False)
        table.append(row)
        print(describe(row))
    importance = {}
    for v, shares in gain.items():
        if shares:
            columns = inputs[variants[v][0]][2] + LOGITS
            mean = np.mean(shares, axis=0)
            importance[v] = {columns[i]: float(mean[i]) for i in np.argsort(-mean)}
            print(f"{v}\n    trees per fold {trees[v]}; share of the gain: " + ", ".join(
                f"{c} {g:.2f}" for c, g in list(importance[v].items())[:8]))
    result = {
        "protocol": f"{k}-fold CV, splits {args.runs / 'splits.json'}; combiner for outer fold "
                    "k trained on the training folds' features and out-of-fold CNN logits of "
                    f"the pair models in {args.nested} (each trained without fold k and one "
                    "other), applied to fold k with the outer fold model's logits; LightGBM "
                    "trees chosen on a validation split of the training folds",
        "command": command_line(),
        "rows": table,
        "gain_share": importance,
        "trees_per_fold": {v: n for v, n in trees.items() if n},
    }
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
