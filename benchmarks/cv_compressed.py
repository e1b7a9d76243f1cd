"""5-fold cross-validation of the compression recipe against its float parents.

For every fold, ``afdetect compress`` compresses that fold's float model (from
``benchmarks/cv_float.py``) on the fold's training records and scores the compressed model
(integer engine) and its float parent on the held-out fold; the difference is paired.

    python benchmarks/cv_compressed.py --data ../shared/data/cinc2017 [--runs runs/cv]
        [--folds 0 1] [--extra --sparsity S]

``--folds`` compresses and scores a subset (a float recipe screened against the
baseline's same folds); ``--name`` names the model file in each fold folder, so that
another compression setting (``--extra``) keeps its own files. Each compressed fold model
is also run on the 30 AFTDB records (all AF), as ``cv_float.py`` does for the float ones.

Prints per-fold and mean +- std figures and writes them to ``--json``
(default benchmarks/results/cv_compressed.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from folds import afdetect, read_aftdb, run_folds
from provenance import command_line

from afdetect import metrics
from afdetect.atomic import write_json_atomic
from afdetect.compress.accounting import report
from afdetect.data.preprocess import PreprocessConfig
from afdetect.runtime.engine import engine_logits
from afdetect.runtime.format import load_compressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"))
    parser.add_argument("--aftdb", type=Path, default=Path("../shared/data/aftdb"),
                        help="AFTDB records (all AF) each compressed model is also run on")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--folds", type=int, nargs="+",
                        help="compress and score only these folds (default: all k)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", default="compressed.afq",
                        help="compressed model file inside each fold folder")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further `afdetect compress` options, e.g. --sparsity 0.97")
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/cv_compressed.json"))
    args = parser.parse_args()

    def out(f: int) -> Path:
        return args.runs / f"fold{f}" / args.name

    threads = str(max(1, 2 // args.jobs))
    chosen = args.folds if args.folds is not None else list(range(args.k))
    pending = [f for f in chosen if not out(f).is_file()]
    seconds = run_folds(pending, lambda f: afdetect(
        "compress", "--model", str(args.runs / f"fold{f}" / "model.pt"), "--data",
        str(args.data), "--out", str(out(f)), "--splits", str(args.runs / "splits.json"),
        "--fold", str(f), "--threads", threads, *args.extra),
        lambda f: out(f).with_suffix(".log"), args.jobs)

    aftdb = read_aftdb(args.aftdb, PreprocessConfig()) if args.aftdb.is_dir() else []
    rows = []
    for f in chosen:
        model, metadata = load_compressed(out(f))
        m = metadata["metrics_at_export"]
        # sizes as the accounting counts them now (a file's own figures are from its export)
        size = {k: v for k, v in report(model, metadata["parent"]["parameters"]).items()
                if k != "layers"}
        rows.append({"fold": f, "compressed": m["compressed"], "float": m["float_parent"],
                     "size": size, "weight_bits": model.weight_bits, "recipe": metadata["recipe"],
                     "compress_seconds": sum(h["seconds"] for stage in metadata["history"]
                                             .values() for h in stage)})
        if aftdb:
            called = engine_logits(model, aftdb).argmax(axis=1) == metrics.AF
            rows[-1]["aftdb_af_share"] = float(called.mean())
        print(f"fold {f}: CinC {m['compressed']['cinc_score']:.4f} (float "
              f"{m['float_parent']['cinc_score']:.4f}), accuracy "
              f"{m['compressed']['accuracy']:.4f} (float {m['float_parent']['accuracy']:.4f}), "
              f"{size['stored_bytes']} B, {size['compression_ratio']:.1f}x, bits "
              f"{model.weight_bits}")
    summary: dict[str, object] = {
        "protocol": "same 5-fold splits as cv_float.json; each fold's float model compressed "
                    "on its training folds, both scored on the held-out fold (integer "
                    "engine); folds scored: " + ", ".join(map(str, chosen)),
        "command": command_line(),
        "folds": rows, "wall_seconds_this_run": seconds,
    }
    for key in ("cinc_score", "accuracy", "af_sensitivity", "af_specificity"):
        comp = np.array([r["compressed"][key] for r in rows])
        flt = np.array([r["float"][key] for r in rows])
        summary[key] = {"compressed_mean": comp.mean(), "compressed_std": comp.std(),
                        "float_mean": flt.mean(), "float_std": flt.std(),
                        "loss_mean": (flt - comp).mean(), "loss_std": (flt - comp).std()}
        print(f"{key:15s} compressed {comp.mean():.4f} +- {comp.std():.4f}   float "
              f"{flt.mean():.4f} +- {flt.std():.4f}   loss {(flt - comp).mean():+.4f}")
    if aftdb:
        summary["aftdb_af_share"] = float(np.mean([r["aftdb_af_share"] for r in rows]))
        print(f"AFTDB called AF {summary['aftdb_af_share']:.3f} (mean over fold models)")
    for key in ("compression_ratio", "stored_bytes"):
        values = [r["size"][key] for r in rows]
        summary[key] = {"mean": float(np.mean(values)), "min": float(np.min(values)),
                        "max": float(np.max(values))}
    print(f"compression ratio {summary['compression_ratio']}, stored bytes "
          f"{summary['stored_bytes']}")
    write_json_atomic(args.json, summary)


if __name__ == "__main__":
    main()
