"""Build a shipped compressed model and its metrics file: one command, fixed seeds.

    python benchmarks/ship_compressed.py --data ../shared/data/cinc2017
        [--name compressed-4kb|compressed-rr]

``compressed`` (the default model): compresses the shipped ``float`` model on every record
of ``--data`` with ``afdetect compress`` and the default recipe. ``compressed-4kb``: first
trains its own 4x smaller float parent on every record (``afdetect train --channels
8,8,16,16,32,32,32,32``, not shipped), then compresses it to 3.9 KB. ``compressed-rr``:
first trains a float parent with RR features (``afdetect train --rr``, not shipped), then
compresses it with the default recipe. Stages are resumable in ``runs/NAME``. The file is
copied to ``src/afdetect/pretrained/`` and a ``.metrics.json`` written beside it: the
commands, run times, the size figures and the cross-validated comparison with the float
parents from the recipe's ``benchmarks/cv_compressed.py`` results file (run that for
those; ``compressed-rr`` has none yet).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from folds import afdetect as afdetect_command

from afdetect.atomic import write_json_atomic
from afdetect.model import load_float_model
from afdetect.models import BUILTIN
from afdetect.runtime.format import load_compressed

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "afdetect" / "pretrained"


@dataclass(frozen=True)
class Recipe:
    """How a built-in compressed model is made.

    Attributes:
        parent_options: ``afdetect train`` options of a float parent trained for it; None:
            the shipped ``float``.
        compress_options: ``afdetect compress`` options beyond the defaults.
        cv: the cross-validation results of the same recipe.
    """

    parent_options: tuple[str, ...] | None
    compress_options: tuple[str, ...]
    cv: Path


RECIPES = {
    "compressed": Recipe(None, (), Path("benchmarks/results/cv_compressed.json")),
    "compressed-4kb": Recipe(("--channels", "8,8,16,16,32,32,32,32"),
                             ("--sparsity", "0.74", "--size-budget", "3900",
                              "--extra-bits", "2"),
                             Path("benchmarks/results/cv_compressed_small_4kb_cv.json")),
    "compressed-rr": Recipe(("--rr",), (), Path("benchmarks/results/cv_compressed_rr.json")),
}


def afdetect(*args: str) -> str:
    """Run an ``afdetect`` command; return it as a user would type it."""
    subprocess.run(afdetect_command(*args), check=True)
    return "afdetect " + " ".join(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--name", choices=sorted(RECIPES), default="compressed")
    parser.add_argument("--run", type=Path, help="stage folder (default runs/NAME)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    recipe = RECIPES[args.name]
    run = args.run or Path("runs") / args.name
    threads = str(args.threads)

    metrics: dict = {"model": args.name,
                     "reproduce": f"python benchmarks/ship_compressed.py --data {args.data} "
                                  f"--name {args.name} --threads {threads}"}
    parent = "float"
    if recipe.parent_options is not None:
        parent = str(run / "parent" / "model.pt")
        metrics["parent_train_command"] = afdetect(
            "train", "--data", str(args.data), "--out", str(run / "parent"),
            *recipe.parent_options, "--threads", threads, "--resume")
        float_model = load_float_model(parent)
        metrics["parent_parameters"] = sum(p.numel() for p in float_model.network.parameters())
        metrics["parent_train_seconds"] = round(
            sum(h["seconds"] for h in float_model.metadata["history"]), 1)
    out = run / BUILTIN[args.name]
    metrics["compress_command"] = afdetect(
        "compress", "--model", parent, "--data", str(args.data), "--out", str(out),
        "--work", str(run / "work"), *recipe.compress_options, "--threads", threads)
    _, metadata = load_compressed(out)
    shutil.copyfile(out, PRETRAINED / BUILTIN[args.name])
    cv = json.loads(recipe.cv.read_text()) if recipe.cv.is_file() else None
    if cv:
        cv.pop("folds", None)
    metrics.update({
        "recipe": metadata["recipe"],
        "size": metadata["size"],
        "n_train_records": metadata["metrics_at_export"]["records"],
        # in-sample: every record trained the model; the held-out figures are below
        "metrics_at_export_in_sample": metadata["metrics_at_export"],
        # sum of the stages' epoch times: stable across resumed invocations
        "compress_seconds": round(sum(h["seconds"] for stage in metadata["history"].values()
                                      for h in stage), 1),
        "machine": f"{platform.machine()}, {threads} torch thread(s) of "
                   f"{os.cpu_count()} cores, torch {torch.__version__}",
        "cross_validation": cv,
    })
    name = Path(BUILTIN[args.name]).with_suffix(".metrics.json").name
    write_json_atomic(PRETRAINED / name, metrics)
    print(json.dumps({k: v for k, v in metrics.items()
                      if k not in ("cross_validation", "metrics_at_export_in_sample")},
                     indent=1))


if __name__ == "__main__":
    main()
