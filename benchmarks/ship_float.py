"""Build the shipped ``float`` model and its metrics file: one command, fixed seed.

    python benchmarks/ship_float.py --data ../shared/data/cinc2017

Trains on every record of ``--data`` with ``afdetect train`` (two threads, resumable via
``runs/float``), times it, copies the model to ``src/afdetect/pretrained/float.pt`` and
writes ``float.metrics.json`` beside it: the command, the training time, the record count
and the cross-validated figures from ``benchmarks/results/cv_float.json``
(run ``benchmarks/cv_float.py`` for those).
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

from afdetect.atomic import write_json_atomic
from afdetect.model import load_float_model

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "afdetect" / "pretrained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--run", type=Path, default=Path("runs/float"))
    parser.add_argument("--cv", type=Path, default=Path("benchmarks/results/cv_float.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    command = [sys.executable, "-m", "afdetect.cli", "train", "--data", str(args.data),
               "--out", str(args.run), "--threads", str(args.threads), "--resume"]
    subprocess.run(command, check=True)
    model = load_float_model(args.run / "model.pt")
    history = model.metadata["history"]
    shutil.copyfile(args.run / "model.pt", PRETRAINED / "float.pt")
    n_params = sum(p.numel() for p in model.network.parameters())
    metrics = {
        "model": "float",
        "reproduce": "python benchmarks/ship_float.py --data ../shared/data/cinc2017 "
                     f"--threads {args.threads}",
        "train_command": "afdetect train --data ../shared/data/cinc2017 --out runs/float "
                         f"--threads {args.threads}",
        "seed": model.metadata["train"]["fit"]["seed"],
        "n_train_records": model.metadata["n_train_records"],
        "parameters": n_params,
        # sum of the epochs' times: stable across resumed invocations
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "machine": f"{platform.machine()}, {args.threads} torch thread(s) of "
                   f"{os.cpu_count()} cores, torch {torch.__version__}",
        "cross_validation": json.loads(args.cv.read_text()) if args.cv.is_file() else None,
    }
    if metrics["cross_validation"]:
        metrics["cross_validation"].pop("folds", None)
    write_json_atomic(PRETRAINED / "float.metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "cross_validation"}, indent=1))


if __name__ == "__main__":
    main()
