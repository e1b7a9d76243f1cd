"""Scanning one recording of a cohort, wherever it runs (this process, a pool, a cluster).

The scan is the ordinary ``afdetect scan`` core (:func:`~afdetect.io.records.open_stream`
then :func:`~afdetect.monitor.scan.scan_stream`), with the model loaded once per process
and kept for the next recording. The worker also encodes the result files, so that the
driver only writes bytes: at cluster scale the driver's time per recording is what
limits the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import WFDB_SUFFIXES, open_stream
from afdetect.monitor.scan import (
    RecordingScan,
    ScanConfig,
    StepModel,
    episodes_table,
    scan_header,
    scan_stream,
)

JSON_SUFFIX = ".json"
REPORT_SUFFIX = ".report.pdf"
EPISODES_SUFFIX = ".episodes.csv"


@dataclass(frozen=True)
class ScanSettings:
    """Everything besides the recording that decides its results.

    Attributes:
        model: built-in model name or model file path (a path must be readable where the
            workers run).
        config: windows, chunking and episode rule.
        fs: sampling rate in Hz for ``.csv``/``.npy`` recordings, else None.
        lead: lead name or 0-based index.
        annotations: extension of the WFDB rhythm annotation file written per recording.
        beats: extension of the WFDB beat annotation file written per recording, or None.
        report: whether each recording also gets its printable AF report (PDF).
    """

    model: str
    config: ScanConfig
    fs: float | None
    lead: str | int
    annotations: str
    beats: str | None = None
    report: bool = False

    def identity(self) -> dict[str, Any]:
        """The settings as the manifest records them (the model is recorded apart, by
        its file's hash)."""
        return {"config": asdict(self.config), "fs": self.fs, "lead": self.lead,
                "annotations": self.annotations, "beats": self.beats, "report": self.report}

    def suffixes(self) -> tuple[str, ...]:
        """The result files of one recording: ``KEY`` + each of these."""
        return (JSON_SUFFIX, EPISODES_SUFFIX, f".{self.annotations}",
                *((f".{self.beats}",) if self.beats else ()),
                *((REPORT_SUFFIX,) if self.report else ()))


@dataclass(frozen=True)
class Task:
    """One recording to scan: its results key, its file, the settings, torch threads."""

    key: str
    source: str
    settings: ScanSettings
    threads: int = 1


@dataclass(frozen=True)
class Outcome:
    """What scanning one recording gave.

    Attributes:
        key: the task's key.
        files: result file suffix -> contents (see :meth:`ScanSettings.suffixes`); empty
            when it failed.
        summary: the recording's ``cohort.csv`` values (see :mod:`~afdetect.cohort.summary`);
            empty when it failed.
        error: the one-line reason it failed, naming the file, else None.
        load_s: seconds spent loading the model for it (0 when the process had it).
        scan_s: seconds spent opening, scanning and encoding it.
        pid: the process that did it.
    """

    key: str
    files: dict[str, bytes]
    summary: dict[str, Any]
    error: str | None
    load_s: float
    scan_s: float
    pid: int


@lru_cache(maxsize=2)
def loaded_model(model: str) -> StepModel:
    """The scan view of ``model``, loaded once per process (the cache is this process's)."""
    from afdetect.models import load_classifier
    from afdetect.monitor.scan import step_model

    return step_model(load_classifier(model))


def scan_task(task: Task) -> Outcome:
    """Scan ``task``'s recording; a problem with its content is returned, not raised."""
    import torch

    if torch.get_num_threads() != task.threads:
        torch.set_num_threads(task.threads)
    started = loaded = time.perf_counter()
    try:
        model = loaded_model(task.settings.model)  # on a cluster: the file may be missing
        loaded = time.perf_counter()
        stream = open_stream(task.source, fs=task.settings.fs, lead=task.settings.lead)
        scan = scan_stream(model, stream, task.settings.config)
        files = result_files(scan, model, task.settings)
        summary = {**summary_values(scan), "start": header_start(task.source)}
        error = None
    except InputError as exc:
        files, summary = {}, {}
        error = str(exc) if exc.path == task.source else f"{task.source}: {exc.problem}"
    except AfdetectError as exc:
        files, summary, error = {}, {}, f"{task.source}: {exc}"
    except Exception as exc:  # a reader's bug on odd content must not stop the cohort
        files, summary = {}, {}
        error = f"{task.source}: unexpected {type(exc).__name__}: {_one_line(exc)}"
    return Outcome(task.key, files, summary, error, loaded - started,
                   time.perf_counter() - loaded, os.getpid())


def result_files(scan: RecordingScan, model: StepModel, settings: ScanSettings
                 ) -> dict[str, bytes]:
    """The result files of ``scan``: the ``afdetect scan --json`` document of this one
    recording, its episodes as CSV, its WFDB rhythm annotations, and when asked its beat
    annotations and its AF report (suffix -> bytes, in :meth:`ScanSettings.suffixes`
    order)."""
    import json

    from afdetect.monitor.report import ReportOptions, write_report
    from afdetect.monitor.rhythm import write_beat_annotations, write_rhythm_annotations

    document = {**scan_header(model, settings.config), "recordings": [scan.to_dict()],
                "errors": []}
    files = {JSON_SUFFIX: (json.dumps(document, indent=1) + "\n").encode(),
             EPISODES_SUFFIX: episodes_table([scan]).encode()}
    with tempfile.TemporaryDirectory(prefix="afdetect-") as tmp:
        files[f".{settings.annotations}"] = write_rhythm_annotations(
            Path(tmp) / f"{scan.record}.{settings.annotations}", scan.episodes,
            scan.fs).read_bytes()
        if settings.beats:
            files[f".{settings.beats}"] = write_beat_annotations(
                Path(tmp) / f"{scan.record}.{settings.beats}", scan.beats, scan.fs).read_bytes()
        if settings.report:
            stream = open_stream(scan.source, fs=settings.fs, lead=settings.lead)
            files[REPORT_SUFFIX] = write_report(
                scan, stream, Path(tmp) / "report.pdf",
                ReportOptions(model=model.name, rule=settings.config.rule,
                              start=scan.start)).read_bytes()
    return files


def summary_values(scan: RecordingScan) -> dict[str, Any]:
    """The per-recording figures of ``cohort.csv`` (seconds; burden as a fraction)."""
    af = scan.af_episodes()

    def mean(rate: Any) -> Any:
        return "" if rate is None else round(rate["mean"], 1)

    return {"duration_s": round(scan.duration_s, 3), "analysed_s": round(scan.covered_s, 3),
            "af_burden": round(scan.af_burden, 6), "n_af_episodes": len(af),
            "longest_af_s": round(max((e.duration_s for e in af), default=0.0), 3),
            "heart_rate_bpm": mean(scan.heart_rate()),
            "heart_rate_af_bpm": mean(scan.heart_rate("A")),
            "heart_rate_non_af_bpm": mean(scan.heart_rate("A", exclude=True))}


def header_start(source: str) -> str:
    """The recording's start as its WFDB header gives it (ISO 8601 date and time, or the
    time alone), else ``""``."""
    import wfdb

    path = Path(source)
    if path.suffix.lower() not in (*WFDB_SUFFIXES, ""):
        return ""
    try:
        header = wfdb.rdheader(str(path.with_suffix("") if path.suffix else path))
    except Exception:  # the scan read it already; a start it cannot parse is unknown
        return ""
    if header.base_time is None:
        return ""
    clock = header.base_time.isoformat()
    return f"{header.base_date.isoformat()}T{clock}" if header.base_date else clock


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
