"""``afdetect evaluate --episodes --review``: a review's episodes scored against reference
rhythm annotations, as EC57 counts them.

A sidecar keeps two decisions on its recording: the algorithm's rhythm as the scan found it
(``algorithm``) and the reviewed rhythm (``reviewed``, :meth:`Adjudication.reviewed_episodes`).
Either becomes the rhythm marks its annotation file would hold (the scan's
``--annotations`` file, or the review's exported ``RECORD.rev``) and is compared with the
reference marks of the record by :func:`afdetect.monitor.ec57.compare_record`, so the
figures are those of scoring that file.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from afdetect.errors import InputError
from afdetect.io.records import open_stream
from afdetect.monitor.ec57 import Ec57Options, EpisodeCounts, compare_record, summarise_records
from afdetect.monitor.rhythm import episode_marks, read_rhythm_marks
from afdetect.review.adjudication import Adjudication
from afdetect.review.recordings import SIDECAR_SUFFIX

Decision = Literal["reviewed", "algorithm"]
DECISIONS: tuple[Decision, ...] = ("reviewed", "algorithm")


def sidecar_files(inputs: list[str | Path]) -> tuple[list[Path], list[InputError]]:
    """The sidecars named in ``inputs``: files as they are, folders by their
    ``*.review.json``; inputs that are neither are returned as failures."""
    files, failures = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(item.glob(f"*{SIDECAR_SUFFIX}"))
            if not found:
                failures.append(InputError(item, f"holds no review sidecars "
                                                 f"(*{SIDECAR_SUFFIX})"))
            files.extend(found)
        else:
            files.append(item)
    return files, failures


def review_counts(sidecar: str | Path, data: str | Path, annotator: str, decision: Decision,
                  options: Ec57Options) -> tuple[str, EpisodeCounts]:
    """(record name, EC57 counts) of ``decision`` in ``sidecar`` against the ``annotator``
    rhythm annotations of its record in folder ``data``.

    Raises :class:`InputError` naming the sidecar (unreadable, not a sidecar, its record
    not in ``data`` or of another length or rate) or the reference annotation file.
    """
    review = Adjudication.read(sidecar)
    header = Path(data) / f"{review.record}.hea"
    if not header.is_file():
        raise InputError(sidecar, f"the review of record {review.record!r}, which is not in "
                                  f"{data} (no {header.name})")
    stream = open_stream(header)
    if abs(stream.fs - review.fs) > 1e-6 or abs(stream.duration_s - review.duration_s) > 0.01:
        raise InputError(sidecar, f"the review of {review.record!r} ({review.duration_s:g} s "
                                  f"at {review.fs:g} Hz) does not match {header} "
                                  f"({stream.duration_s:g} s at {stream.fs:g} Hz)")
    reference = read_rhythm_marks(header, annotator)
    episodes = (review.reviewed_episodes() if decision == "reviewed"
                else review.algorithm_episodes)
    return review.record, compare_record(reference, episode_marks(episodes, stream.fs),
                                         stream.n_samples, stream.fs, options)


def review_report(inputs: list[str | Path], data: str | Path, annotator: str = "atr",
                  decision: Decision = "reviewed", options: Ec57Options | None = None
                  ) -> tuple[dict[str, Any] | None, list[InputError]]:
    """EC57 statistics and burden per record of ``decision`` over the sidecars in
    ``inputs`` (files or folders); None when none could be scored. Bad sidecars are
    returned, the others scored."""
    options = options or Ec57Options()
    files, failures = sidecar_files(inputs)
    counts: dict[str, EpisodeCounts] = {}
    for path in files:
        try:
            record, record_counts = review_counts(path, data, annotator, decision, options)
            if record in counts:
                raise InputError(path, f"a second review of record {record!r}: score each "
                                       "review on its own")
            counts[record] = record_counts
        except InputError as exc:
            failures.append(exc)
    if not counts:
        return None, failures
    return {**summarise_records(counts), "ec57": asdict(options)}, failures
