"""Cohort throughput: ``afdetect scan DIR --out RESULTS`` on 1 and 2 processes and a local
Dask cluster, the costs around each recording's scan, and from them an estimate for
100,000 24-h recordings on 1, 10 and 100 machines of 16 cores.

The cohort is stitched from the MIT-BIH development records (lead 0, 360 Hz, format 212):
``--recordings`` WFDB records of ``--hours`` each, in a folder. Every run is the real
command in a fresh process into a fresh results folder, timed from outside. Prints and
writes ``benchmarks/results/cohort_speed.json``.

    python benchmarks/cohort_speed.py --data ../shared/data/mitdb
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from provenance import command_line

from afdetect.atomic import write_json_atomic
from afdetect.cohort.manifest import Manifest, fingerprint
from afdetect.cohort.run import write_results
from afdetect.cohort.summary import Row, write_cohort
from afdetect.cohort.worker import ScanSettings, Task, scan_task
from afdetect.monitor.scan import ScanConfig

RESULTS = Path(__file__).parent / "results"
COHORT = 100_000
CORES = 16


def make_cohort(data: Path, n: int, hours: float, out: Path) -> float:
    """``n`` records of ``hours`` each in ``out``, each lead 0 of consecutive development
    records (wrapping around); returns the hours written."""
    records = sorted(p.with_suffix("") for p in data.glob("*.hea"))
    first = wfdb.rdrecord(str(records[0]), channels=[0], physical=False)
    target = int(hours * 3600 * first.fs)
    position, total = 0, 0.0
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        parts, have = [], 0
        while have < target:
            d = wfdb.rdrecord(str(records[position % len(records)]), channels=[0],
                              physical=False).d_signal[:, 0]
            position += 1
            parts.append(d[: target - have])
            have += len(parts[-1])
        wfdb.wrsamp(f"r{i:02d}", fs=first.fs, units=["mV"], sig_name=["MLII"],
                    d_signal=np.concatenate(parts)[:, None].astype(np.int64), fmt=["212"],
                    adc_gain=first.adc_gain, baseline=first.baseline, write_dir=str(out))
        total += have / first.fs / 3600
    return total


def timed(command: list[str]) -> float:
    """Wall seconds of ``command`` (which must succeed)."""
    return timed_cpu(command)[0]


def timed_cpu(command: list[str]) -> tuple[float, float]:
    """Wall seconds of ``command`` (which must succeed), and the CPU seconds (user +
    system) it and the processes it waited for used: on a shared machine the CPU time is
    what the work cost, the wall time what it got."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def worker_startup() -> float:
    """Wall seconds for a fresh worker process to import afdetect and load the model:
    what every pool worker (and a rebuilt pool) pays once."""
    return timed([sys.executable, "-c", "from afdetect.cohort.worker import loaded_model; "
                                        "loaded_model('compressed')"])


def driver_costs(folder: Path, records: list[Path], settings: ScanSettings, scale: float
                 ) -> dict[str, Any]:
    """The scan alone (mean over ``records``, in this process, one thread); what the
    driver spends per 24-h recording (receiving its result, unpickled as from a worker,
    and writing its files: the bytes scaled by ``scale`` to 24 h); the fingerprint
    taken when planning; a 100,000-recording manifest and cohort.csv."""
    cpu = time.process_time()
    outcomes = [scan_task(Task(f"r{i}", str(r), settings)) for i, r in enumerate(records)]
    scan_cpu_s = (time.process_time() - cpu) / len(records)  # one thread: its CPU time
    outcome = outcomes[0]
    day = replace(outcome, files={k: v * round(scale) for k, v in outcome.files.items()})
    start = time.perf_counter()
    for i in range(20):
        write_results(folder / "w", pickle.loads(pickle.dumps(replace(day, key=f"r{i}"))),
                      settings)
    receive_s = (time.perf_counter() - start) / 20
    start = time.perf_counter()
    for r in records:
        fingerprint(r)
    fingerprint_s = (time.perf_counter() - start) / len(records)
    entry = {"source": str(records[0]), "fingerprint": fingerprint(records[0]),
             "model": {"name": "compressed", "sha256": "0" * 64},
             "settings": settings.identity()}
    manifest = Manifest(folder)
    for i in range(COHORT):
        manifest.record(f"ward/p{i:06d}", entry, outcome.summary, None)
    start = time.perf_counter()
    manifest.save(force=True)
    manifest_s = time.perf_counter() - start
    rows = [Row(f"ward/p{i:06d}", str(records[0]), outcome.summary, {}, "compressed")
            for i in range(COHORT)]
    start = time.perf_counter()
    write_cohort(folder, rows)
    cohort_s = time.perf_counter() - start
    return {"scan_s": round(float(np.mean([o.scan_s for o in outcomes])), 3),
            "scan_cpu_s": round(scan_cpu_s, 3),
            "result_mb_per_24h": round(sum(len(b) for b in day.files.values()) / 1e6, 2),
            "driver_receive_and_write_s_per_24h": round(receive_s, 4),
            "plan_fingerprint_s": round(fingerprint_s, 5),
            "manifest_100k_save_s": round(manifest_s, 2),
            "manifest_100k_mb": round(manifest.path.stat().st_size / 1e6, 1),
            "cohort_csv_100k_s": round(cohort_s, 2)}


