"""A stacked teacher: LightGBM on the classical peer's features and the CNN's logits, nested.

The plain mean of the float CNN's and the classical peer's probabilities gains 0.010 in
5-fold CV (``benchmarks/peers.py``): the two see different things. A learned combiner can
weigh them record by record (trust the RR features when the beats are clean, the CNN when
they are not), but it must learn from CNN outputs on records the CNN did not train on, or
it learns to trust an over-confident CNN.

Nesting: for outer fold k the CNN logits of the training records come from the four
leave-two-out pair models of ``benchmarks/cv_offsets.py`` (the model trained without
folds {j, k} scores fold j), so no logit a combiner learns from was fitted on its own
record, and fold k is seen by nothing. The combiner is ``classical_peer.fit_lightgbm``
(the classical peer's parameters, trees chosen on a validation split of the training
folds, seed k), on the features of ``--features`` plus the four logits. Fold k is then
scored with the outer fold model's logits (``RUNS/foldK/model.pt``). The variants were
fixed before any was scored:

- ``stack: 61 features + CNN logits``: every classical feature;
- ``stack: 24 RR features + CNN logits``: the RR-interval statistics alone, what a small
  beat detector on the device could compute.

Rows for comparison, on the same folds: the float CNN, the classical peer (reproducing
``peers.py``) and their mean. Per row: CinC score (mean +- std over folds), AF Se / Sp,
and on the 30 AFTDB records and the MIT-BIH 30-s windows of ``peers.py`` the share
called AF and the window AF Se / Sp (means over the fold models).

    python benchmarks/cv_stack.py --data ../shared/data/cinc2017 [--runs runs/cv]
        [--nested runs/nested]

Needs the pair models (run ``benchmarks/cv_offsets.py`` first) and ``pip install -e
".[peers]"``. Writes ``--json`` (default benchmarks/results/cv_stack.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from classical_peer import FEATURES, RR_FEATURES, dataset_features, fit_lightgbm
from folds import cached_logits, inner_logits, read_aftdb, read_mitdb_windows
from peers import Outcome, Outside

from afdetect import CLASSES
from afdetect.atomic import write_text_atomic
from afdetect.data.preprocess import PreprocessConfig
from afdetect.data.splits import load_or_make_splits
from afdetect.data.store import load_dataset
from afdetect.models import softmax

FLOAT, CLASSICAL, MEAN = "float (ours)", "classical (neurokit2 + LightGBM)", "mean of the two"
VARIANTS = {"stack: 61 features + CNN logits": FEATURES,
            "stack: 24 RR features + CNN logits": RR_FEATURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--aftdb", type=Path, default=Path("../shared/data/aftdb"))
    parser.add_argument("--mitdb", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"),
                        help="the outer fold models (foldK/model.pt) and splits.json")
    parser.add_argument("--nested", type=Path, default=Path("runs/nested"),
                        help="the ten pair models of benchmarks/cv_offsets.py")
    parser.add_argument("--features", type=Path, default=Path("runs/peers/features.npz"),
                        help="the classical peer's feature cache (made if missing)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cv_stack.json"))
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    folds = load_or_make_splits(args.runs / "splits.json", dataset.names, dataset.labels)
    fold_of = np.array([folds[str(n)] for n in dataset.names])
    k = int(fold_of.max()) + 1
    aftdb = read_aftdb(args.aftdb, PreprocessConfig())
    mitdb, mitdb_af, mitdb_names = read_mitdb_windows(args.mitdb, PreprocessConfig())
    outside = Outside(aftdb, mitdb, mitdb_af,
                      [f"aftdb/{n}" for n in (args.aftdb / "RECORDS").read_text().split()]
                      + [f"mitdb/{n}" for n in mitdb_names])
    x, _ = dataset_features(dataset.signals, dataset.fs, dataset.names, args.features)
    x_out, _ = dataset_features(outside.signals, dataset.fs, np.array(outside.names),
                                args.features.with_name("outside_features.npz"))
    columns = {name: [FEATURES.index(f) for f in chosen] for name, chosen in VARIANTS.items()}

    rows_of = [FLOAT, CLASSICAL, *VARIANTS]
    probabilities = {name: np.zeros((len(dataset), len(CLASSES))) for name in rows_of}
    on_outside: dict[str, list[np.ndarray]] = {name: [] for name in rows_of}
    trees: dict[str, list[int]] = {name: [] for name in [CLASSICAL, *VARIANTS]}
    for f in range(k):
        held_out = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        model = args.runs / f"fold{f}" / "model.pt"
        logits = cached_logits(model.with_name(f"{model.name}.logits_fold{f}.npy"), model,
                               dataset.subset(held_out).signals)
        logits_out = cached_logits(model.with_name(f"{model.name}.logits_outside.npy"), model,
                                   outside.signals)
        probabilities[FLOAT][held_out] = softmax(logits)
        on_outside[FLOAT].append(softmax(logits_out))

        booster = fit_lightgbm(x[train], dataset.labels[train], seed=f)
        probabilities[CLASSICAL][held_out] = booster.predict(x[held_out], num_threads=1)
        on_outside[CLASSICAL].append(booster.predict(x_out, num_threads=1))
        trees[CLASSICAL].append(booster.num_trees() // len(CLASSES))

        rows, inner = inner_logits(args.nested, dataset, fold_of, f)
        for name, cols in columns.items():
            booster = fit_lightgbm(np.hstack([x[rows][:, cols], inner]), dataset.labels[rows],
                                   seed=f)
            probabilities[name][held_out] = booster.predict(
                np.hstack([x[held_out][:, cols], logits]), num_threads=1)
            on_outside[name].append(booster.predict(np.hstack([x_out[:, cols], logits_out]),
                                                    num_threads=1))
            trees[name].append(booster.num_trees() // len(CLASSES))
        print(f"fold {f} fitted")

    outcomes = {name: Outcome(probabilities[name], on_outside[name], [0] * k, float("nan"))
                for name in rows_of}
    outcomes[MEAN] = Outcome((probabilities[FLOAT] + probabilities[CLASSICAL]) / 2,
                             [(a + b) / 2 for a, b in zip(on_outside[FLOAT], on_outside[CLASSICAL],
                                                         strict=True)],
                             [0] * k, float("nan"))
    table = []
    for name, outcome in outcomes.items():
        row = outcome.row(name, dataset.labels, fold_of, k, outside)
        for key in ("stored_bytes", "ms_per_record"):
            row.pop(key)
        row["trees_per_class"] = trees.get(name)
        table.append(row)
        folds_text = " / ".join(f"{s:.4f}" for s in row["cinc_folds"])
        print(f"{name:38s} CinC {row['cinc_score']:.4f} +- {row['cinc_std']:.4f} ({folds_text})"
              f"  AF Se/Sp {row['af_sensitivity']:.3f}/{row['af_specificity']:.3f}"
              f"  AFTDB {row['aftdb_af_share']:.2f}  MIT-BIH Se/Sp "
              f"{row['mitdb_af_sensitivity']:.3f}/{row['mitdb_af_specificity']:.3f}")
    result = {
        "protocol": f"{k}-fold CV, splits {args.runs / 'splits.json'}; combiner for outer fold "
                    "k trained on the training folds' features and out-of-fold CNN logits of "
                    f"the pair models in {args.nested} (each trained without fold k and one "
                    "other), applied to fold k with the outer fold model's logits; LightGBM "
                    "trees chosen on a validation split of the training folds",
        "command": " ".join(["python benchmarks/cv_stack.py", *sys.argv[1:]]),
        "rows": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
