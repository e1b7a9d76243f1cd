"""The atrial check's threshold, chosen on CinC 2017 strips (never on the MIT-BIH
records the monitor is scored on).

The check (``afdetect.monitor.atrial``) calls a window "not AF" when the activity before
its QRS complexes repeats beat after beat. Its price is the AF it overrules. The rule,
fixed before any coherence was computed on these strips: the threshold is the smallest
multiple of 1/256 that at least 98% of the CinC AF strips stay at or below, so that the
check overrules at most 2% of the AF strips. Each strip is read whole, through the
scan's own integer front end and beat detector (as one window); strips with fewer than
``min_beats`` beats are not checked. Reported beside it: the share of normal, other and
noisy strips above the threshold (what the check would call organised).

    python benchmarks/atrial_threshold.py --data DATA/cinc2017 [--json FILE]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from provenance import command_line

from afdetect import CLASSES
from afdetect.atomic import write_json_atomic
from afdetect.data.cinc import index_dataset
from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.atrial import AtrialConfig, beat_stretches, coherence, window_terms
from afdetect.monitor.beats import BeatStream
from afdetect.monitor.frontend import IntegerFrontEnd, resample_ratio
from afdetect.monitor.scan import step_model

RESULTS = Path(__file__).parent / "results"
KEEP_AF = 0.98


def strip_coherence(path: Path, fs_model: int, input_frac: int, input_bits: int,
                    config: AtrialConfig) -> float:
    """Coherence of one whole strip (NaN: too few beats)."""
    stream = open_stream(path.with_suffix(".hea"))
    front = IntegerFrontEnd(stream.fs, fs_model, input_frac, input_bits)
    beats = BeatStream(*resample_ratio(stream.fs, fs_model))
    q = np.concatenate([front.push(c) for c in stream.chunks(stream.n_samples)])
    peaks = np.concatenate([beats.push_model(q), beats.finish_model()])
    peaks = peaks[(peaks >= config.start) & (peaks - config.end <= len(q))]
    if len(peaks) < config.min_beats:
        return math.nan
    return float(coherence(window_terms(beat_stretches(q, peaks, config))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CinC 2017 folder")
    parser.add_argument("--model", default="compressed",
                        help="whose front end reads the strips (default: compressed)")
    parser.add_argument("--json", type=Path,
                        help="results file (default benchmarks/results/atrial_threshold.json)")
    args = parser.parse_args()
    model = step_model(load_classifier(args.model))
    config = AtrialConfig(fs=model.fs)
    values: dict[str, list[float]] = {c: [] for c in CLASSES}
    for record in index_dataset(args.data):
        values[CLASSES[record.label]].append(strip_coherence(
            record.path, model.fs, model.input_frac, model.input_bits, config))
    af = np.array(values["A"])
    checked = af[np.isfinite(af)]
    threshold = math.ceil(float(np.quantile(checked, KEEP_AF)) * 256) / 256
    result = {"command": command_line(), "model": args.model, "config": config.__dict__,
              "rule": f"smallest multiple of 1/256 with at least {KEEP_AF:.0%} of the AF "
                      "strips at or below it", "threshold": threshold, "classes": {}}
    for c, v in values.items():
        a = np.array(v)
        ok = a[np.isfinite(a)]
        result["classes"][c] = {
            "strips": len(a), "checked": len(ok),
            "quantiles_5_25_50_75_95": np.quantile(ok, [.05, .25, .5, .75, .95]).round(4).tolist(),
            "share_above_threshold": float((ok > threshold).mean())}
        print(f"{c}: {len(a)} strips, {len(ok)} checked, above {threshold:.4f}: "
              f"{(ok > threshold).mean():.3f}; median {np.median(ok):.3f}", flush=True)
    print(f"threshold {threshold:.4f} ({threshold * 256:.0f}/256)")
    write_json_atomic(args.json or RESULTS / "atrial_threshold.json", result, indent=2)


if __name__ == "__main__":
    main()