def estimate(scan_24h_s: float, startup_s: float, driver_s: float, plan_s: float,
             read_mb: float, result_mb: float, manifest_s: float) -> dict[str, Any]:
    """Wall time of COHORT 24-h recordings on 1, 10 and 100 machines of CORES cores.

    Every core scans one recording every ``scan_24h_s`` (the CPU time of one, measured here:
    it assumes 16 processes on a machine keep the per-core speed, which memory bandwidth
    may not allow) after a ``startup_s`` once per worker. The driver plans every
    recording (``plan_s``), then receives and writes every result (``driver_s``), its
    manifest held to a tenth of its time: it caps the cohort at
    ``1 / (1.1 * driver_s)`` recordings per second. The inputs must be read at
    ``read_mb`` and the results sent at ``result_mb`` per recording.
    """
    driver_rate = 1 / (1.1 * driver_s)
    out: dict[str, Any] = {}
    for machines in (1, 10, 100):
        workers = machines * CORES
        compute_rate = workers / scan_24h_s  # recordings per second
        rate = min(compute_rate, driver_rate)
        out[f"{machines} machine(s)"] = {
            "cores": workers,
            "hours": round((COHORT * plan_s + startup_s + COHORT / rate) / 3600, 1),
            "bound_by": "the driver" if driver_rate < compute_rate else "scanning",
            "input_read_gb_per_s": round(rate * read_mb / 1e3, 2),
            "driver_receives_mb_per_s": round(rate * result_mb, 1)}
    out["driver_limit_recordings_per_s"] = round(driver_rate, 1)
    out["cores_the_driver_keeps_busy"] = round(driver_rate * scan_24h_s)
    out["planning_100k_s"] = round(COHORT * plan_s, 1)
    out["manifest_rewrite_s_at_100k"] = manifest_s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--recordings", type=int, default=16)
    parser.add_argument("--hours", type=float, default=1.0, help="hours per recording")
    args = parser.parse_args()
    afdetect = [sys.executable, "-m", "afdetect.cli"]
    result: dict[str, Any] = {"command": command_line(), "recordings": args.recordings,
                              "hours_each": args.hours, "cpus": os.cpu_count(),
                              "load_average_before": [round(v, 1) for v in os.getloadavg()]}
    settings = ScanSettings("compressed", ScanConfig(), None, 0, "af")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hours = make_cohort(args.data, args.recordings, args.hours, tmp / "in")
        result["cohort_hours"] = round(hours, 2)
        runs: dict[str, Any] = {}
        for label, extra in (("1 process", ["--jobs", "1"]), ("2 processes", ["--jobs", "2"])):
            wall, cpu = timed_cpu([*afdetect, "scan", str(tmp / "in"), "--out",
                                   str(tmp / label), *extra])
            runs[label] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
            print(f"{label}: {wall:.1f} s", flush=True)
        # Fixed cost of one command: interpreter, imports, model load, planning 16 records
        # (a rerun finds them all done and scans nothing).
        startup = timed([*afdetect, "scan", str(tmp / "in"), "--out", str(tmp / "1 process")])
        from distributed import LocalCluster

        start = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            cluster_start = time.perf_counter() - start
            wall = timed([*afdetect, "scan", str(tmp / "in"), "--out", str(tmp / "dask"),
                          "--cluster", cluster.scheduler_address])
        runs["local Dask cluster (2 workers)"] = {"wall_s": round(wall, 1),
                                                  "cluster_start_s": round(cluster_start, 1)}
        print(f"dask: {wall:.1f} s (+{cluster_start:.1f} s to start the cluster)", flush=True)
        startup_worker = worker_startup()
        scale = 24 / args.hours
        costs = driver_costs(tmp / "driver", [tmp / "in" / f"r{i:02d}.hea" for i in range(
            min(3, args.recordings))], settings, scale)
        identical = all(
            (tmp / label / f"r{i:02d}.json").read_bytes()
            == (tmp / "1 process" / f"r{i:02d}.json").read_bytes()
            for label in ("2 processes", "dask") for i in range(args.recordings))
    scan_s = costs["scan_s"]
    for label, run in runs.items():
        workers = 1 if label == "1 process" else 2
        run["recordings_per_hour"] = round(args.recordings / run["wall_s"] * 3600)
        run["x_real_time"] = round(hours * 3600 / run["wall_s"], 1)
        # what each recording cost a worker beyond its scan, the command's start-up aside
        run["overhead_per_recording_s"] = round(
            (run["wall_s"] - startup) * workers / args.recordings - scan_s, 2)
    result.update(
        runs=runs, identical_results=identical,
        per_recording={**costs, "scan_s_per_24h": round(scan_s * scale, 1),
                       "scan_cpu_s_per_24h": round(costs["scan_cpu_s"] * scale, 1)},
        command_startup_s=round(startup, 1), worker_startup_s=round(startup_worker, 1),
        load_average_after=[round(v, 1) for v in os.getloadavg()])
    # from CPU time: what an unshared core delivers (the wall times here are shared ones)
    result["estimate_100k_24h"] = estimate(
        costs["scan_cpu_s"] * scale, startup_worker, costs["driver_receive_and_write_s_per_24h"],
        costs["plan_fingerprint_s"], 24 * 3600 * 360 * 1.5 / 1e6, costs["result_mb_per_24h"],
        costs["manifest_100k_save_s"])
    write_json_atomic(RESULTS / "cohort_speed.json", result, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
