"""WFDB annotations: reading reference rhythm intervals, writing detected rhythms and beats.

A rhythm annotation is a ``+`` annotation whose ``aux_note`` names the rhythm that starts
there and lasts until the next one (``(N``, ``(AFIB``, ``(AFL``, ...), as in the MIT-BIH
databases.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from afdetect.errors import AfdetectError, InputError
from afdetect.monitor.ec57 import AF_AUX, Mark
from afdetect.monitor.episodes import Episode

# Rhythm aux strings written for the model's classes; (AFIB and (N are the MIT-BIH codes.
AUX_OF_CLASS = {"N": "(N", "A": AF_AUX, "O": "(OTHER", "~": "(NOISE"}


@dataclass(frozen=True)
class RhythmInterval:
    """A reference rhythm, in seconds."""

    rhythm: str
    start_s: float
    end_s: float


def read_rhythm_marks(record: str | Path, annotator: str) -> list[Mark]:
    """Time-ordered ``(sample, aux)`` of the ``+`` rhythm annotations of ``record.annotator``.

    Raises :class:`InputError` naming the record when the file is missing, unreadable or
    holds no rhythm annotations.
    """
    base = Path(record)
    base = base.with_suffix("") if base.suffix.lower() in (".hea", ".dat", ".mat") else base
    path = base.with_name(f"{base.name}.{annotator}")
    if not path.is_file():
        raise InputError(base, f"no rhythm annotations: {path.name} does not exist")
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise InputError(path, f"unreadable annotation file ({str(exc).splitlines()[0]})"
                         ) from None
    marks = [(int(s), (aux or "").strip("\x00 ").strip())
             for s, sym, aux in zip(ann.sample, ann.symbol, ann.aux_note or [], strict=False)
             if sym == "+" and (aux or "").startswith("(")]
    if not marks:
        raise InputError(path, "holds no rhythm annotations ('+' with an aux such as (N)")
    return sorted(marks, key=lambda m: m[0])


def read_rhythm(record: str | Path, annotator: str, fs: float, duration_s: float
                ) -> list[RhythmInterval]:
    """Rhythm intervals of ``record.annotator`` in seconds; the last lasts to the end."""
    marks = read_rhythm_marks(record, annotator)
    intervals = []
    for i, (sample, rhythm) in enumerate(marks):
        end = marks[i + 1][0] / fs if i + 1 < len(marks) else duration_s
        intervals.append(RhythmInterval(rhythm, sample / fs, end))
    return intervals


def episode_marks(episodes: list[Episode], fs: float) -> list[Mark]:
    """The rhythm marks that describe ``episodes``: one at each episode's first sample.

    The annotation file holds exactly these, and ``evaluate`` scores exactly these, so the
    two always describe the same detection; the last episode lasts to the end of the
    record, as a reader of the file takes it.
    """
    return [(round(e.start_s * fs), AUX_OF_CLASS[e.label]) for e in episodes]


def af_intervals(intervals: list[RhythmInterval]) -> list[tuple[float, float]]:
    """(start_s, end_s) of the ``(AFIB`` intervals."""
    return [(r.start_s, r.end_s) for r in intervals if r.rhythm == AF_AUX]


def write_rhythm_annotations(record: str, episodes: list[Episode], fs: float,
                             extension: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/record.extension``: one ``+`` annotation per episode start.

    Written in a temporary folder and moved into place, so a failure leaves no half file.
    """
    marks = episode_marks(episodes, fs)
    samples = np.array([m[0] for m in marks], dtype=np.int64)
    return write_annotations(record, extension, out_dir, samples, ["+"] * len(samples), fs,
                             aux_note=[m[1] for m in marks])


def write_beat_annotations(record: str, beats: np.ndarray, fs: float, extension: str,
                           out_dir: str | Path) -> Path:
    """Write ``out_dir/record.extension``: a normal beat ``N`` at each of ``beats``
    (sample indices, (n_beats,)), as QRS detectors write them for ``bxb``."""
    samples = np.asarray(beats, dtype=np.int64)
    return write_annotations(record, extension, out_dir, samples, ["N"] * len(samples), fs)


def write_annotations(record: str, extension: str, out_dir: str | Path, samples: np.ndarray,
                      symbols: list[str], fs: float, aux_note: list[str] | None = None
                      ) -> Path:
    """``wfdb.wrann`` into ``out_dir/record.extension``, written in a temporary folder and
    moved into place, so a failure leaves no half file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{record}.{extension}"
    with tempfile.TemporaryDirectory(dir=out, prefix=".afdetect-") as tmp:
        # an annotation file does not hold its record's name: write it under a name wfdb
        # accepts and move it to the record's (a file name may hold spaces, dots, ...)
        try:
            wfdb.wrann("record", extension, samples, symbol=symbols, aux_note=aux_note,
                       fs=fs, write_dir=tmp)
        except ValueError as exc:  # wfdb's own checks, such as the annotator's name
            raise AfdetectError(f"{dest}: cannot write WFDB annotations ({exc})") from None
        shutil.move(str(Path(tmp) / f"record.{extension}"), dest)
    return dest
