"""What is under review: each recording's signal stream, its scan, reference annotations and
clock time, and where its sidecar lives.

A recording's scan is, in order of preference, the one in ``--scan FILE.json`` (the output of
``afdetect scan --json``), one this command stored before (``OUT/RECORD.scan.json``), or a
new scan through :func:`afdetect.monitor.scan.scan_stream`, stored for the next time in the
same format. The sidecar ``RECORD.review.json`` lies next to the scan it adjudicates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import wfdb

from afdetect import CLASSES
from afdetect.atomic import write_json_atomic
from afdetect.errors import InputError
from afdetect.io.json_file import read_json
from afdetect.io.records import WFDB_SUFFIXES, SignalStream, open_stream
from afdetect.monitor.rhythm import RhythmInterval, read_rhythm
from afdetect.monitor.scan import RecordingScan, ScanConfig, StepModel, scan_header, scan_stream

SCAN_SUFFIX = ".scan.json"
SIDECAR_SUFFIX = ".review.json"


@dataclass(frozen=True)
class ReferenceAnnotations:
    """Every annotation of a reference file (beats and rhythm changes).

    Attributes:
        samples: (n,) int64 sample of each annotation, ascending.
        symbols: (n,) WFDB symbol of each (``N``, ``V``, ``+`` ...).
        aux: (n,) aux note of each (``(AFIB`` on a rhythm change), ``""`` when none.
    """

    samples: np.ndarray
    symbols: list[str]
    aux: list[str]

    def between(self, start: int, stop: int, limit: int) -> list[dict[str, Any]]:
        """Annotations in samples ``[start, stop)``, at most ``limit`` (the first ones)."""
        lo, hi = np.searchsorted(self.samples, [start, stop])
        return [{"sample": int(self.samples[i]), "symbol": self.symbols[i], "aux": self.aux[i]}
                for i in range(int(lo), min(int(hi), int(lo) + limit))]


@dataclass
class ReviewRecording:
    """One recording under review.

    Attributes:
        key: its identifier in URLs (letters, digits, ``._-``; unique in the session).
        stream: the signal, read in chunks.
        scan: the scan's recording entry (``record``, ``fs``, ``duration_s``, ``episodes``,
            ``windows`` ... as ``afdetect scan --json`` writes it).
        scan_path: the file the scan was read from or stored in.
        sidecar_path: where the adjudication is kept (next to the scan).
        reference: reference rhythm intervals, or None without a reference file.
        annotations: every reference annotation, or None.
        start_time: clock time of the first sample (``HH:MM:SS``) when the header gives it.
        start_date: its date (``YYYY-MM-DD``) when the header gives it.
        scan_settings: the top of the scan's document (``model``, ``step_s``, ``window_s``,
            ``hop_s``, ``rule``; older scans lack ``step_s``).
    """

    key: str
    stream: SignalStream
    scan: dict[str, Any]
    scan_path: Path
    sidecar_path: Path
    reference: list[RhythmInterval] | None
    annotations: ReferenceAnnotations | None
    start_time: str | None
    start_date: str | None
    scan_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stream.name


def scan_document(model: StepModel, config: ScanConfig, scans: list[RecordingScan]
                  ) -> dict[str, Any]:
    """The JSON document ``afdetect scan --json`` prints, for ``scans`` (no errors)."""
    return {**scan_header(model, config), "recordings": [s.to_dict() for s in scans],
            "errors": []}


def read_scan_file(path: str | Path, config: ScanConfig | None = None
                   ) -> dict[str, dict[str, Any]]:
    """The recordings of a scan JSON file by record name, checked enough to be drawn.

    With ``config``, the scan must have been made with its windows and episode rule.
    Raises :class:`InputError` naming the file for anything else.
    """
    return read_scan(path, config)[1]


def read_scan(path: str | Path, config: ScanConfig | None = None
              ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the top of the document: model, step, window, hop, rule; the recordings by record
    name) of a scan JSON file, checked as :func:`read_scan_file` does."""
    path = Path(path)
    document = read_json(path, "scan file")
    recordings = document.get("recordings") if isinstance(document, dict) else None
    if not isinstance(recordings, list):
        raise InputError(path, "not a scan: no 'recordings' list (write one with "
                               "`afdetect scan --json`)")
    problem = None if config is None else _settings_problem(document, config)
    if problem:
        raise InputError(path, f"made with other scan settings ({problem}): scan again into "
                               "another --out, or leave the scan options out to use it")
    out = {}
    for i, rec in enumerate(recordings):
        problem = _scan_entry_problem(rec)
        if problem:
            raise InputError(path, f"recording {i + 1}: {problem}")
        out[rec["record"]] = rec
    settings = {k: v for k, v in document.items() if k not in ("recordings", "errors")}
    return settings, out


