"""AF monitoring accuracy on long real recordings (MIT-BIH development records): window-
level AF sensitivity / specificity / positive predictivity and the EC57 episode and
duration statistics, for the compressed and the float model (or ``--models``), with the
episode rule (threshold, minimum AF episode, minimum gap) chosen by nested cross-validation.

Nested protocol: leave one subject out (201 and 202 are one subject). For each held-out
subject the rule is chosen on the other records by the mean of the four gross EC57
statistics, then applied to the held-out one; the pooled held-out records give the
"nested" figures. The "default rule" rows use afdetect's shipped EpisodeRule (chosen once
on all 32 records by the same criterion, so those rows have seen the data they score).

Peer, side by side on the same records and windows: the RR-interval detector of
Petrenas et al. 2015 (``rr_peer.py``, published parameters), on the reference beats of
the ``.atr`` files (its best case) and on beats found by wfdb's XQRS detector on lead 0.
A window counts as detected AF when at least half of it lies in detected AF.

    python benchmarks/monitor_accuracy.py --data ../shared/data/mitdb [--models NAME ...]
        [--aftdb ../shared/data/aftdb] [--json FILE]
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
from rr_peer import BEAT_SYMBOLS, af_intervals_from_beats
from wfdb import processing

from afdetect.atomic import write_json_atomic
from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.ec57 import (
    STATISTICS,
    EpisodeCounts,
    Mark,
    compare_record,
    gross_statistics,
    summarise_records,
)
from afdetect.monitor.episodes import EpisodeRule
from afdetect.monitor.evaluate import (
    ScoredScan,
    af_confusion,
    episode_report,
    record_counts,
    scan_annotated,
    window_share,
    window_truth,
)
from afdetect.monitor.scan import ScanConfig, StepModel, relabel, scan_stream, step_model

RESULTS = Path(__file__).parent / "results"
GRID = [EpisodeRule(t, a, g) for t, a, g in itertools.product(
    (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), (0.0, 30.0, 60.0), (0.0, 30.0, 60.0))]
"""The rules searched; each with the shipped atrial check (its threshold is chosen on
CinC strips, ``atrial_threshold.py``) and, for the "before" rows, without it."""
ATRIAL = {"atrial check": EpisodeRule().max_atrial_coherence, "no atrial check": None}
SAME_SUBJECT = {"202": "201"}
KEYS = STATISTICS[:4]  # epicmp's four; the 30-s sensitivity is reported beside them


def rule_counts(scored: list[ScoredScan], grid: list[EpisodeRule]
                ) -> list[dict[str, EpisodeCounts]]:
    """EC57 counts of every record under every rule of the grid (computed once)."""
    return [{s.scan.record: record_counts(relabeled(s, rule)) for s in scored}
            for rule in grid]


def relabeled(s: ScoredScan, rule: EpisodeRule) -> ScoredScan:
    return ScoredScan(relabel(s.scan, rule), s.reference, s.marks)


def best_rule(counts: list[dict[str, EpisodeCounts]], records: list[str]) -> int:
    """Index of the grid rule with the best mean of the four gross statistics."""
    def score(i: int) -> float:
        stats = gross_statistics([counts[i][r] for r in records])
        return float(np.mean([stats[k] or 0.0 for k in KEYS]))
    return max(range(len(counts)), key=score)


def interval_marks(intervals: list[tuple[float, float]], fs: float) -> list[Mark]:
    """Rhythm marks of AF intervals in seconds: (AFIB at each start, (N at each end."""
    return [m for a, b in intervals for m in ((round(a * fs), "(AFIB"), (round(b * fs), "(N"))]


def nested(scored: list[ScoredScan], counts: list[dict[str, EpisodeCounts]],
           grid: list[EpisodeRule]) -> tuple[dict, dict[str, dict]]:
    subjects: dict[str, list[ScoredScan]] = {}
    for s in scored:
        subjects.setdefault(SAME_SUBJECT.get(s.scan.record, s.scan.record), []).append(s)
    held_out, chosen = [], {}
    for subject, held in subjects.items():
        rest = [s.scan.record for s in scored if s not in held]
        rule = grid[best_rule(counts, rest)]
        chosen[subject] = rule.to_dict()
        held_out += [relabeled(s, rule) for s in held]
    return episode_report(held_out), chosen


def peer_report(scored: list[ScoredScan], data: Path, beats: str) -> dict:
    """EC57 and window figures of the RR peer on ``beats`` ("reference" or "xqrs")."""
    counts, truth, predicted = {}, [], []
    for s in scored:
        record = str(data / s.scan.record)
        if beats == "reference":
            ann = wfdb.rdann(record, "atr")
            keep = np.array([sym in BEAT_SYMBOLS for sym in ann.symbol])
            beat_s = ann.sample[keep] / s.scan.fs
        else:
            signal = wfdb.rdrecord(record, channels=[0]).p_signal[:, 0]
            beat_s = processing.xqrs_detect(signal, fs=s.scan.fs, verbose=False) / s.scan.fs
        detected = af_intervals_from_beats(beat_s)
        counts[s.scan.record] = compare_record(s.marks, interval_marks(detected, s.scan.fs),
                                               s.scan.n_samples, s.scan.fs)
        truth.append(window_truth(s.scan, s.reference))
        predicted.append(window_share(s.scan, detected) >= 0.5)
    report = summarise_records(counts)
    return {"gross": report["gross"], "average": report["average"],
            "burden_mae": report["burden_mae"],
            "windows": af_confusion(np.concatenate(truth), np.concatenate(predicted))}


def false_af_windows(scored: list[ScoredScan]) -> dict[str, dict]:
    """Per record with false-AF windows: their count and the reference rhythms they
    overlap (how many false windows touch each)."""
    out = {}
    for s in scored:
        false = ~window_truth(s.scan, s.reference) & (s.scan.window_labels == 1)
        if not false.any():
            continue
        rhythms: dict[str, int] = {}
        for start in s.scan.window_starts[false]:
            a, b = start * s.scan.step_s, (start + s.scan.window_steps) * s.scan.step_s
            for r in {r.rhythm for r in s.reference if r.start_s < b and r.end_s > a}:
                rhythms[r] = rhythms.get(r, 0) + 1
        out[s.scan.record] = {"windows": int(false.sum()), "overlapping_rhythms": rhythms}
    return out


def aftdb_report(model: StepModel, folder: Path, config: ScanConfig) -> dict:
    """What the atrial check costs on AF itself: each AFTDB record (1 min, all AF) scanned,
    its AF burden with and without the check and the share of windows it overrules."""
    with_check, without, organised = [], [], []
    for header in sorted(folder.glob("*.hea")):
        scan = scan_stream(model, open_stream(header), config)
        with_check.append(scan.af_burden)
        without.append(relabel(scan, replace(scan.rule, max_atrial_coherence=None)).af_burden)
        organised.append(float(np.mean(scan.window_labels != scan.probabilities.argmax(axis=1))))
    return {"records": len(with_check),
            "mean_af_burden": float(np.mean(with_check)),
            "mean_af_burden_without_check": float(np.mean(without)),
            "records_called_af": int(sum(b >= 0.5 for b in with_check)),
            "records_called_af_without_check": int(sum(b >= 0.5 for b in without)),
            "mean_share_of_windows_relabelled": float(np.mean(organised))}


def summary(report: dict) -> dict:
    w = report["windows"]
    return {"gross": report["gross"], "average": report["average"],
            "burden_mae": report["burden_mae"],
            "windows": {k: w[k] for k in ("n_windows", "sensitivity", "specificity", "ppv",
                                          "tp", "fn", "fp", "tn")},
            "predicted_by_truth": w["predicted_by_truth"],
            "af_records": {n: {k: r[k] for k in ("reference_burden", "detected_burden",
                                                 "episode_sensitivity", "duration_sensitivity",
                                                 "duration_ppv")}
                           for n, r in report["records"].items()
                           if r["ref_duration"] or r["det_af"]},
            "af_free_records_over_5pct": sorted(
                n for n, r in report["records"].items()
                if not r["ref_duration"] and (r["detected_burden"] or 0.0) > 0.05)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--models", nargs="+", default=["compressed", "float"],
                        help="built-in model names or model files (default: compressed float)")
    parser.add_argument("--json", type=Path,
                        help="results file (default benchmarks/results/monitor_accuracy.json)")
    parser.add_argument("--aftdb", type=Path,
                        help="AF Termination Challenge folder: the atrial check's cost on AF")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ScanConfig()
    out = args.json or RESULTS / "monitor_accuracy.json"
    result: dict = {"command": command_line(),
                    "window_s": config.window_s, "hop_s": config.hop_s,
                    "default_rule": config.rule.to_dict(), "grid_size": len(GRID)}
    for name in args.models:
        model = step_model(load_classifier(name))
        scanned, failures = scan_annotated(model, args.data, config, progress=True)
        assert not failures, failures
        if args.aftdb:
            r = result[f"{name}, AFTDB"] = aftdb_report(model, args.aftdb, config)
            print(f"{name:10s} AFTDB: {r['records_called_af']} of {r['records']} records AF "
                  f"({r['records_called_af_without_check']} without the check), mean burden "
                  f"{r['mean_af_burden']:.3f} ({r['mean_af_burden_without_check']:.3f}), "
                  f"windows relabelled {r['mean_share_of_windows_relabelled']:.3f}", flush=True)
        for variant, atrial in ATRIAL.items():
            default = replace(config.rule, max_atrial_coherence=atrial)
            grid = [replace(rule, max_atrial_coherence=atrial) for rule in GRID]
            scored = [relabeled(s, default) for s in scanned]
            counts = rule_counts(scored, grid)
            nested_report, chosen = nested(scored, counts, grid)
            key = name if atrial is not None else f"{name}, {variant}"
            result[key] = {
                "records": len(scored), "atrial_check": atrial,
                "default_rule": summary(episode_report(scored)),
                "nested": summary(nested_report),
                "rule_chosen_on_all": grid[best_rule(counts, [s.scan.record for s in scored])
                                           ].to_dict(),
                "rules_chosen_per_held_out_subject": chosen,
                "false_af_windows": false_af_windows(scored),
            }
            for label in ("default_rule", "nested"):
                r = result[key][label]
                print(f"{name:10s} {variant:15s} {label:12s} window Se "
                      f"{r['windows']['sensitivity']:.3f} Sp {r['windows']['specificity']:.3f}"
                      f" +P {r['windows']['ppv']:.3f} | "
                      + " ".join(f"{k} {r['gross'][k]:.3f}" for k in STATISTICS)
                      + f" | burden MAE {r['burden_mae']:.4f} | AF-free over 5%: "
                      + (",".join(r["af_free_records_over_5pct"]) or "none"), flush=True)
        scored = scanned
        if name == "compressed":
            for beats in ("reference", "xqrs"):
                r = result[f"petrenas_2015_{beats}_beats"] = peer_report(scored, args.data,
                                                                         beats)
                print(f"{'RR peer':10s} {beats + ' beats':12s} window Se "
                      f"{r['windows']['sensitivity']:.3f} Sp {r['windows']['specificity']:.3f}"
                      f" +P {r['windows']['ppv']:.3f} | "
                      + " ".join(f"{k} {r['gross'][k]:.3f}" for k in STATISTICS)
                      + f" | burden MAE {r['burden_mae']:.4f}", flush=True)
    write_json_atomic(out, result, indent=2)


if __name__ == "__main__":
    main()
