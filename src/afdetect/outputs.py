"""Planning a run's outputs: every destination is checked before anything is written.

A run is refused, in one line and before it writes anything, when an output would land on
one of its own inputs (the same path, or the same file through another name: compared by
device and inode), on a folder, inside a file, in a folder it cannot write, or twice on one
path; and when an annotator name or a figure suffix cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from afdetect.atomic import OutputError
from afdetect.errors import AfdetectError
from afdetect.io.records import WFDB_SUFFIXES

# WFDB annotator names are file-name suffixes; letters, digits and underscores are portable
# (wfdb-python writes letters only, so afdetect writes under a letters-only temporary name
# and renames the verified file).
_ANNOTATOR = re.compile(r"[A-Za-z0-9_]{1,32}")


def check_annotator(name: str, option: str) -> None:
    """Refuse an annotator name (``afd``, ``atr``, ``afd2``) that is not a plain suffix."""
    if not _ANNOTATOR.fullmatch(name):
        raise AfdetectError(f"{option} {name!r}: an annotator name is 1 to 32 letters, "
                            "digits or underscores (e.g. afd)")


def check_figure_path(path: Path, option: str = "--plot") -> None:
    """Refuse a figure file whose suffix matplotlib cannot write (no suffix means PNG)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise AfdetectError(f"{option} {path}: unknown figure format .{suffix} (use .png, "
                            ".pdf or .svg; also " + ", ".join(
                                f".{f}" for f in sorted(formats)
                                if f not in ("png", "pdf", "svg")) + ")")


def record_name(path: Path) -> str:
    """The record name a recording file is reported under (as :mod:`afdetect.io.records`
    names it): a WFDB record's base name, or a CSV/.npy file's stem."""
    if path.suffix.lower() in WFDB_SUFFIXES:
        return path.with_suffix("").name
    return path.name if path.suffix == "" else path.stem


def recording_files(path: Path, annotators: Iterable[str] = ()) -> list[Path]:
    """The existing files of recording ``path``: the file itself and, for a WFDB record,
    every companion ``RECORD.*`` beside its header (signal, annotations of any annotator),
    the signal files the header names, and its ``annotators`` annotation files."""
    files = [path]
    suffix = path.suffix.lower()
    if suffix in WFDB_SUFFIXES or suffix == "":
        import wfdb

        base = path.with_suffix("") if suffix in WFDB_SUFFIXES else path
        with contextlib.suppress(OSError):
            files += [p for p in base.parent.iterdir() if p.stem == base.name]
        files += [base.with_name(f"{base.name}.{a}") for a in annotators]
        with contextlib.suppress(Exception):  # a bad header: reading reports it later
            files += [base.parent / name for name in wfdb.rdheader(str(base)).file_name or []]
    return [f for f in files if f.is_file()]


def folder_files(folder: Path, annotators: Iterable[str] = ()) -> list[Path]:
    """The input files of a dataset folder: every recording, label file and the named
    annotation files in it."""
    annotators = tuple(annotators)
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [f for p in entries if p.suffix.lower() in (*WFDB_SUFFIXES, ".csv", ".npy")
            for f in recording_files(p, annotators)]


@dataclass(frozen=True)
class _Identity:
    path: Path
    resolved: Path
    inode: tuple[int, int] | None


