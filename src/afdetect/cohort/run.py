"""The cohort driver: plan, scan what is not done yet, write results, summarise.

Results are *returned to the driver*, which alone writes under ``RESULTS/``: each file
atomically (written beside its destination, then renamed), then the manifest entry. So
the workers need only read access to the recordings (on a cluster: the inputs on a shared
path, nothing to write), no two processes ever write one file, and a killed run leaves
each result file either absent or whole. The price is the driver's bandwidth: it
receives and writes every result file (about 1 MB of JSON for 24 h of recording), which
is what bounds a very large cluster (see ``benchmarks/cohort_speed.py``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from afdetect.atomic import exclusive_folder, write_bytes_atomic
from afdetect.cohort.backends import run_dask, run_pool, run_serial
from afdetect.cohort.inputs import CohortRecord, discover
from afdetect.cohort.manifest import MANIFEST_NAME, Manifest, fingerprint, model_identity
from afdetect.cohort.summary import Row, write_cohort, write_failures
from afdetect.cohort.worker import Outcome, ScanSettings, Task, loaded_model
from afdetect.errors import AfdetectError, InputError


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class CohortSettings:
    """How a cohort is run.

    Attributes:
        scan: what decides each recording's results.
        jobs: worker processes on this machine; 1 scans in this process.
        cluster: a Dask scheduler address (``tcp://host:8786``); overrides ``jobs``.
        threads: PyTorch threads when scanning in this process (workers use one each).
        max_attempts: how often a recording may kill its worker process before it is
            reported as failed.
        progress: draw a progress bar on stderr.
    """

    scan: ScanSettings
    jobs: int = 1
    cluster: str | None = None
    threads: int = 1
    max_attempts: int = 3
    progress: bool = False


@dataclass
class CohortReport:
    """What a cohort run did.

    Attributes:
        recordings: recordings in the cohort.
        scanned: recordings scanned by this run (successfully).
        skipped: recordings done by an earlier run and unchanged.
        failures: ``(record key or input path, one line naming the file and the
            problem)`` per failure.
        hours: hours of recording scanned by this run.
    """

    recordings: int = 0
    scanned: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    hours: float = 0.0


def run_cohort(inputs: list[str | Path], out: str | Path, settings: CohortSettings
               ) -> CohortReport:
    """Scan the cohort behind ``inputs`` into ``out`` (see :mod:`afdetect.cohort`).

    Raises:
        AfdetectError: the model cannot scan, ``out`` is in use by another run or holds
            something else's ``manifest.json``, or the cluster cannot be reached.
    """
    out = Path(out)
    model = model_identity(settings.scan.model)
    loaded_model(settings.scan.model)  # a model that cannot scan is refused before any work
    identity = {"model": model, "settings": settings.scan.identity()}
    with exclusive_folder(out):
        _remove_debris(out)
        records, problems = discover(inputs, exclude=out)
        if not records and not problems:
            raise AfdetectError(f"{', '.join(map(str, inputs))}: no recordings found "
                                "(WFDB .hea, .csv or .npy)")
        manifest = Manifest(out)
        report = CohortReport(recordings=len(records))
        expected: dict[str, dict[str, Any]] = {}
        tasks: list[Task] = []
        threads = settings.threads if settings.jobs == 1 and not settings.cluster else 1
        for record in records:
            if record.key == Path(MANIFEST_NAME).stem:
                problems.append(_reserved(record))
                continue
            # through JSON, as the manifest holds it: tuples become lists, and so on
            expected[record.key] = json.loads(json.dumps(
                {"source": str(record.source), "fingerprint": fingerprint(record.source),
                 **identity}))
            outputs = [out / f"{record.key}{s}" for s in settings.scan.suffixes()]
            if manifest.is_done(record.key, expected[record.key], outputs):
                report.skipped += 1
            else:
                tasks.append(Task(record.key, str(record.source), settings.scan, threads))
        bar = tqdm(total=len(tasks), desc="cohort", unit="rec", disable=not settings.progress,
                   file=sys.stderr, smoothing=0.1)

        def on_outcome(outcome: Outcome) -> None:
            write_results(out, outcome, settings.scan)
            manifest.record(outcome.key, expected[outcome.key], outcome.summary, outcome.error)
            manifest.save()
            if outcome.error is None:
                report.scanned += 1
                report.hours += outcome.summary["duration_s"] / 3600
            bar.update(1)
            bar.set_postfix_str(f"{report.hours:.1f} h scanned", refresh=False)

        try:
            if settings.cluster:
                run_dask(tasks, settings.cluster, on_outcome)
            elif settings.jobs > 1 and len(tasks) > 1:
                run_pool(tasks, min(settings.jobs, len(tasks)), on_outcome,
                         settings.max_attempts)
            else:
                run_serial(tasks, on_outcome)
        finally:
            bar.close()
            manifest.save(force=True)
        rows = [_row(record, manifest, model["name"]) for record in records
                if record.key in manifest.entries]
        report.failures = [(p.path, str(p)) for p in problems] + [
            (row.record, row.error) for row in rows if row.error]
        write_cohort(out, rows)
        write_failures(out, report.failures)
    return report


def write_results(out: Path, outcome: Outcome, scan: ScanSettings) -> None:
    """Write a recording's result files; a failed one keeps no results of an earlier
    run, which would contradict its status."""
    for suffix in scan.suffixes():
        dest = out / f"{outcome.key}{suffix}"
        if outcome.error is None:
            write_bytes_atomic(dest, outcome.files[suffix])
        else:
            dest.unlink(missing_ok=True)


def _remove_debris(out: Path) -> None:
    """Remove the temporary files of a killed run's unfinished writes (``.NAME.*.tmp``,
    see :func:`~afdetect.atomic.atomic_path`); while this run holds the folder's lock no
    other run writes there."""
    for tmp in out.rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)


def _row(record: CohortRecord, manifest: Manifest, model: str) -> Row:
    entry = manifest.entries[record.key]
    return Row(record.key, str(record.source), manifest.summary(record.key), record.metadata,
               model, entry.get("error"))


def _reserved(record: CohortRecord) -> InputError:
    return InputError(record.source, f"its results would overwrite RESULTS/{MANIFEST_NAME}; "
                                     "rename the recording")
