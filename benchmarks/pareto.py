"""Pareto sweep of the compression recipe: sparsity x bits, plus the two ablations.

Each point compresses the fold's float model (``benchmarks/cv_float.py``) on the training
folds and is scored on the held-out fold, the same protocol as the cross-validation.
Pruning stages are shared between points that differ only in bits, so a sweep costs one
pruning run per sparsity. Ablations: pruning alone (float weights and activations, 32-bit
values stored with the same sparse index) and logarithmic quantisation alone (no pruning).
Two recipes: weight-level pruning (``recipe``) and kernel-level pruning (``kernel recipe``,
one index entry per kept kernel), each over its own sparsity grid.

    python benchmarks/pareto.py --data ../shared/data/cinc2017 [--folds 0] \\
        [--sparsity 0.8 0.9 0.95 0.97 0.98] [--bits 3 4 5] \\
        [--kernel-sparsity 0.85 0.89 0.92 0.94] [--kernel-bits 2 3] \\
        [--prune-epochs 6] [--qat-epochs 3]

The sweep's schedule is shorter than the shipped recipe's (see ``--prune-epochs``), so its
points sit a little below what the full recipe reaches at the same size.

Prints a table, writes benchmarks/results/pareto.json and draws benchmarks/results/pareto.png
with the reference paper's point (91.1x at 91.7% accuracy) marked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from afdetect import metrics
from afdetect.atomic import write_json_atomic
from afdetect.compress.accounting import integer_model_sizes, layer_size, totals
from afdetect.compress.integer import simulate_logits
from afdetect.compress.recipe import CompressConfig, compress
from afdetect.data.store import load_dataset
from afdetect.deploy.package import split_for_fold
from afdetect.model import load_float_model
from afdetect.train import predict_logits

PAPER = {"compression_ratio": 91.1, "accuracy": 0.917}


def point(kind: str, sparsity: float, bits: int, parent_path: Path, dataset: Any,
          splits: Path, fold: int, work: Path, base: CompressConfig) -> dict[str, Any]:
    parent = load_float_model(parent_path)
    train_set, held_out = split_for_fold(dataset, splits, fold)
    config = dataclasses.replace(base, sparsity=sparsity,
                                 quant=dataclasses.replace(base.quant, weight_bits=bits),
                                 granularity="kernel" if kind == "kernel recipe" else "weight",
                                 size_budget=0)  # each point at one width
    result = compress(parent, train_set, config, work, progress=False)
    baseline = sum(p.numel() for p in parent.network.parameters())
    if result.integer is not None:
        # The float64 simulation is bit-identical to the shift-add engine (see
        # benchmarks/equivalence.py) and far faster on the dense ablation models.
        logits = np.stack([simulate_logits(result.integer, x) for x in held_out.signals])
        sizes = integer_model_sizes(result.integer)
    else:  # pruning alone: float weights stored as 32-bit values with the sparse index
        logits = predict_logits(result.net, held_out.signals)
        sizes = [layer_size(f"layer{i}", result.net.mask(i).numpy().astype(bool).reshape(
            result.net.mask(i).shape[0], -1, 1), b.detach().numpy(), 32, bias_width=32)
            for i, (_, b) in enumerate(result.net.weighted_layers())]
    score = metrics.summarise(held_out.labels, logits.argmax(axis=1))
    return {"kind": kind, "fold": fold, "sparsity": sparsity, "bits": bits,
            "cinc_score": score["cinc_score"], "accuracy": score["accuracy"],
            **{k: v for k, v in totals(sizes, baseline, parent.network.config.rr).items()
               if k in ("stored_bytes", "compression_ratio", "weights_only_ratio")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"))
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--sparsity", type=float, nargs="+",
                        default=[0.8, 0.9, 0.95, 0.97, 0.98])
    parser.add_argument("--bits", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--kernel-sparsity", type=float, nargs="+",
                        default=[0.85, 0.89, 0.92, 0.94])
    parser.add_argument("--kernel-bits", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--prune-epochs", type=int, default=6,
                        help="shorter than the shipped recipe, so the sweep fits an evening")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, 1 thread each")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    default = CompressConfig()
    base = dataclasses.replace(
        default, prune=dataclasses.replace(default.prune, epochs=args.prune_epochs),
        qat=dataclasses.replace(default.qat, epochs=args.qat_epochs))
    results_path = args.out / "pareto.json"
    points = json.loads(results_path.read_text())["points"] if results_path.is_file() else []
    # One task per pruning stage, so points sharing it run in one worker, in order.
    tasks = [[("recipe", s, b) for b in args.bits] + [("pruning only", s, 0)]
             for s in args.sparsity]
    tasks.append([("log quantisation only", 0.0, b) for b in args.bits])
    tasks += [[("kernel recipe", s, b) for b in args.kernel_bits] for s in args.kernel_sparsity]
    todo = [(fold, [g for g in group if not any(
        p["fold"] == fold and (p["kind"], p["sparsity"], p["bits"]) == g for p in points)])
        for fold in args.folds for group in tasks]
    todo = [(fold, group) for fold, group in todo if group]
    command = (f"python benchmarks/pareto.py --data {args.data} --prune-epochs "
               f"{args.prune_epochs} --qat-epochs {args.qat_epochs}")
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_group, args.data, args.runs, fold, group, base)
                   for fold, group in todo]
        for future in as_completed(futures):
            for p in future.result():
                points.append(p)
                print(f"fold {p['fold']} {p['kind']:22s} sparsity {p['sparsity']:.2f} bits "
                      f"{p['bits']}: CinC {p['cinc_score']:.4f} (float "
                      f"{p['float_cinc_score']:.4f}) accuracy {p['accuracy']:.4f}  "
                      f"{p['stored_bytes']:6d} B  {p['compression_ratio']:6.1f}x", flush=True)
            write_json_atomic(results_path, {
                "protocol": f"held-out fold(s) {args.folds} of {args.runs / 'splits.json'}",
                "command": command, "recipe": base.to_dict(), "paper": PAPER,
                "points": points})
    plot(points, args.out / "pareto.png")


def run_group(data: Path, runs: Path, fold: int, group: list[tuple[str, float, int]],
              base: CompressConfig) -> list[dict[str, Any]]:
    """Compress and score one fold's points, in one single-threaded worker process."""
    torch.set_num_threads(1)
    dataset = load_dataset(data, progress=False)
    float_score = metrics.summarise(*_float_scores(runs, dataset, fold))
    out = []
    for kind, s, b in group:
        p = point(kind, s, b, runs / f"fold{fold}" / "model.pt", dataset,
                  runs / "splits.json", fold, runs / f"fold{fold}" / "pareto", base)
        p.update(float_cinc_score=float_score["cinc_score"],
                 float_accuracy=float_score["accuracy"])
        out.append(p)
    return out


