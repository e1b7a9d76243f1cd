"""Beat detection against reference beats, scored by WFDB's ``bxb`` (EC57 QRS Se and +P).

Three detectors on the same lead of every record in ``--data``:

- ``scan``: ``afdetect scan DATA --beats qrs`` (the scan's streaming integer detector,
  :data:`afdetect.monitor.beats.SCAN_DETECTOR`), as a user runs it;
- ``strip``: the RR-feature detector the model and the C engine use
  (:func:`afdetect.model.rr.detect_beats`, :data:`~afdetect.monitor.beats.STRIP_DETECTOR`)
  on the same front-end output;
- ``xqrs``: wfdb-python's XQRS (``wfdb.processing.xqrs_detect``), the maintained peer, on
  the physical signal.

Each is written as WFDB beat annotations and compared with the reference beats by ``bxb
-r REC -a atr TEST -f 0 -l L1 L2`` (the whole record, 150-ms match window; bxb skips the
reference's non-beat annotations and ventricular flutter). From bxb's line-format table
(AAMI RP Table 7): true positives are the reference beats detected as any beat (Nn' Vn'
Fn' Nv Vv Fv'), false negatives the missed ones (No' Vo' Fo'), false positives the test
beats without a reference beat (On' Ov'). Pooled figures are gross: sums over records,
as ``sumstats`` gives them.

    python benchmarks/beat_accuracy.py --data DATA/mitdb --wfdb-bin WFDB/bin [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from provenance import command_line
from wfdb import processing

from afdetect.atomic import write_json_atomic
from afdetect.io.records import open_stream
from afdetect.models import DEFAULT_MODEL, load_classifier
from afdetect.monitor.beats import STRIP_DETECTOR, BeatStream
from afdetect.monitor.frontend import IntegerFrontEnd, resample_ratio
from afdetect.monitor.scan import step_model

RESULTS = Path(__file__).parent / "results"
DETECTORS = ("scan", "strip", "xqrs")
CHUNK_S = 150


def wfdb_env(bin_dir: Path) -> dict[str, str]:
    lib = [str(bin_dir.parent / d) for d in ("lib", "lib64")]
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
        [*lib, os.environ.get("LD_LIBRARY_PATH", "")])}


def bxb_counts(bxb: Path, env: dict[str, str], folder: Path, record: str, test: str
               ) -> dict[str, int]:
    """tp, fn, fp of one record from bxb's line-format (Table 7) output."""
    lines = folder / f"{record}.{test}.bxb"
    shutdown = folder / f"{record}.{test}.bxb2"
    subprocess.run([str(bxb), "-r", record, "-a", "atr", test, "-f", "0", "-l", str(lines),
                    str(shutdown)], cwd=folder, env=env, capture_output=True, check=True)
    row = lines.read_text().splitlines()[1].split()
    if row[0] != record:
        raise RuntimeError(f"bxb {record} {test}: unexpected output {row}")
    nn, vn, fn_, on, nv, vv, fv, ov, no, vo, fo = (int(v) for v in row[1:12])
    return {"tp": nn + vn + fn_ + nv + vv + fv, "fn": no + vo + fo, "fp": on + ov}


def rates(c: dict[str, int]) -> dict[str, Any]:
    tp, fn, fp = c["tp"], c["fn"], c["fp"]
    return {**c, "se": round(tp / (tp + fn), 6) if tp + fn else None,
            "ppv": round(tp / (tp + fp), 6) if tp + fp else None}


def strip_beats(record: Path, model_fs: int, input_frac: int, input_bits: int) -> np.ndarray:
    """The strip detector on the scan's front-end output, recording sample indices."""
    stream = open_stream(record)
    front = IntegerFrontEnd(stream.fs, model_fs, input_frac, input_bits)
    beats = BeatStream(*resample_ratio(stream.fs, model_fs), STRIP_DETECTOR)
    for counts in stream.chunks(int(CHUNK_S * stream.fs)):
        beats.push(front.push(counts))
    beats.finish()
    return beats.beats()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder of WFDB records with reference beats RECORD.atr")
    parser.add_argument("--wfdb-bin", type=Path, required=True, help="folder holding bxb")
    parser.add_argument("--json", type=Path, help="results file "
                        "(default benchmarks/results/beat_accuracy.json)")
    args = parser.parse_args()
    data = args.data.resolve()
    bxb = args.wfdb_bin.resolve() / "bxb"
    env = wfdb_env(bxb.parent)
    records = sorted(p.stem for p in data.glob("*.hea") if (data / f"{p.stem}.atr").exists())
    model = step_model(load_classifier(DEFAULT_MODEL))
    per_record: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="beat-accuracy-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "afdetect.cli", "scan", str(data), "--beats",
                        "qrs", "--annotations-dir", str(work), "--json"],
                       capture_output=True, check=True)
        for record in records:
            for ext in ("hea", "atr"):
                (work / f"{record}.{ext}").symlink_to(data / f"{record}.{ext}")
            stream = open_stream(data / f"{record}.hea")
            strip = strip_beats(data / f"{record}.hea", model.fs, model.input_frac,
                                model.input_bits)
            wfdb.wrann(record, "strip", strip, symbol=["N"] * len(strip), fs=stream.fs,
                       write_dir=str(work))
            signal = stream.read(0, stream.n_samples) / stream.counts_per_mv
            xqrs = processing.xqrs_detect(signal, fs=stream.fs, verbose=False)
            wfdb.wrann(record, "xqrs", np.asarray(xqrs, dtype=np.int64),
                       symbol=["N"] * len(xqrs), fs=stream.fs, write_dir=str(work))
            counts = {d: bxb_counts(bxb, env, work, record, d if d != "scan" else "qrs")
                      for d in DETECTORS}
            per_record[record] = {"lead": stream.lead, **{d: rates(c)
                                                          for d, c in counts.items()}}
            print(f"{record} ({stream.lead}): " + "  ".join(
                f"{d} Se {100 * per_record[record][d]['se']:.2f} +P "
                f"{100 * per_record[record][d]['ppv']:.2f}" for d in DETECTORS), flush=True)
    gross = {d: rates({k: sum(r[d][k] for r in per_record.values()) for k in ("tp", "fn", "fp")})
             for d in DETECTORS}
    for d in DETECTORS:
        print(f"gross {d:6s} QRS Se {100 * gross[d]['se']:.2f}%  +P {100 * gross[d]['ppv']:.2f}%"
              f"  ({gross[d]['tp']} TP, {gross[d]['fn']} FN, {gross[d]['fp']} FP)")
    result = {"command": command_line(), "records": len(records), "model": model.name,
              "bxb": "-f 0 (whole record), 150 ms match window", "gross": gross,
              "per_record": per_record}
    write_json_atomic(args.json or RESULTS / "beat_accuracy.json", result, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
