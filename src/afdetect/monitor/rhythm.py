"""WFDB rhythm annotations: reading reference rhythm intervals, writing detected ones.

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
from afdetect.monitor.episodes import Episode

AF_AUX = "(AFIB"
# Rhythm aux strings written for the model's classes; (AFIB and (N are the MIT-BIH codes.
AUX_OF_CLASS = {"N": "(N", "A": AF_AUX, "O": "(OTHER", "~": "(NOISE"}


@dataclass(frozen=True)
class RhythmInterval:
    """A reference rhythm, in seconds."""

    rhythm: str
    start_s: float
    end_s: float


def read_rhythm(record: str | Path, annotator: str, fs: float, duration_s: float
                ) -> list[RhythmInterval]:
    """Rhythm intervals of ``record.annotator``; the last lasts to the end of the record.

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
    intervals = []
    for i, (sample, rhythm) in enumerate(marks):
        end = marks[i + 1][0] / fs if i + 1 < len(marks) else duration_s
        intervals.append(RhythmInterval(rhythm, sample / fs, end))
    return intervals


def af_intervals(intervals: list[RhythmInterval]) -> list[tuple[float, float]]:
    """(start_s, end_s) of the ``(AFIB`` intervals."""
    return [(r.start_s, r.end_s) for r in intervals if r.rhythm == AF_AUX]


def write_rhythm_annotations(record: str, episodes: list[Episode], fs: float,
                             extension: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/record.extension``: one ``+`` annotation per episode start.

    Written in a temporary folder and moved into place, so a failure leaves no half file.
    wfdb writes only record names of letters, digits, ``-`` and ``_``; an annotation file
    holds no record name, so it is written under a stand-in and renamed (``my rec.v2``).
    """
    if not extension.isalnum():
        raise AfdetectError(f"--annotations {extension!r}: an annotator name is letters and "
                            "digits only")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{record}.{extension}"
    samples = np.array([round(e.start_s * fs) for e in episodes], dtype=np.int64)
    aux = [AUX_OF_CLASS[e.label] for e in episodes]
    with tempfile.TemporaryDirectory(dir=out, prefix=".afdetect-") as tmp:
        wfdb.wrann("record", extension, samples, symbol=["+"] * len(samples), aux_note=aux,
                   fs=fs, write_dir=tmp)
        shutil.move(str(Path(tmp) / f"record.{extension}"), dest)
    return dest