def _shown(value: Any) -> str:
    """A rule field as the settings message gives it (a check turned off is "off")."""
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _settings_problem(document: dict[str, Any], config: ScanConfig) -> str | None:
    """How the scan ``document`` was made differently from ``config``, or None.

    Its window and hop are whole model steps; one within half a hop of the one asked for
    is taken to be it.
    """
    rule = document.get("rule")
    if isinstance(rule, dict):
        asked = config.rule.to_dict()
        differ = [f"{k} {_shown(rule.get(k))} not {_shown(v)}" for k, v in asked.items()
                  if rule.get(k) != v]
        if differ:
            return ", ".join(differ)
    window, hop = document.get("window_s"), document.get("hop_s")
    if not (_number(window) and _number(hop)):
        return None
    if abs(window - config.window_s) > hop / 2 or abs(hop - config.hop_s) > hop / 2:
        return f"{window:g}-s windows every {hop:g} s"
    return None


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def _scan_entry_problem(rec: Any) -> str | None:
    """What makes ``rec`` unusable as a scan's recording entry, or None."""
    if not isinstance(rec, dict) or not isinstance(rec.get("record"), str):
        return "no record name"
    if not (_number(rec.get("fs")) and rec["fs"] > 0 and _number(rec.get("duration_s"))):
        return "no sampling rate or duration"
    episodes, windows = rec.get("episodes"), rec.get("windows")
    if not isinstance(episodes, list) or not all(
            isinstance(e, dict) and e.get("label") in CLASSES and _number(e.get("start_s"))
            and _number(e.get("end_s")) for e in episodes):
        return "episodes missing or malformed"
    if not isinstance(windows, list) or not all(
            isinstance(w, dict) and _number(w.get("start_s")) and _number(w.get("end_s"))
            and isinstance(w.get("probabilities"), dict)
            and _number(w["probabilities"].get("A")) for w in windows):
        return "windows missing or malformed (scan with --json, which writes them)"
    return None


