"""Bit-exactness on every record: NumPy shift-add engine vs the QAT integer simulation,
and the compiled C engine vs the NumPy engine.

    python benchmarks/equivalence.py --data ../shared/data/cinc2017 [--model compressed]

Writes benchmarks/results/equivalence.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from provenance import command_line
from tqdm import tqdm

from afdetect.atomic import write_json_atomic
from afdetect.compress.integer import simulate_logits
from afdetect.data.preprocess import PreprocessConfig
from afdetect.data.store import load_dataset
from afdetect.deploy.export import build, c_compiler, export, run_demo
from afdetect.models import resolve_model
from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import load_compressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--model", default="compressed")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/equivalence.json"))
    args = parser.parse_args()
    model, metadata = load_compressed(resolve_model(args.model)[1])
    dataset = load_dataset(args.data, PreprocessConfig(**metadata["preprocess"]))
    engine = IntegerEngine(model)
    same_sim = same_c = 0
    differing: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        binary = None
        if c_compiler():
            export(model, metadata, tmp)
            binary = build(tmp)
        for name, signal in tqdm(zip(dataset.names, dataset.signals, strict=True),
                                 total=len(dataset), desc="records", unit="rec"):
            logits = engine.logits(signal)
            ok_sim = bool(np.array_equal(logits, simulate_logits(model, signal)))
            ok_c = binary is not None and bool(np.array_equal(
                logits, run_demo(binary, model.quantise_input(signal))[1]))
            same_sim += ok_sim
            same_c += ok_c
            if not (ok_sim and ok_c):
                differing.append(str(name))
    result = {"records": len(dataset), "numpy_vs_qat_simulation_identical": same_sim,
              "c_vs_numpy_identical": same_c if binary else None, "differing": differing,
              "model": args.model, "command": command_line()}
    print(json.dumps({k: v for k, v in result.items() if k != "differing"}, indent=1))
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
