"""Peak memory of ``afdetect scan`` against recording length: 1 h, 24 h, 72 h, 14 days.

Long single-lead records are stitched from the MIT-BIH development records (lead 0, 360 Hz,
repeated in order) and written as WFDB format 212 (the MIT-BIH's own, a common Holter
format) a record at a time, so even the 14-day file (435 M samples, 653 MB) is never held
in memory. Each length is scanned by ``afdetect scan``, with and without ``--json``, in a
fresh process; its peak resident set (``ru_maxrss`` of the child) and wall time are
reported. Scan memory should not grow with the recording: the 14-day peak within 100 MB of
the 1-h one.

The records are kept in ``--cache`` (reused when already there with the right length).
Prints and writes ``benchmarks/results/scan_memory.json``.

    python benchmarks/scan_memory.py --data ../shared/data/mitdb
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb
from provenance import command_line

from afdetect.atomic import write_json_atomic

RESULTS = Path(__file__).parent / "results"
LENGTHS_H = {"1 h": 1.0, "24 h": 24.0, "72 h": 72.0, "14 days": 14 * 24.0}
# the episode table (the default output) and --json (every window, 8,640 a day)
OUTPUTS = {"table": [], "json": ["--json"]}


def pack_212(d: np.ndarray) -> bytes:
    """One lead of 12-bit two's-complement samples (an even count) in WFDB format 212:
    each pair (a, b) as 3 bytes: a's low 8 bits, b's high 4 | a's high 4, b's low 8."""
    u = d.astype(np.int64) & 0xFFF
    a, b = u[0::2], u[1::2]
    out = np.empty((len(a), 3), dtype=np.uint8)
    out[:, 0] = a & 0xFF
    out[:, 1] = ((b >> 8) << 4) | (a >> 8)
    out[:, 2] = b & 0xFF
    return out.tobytes()


def stitch(data: Path, hours: float, out: Path, name: str) -> Path:
    """Lead 0 of ``data``'s records, repeated in order, as one ``hours``-long format-212
    WFDB record ``out/name``, written a source record at a time; reused when present."""
    records = sorted(p.with_suffix("") for p in data.glob("*.hea"))
    if not records:
        raise SystemExit(f"{data}: no WFDB records")
    first = wfdb.rdheader(str(records[0]))
    fs = float(first.fs)
    target = int(hours * 3600 * fs) // 2 * 2  # format 212 packs pairs
    base = out / name
    dat = base.with_suffix(".dat")
    if base.with_suffix(".hea").is_file() and dat.is_file() and \
            dat.stat().st_size == target // 2 * 3:
        return base
    n, checksum, initial = 0, 0, None
    with open(dat, "wb") as fh:
        while n < target:
            for rec in records:
                d = wfdb.rdrecord(str(rec), channels=[0], physical=False).d_signal[:, 0]
                d = d[:target - n]
                d = d[:len(d) // 2 * 2]
                if initial is None:
                    initial = int(d[0])
                fh.write(pack_212(d))
                checksum = (checksum + int(d.sum())) & 0xFFFF
                n += len(d)
                if n >= target:
                    break
    checksum = checksum - 0x10000 if checksum >= 0x8000 else checksum
    gain, bits, zero = first.adc_gain[0], first.adc_res[0], first.adc_zero[0]
    base.with_suffix(".hea").write_text(
        f"{name} 1 {fs:g} {n}\n"
        f"{name}.dat 212 {gain:g}/mV {bits} {zero} {initial} {checksum} 0 MLII\n")
    return base


def measure(command: list[str]) -> tuple[float, float]:
    """(peak resident memory in MB, wall seconds) of ``command`` in a fresh process.

    Each run goes through its own small Python parent, so ``RUSAGE_CHILDREN`` holds that
    one command alone (Linux reports ``ru_maxrss`` in KiB)."""
    script = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
              "print(time.perf_counter() - t, "
              "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", script, *command], check=True,
                         capture_output=True, text=True).stdout.split()
    return round(int(out[-1]) / 1024, 1), round(float(out[-2]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "afdetect_scan_memory",
                        help="folder for the stitched records (about 1 GB in all)")
    parser.add_argument("--lengths", default=",".join(LENGTHS_H), metavar="L1,L2,...",
                        help=f"which lengths to run, of {', '.join(LENGTHS_H)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "scan_memory.json")
    args = parser.parse_args()
    labels = [label.strip() for label in args.lengths.split(",")]
    if unknown := [label for label in labels if label not in LENGTHS_H]:
        raise SystemExit(f"unknown lengths {unknown}; choose from {list(LENGTHS_H)}")
    args.cache.mkdir(parents=True, exist_ok=True)
    result: dict = {"command": command_line(), "format": "WFDB 212, 1 lead, 360 Hz",
                    "scan": "afdetect scan RECORD --threads 1 [--json]", "runs": {}}
    rss, seconds = measure([sys.executable, "-c", "import afdetect.cli, afdetect.monitor.scan"])
    result["imports_only"] = {"peak_rss_mb": rss}
    for label in labels:
        start = time.perf_counter()
        record = stitch(args.data, LENGTHS_H[label], args.cache, "holter_" +
                        label.replace(" ", ""))
        written = time.perf_counter() - start
        run: dict = {"hours": LENGTHS_H[label],
                     "samples": int(wfdb.rdheader(str(record)).sig_len)}
        for mode, extra in OUTPUTS.items():
            rss, seconds = measure([sys.executable, "-m", "afdetect.cli", "scan", str(record),
                                    "--threads", "1", *extra])
            run[mode] = {"peak_rss_mb": rss, "seconds": seconds}
            print(f"{label}, {mode}: peak RSS {rss} MB, {seconds:.1f} s (record ready in "
                  f"{written:.0f} s)", flush=True)
        result["runs"][label] = run
    runs = result["runs"]
    if "1 h" in runs and len(runs) > 1:
        longest = max(runs, key=lambda k: runs[k]["hours"])
        result["growth_mb_1h_to_longest"] = {
            mode: round(runs[longest][mode]["peak_rss_mb"] - runs["1 h"][mode]["peak_rss_mb"], 1)
            for mode in OUTPUTS}
    result["python"] = sys.version.split()[0]
    result["max_rss_this_process_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_json_atomic(args.out, result, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