def _identity(path: Path) -> _Identity:
    try:
        st = path.stat()
        inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return _Identity(path, path.resolve(), inode)


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path],
                  replaceable: Iterable[Path] = ()) -> None:
    """Refuse the run (one :class:`OutputError` naming the output) before it writes anything
    when any output is an input, a folder, inside a file or an unwritable folder, or
    written twice. ``replaceable`` inputs (annotation files afdetect wrote before, checked
    by :func:`annotation_path`) may be replaced."""
    mine = {_identity(p).resolved for p in replaceable}
    sources = [s for s in map(_identity, inputs) if s.resolved not in mine]
    by_path = {s.resolved: s.path for s in sources}
    by_inode = {s.inode: s.path for s in sources if s.inode is not None}
    seen: dict[Path, Path] = {}
    for dest in outputs:
        out = _identity(dest)
        source = by_path.get(out.resolved) or (by_inode.get(out.inode) if out.inode else None)
        if source is not None:
            alias = "" if source == dest else f" ({source})"
            raise OutputError(dest, f"is an input of this run{alias}; writing it would "
                                    "destroy it, so nothing was written: choose another "
                                    "output")
        if out.resolved in seen:
            raise OutputError(dest, f"would be written twice by this run (also for "
                                    f"{seen[out.resolved]}): choose distinct outputs")
        seen[out.resolved] = dest
        if dest.is_dir():
            raise OutputError(dest, "is a folder; give a file name")
        folder = dest.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OutputError(dest, f"cannot be created: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(dest, f"cannot be created: folder {folder} is not writable")


def numbered(path: Path, record: str, several: bool) -> Path:
    """``path`` itself for a single recording, else ``STEM_RECORD.SUFFIX`` beside it
    (``.png`` when ``path`` has no suffix)."""
    if not several:
        return path
    return path.with_name(f"{path.stem}_{record}{path.suffix or '.png'}")


def annotation_path(record: Path, name: str, extension: str, folder: Path,
                    reference: str | None) -> Path:
    """Where the annotations of ``record`` go: ``folder/NAME.EXTENSION``.

    Refused when that is the ``reference`` annotator beside the record (existing or not),
    or an existing file afdetect did not write (a beat or rhythm annotation file of
    someone else's): only afdetect's own earlier output may be replaced."""
    from afdetect.monitor.rhythm import written_by_afdetect

    dest = folder / f"{name}.{extension}"
    beside = dest.resolve().parent == record.resolve().parent or (
        folder.is_dir() and os.path.samefile(folder, record.parent))
    if reference is not None and extension == reference and beside:
        raise OutputError(dest, f"--annotations {extension} would write the reference "
                                f"annotations of {record} (--reference {reference}); nothing "
                                "was written: choose another annotator name, e.g. afd")
    if dest.is_file() and not written_by_afdetect(dest):
        raise OutputError(dest, "exists and holds annotations afdetect did not write; "
                                "nothing was written: choose another annotator name")
    return dest


def plan_recording_outputs(inputs: Iterable[str | Path], *, annotators: Iterable[str] = (),
                           table: Path | None = None, plot: Path | None = None,
                           annotations: str | None = None, beats: str | None = None,
                           report: Path | None = None,
                           annotations_dir: Path = Path("."),
                           other_inputs: Iterable[Path] = ()) -> dict[str, dict[str, Path]]:
    """Check every output of a run over recording files before anything is read or written.

    Args:
        inputs: the files and folders named on the command line (expanded as
            :func:`afdetect.predict.expand_inputs` does).
        annotators: annotation files the run reads beside each record (the reference).
        table: the one CSV of the run; plot: the figure (``STEM_RECORD.SUFFIX`` per
            recording when there are several); annotations, beats: the rhythm and beat
            annotators to write into ``annotations_dir``; report: the PDF report (a folder
            of ``RECORD.pdf`` when there are several recordings or it is a folder);
            other_inputs: further files the run reads (a model).

    Returns:
        {input file as the run names it: {"plot", "annotations", "beats", "report": path}}
        (the outputs asked for).

    Raises:
        OutputError / AfdetectError: one line, when any output is an input of the run
            (compared by path and inode, WFDB companions included), a folder, unwritable,
            written twice, a foreign annotation file, or a figure suffix matplotlib cannot
            write.
    """
    from afdetect.predict import expand_inputs

    annotators = list(annotators)
    if plot is not None:
        check_figure_path(plot)
    if report is not None and report.suffix.lower() not in ("", ".pdf"):
        raise OutputError(report, "--report writes a PDF: name a .pdf file or a folder")
    files, _ = expand_inputs(list(inputs))  # the run itself reports inputs it cannot use
    sources = [f for path in files for f in recording_files(path, annotators)]
    targets: dict[str, dict[str, Path]] = {}
    for path in files:
        name, planned = record_name(path), {}
        if plot is not None:
            planned["plot"] = numbered(plot, name, len(files) > 1)
        if annotations is not None:
            planned["annotations"] = annotation_path(path, name, annotations, annotations_dir,
                                                     annotators[0] if annotators else None)
        if beats is not None:
            if beats == annotations:
                raise OutputError(annotations_dir / f"{name}.{beats}", "--beats and "
                                  "--annotations name the same file: choose two annotators")
            planned["beats"] = annotation_path(path, name, beats, annotations_dir,
                                               annotators[0] if annotators else None)
        if report is not None:
            folder = len(files) > 1 or report.is_dir() or not report.suffix
            planned["report"] = report / f"{name}.pdf" if folder else report
        targets[str(path)] = planned
    check_outputs([*([table] if table else []), *(t for d in targets.values() for t in
                                                   d.values())],
                  [*sources, *other_inputs],
                  replaceable=[d[k] for d in targets.values() for k in ("annotations", "beats")
                               if k in d])
    return targets