def url_key(name: str, taken: set[str]) -> str:
    """A URL-safe identifier for ``name`` not in ``taken`` (``name-2``, ... when two names
    differ only in characters a URL would not carry)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "record"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key


def clock_start(path: Path) -> tuple[str | None, str | None]:
    """(``HH:MM:SS``, ``YYYY-MM-DD``) of a WFDB record's first sample, each None when the
    header does not say (or the file is not WFDB)."""
    if path.suffix.lower() not in (*WFDB_SUFFIXES, ""):
        return None, None
    base = path.with_suffix("") if path.suffix.lower() in WFDB_SUFFIXES else path
    try:
        header = wfdb.rdheader(str(base))
    except Exception:  # open_stream already accepted the header; a clock is optional
        return None, None
    time = header.base_time.strftime("%H:%M:%S") if header.base_time else None
    date = header.base_date.isoformat() if header.base_date else None
    return time, date


def read_reference(path: Path, annotator: str, fs: float, duration_s: float
                   ) -> tuple[list[RhythmInterval] | None, ReferenceAnnotations | None]:
    """The reference rhythm intervals and every annotation of ``RECORD.annotator``.

    (None, None) when the record has no such file; a file without rhythm marks gives
    (None, annotations). An unreadable file raises :class:`InputError`.
    """
    base = path.with_suffix("") if path.suffix.lower() in WFDB_SUFFIXES else path
    ann_path = base.with_name(f"{base.name}.{annotator}")
    if not ann_path.is_file():
        return None, None
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise InputError(ann_path, f"unreadable annotation file ({str(exc).splitlines()[0]})"
                         ) from None
    aux = [(a or "").strip("\x00 ").strip() for a in (ann.aux_note or [""] * len(ann.sample))]
    annotations = ReferenceAnnotations(np.asarray(ann.sample, dtype=np.int64),
                                       list(ann.symbol), aux)
    try:
        rhythm: list[RhythmInterval] | None = read_rhythm(base, annotator, fs, duration_s)
    except InputError:  # beats only, no rhythm marks
        rhythm = None
    return rhythm, annotations


def open_recordings(inputs: list[str | Path], *, out_dir: str | Path,
                    scan_file: str | Path | None = None, reference: str = "atr",
                    fs: float | None = None, lead: str | int = 0,
                    model: Callable[[], StepModel] | None = None,
                    config: ScanConfig | None = None, progress: bool = False
                    ) -> tuple[list[ReviewRecording], list[InputError]]:
    """Everything to review in ``inputs`` (files or folders), scanning what has no scan.

    Args:
        out_dir: where new scans are stored (and their sidecars kept).
        scan_file: a scan JSON whose recordings are used instead of scanning; their sidecars
            lie next to it.
        reference: annotator of the reference rhythm (``RECORD.reference``), when present.
        model: loads the scanning model; called once, only if something needs a scan.
        config: the scan's windows and episode rule; stored and given scans must have been
            made with them. None: stored and given scans are used as they are, new scans
            are made with the defaults.
    Returns:
        (recordings in input order, the inputs that failed with their one-line reason).
    """
    from afdetect.predict import expand_inputs

    out = Path(out_dir)
    given_settings, given = read_scan(scan_file, config) if scan_file is not None else ({}, {})
    files, failures = expand_inputs(inputs)
    # (input, stream, (scan settings, scan entry) or None while unscanned, scan file)
    found: list[tuple[Path, SignalStream, tuple[dict[str, Any], dict[str, Any]] | None,
                      Path]] = []
    for path in files:
        try:
            stream = open_stream(path, fs=fs, lead=lead)
            if any(stream.name == other.name for _, other, _, _ in found):
                raise InputError(path, f"another recording named {stream.name!r} is under "
                                       "review: they would share one scan and sidecar "
                                       "(review it separately, with another --out)")
            if stream.name in given:
                found.append((path, stream, (given_settings, given[stream.name]),
                              Path(str(scan_file))))
                continue
            stored = out / f"{stream.name}{SCAN_SUFFIX}"
            scan = None
            if stored.is_file():
                settings, entries = read_scan(stored, config)
                scan = (settings, entries[stream.name]) if stream.name in entries else None
            found.append((path, stream, scan, stored))
        except InputError as exc:
            failures.append(exc)
    step_model = model() if model is not None and any(e is None for _, _, e, _ in found) else None
    recordings: list[ReviewRecording] = []
    for path, stream, scan, scan_path in found:
        try:
            if scan is None:
                if step_model is None:
                    raise InputError(path, "no scan, and no model given to make one")
                scan = _new_scan(step_model, stream, config or ScanConfig(), scan_path,
                                 progress)
            recordings.append(_recording(path, stream, scan, scan_path, reference,
                                         {r.key for r in recordings}))
        except InputError as exc:
            failures.append(exc)
    return recordings, failures


def _new_scan(model: StepModel, stream: SignalStream, config: ScanConfig, dest: Path,
              progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scan ``stream``, store the scan at ``dest`` (atomically), return (its settings, its
    entry)."""
    document = scan_document(model, config, [scan_stream(model, stream, config, progress)])
    write_json_atomic(dest, document)
    settings = {k: v for k, v in document.items() if k not in ("recordings", "errors")}
    return settings, document["recordings"][0]


def _recording(path: Path, stream: SignalStream,
               scan: tuple[dict[str, Any], dict[str, Any]], scan_path: Path,
               reference: str, taken: set[str]) -> ReviewRecording:
    settings, entry = scan
    if abs(entry["fs"] - stream.fs) > 1e-6 or abs(entry["duration_s"] - stream.duration_s) > 0.01:
        raise InputError(scan_path, f"its scan of {stream.name!r} ({entry['duration_s']:g} s at "
                                    f"{entry['fs']:g} Hz) does not match {path} "
                                    f"({stream.duration_s:g} s at {stream.fs:g} Hz)")
    rhythm, annotations = read_reference(path, reference, stream.fs, stream.duration_s)
    time, date = clock_start(path)
    return ReviewRecording(url_key(stream.name, taken), stream, entry, scan_path,
                           scan_path.parent / f"{stream.name}{SIDECAR_SUFFIX}", rhythm,
                           annotations, time, date, settings)
