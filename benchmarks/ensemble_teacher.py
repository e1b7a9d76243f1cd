"""Soft labels of the float + classical ensemble, per CV fold, for distillation.

For every outer fold k the teacher sees only fold k's training records:

* the **CNN** is the fold-k float model of ``--runs`` (``benchmarks/cv_float.py``), trained
  on exactly those records, so its probabilities on them are in-sample;
* the **classical peer** (neurokit2 features + LightGBM, ``classical_peer.py``) gives
  out-of-fold probabilities from an inner 5-fold split of the training records, so that its
  soft labels are not memorised ones;
* the teacher is their mean, with equal weights (the ensemble row of ``peers.py``).

Writes ``OUT/teacher_fold{k}.csv`` (``record,N,A,O,~``), which ``afdetect train
--soft-labels`` reads:

    python benchmarks/ensemble_teacher.py --data ../shared/data/cinc2017 --runs runs/cv \\
        --out runs/distill
    python benchmarks/cv_float.py --data ../shared/data/cinc2017 --runs runs/distill \\
        --json benchmarks/results/cv_float_distill.json \\
        --extra --soft-labels runs/distill/teacher_fold{fold}.csv --soft-weight 0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from classical_peer import dataset_features, fit_lightgbm
from folds import fold_numbers
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.data.soft_labels import write_soft_labels
from afdetect.data.splits import stratified_folds
from afdetect.data.store import load_dataset
from afdetect.model import load_float_model
from afdetect.models import softmax
from afdetect.train import predict_logits

INNER_FOLDS = 5


def classical_out_of_fold(features: np.ndarray, labels: np.ndarray, names: np.ndarray,
                          seed: int) -> np.ndarray:
    """LightGBM probabilities (n, n_classes), each row from a model that never saw it."""
    inner = stratified_folds(names, labels, INNER_FOLDS, seed=seed)
    inner_of = np.array([inner[str(n)] for n in names])
    probabilities = np.zeros((len(labels), len(CLASSES)))
    for f in range(INNER_FOLDS):
        held = inner_of == f
        booster = fit_lightgbm(features[~held], labels[~held], seed=seed * 10 + f)
        probabilities[held] = booster.predict(features[held], num_threads=2)
    return probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"),
                        help="the float CV runs (foldK/model.pt and splits.json)")
    parser.add_argument("--out", type=Path, default=Path("runs/distill"))
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)

    dataset = load_dataset(args.data)
    fold_of = fold_numbers(args.runs / "splits.json", dataset, args.k)
    features, _ = dataset_features(dataset.signals, dataset.fs, dataset.names,
                                   args.runs.parent / "peers" / "features.npz")
    args.out.mkdir(parents=True, exist_ok=True)
    for k in tqdm(range(args.k), desc="teacher folds", unit="fold"):
        train = np.flatnonzero(fold_of != k)
        network = load_float_model(args.runs / f"fold{k}" / "model.pt").network
        cnn = softmax(predict_logits(network, [dataset.signals[i] for i in train]))
        classical = classical_out_of_fold(features[train], dataset.labels[train],
                                          dataset.names[train], seed=k + 1)
        teacher = 0.5 * (cnn + classical)
        agree = (teacher.argmax(axis=1) == dataset.labels[train]).mean()
        print(f"fold {k}: {len(train)} training records; the teacher agrees with the label "
              f"on {agree:.3f} (CNN {(cnn.argmax(1) == dataset.labels[train]).mean():.3f}, "
              f"classical out-of-fold "
              f"{(classical.argmax(1) == dataset.labels[train]).mean():.3f})")
        write_soft_labels(args.out / f"teacher_fold{k}.csv", dataset.names[train], teacher)


if __name__ == "__main__":
    main()
