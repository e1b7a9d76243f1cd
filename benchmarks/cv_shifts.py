"""Test-time shift averaging: one model, several phases of the same recording, nested-free.

The CNN decimates by 512 samples (a stride-2 first convolution and eight 2:1 max pools),
so it is not shift invariant: the same recording started 128 samples later gives
different logits. Averaging the logits over phases is an ensemble that costs no byte,
only K times the operations, and needs no choice made on any data, so nothing is nested.

Declared before any fold was scored (the commit that adds this script):

- phases: the preprocessed recording with its first ``s`` samples dropped, ``s`` in
  {0, 256} for K = 2 and {0, 128, 256, 384} for K = 4 (spread evenly over one 512-sample
  period of the network); the float-scale logits are averaged, then the argmax is taken;
- rows: each model alone (K = 1, which reproduces its earlier CV figure), K = 2, K = 4;
- the rule: K = 4 counts as a gain only if its 5-fold CinC mean is at least 0.006 above
  K = 1 (the seed-to-seed spread of the 5-fold mean), with the AFTDB share called AF and
  the MIT-BIH window AF sensitivity and specificity each no more than 0.01 lower.

Models: each fold's float model (``RUNS/foldK/model.pt``) and any ``--model NAME=PATTERN``
(``{fold}`` standing for the fold number). Compressed models are run with the QAT
integer simulation (``afdetect.compress.integer.simulate_logits``), which equals the
integer engine's logits on every CinC record (``benchmarks/equivalence.py``) and is
about five times faster. Per row: CinC score (mean +- std over folds, per-fold
figures), AF Se / Sp, the AFTDB share called AF and the MIT-BIH 30-s window AF Se / Sp
of ``peers.py`` (means over the fold models).

    python benchmarks/cv_shifts.py --data ../shared/data/cinc2017 [--runs runs/cv]
        [--model "NAME=runs/small/fold{fold}/compressed_4kb.afq"]

Logits per phase are cached beside each model (``MODEL.logits_TAG_shiftS.npy``; phase 0
reuses ``MODEL.logits_TAG.npy`` of the other benchmarks). Writes ``--json`` (default
benchmarks/results/cv_shifts.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from folds import cached_logits
from peers import Outcome, add_data_arguments, describe, read_data
from provenance import command_line
from tqdm import tqdm

from afdetect.atomic import write_json_atomic
from afdetect.compress.integer import IntegerModel, simulate_logits
from afdetect.models import softmax
from afdetect.runtime.format import load_compressed

PHASES = {1: (0,), 2: (0, 256), 4: (0, 128, 256, 384)}


def simulated_logits(model: IntegerModel, signals: list[np.ndarray]) -> np.ndarray:
    """Float-scale logits (n_signals, n_classes) of a compressed model, bit-exact with the
    integer engine's."""
    return np.stack([simulate_logits(model, s) * model.logit_scale(model.output_steps(len(s)))
                     for s in tqdm(signals, desc="integer simulation", unit="rec",
                                   leave=False)])


def phase_logits(model: Path, signals: list[np.ndarray], tag: str, shift: int) -> np.ndarray:
    """Logits of ``model`` on ``signals`` with the first ``shift`` samples dropped, cached
    beside the model."""
    suffix = f"_shift{shift}" if shift else ""
    cache = model.with_name(f"{model.name}.logits_{tag}{suffix}.npy")
    shifted = [s[shift:] for s in signals]
    if cache.is_file() or model.suffix != ".afq":
        return cached_logits(cache, model, shifted)
    logits = simulated_logits(load_compressed(model)[0], shifted)
    np.save(cache, logits)
    return logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"),
                        help="the fold models (foldK/model.pt) and splits.json")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATTERN",
                        help="more fold models, {fold} standing for the fold number")
    parser.add_argument("--no-float", action="store_true",
                        help="leave out the float row (RUNS/foldK/model.pt)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cv_shifts.json"))
    args = parser.parse_args()

    dataset, fold_of, outside = read_data(args)
    k = int(fold_of.max()) + 1
    models = {} if args.no_float else {"float (ours)": str(args.runs / "fold{fold}" / "model.pt")}
    models.update(dict(m.split("=", 1) for m in args.model))

    table = []
    for name, pattern in models.items():
        per_phase: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
        for shift in PHASES[max(PHASES)]:
            logits = np.zeros((len(dataset), 4))
            on_outside = []
            for f in range(k):
                model = Path(pattern.replace("{fold}", str(f)))
                held_out = np.flatnonzero(fold_of == f)
                logits[held_out] = phase_logits(model, dataset.subset(held_out).signals,
                                                f"fold{f}", shift)
                on_outside.append(phase_logits(model, outside.signals, "outside", shift))
            per_phase[shift] = logits, on_outside
            print(f"{name}: phase {shift} done", flush=True)
        for n_phases, shifts in PHASES.items():
            mean = np.mean([per_phase[s][0] for s in shifts], axis=0)
            mean_outside = [np.mean([per_phase[s][1][f] for s in shifts], axis=0)
                            for f in range(k)]
            outcome = Outcome(softmax(mean), [softmax(p) for p in mean_outside], [0] * k,
                              float("nan"))
            row = outcome.row(f"{name}, {n_phases} phase(s)", dataset.labels, fold_of, k,
                              outside, costs=False)
            row.update(model=name, phases=n_phases, shifts=list(shifts))
            table.append(row)
            print(describe(row), flush=True)
    result = {
        "protocol": f"{k}-fold CV, splits {args.runs / 'splits.json'}; each fold model scores "
                    "its held-out fold with the logits averaged over phases (the first s "
                    "samples dropped); nothing is chosen on data",
        "rule": "K = 4 is a gain only at +0.006 CinC over K = 1, with the AFTDB share and "
                "the MIT-BIH window AF Se / Sp no more than 0.01 lower",
        "command": command_line(),
        "rows": table,
    }
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
