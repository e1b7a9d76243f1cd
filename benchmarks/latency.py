"""Median time per 30-s recording: float model (PyTorch), NumPy integer engine, C engine
(streaming strip mode and the layer-by-layer batch mode).

All three run in one invocation on the same recordings, interleaved round by round so
machine noise hits them alike; ratios are the figures to compare.

    python benchmarks/latency.py [--model compressed] [--float float] [--rounds 5]

The C engine is timed inside a small harness (clock_gettime around afd_classify), so
process start-up is not counted. Writes benchmarks/results/latency.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from provenance import command_line

from afdetect.atomic import write_json_atomic
from afdetect.data.preprocess import preprocess
from afdetect.deploy.export import CFLAGS, c_compiler, export, library_sources
from afdetect.io.records import read_record
from afdetect.model import load_float_model
from afdetect.models import resolve_model
from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import load_compressed

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "cinc2017"

HARNESS = """
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "afdetect.h"
static int16_t x[9000];
static afd_strip_t strip;
int main(int argc, char **argv)
{
    int32_t logits[AFD_N_CLASSES], i, reps = 200;
    int batch = argc > 1 && strcmp(argv[1], "--batch") == 0;
    void *work = malloc(afd_batch_work_bytes(9000));
    struct timespec a, b;
    for (i = 0; i < 9000; i++) if (scanf("%hd", &x[i]) != 1) return 1;
    afd_classify(&strip, x, 9000, logits);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < reps; i++) {
        if (batch) afd_classify_batch(x, 9000, logits, work);
        else afd_classify(&strip, x, 9000, logits);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.9f %lu\\n", ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9) / reps,
           (unsigned long)afd_batch_work_bytes(9000));
    free(work);
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="compressed")
    parser.add_argument("--float", default="float", dest="float_model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latency.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, metadata = load_compressed(resolve_model(args.model)[1])
    parent = load_float_model(resolve_model(args.float_model)[1])
    network = parent.network.eval()
    engine = IntegerEngine(model)
    paths = sorted(p for p in SAMPLES.glob("*.hea"))
    signals = [s for s in (preprocess(read_record(p), parent.preprocess) for p in paths)
               if len(s) == 9000]

    compiler = c_compiler()
    times: dict[str, list[float]] = {"float_pytorch": [], "numpy_integer": [], "c_integer": [],
                                     "c_integer_batch": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        export(model, metadata, out)
        if compiler:
            (out / "bench.c").write_text(HARNESS)
            subprocess.run([compiler, *CFLAGS, f"-I{out / 'src'}", "-o", str(out / "bench"),
                            str(out / "bench.c"), *map(str, library_sources(out))],
                           check=True)
        for _ in range(args.rounds):
            for signal in signals:
                x = torch.from_numpy(signal)[None, None, :]
                with torch.no_grad():
                    started = time.perf_counter()
                    network(x)
                    times["float_pytorch"].append(time.perf_counter() - started)
                started = time.perf_counter()
                engine.logits(signal)
                times["numpy_integer"].append(time.perf_counter() - started)
                if compiler:
                    text = "\n".join(map(str, model.quantise_input(signal).tolist()))
                    for key, flag in (("c_integer", []), ("c_integer_batch", ["--batch"])):
                        run = subprocess.run([str(out / "bench"), *flag], input=text,
                                             capture_output=True, text=True, check=True)
                        seconds, work = run.stdout.split()
                        times[key].append(float(seconds))
    medians = {k: statistics.median(v) for k, v in times.items() if v}
    result = {
        "recording_seconds": 30, "recordings": len(signals), "rounds": args.rounds,
        "median_seconds": medians,
        "ratios": {f"{k}_vs_{c}": medians[k] / medians[c]
                   for c in ("c_integer", "c_integer_batch") if c in medians
                   for k in medians if not k.startswith("c_integer")},
        "batch_work_bytes_30s": int(work) if compiler else None,
        "machine": f"{platform.machine()}, torch {torch.__version__} on {args.threads} "
                   f"thread(s), {compiler or 'no C compiler'} {' '.join(CFLAGS)}",
        "command": command_line(),
    }
    for k, v in medians.items():
        print(f"{k:15s} {v * 1e3:9.3f} ms per 30-s recording")
    for k, v in result["ratios"].items():
        print(f"{k:22s} {v:8.1f}x")
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
