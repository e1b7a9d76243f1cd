"""Nested selection of decision offsets: one constant per class added to the logits.

The CinC score averages F1 over N, A and O and ignores the noisy class, so argmax is not
the decision that maximises it. This benchmark asks whether offsets chosen without the
held-out fold move the 5-fold CV score.

Nesting: for every pair of folds {j, k} one float model is trained on the other three
(the shipped recipe, ``afdetect train`` with the same seed), ten models for five folds.
For outer fold k the four pair models that held out k score their other held-out fold j,
which gives logits for every training record of fold k from a model that saw neither that
record nor fold k. The offsets that maximise the CinC score on those logits are chosen
(:func:`afdetect.metrics.choose_offsets`), then added to every outer model's logits on
fold k: the shipped recipe's fold models and any ``--model`` given (other seeds, the
compressed fold models). Fold k selects nothing.

    python benchmarks/cv_offsets.py --data ../shared/data/cinc2017 [--runs runs/cv]
        [--nested runs/nested] [--model "NAME=runs/gpu/seed1/fold{fold}/model.pt" ...]

Prints per-fold scores with and without the offsets and writes them to ``--json``
(default benchmarks/results/cv_offsets.json).
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from folds import afdetect, fold_logits, fold_numbers, inner_logits, pair_run, run_folds
from provenance import command_line

from afdetect import metrics
from afdetect.atomic import write_json_atomic
from afdetect.data.store import load_dataset


def pair_splits(path: Path, names: np.ndarray, fold_of: np.ndarray,
                pair: tuple[int, int]) -> None:
    """A splits file whose fold 1 is the union of ``pair``'s folds, fold 0 the rest."""
    if not path.is_file():
        merged = {str(name): int(f in pair) for name, f in zip(names, fold_of, strict=True)}
        write_json_atomic(path, {"k": 2, "seed": 0, "folds": merged}, indent=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"),
                        help="the outer fold models (foldK/model.pt) and splits.json")
    parser.add_argument("--nested", type=Path, default=Path("runs/nested"),
                        help="where the ten pair models are trained")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATTERN",
                        help="more outer models, {fold} standing for the fold number")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cv_offsets.json"))
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further `afdetect train` options for the pair models")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    fold_of = fold_numbers(args.runs / "splits.json", dataset)
    k = int(fold_of.max()) + 1
    pairs = list(combinations(range(k), 2))
    run_of = {p: pair_run(args.nested, p) for p in pairs}
    for p in pairs:
        pair_splits(run_of[p] / "splits.json", dataset.names, fold_of, p)
    pending = [p for p in pairs if not (run_of[p] / "model.pt").is_file()]
    seconds = run_folds(pending, lambda p: afdetect(
        "train", "--data", str(args.data), "--out", str(run_of[p]),
        "--splits", str(run_of[p] / "splits.json"), "--fold", "1", "--threads", "1",
        "--val-every", "1000", "--resume", *args.extra),
        lambda p: run_of[p] / "train.log", args.jobs)

    outer = {"float (ours)": str(args.runs / "fold{fold}" / "model.pt")}
    outer.update(dict(m.split("=", 1) for m in args.model))
    per_fold: dict[str, list[dict]] = {name: [] for name in outer}
    chosen = []
    for f in range(k):
        rows, inner = inner_logits(args.nested, dataset, fold_of, f)
        truth = dataset.labels[rows]
        offsets = metrics.choose_offsets(inner, truth)
        inner_plain = metrics.summarise(truth, inner.argmax(axis=1))["cinc_score"]
        inner_shifted = metrics.summarise(truth, (inner + offsets).argmax(axis=1))["cinc_score"]
        chosen.append({"fold": f, "offsets": offsets.tolist(), "inner_cinc_argmax": inner_plain,
                       "inner_cinc_offsets": inner_shifted})
        print(f"fold {f}: offsets N/A/O/~ " + "/".join(f"{v:+.2f}" for v in offsets)
              + f"  inner CinC {inner_plain:.4f} -> {inner_shifted:.4f}")
        held_out = np.flatnonzero(fold_of == f)
        for name, pattern in outer.items():
            logits = fold_logits(pattern, f, dataset.subset(held_out).signals, f"fold{f}")
            plain = metrics.summarise(dataset.labels[held_out], logits.argmax(axis=1))
            shifted = metrics.summarise(dataset.labels[held_out], (logits + offsets).argmax(axis=1))
            per_fold[name].append({"fold": f, "argmax": plain, "offsets": shifted})
            print(f"  {name}: CinC {plain['cinc_score']:.4f} -> {shifted['cinc_score']:.4f}  "
                  f"AF Se {plain['af_sensitivity']:.3f} -> {shifted['af_sensitivity']:.3f}")

    keys = ["cinc_score", "accuracy", "af_sensitivity", "af_specificity"]
    summary: dict[str, dict[str, Any]] = {}
    for name, scored in per_fold.items():
        means = {rule: {key: float(np.mean([s[rule][key] for s in scored])) for key in keys}
                 for rule in ("argmax", "offsets")}
        gain = [s["offsets"]["cinc_score"] - s["argmax"]["cinc_score"] for s in scored]
        summary[name] = means | {"cinc_gain_per_fold": gain, "cinc_gain_mean": float(np.mean(gain)),
                                 "cinc_gain_std": float(np.std(gain))}
        print(f"{name}: CinC {means['argmax']['cinc_score']:.4f} -> "
              f"{means['offsets']['cinc_score']:.4f} (gain {np.mean(gain):+.4f} +- "
              f"{np.std(gain):.4f}, {sum(g > 0 for g in gain)} of {k} folds up)")
    result = {
        "protocol": "nested: offsets for outer fold k chosen on out-of-fold logits of the four "
                    "models trained without fold k and one other fold; outer models scored on "
                    f"fold k with and without them; splits {args.runs / 'splits.json'}",
        "command": command_line(),
        "offsets": chosen,
        "summary": summary,
        "folds": per_fold,
        "pair_train_seconds_this_run": {f"{p[0]}{p[1]}": s for p, s in seconds.items()},
    }
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
