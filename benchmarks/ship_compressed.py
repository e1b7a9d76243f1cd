"""Build the shipped ``compressed`` model and its metrics file: one command, fixed seeds.

    python benchmarks/ship_compressed.py --data ../shared/data/cinc2017

Compresses the shipped ``float`` model on every record of ``--data`` with
``afdetect compress`` and the default recipe (stages resumable in ``runs/compressed``),
copies the file to ``src/afdetect/pretrained/compressed.afq`` and writes
``compressed.metrics.json`` beside it: the command, the recipe's run time, the size figures
and the cross-validated comparison with the float parents from
``benchmarks/results/cv_compressed.json`` (run ``benchmarks/cv_compressed.py`` for those).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from afdetect.atomic import write_text_atomic
from afdetect.deploy.format import load_compressed

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "afdetect" / "pretrained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--run", type=Path, default=Path("runs/compressed"))
    parser.add_argument("--cv", type=Path,
                        default=Path("benchmarks/results/cv_compressed.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    out = args.run / "compressed.afq"
    compress = ["compress", "--model", "float", "--data", str(args.data), "--out", str(out),
                "--work", str(args.run / "work"), "--threads", str(args.threads)]
    subprocess.run([sys.executable, "-m", "afdetect.cli", *compress], check=True)
    _, metadata = load_compressed(out)
    shutil.copyfile(out, PRETRAINED / "compressed.afq")
    cv = json.loads(args.cv.read_text()) if args.cv.is_file() else None
    if cv:
        cv.pop("folds", None)
    metrics = {
        "model": "compressed",
        "reproduce": "python benchmarks/ship_compressed.py --data ../shared/data/cinc2017 "
                     f"--threads {args.threads}",
        "compress_command": "afdetect " + " ".join(compress),
        "recipe": metadata["recipe"],
        "size": metadata["size"],
        "n_train_records": metadata["metrics_at_export"]["records"],
        # in-sample: every record trained the model; the held-out figures are below
        "metrics_at_export_in_sample": metadata["metrics_at_export"],
        # sum of the stages' epoch times: stable across resumed invocations
        "compress_seconds": round(sum(h["seconds"] for stage in metadata["history"].values()
                                      for h in stage), 1),
        "machine": f"{platform.machine()}, {args.threads} torch thread(s) of "
                   f"{os.cpu_count()} cores, torch {torch.__version__}",
        "cross_validation": cv,
    }
    write_text_atomic(PRETRAINED / "compressed.metrics.json", json.dumps(metrics, indent=1))
    print(json.dumps({k: v for k, v in metrics.items()
                      if k not in ("cross_validation", "metrics_at_export_in_sample")},
                     indent=1))


if __name__ == "__main__":
    main()
