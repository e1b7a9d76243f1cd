"""5-fold cross-validation of the float CNN: the CinC score of docs/research.md.

Trains one model per fold with the same command a user types (``afdetect train --splits ...
--fold k``), two folds at a time on one thread each (faster than one fold on two threads on
a 2-core machine), then scores each model on its held-out fold, on the 30 AFTDB records
(all AF: the share called AF) and on the 30-s MIT-BIH windows of ``peers.py`` (AF
sensitivity and specificity; ``folds.Outside``). Every fold run resumes from its
checkpoint, so a killed benchmark continues where it stopped. ``--folds`` trains and scores
a subset (a lever tried on one or two folds against the baseline's same folds); ``--extra``
passes training options (a recipe variant needs its own ``--runs`` folder), where
``{fold}`` stands for the fold number (per-fold soft labels).

    python benchmarks/cv_float.py --data ../shared/data/cinc2017 [--runs runs/cv] [--jobs 2]
        [--folds 0 1] [--extra --rr]

Prints per-fold and mean +- std figures and writes them to ``--json``
(default benchmarks/results/cv_float.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from folds import Outside, afdetect, fold_numbers, run_folds
from provenance import command_line

from afdetect import metrics
from afdetect.atomic import write_json_atomic
from afdetect.data.store import load_dataset
from afdetect.model import load_float_model
from afdetect.train import predict_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"))
    parser.add_argument("--aftdb", type=Path, default=Path("../shared/data/aftdb"),
                        help="AFTDB records (all AF) each fold model is also scored on "
                             "(with --mitdb; both or neither)")
    parser.add_argument("--mitdb", type=Path, default=Path("../shared/data/mitdb"),
                        help="MIT-BIH records whose 30-s windows each fold model is scored on")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--folds", type=int, nargs="+",
                        help="train and score only these folds (default: all k)")
    parser.add_argument("--jobs", type=int, default=2, help="folds trained at once")
    parser.add_argument("--threads", type=int, help="torch threads per fold (default 2 / jobs)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cv_float.json"))
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further `afdetect train` options, e.g. --rr")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    fold_of = fold_numbers(args.runs / "splits.json", dataset, args.k)
    threads = str(args.threads or max(1, 2 // args.jobs))
    chosen = args.folds if args.folds is not None else list(range(args.k))
    pending = [f for f in chosen if not (args.runs / f"fold{f}" / "model.pt").is_file()]
    seconds = run_folds(pending, lambda f: afdetect(
        "train", "--data", str(args.data), "--out", str(args.runs / f"fold{f}"),
        "--splits", str(args.runs / "splits.json"), "--fold", str(f), "--k", str(args.k),
        "--threads", threads, "--val-every", "10", "--resume",
        *(a.replace("{fold}", str(f)) for a in args.extra)),
        lambda f: args.runs / f"fold{f}" / "train.log", args.jobs)

    outside = (Outside.read(args.aftdb, args.mitdb)
               if args.aftdb.is_dir() and args.mitdb.is_dir() else None)
    per_fold = []
    for f in chosen:
        held_out = dataset.subset(np.flatnonzero(fold_of == f))
        model = load_float_model(args.runs / f"fold{f}" / "model.pt")
        predicted = predict_logits(model.network, held_out.signals).argmax(axis=1)
        summary = metrics.summarise(held_out.labels, predicted)
        summary["fold"] = f
        if outside is not None:
            summary.update(outside.figures([predict_logits(model.network, outside.signals)]))
        summary["train_seconds"] = sum(h["seconds"] for h in model.metadata["history"])
        per_fold.append(summary)
        print(f"fold {f}: CinC {summary['cinc_score']:.4f}  accuracy {summary['accuracy']:.4f}  "
              f"F1 N/A/O/~ " + "/".join(f"{v:.3f}" for v in summary["f1"].values()) +
              (f"  AFTDB AF {summary['aftdb_af_share']:.3f}  MIT-BIH AF Se/Sp "
               f"{summary['mitdb_af_sensitivity']:.3f}/{summary['mitdb_af_specificity']:.3f}"
               if outside is not None else "") +
              f"  ({summary['train_seconds'] / 60:.1f} min)")
    keys = ["cinc_score", "accuracy", "af_accuracy", "af_sensitivity", "af_specificity"]
    if outside is not None:
        keys += ["aftdb_af_share", "mitdb_af_sensitivity", "mitdb_af_specificity"]
    result = {
        "protocol": f"{args.k}-fold stratified CV by record on {len(dataset)} records of "
                    f"{args.data}, splits in {args.runs / 'splits.json'} (seed 0); "
                    "final-epoch models, no selection on the held-out fold; folds scored: "
                    + ", ".join(map(str, chosen)),
        "command": command_line(),
        "mean": {k: float(np.mean([s[k] for s in per_fold])) for k in keys},
        "std": {k: float(np.std([s[k] for s in per_fold])) for k in keys},
        "pooled_confusion": np.sum([s["confusion"] for s in per_fold], axis=0).tolist(),
        "folds": per_fold,
        "wall_seconds_this_run": seconds,
    }
    for k in keys:
        print(f"{k:15s} {result['mean'][k]:.4f} +- {result['std'][k]:.4f}")
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
