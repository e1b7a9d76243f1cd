"""WFDB annotations: reading reference rhythm intervals, writing detected rhythms and beats.

A rhythm annotation is a ``+`` annotation whose ``aux_note`` names the rhythm that starts
there and lasts until the next one (``(N``, ``(AFIB``, ``(AFL``, ...), as in the MIT-BIH
databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from afdetect.atomic import atomic_path
from afdetect.errors import InputError
from afdetect.monitor.ec57 import AF_AUX, Mark
from afdetect.monitor.episodes import Episode

# Rhythm aux strings written for the model's classes; (AFIB and (N are the MIT-BIH codes.
AUX_OF_CLASS = {"N": "(N", "A": AF_AUX, "O": "(OTHER", "~": "(NOISE"}
BEATS_AUX = "afdetect beats"  # on the first beat of the beat files afdetect writes
_TEMP_RECORD, _TEMP_EXTENSION = "record", "ann"  # a name wfdb.wrann accepts, renamed after


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
    return rhythm_intervals(read_rhythm_marks(record, annotator), fs, duration_s)


def rhythm_intervals(marks: list[Mark], fs: float, duration_s: float
                     ) -> list[RhythmInterval]:
    """Time-ordered rhythm marks as intervals in seconds; the last lasts to ``duration_s``."""
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


def write_rhythm_annotations(dest: str | Path, episodes: list[Episode], fs: float) -> Path:
    """Write ``dest`` (``FOLDER/RECORD.EXT``): one ``+`` annotation per episode start, its
    aux the rhythm (``(AFIB``, ``(N``, ...), sample numbers at ``fs`` Hz; whole and
    verified, as :func:`write_annotations` writes (it raises ``OutputError``)."""
    marks = episode_marks(episodes, fs)
    return write_annotations(Path(dest), np.array([m[0] for m in marks], dtype=np.int64),
                             ["+"] * len(marks), fs, [m[1] for m in marks])


def write_beat_annotations(dest: str | Path, beats: np.ndarray, fs: float) -> Path:
    """Write ``dest`` (``FOLDER/RECORD.EXT``): a normal beat ``N`` at each of ``beats``
    (sample indices at ``fs`` Hz, (n_beats,)), as QRS detectors write them for ``bxb``.
    The first beat's aux note names afdetect, so that a re-run may replace the file and
    never another detector's."""
    samples = np.asarray(beats, dtype=np.int64)
    aux = [BEATS_AUX] + [""] * (len(samples) - 1) if len(samples) else []
    return write_annotations(Path(dest), samples, ["N"] * len(samples), fs, aux)


def write_annotations(dest: Path, samples: np.ndarray, symbols: list[str], fs: float,
                      aux: list[str]) -> Path:
    """``wfdb.wrann`` into ``dest``, whole and verified.

    wfdb writes under a letters-only temporary name (it accepts no digits in extensions
    and no spaces or dots in record names); the file is read back with ``wfdb.rdann`` and
    its samples, symbols and aux notes compared before it replaces ``dest``.

    Raises:
        OutputError: naming ``dest`` when it cannot be written whole; an existing ``dest``
            is then unchanged.
    """
    def reads_back(tmp: Path) -> None:
        try:
            ann = wfdb.rdann(str(tmp.with_suffix("")), tmp.suffix.lstrip("."))
        except Exception as exc:  # wfdb raises anything on a short file
            raise ValueError(f"unreadable ({type(exc).__name__})") from None
        if not (np.array_equal(ann.sample, samples) and list(ann.symbol) == symbols
                and [a.rstrip("\x00") for a in ann.aux_note or []] == aux):
            raise ValueError(f"{len(ann.sample)} of {len(samples)} annotations")

    with atomic_path(dest, reads_back, temp_name=f"{_TEMP_RECORD}.{_TEMP_EXTENSION}") as tmp:
        wfdb.wrann(_TEMP_RECORD, _TEMP_EXTENSION, samples, symbol=symbols, aux_note=aux,
                   fs=fs, write_dir=str(tmp.parent))
    return dest


def written_by_afdetect(path: str | Path) -> bool:
    """Whether annotation file ``path`` holds only what afdetect writes (``+`` marks with
    its rhythm aux notes, or ``N`` beats the first of which names afdetect), so that it
    may be replaced."""
    path = Path(path)
    try:
        ann = wfdb.rdann(str(path.with_suffix("")), path.suffix.lstrip("."))
    except Exception:  # not an annotation file at all
        return False
    aux = [(a or "").rstrip("\x00") for a in ann.aux_note or []]
    if set(ann.symbol) <= {"+"}:
        return set(aux) <= set(AUX_OF_CLASS.values())
    return set(ann.symbol) == {"N"} and aux[:1] == [BEATS_AUX] and not any(aux[1:])