def _float_scores(runs: Path, dataset: Any, fold: int) -> tuple[Any, Any]:
    _, held_out = split_for_fold(dataset, runs / "splits.json", fold)
    parent = load_float_model(runs / f"fold{fold}" / "model.pt")
    return held_out.labels, predict_logits(parent.network, held_out.signals).argmax(axis=1)


def plot(points: list[dict[str, Any]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"recipe": "o-", "kernel recipe": "D-", "pruning only": "s--",
              "log quantisation only": "^:"}
    for kind in styles:
        # one line per bit width for the recipes; each ablation is one line
        recipe = kind.endswith("recipe")
        groups = sorted({p["bits"] for p in points if p["kind"] == kind}) \
            if recipe else [None]
        for bits in groups:
            sel = sorted((p for p in points if p["kind"] == kind
                          and bits in (None, p["bits"])), key=lambda p: p["stored_bytes"])
            if not sel:
                continue
            label = kind + (f", {bits}-bit" if recipe else "")
            left.plot([p["stored_bytes"] for p in sel], [p["cinc_score"] for p in sel],
                      styles[kind], label=label)
            right.plot([p["compression_ratio"] for p in sel], [p["accuracy"] for p in sel],
                       styles[kind], label=label)
    floats = [p["float_cinc_score"] for p in points]
    left.axhline(float(np.mean(floats)), color="gray", lw=1, label="float parent")
    right.axhline(float(np.mean([p["float_accuracy"] for p in points])), color="gray", lw=1,
                  label="float parent")
    right.plot([PAPER["compression_ratio"]], [PAPER["accuracy"]], "r*", ms=14,
               label="Chang et al. 2022 (91.1x, 91.7%)")
    left.set(xscale="log", xlabel="stored bytes (whole model)", ylabel="CinC score (held out)",
             title="Score against size")
    right.set(xscale="log", xlabel="compression ratio (whole model vs 32-bit float)",
              ylabel="4-class accuracy (held out)", title="Accuracy against compression")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
