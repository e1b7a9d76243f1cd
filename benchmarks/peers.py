"""Peers side by side on the same 5 folds: the classical pipeline, PyTorch's own
compression tools, and our float and compressed models.

    python benchmarks/peers.py --data ../shared/data/cinc2017 [--runs runs/cv]

Every row is scored on the held-out fold of each of the 5 splits in ``RUNS/splits.json``
(the splits of ``benchmarks/cv_float.py``); no row's choices see that fold. Rows:

- ``classical``: neurokit2 R peaks, 61 features, LightGBM (``benchmarks/classical_peer.py``);
  the number of trees is chosen on a validation split inside the training folds;
- ``torch int8`` and ``torch prune + int8``: ``benchmarks/torch_peer.py`` on the float
  fold models, the pruned ones fine-tuned for ``--torch-epochs`` on the fold's training
  records (checkpoints in ``RUNS/foldK/torch_pruned``; 0 leaves the row out), pruned to
  the stored bytes of the shipped compressed model;
- ``float`` / ``compressed`` (and any other model file named with ``--model NAME=FILE``
  inside every fold folder, or a path with ``{fold}`` standing for the fold number, e.g.
  ``runs/distill/fold{fold}/model.pt``): read from ``RUNS/foldK/``; rows whose files are
  missing in any fold are left out and named;
- ``ensemble``: the mean of the float and classical rows' probabilities (equal weights,
  nothing tuned), and of the rows named by each ``--ensemble ROW ROW ...`` (a row may be
  an earlier ``--ensemble``'s, named as in the table: averaging an average weighs its
  members equally within their share);
- ``--cv-results NAME=JSON``: a row from a cross-validation results file of the same
  splits (``benchmarks/cv_compressed.py`` writes one), for models too slow to rebuild
  here: its per-fold confusions and sizes, with time per record and the AFTDB share
  measured on the shipped model of the same recipe (``--cv-results-model``).

Per row: CinC score (mean +- std over folds), pooled per-class F1, AF sensitivity and
specificity, stored bytes (mean over folds), milliseconds per 30-s record (one thread,
measured in this run on the same 100 records for every row, feature extraction
included), the share of the 30 AFTDB records (all AF, 128 Hz Holter) called AF, and the
AF sensitivity and specificity on 30-s windows of the MIT-BIH records (every 10 s, each
classified as a strip; ``folds.read_mitdb_windows``), both averaged over the 5 fold
models. Writes ``--json`` (default benchmarks/results/peers.json).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from classical_peer import dataset_features, fit_lightgbm, record_features
from folds import Outside, fold_numbers
from provenance import command_line
from torch_peer import (
    calibration_set,
    int8,
    prune_and_finetune,
    pruned_to_budget,
)
from torch_peer import (
    stored_bytes as int8_bytes,
)

from afdetect import CLASSES, metrics
from afdetect.atomic import write_json_atomic
from afdetect.compress.accounting import report
from afdetect.data.store import Dataset, load_dataset
from afdetect.model import load_float_model
from afdetect.models import (
    Classifier,
    CompressedClassifier,
    FloatClassifier,
    builtin_path,
    load_classifier,
    softmax,
)

TIMING_RECORDS = 100
CLASSICAL = "classical (neurokit2 + LightGBM)"

Scorer = Callable[[list[np.ndarray]], np.ndarray]
"""Preprocessed signals -> class probabilities, (n_signals, n_classes)."""


@dataclass
class Outcome:
    """One peer's cross-validated predictions.

    Attributes:
        probabilities: (n_records, n_classes), each record's from the model of its fold.
        outside: per fold model, (n_outside, n_classes) on :attr:`Outside.signals`.
        stored_bytes: per fold model.
        ms_per_record: one 30-s record at a time, one thread.
    """

    probabilities: np.ndarray
    outside: list[np.ndarray]
    stored_bytes: list[int]
    ms_per_record: float

    def row(self, name: str, truth: np.ndarray, fold_of: np.ndarray, k: int,
            outside: Outside, costs: bool = True) -> dict:
        """The table row of these predictions; ``costs=False`` leaves out the stored bytes
        and the time per record (rows that are not one model of their own)."""
        predicted = self.probabilities.argmax(axis=1)
        folds = [metrics.summarise(truth[fold_of == f], predicted[fold_of == f])
                 for f in range(k)]
        pooled = metrics.summarise(truth, predicted)
        scores = [s["cinc_score"] for s in folds]
        return {
            "name": name,
            "cinc_score": float(np.mean(scores)), "cinc_std": float(np.std(scores)),
            "cinc_folds": scores,
            "accuracy": float(np.mean([s["accuracy"] for s in folds])),
            "f1": pooled["f1"],
            "af_sensitivity": pooled["af_sensitivity"],
            "af_specificity": pooled["af_specificity"],
            **({"stored_bytes": float(np.mean(self.stored_bytes)),
                "ms_per_record": self.ms_per_record} if costs else {}),
            **outside.figures(self.outside),
            "confusion": pooled["confusion"],
        }


def describe(row: dict) -> str:
    """Two lines: the row's name, then its CinC figures (per fold) and AF figures."""
    folds = " / ".join(f"{s:.4f}" for s in row["cinc_folds"])
    return (f"{row['name']}\n    CinC {row['cinc_score']:.4f} +- {row['cinc_std']:.4f} "
            f"({folds})  AF Se/Sp {row['af_sensitivity']:.3f}/{row['af_specificity']:.3f}  "
            f"AFTDB {row['aftdb_af_share']:.2f}  MIT-BIH Se/Sp "
            f"{row['mitdb_af_sensitivity']:.3f}/{row['mitdb_af_specificity']:.3f}")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` (CinC 2017), ``--aftdb`` and ``--mitdb`` (the outside records)."""
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--aftdb", type=Path, default=Path("../shared/data/aftdb"))
    parser.add_argument("--mitdb", type=Path, default=Path("../shared/data/mitdb"))


def read_data(args: argparse.Namespace, k: int = 5) -> tuple[Dataset, np.ndarray, Outside]:
    """The records of :func:`add_data_arguments`' options: the CinC dataset, the fold of
    each of its records (``args.runs/splits.json``, made with ``k`` folds if missing) and
    the outside records."""
    dataset = load_dataset(args.data)
    return (dataset, fold_numbers(args.runs / "splits.json", dataset, k),
            Outside.read(args.aftdb, args.mitdb))


def ensemble(members: list[Outcome]) -> Outcome:
    """The mean of peers' probabilities, fold by fold; bytes and time add up."""
    return Outcome(np.mean([m.probabilities for m in members], axis=0),
                   [np.mean(fold, axis=0) for fold in zip(*(m.outside for m in members),
                                                         strict=True)],
                   [sum(fold) for fold in zip(*(m.stored_bytes for m in members), strict=True)],
                   sum(m.ms_per_record for m in members))


def ensemble_name(members: list[str]) -> str:
    """The row name of the mean of ``members``' probabilities."""
    return f"ensemble: {' + '.join(members)}, mean probabilities"


def timed_ms(scorer: Scorer, signals: list[np.ndarray]) -> float:
    """Milliseconds per record of ``scorer`` on ``signals``, one at a time."""
    started = time.perf_counter()
    for s in signals:
        scorer([s])
    return 1000 * (time.perf_counter() - started) / len(signals)


def cross_validate(scorers: list[Scorer], dataset: Dataset, fold_of: np.ndarray,
                   outside: Outside, timing: list[np.ndarray],
                   stored_bytes: list[int]) -> Outcome:
    """Score each fold's held-out records with that fold's scorer (and every one on
    ``outside``); time the last one."""
    probabilities = np.zeros((len(dataset), len(CLASSES)))
    for f, scorer in enumerate(scorers):
        held_out = np.flatnonzero(fold_of == f)
        probabilities[held_out] = scorer([dataset.signals[i] for i in held_out])
    return Outcome(probabilities, [scorer(outside.signals) for scorer in scorers],
                   stored_bytes, timed_ms(scorers[-1], timing))


def classical_outcome(dataset: Dataset, fold_of: np.ndarray, k: int, outside: Outside,
                      cache: Path, timing: list[np.ndarray]) -> Outcome:
    x, _ = dataset_features(dataset.signals, dataset.fs, dataset.names, cache)
    x_outside, _ = dataset_features(outside.signals, dataset.fs, np.array(outside.names),
                                    cache.with_name("outside_features.npz"))
    features = {id(s): row for s, row in zip(dataset.signals + outside.signals,
                                             np.vstack([x, x_outside]), strict=True)}
    scorers: list[Scorer] = []
    stored = []
    for f in range(k):
        booster = fit_lightgbm(x[fold_of != f], dataset.labels[fold_of != f], seed=f)
        stored.append(len(booster.model_to_string().encode()))

        def scorer(signals: list[np.ndarray], b=booster) -> np.ndarray:
            # the dataset's and outside records' features come from the caches; the timing
            # crops' are extracted here
            rows = [features[id(s)] if id(s) in features else record_features(s, dataset.fs)
                    for s in signals]
            return np.asarray(b.predict(np.vstack(rows), num_threads=1))

        scorers.append(scorer)
    return cross_validate(scorers, dataset, fold_of, outside, timing, stored)


def model_outcome(files: list[Path], dataset: Dataset, fold_of: np.ndarray,
                  outside: Outside, timing: list[np.ndarray]) -> Outcome:
    classifiers = [load_classifier(path) for path in files]
    return cross_validate([probabilities_of(c) for c in classifiers], dataset, fold_of,
                          outside, timing, [stored_bytes_of(c) for c in classifiers])


def probabilities_of(classifier: Classifier) -> Scorer:
    return lambda signals: softmax(classifier.logits(signals))


def torch_outcomes(dataset: Dataset, fold_of: np.ndarray, runs: Path, k: int,
                   outside: Outside, timing: list[np.ndarray], budget: int,
                   epochs: int) -> dict[str, Outcome]:
    """int8 alone, and prune + int8 at ``budget`` bytes, from each fold's float model."""
    kinds = ["int8"] + (["prune + int8"] if epochs > 0 else [])
    scorers: dict[str, list[Scorer]] = {kind: [] for kind in kinds}
    sizes: dict[str, list[int]] = {kind: [] for kind in kinds}
    for f in range(k):
        parent = load_float_model(runs / f"fold{f}" / "model.pt").network
        train_set = dataset.subset(np.flatnonzero(fold_of != f))
        nets = {"int8": parent}
        if epochs > 0:
            sparsity = pruned_to_budget(parent, budget)
            nets["prune + int8"] = prune_and_finetune(
                parent, train_set, sparsity, runs / f"fold{f}" / "torch_pruned", epochs, f)
        for kind, net in nets.items():
            quantised = int8(net, calibration_set(train_set, f))

            def scorer(signals: list[np.ndarray], q=quantised) -> np.ndarray:
                with torch.no_grad():
                    return softmax(np.vstack([q(torch.from_numpy(s[None, None, :])).numpy()
                                              for s in signals]))

            scorers[kind].append(scorer)
            sizes[kind].append(int8_bytes(net))
    return {kind: cross_validate(scorers[kind], dataset, fold_of, outside, timing,
                                 sizes[kind])
            for kind in kinds}


def cv_results_row(name: str, results: Path, key: str, shipped: Path,
                   outside: Outside, timing: list[np.ndarray]) -> dict:
    """A row from ``results`` (per-fold ``key`` summaries with confusions and sizes); the
    outside figures are the shipped model's."""
    folds = json.loads(results.read_text())["folds"]
    confusions = [np.asarray(f[key]["confusion"]) for f in folds]
    per_fold = [metrics.summarise_confusion(c) for c in confusions]
    pooled = metrics.summarise_confusion(np.sum(confusions, axis=0))
    scores = [s["cinc_score"] for s in per_fold]
    scorer = probabilities_of(load_classifier(shipped))
    return {
        "name": name, "cinc_score": float(np.mean(scores)), "cinc_std": float(np.std(scores)),
        "cinc_folds": scores,
        "accuracy": float(np.mean([s["accuracy"] for s in per_fold])),
        "f1": pooled["f1"],
        "af_sensitivity": pooled["af_sensitivity"], "af_specificity": pooled["af_specificity"],
        "stored_bytes": float(np.mean([f["size"]["stored_bytes"] for f in folds])),
        "ms_per_record": timed_ms(scorer, timing),
        **outside.figures([scorer(outside.signals)]),
        "confusion": pooled["confusion"],
        "source": f"{results} ({key}); time, AFTDB and MIT-BIH figures: {shipped}",
    }


def stored_bytes_of(classifier: Classifier) -> int:
    """Our accounting: the compressed model's stored bytes, 4 bytes per float weight."""
    if isinstance(classifier, CompressedClassifier):
        return int(report(classifier.model, 1)["stored_bytes"])
    assert isinstance(classifier, FloatClassifier)
    return 4 * sum(p.numel() for p in classifier.model.network.parameters())


def print_table(rows: list[dict]) -> None:
    print(f"{'peer':44s} {'CinC':>13s} {'F1 N/A/O/~':>23s} {'AF Se/Sp':>11s} "
          f"{'bytes':>10s} {'ms/rec':>7s} {'AFTDB':>6s} {'MIT-BIH Se/Sp':>13s}")
    for r in rows:
        f1 = "/".join(f"{v:.2f}" for v in r["f1"].values())
        print(f"{r['name']:44s} {r['cinc_score']:.3f}+-{r['cinc_std']:.3f} {f1:>23s} "
              f"{r['af_sensitivity']:.2f}/{r['af_specificity']:.2f} "
              f"{r['stored_bytes']:10.0f} {r['ms_per_record']:7.1f} "
              f"{r['aftdb_af_share']:6.2f} "
              f"{r['mitdb_af_sensitivity']:.2f}/{r['mitdb_af_specificity']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                        help="a further row: FILE inside every RUNS/foldK folder, or a "
                             "path where {fold} stands for the fold number")
    parser.add_argument("--ensemble", action="append", nargs="+", default=[], metavar="ROW",
                        help="a further row: the mean probabilities of these rows (names "
                             "as in the table)")
    parser.add_argument("--cv-results", action="append", default=[], metavar="NAME=JSON",
                        help="a further row from a CV results file of the same splits")
    parser.add_argument("--cv-results-key", default="compressed",
                        help="the per-fold entry of --cv-results to read (default compressed)")
    parser.add_argument("--cv-results-model", default="compressed",
                        help="the shipped model of that recipe, for time and AFTDB")
    parser.add_argument("--torch-epochs", type=int, default=5,
                        help="fine-tuning epochs of the torch prune + int8 peer (0: skip it)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/peers.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    candidates = [("float (ours)", "model.pt"), ("compressed (ours)", "compressed.afq")]
    candidates += [tuple(m.split("=", 1)) for m in args.model]
    members = [["float (ours)", CLASSICAL], *args.ensemble]
    known = {CLASSICAL, "torch int8", "torch prune + int8", *(n for n, _ in candidates)}
    for names in members:  # refused before the hour of work, not after
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"--ensemble: no row named {unknown[0]!r}")
        known.add(ensemble_name(names))  # a later --ensemble may average this one

    dataset, fold_of, outside = read_data(args, args.k)
    # 30-s records: the typical CinC length, the same for every row
    timing = [s[: 30 * dataset.fs] for s in dataset.signals if len(s) >= 30 * dataset.fs]
    timing = timing[:TIMING_RECORDS]

    outcomes = {CLASSICAL: classical_outcome(
        dataset, fold_of, args.k, outside, args.runs.parent / "peers" / "features.npz",
        timing)}
    budget = stored_bytes_of(load_classifier("compressed"))
    for kind, outcome in torch_outcomes(dataset, fold_of, args.runs, args.k, outside, timing,
                                        budget, args.torch_epochs).items():
        outcomes[f"torch {kind}"] = outcome
    missing = []
    for name, filename in candidates:
        files = [Path(filename.replace("{fold}", str(f))) if "{fold}" in filename
                 else args.runs / f"fold{f}" / filename for f in range(args.k)]
        if not all(p.is_file() for p in files):
            missing.append(f"{name} ({filename})")
            continue
        outcomes[name] = model_outcome(files, dataset, fold_of, outside, timing)
    # the hybrid the issue measured on unseen records: equal weights, nothing tuned
    for names in members:
        if any(n not in outcomes for n in names):
            missing.append(f"ensemble of {', '.join(names)}")
            continue
        outcomes[ensemble_name(names)] = ensemble(
            [outcomes[n] for n in names])
    rows = [o.row(name, dataset.labels, fold_of, args.k, outside)
            for name, o in outcomes.items()]
    for item in args.cv_results:
        name, path = item.split("=", 1)
        rows.append(cv_results_row(name, Path(path), args.cv_results_key,
                                   builtin_path(args.cv_results_model), outside, timing))
    print_table(rows)
    if missing:
        print("left out (files missing in some fold, or a member left out): "
              + ", ".join(missing))
    result = {
        "protocol": f"{args.k}-fold CV, splits {args.runs / 'splits.json'}; LightGBM trees "
                    "chosen on a validation split of the training folds; torch prune + int8 "
                    f"at {budget} bytes (the shipped compressed model), fine-tuned "
                    f"{args.torch_epochs} epochs; ms per 30-s record "
                    f"on {len(timing)} records, one thread, this run; AFTDB share: "
                    f"{len(outside.aftdb)} records of {args.aftdb} called AF, and AF Se / Sp "
                    f"of {len(outside.mitdb)} 30-s windows (every 10 s, "
                    f"{int(outside.mitdb_af.sum())} AF) of "
                    f"{args.mitdb}, means over fold models",
        "command": command_line(),
        "rows": rows,
        "left_out": missing,
    }
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
