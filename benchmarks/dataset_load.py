"""Time to load a whole CinC 2017 folder: the first build of the cache, then cached loads.

    python benchmarks/dataset_load.py --data ../shared/data/cinc2017 [--rounds 5]

The build uses a fresh cache folder (so it really reads and preprocesses every record);
the cached loads reuse it, fingerprint check included. Writes
benchmarks/results/dataset_load.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from provenance import command_line

from afdetect.atomic import write_json_atomic
from afdetect.data.store import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/dataset_load.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        dataset = load_dataset(args.data, cache_dir=Path(cache))
        build = time.perf_counter() - started
        cached = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            load_dataset(args.data, cache_dir=Path(cache), progress=False)
            cached.append(time.perf_counter() - started)
    result = {"command": command_line(),
              "records": len(dataset), "skipped": len(dataset.skipped),
              "first_build_seconds": round(build, 2),
              "cached_load_seconds_median": round(statistics.median(cached), 3),
              "cached_load_seconds": [round(t, 3) for t in cached]}
    print(json.dumps(result, indent=1))
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
