"""Does a pause make the monitor call AF? Sinus pauses spliced into sinus-rhythm records.

The development records hold almost no pauses (2 of 32 records have an RR interval over
2 s), while a record of sinus bradycardia with long pauses was reported 52% AF on unseen
data. This probe makes pauses out of the development records themselves: in each record
whose reference rhythm is sinus throughout (and has no more than a few ectopic beats),
``K`` pauses per minute are inserted, each ``D`` seconds (1.5-3.0 s, uniform) of the
record's own isoelectric line (the median of the 200 ms before the P wave, plus the
recorded noise of that stretch, repeated), placed after the T wave of a random beat, so
that the next P wave and QRS follow the pause as in sinus arrest. A second probe makes
sinus bradycardia with an irregular rate: after EVERY beat the isoelectric line is
lengthened by U(0, X) s (X = 0.25, 0.5, 1.0), so that the RR intervals are irregular while
each QRS keeps its P wave. Each model scans every
probed record with the shipped episode rule; reported are the AF burden and the share of
windows called AF (after the atrial check), per pause rate, with and without the atrial
check, and the mean P(AF) of the windows that hold a
pause against those that hold none.

    python benchmarks/pause_probe.py --data DATA/mitdb [--models ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import wfdb
from provenance import command_line

from afdetect.api import load
from afdetect.atomic import write_json_atomic
from afdetect.monitor.scan import relabel

RESULTS = Path(__file__).parent / "results"
RATES = (0, 1, 2, 4, 8)           # pauses per minute
SPREADS = (0.25, 0.5, 1.0)         # the most each TP segment is lengthened by, in s
SINUS_ONLY_MAX_ECTOPY = 10         # ectopic beats a "sinus throughout" record may hold
ECTOPIC = set("AaJSVFEe")


def sinus_records(data: Path) -> list[str]:
    """Records whose only rhythm is (N and that hold few ectopic beats."""
    names = []
    for header in sorted(data.glob("*.hea")):
        ann = wfdb.rdann(str(header.with_suffix("")), "atr")
        rhythms = {(a or "").strip("\x00 ") for a, s in zip(ann.aux_note, ann.symbol,
                                                            strict=True) if s == "+"}
        ectopic = sum(s in ECTOPIC for s in ann.symbol)
        if rhythms == {"(N"} and ectopic <= SINUS_ONLY_MAX_ECTOPY:
            names.append(header.stem)
    return names


def with_pauses(signal: np.ndarray, beats: np.ndarray, fs: float, per_minute: float,
                rng: np.random.Generator, spread_s: float | None = None
                ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``signal`` (mV) with pauses inserted; returns it and the pauses (start_s, end_s) in
    the new time base. With ``spread_s``, every beat is followed by a pause of U(0,
    spread_s) s instead of ``per_minute`` pauses of 1.5-3 s."""
    candidates = beats[(beats > 2 * fs) & (beats < len(signal) - 2 * fs)]
    if spread_s is not None:
        chosen = candidates[:-1]
    else:
        n_pauses = round(per_minute * len(signal) / fs / 60)
        chosen = np.sort(rng.choice(candidates, size=min(n_pauses, len(candidates)),
                                    replace=False)) if n_pauses else np.array([], dtype=int)
    pieces, pauses, cursor, shift = [], [], 0, 0
    for beat in chosen:
        nxt = beats[np.searchsorted(beats, beat, side="right")] if beat < beats[-1] else None
        if nxt is None:
            continue
        cut = int(beat + 0.45 * (nxt - beat))       # after T, before the next P wave
        iso = signal[max(0, int(nxt - 0.35 * fs)):int(nxt - 0.15 * fs)]
        length = int(rng.uniform(0.0, spread_s) * fs) if spread_s else int(
            rng.uniform(1.5, 3.0) * fs)
        if length < 1 or len(iso) < 2:
            continue
        filler = np.median(iso) + np.resize(iso - np.median(iso), length)
        pieces += [signal[cursor:cut], filler]
        pauses.append(((cut + shift) / fs, (cut + shift + length) / fs))
        shift += length
        cursor = cut
    pieces.append(signal[cursor:])
    return np.concatenate(pieces), pauses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="MIT-BIH style folder")
    parser.add_argument("--models", nargs="+", default=["compressed", "compressed-4kb",
                                                        "compressed-rr", "float"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path,
                        help="results file (default benchmarks/results/pause_probe.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = sinus_records(args.data)
    result: dict = {"command": command_line(), "records": records, "rates_per_min": RATES,
                    "spreads_s": SPREADS, "models": {}}
    for name in args.models:
        model = load(name)
        rows = {}
        variants: list[int | str] = [*RATES, *(f"spread {x}" for x in SPREADS)]
        for rate, check in itertools.product(variants, (True, False)):
            rng = np.random.default_rng(args.seed)
            burden, af_windows, n_windows, p_pause, p_clean = [], 0, 0, [], []
            for record in records:
                path = str(args.data / record)
                rec = wfdb.rdrecord(path, channels=[0])
                fs = float(rec.fs)
                ann = wfdb.rdann(path, "atr")
                beats = ann.sample[np.isin(ann.symbol, list("NLR"))]
                spread = float(rate.split()[1]) if isinstance(rate, str) else None
                signal, pauses = with_pauses(rec.p_signal[:, 0], beats, fs,
                                             0 if spread else float(rate), rng, spread)
                scan = model.scan(signal, fs=fs)
                if not check:  # the "before" rows: the network's windows unchecked
                    scan = relabel(scan, replace(scan.rule, max_atrial_coherence=None))
                burden.append(scan.af_burden)
                called = scan.window_labels == 1
                af_windows += int(called.sum())
                n_windows += len(called)
                starts = scan.window_starts * scan.step_s
                holds = np.array([any(a < s + scan.window_s and b > s for a, b in pauses)
                                  for s in starts])
                p_pause += scan.probabilities[holds, 1].tolist()
                p_clean += scan.probabilities[~holds, 1].tolist()
            rows[f"{rate}{'' if check else ', no atrial check'}"] = {
                "mean_af_burden": float(np.mean(burden)), "max_af_burden": float(max(burden)),
                "records_over_5pct": int(sum(b > 0.05 for b in burden)),
                "windows_called_af": af_windows / n_windows,
                "mean_p_af_windows_with_pause": float(np.mean(p_pause)) if p_pause else None,
                "mean_p_af_windows_without": float(np.mean(p_clean)) if p_clean else None}
            r = rows[f"{rate}{'' if check else ', no atrial check'}"]
            unit = ("s" if spread else "pauses/min") + ("" if check else " (no atrial check)")
            print(f"{name:15s} {rate} {unit}: burden mean {r['mean_af_burden']:.3f} max "
                  f"{r['max_af_burden']:.3f}, {r['records_over_5pct']} of {len(records)} "
                  f"records over 5%, windows called AF {r['windows_called_af']:.3f}, "
                  f"P(AF) with pause {r['mean_p_af_windows_with_pause'] or 0:.3f} / "
                  f"without {r['mean_p_af_windows_without'] or 0:.3f}", flush=True)
        result["models"][name] = rows
    write_json_atomic(args.json or RESULTS / "pause_probe.json", result, indent=2)


if __name__ == "__main__":
    main()
