"""The reviewer's decisions on a recording's AF episodes, kept in a JSON sidecar.

The sidecar (``RECORD.review.json``, next to the scan) holds the algorithm's episodes as
the scan found them (``algorithm_episodes``: the whole rhythm tiling, so that
``evaluate`` can score the algorithm), the episodes under review with their original and
current bounds, label and status, who decided and when, the sign-off, and a history of
every change. Each change is written atomically before it is acknowledged, so a crash or a
closed tab loses nothing; opening the sidecar again resumes.

The reviewed rhythm (:meth:`Adjudication.reviewed_episodes`) is the algorithm's tiling with
its AF episodes taken out (each takes the rhythm before it, else after it, else ``N``) and
the reviewed episodes that are not rejected laid over it in order; AF burden is its AF time
over the duration of the recording.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from afdetect import CLASSES
from afdetect.atomic import OutputError, write_json_atomic, write_text_atomic
from afdetect.errors import AfdetectError, InputError
from afdetect.io.json_file import read_json
from afdetect.monitor.episodes import Episode
from afdetect.monitor.report import ReviewMark
from afdetect.monitor.rhythm import write_rhythm_annotations, written_by_afdetect

FORMAT = "afdetect-review/1"
STATUSES = ("pending", "confirmed", "rejected", "relabelled", "added")
Action = Literal["confirm", "reject", "relabel", "bounds", "note", "add", "reset", "signoff"]
REVIEWED_EXTENSION = "rev"  # RECORD.rev: the reviewed rhythm annotations


class ChangeError(AfdetectError):
    """A change that cannot apply (unknown episode, bounds outside the recording, ...)."""


@dataclass
class ReviewedEpisode:
    """One episode under review, in seconds from the start of the recording.

    Attributes:
        id: ``a<n>`` for the algorithm's n-th AF episode, ``r<n>`` for one a reviewer added.
        label: current rhythm class (``A`` for AF; a relabelled episode carries another).
        start_s, end_s: current bounds.
        status: one of :data:`STATUSES`.
        original: the algorithm's ``{label, start_s, end_s}``, None for an added episode.
        note: the reviewer's free text.
        reviewed_by, reviewed_at: who made the last change and when (UTC, ISO 8601).
    """

    id: str
    label: str
    start_s: float
    end_s: float
    status: str = "pending"
    original: dict[str, Any] | None = None
    note: str = ""
    reviewed_by: str | None = None
    reviewed_at: str | None = None

    def counts_as_af(self) -> bool:
        return self.status != "rejected" and self.label == "A"


@dataclass
class Adjudication:
    """A recording's review; see the module docstring. Change it through :meth:`apply`."""

    path: Path
    record: str
    fs: float
    duration_s: float
    scan: str
    algorithm_episodes: list[Episode]
    episodes: list[ReviewedEpisode]
    signed_off: dict[str, str] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path, record: str, fs: float, duration_s: float,
             scan_entry: dict[str, Any], scan_path: str | Path) -> Adjudication:
        """Resume the review at ``path``, or start one from the scan's episodes.

        A sidecar that exists but cannot be read raises :class:`InputError` (it is never
        overwritten).
        """
        path = Path(path)
        if path.is_file():
            try:
                return cls.read(path, record)
            except InputError as exc:
                raise InputError(path, f"{exc.problem}; move it away to start the review "
                                       "afresh") from None
        algorithm = [Episode(e["label"], float(e["start_s"]), float(e["end_s"]))
                     for e in scan_entry["episodes"]]
        af = [e for e in algorithm if e.label == "A"]
        episodes = [ReviewedEpisode(f"a{i + 1}", "A", e.start_s, e.end_s,
                                    original=e.to_dict()) for i, e in enumerate(af)]
        return cls(path, record, float(fs), float(duration_s), Path(scan_path).name,
                   algorithm, episodes)

    @classmethod
    def read(cls, path: str | Path, record: str | None = None) -> Adjudication:
        """The review kept in sidecar ``path`` (which must be of ``record`` when given).

        Raises :class:`InputError` naming the file: missing, not JSON, not a review
        sidecar, of another record, or malformed.
        """
        path = Path(path)
        data = read_json(path, "review sidecar")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(path, f"not a review sidecar (no \"format\": \"{FORMAT}\"; "
                                   "`afdetect review` writes RECORD.review.json)")
        if record is not None and data.get("record") != record:
            raise InputError(path, f"the review of record {data.get('record')!r}, not of "
                                   f"{record!r}")
        problem = _shape_problem(data)
        if problem is None:
            try:
                review = cls(path, str(data["record"]), float(data["fs"]),
                             float(data["duration_s"]), str(data["scan"]),
                             [Episode(e["label"], float(e["start_s"]), float(e["end_s"]))
                              for e in data["algorithm_episodes"]],
                             [ReviewedEpisode(**e) for e in data["episodes"]],
                             data.get("signed_off"), list(data.get("history") or []))
                problem = review._problem()
            except (ValueError, TypeError) as exc:  # a number that is not one
                problem = f"a value of the wrong type ({str(exc).splitlines()[0]})"
        if problem:
            raise InputError(path, f"unreadable review sidecar ({problem})")
        return review

    def _problem(self) -> str | None:
        """What makes this review, as read, unusable, or None."""
        if not (math.isfinite(self.fs) and self.fs > 0 and math.isfinite(self.duration_s)
                and self.duration_s > 0):
            return "no sampling rate or duration"
        spans = [(e.label, e.start_s, e.end_s) for e in self.algorithm_episodes] + [
            (e.label, e.start_s, e.end_s) for e in self.episodes]
        if not all(label in CLASSES and 0 <= start <= end <= self.duration_s + 0.01
                   for label, start, end in spans):
            return "an episode with an unknown label or outside the recording"
        if not all(e.status in STATUSES for e in self.episodes):
            return f"an episode status not one of {', '.join(STATUSES)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "record": self.record, "fs": self.fs,
                "duration_s": self.duration_s, "scan": self.scan,
                "algorithm_episodes": [e.to_dict() for e in self.algorithm_episodes],
                "episodes": [asdict(e) for e in self.episodes],
                "signed_off": self.signed_off, "history": self.history}

    def save(self) -> None:
        write_json_atomic(self.path, self.to_dict())

    # --- the state the page shows -------------------------------------------------------

    def reviewed_episodes(self) -> list[Episode]:
        """The reviewed rhythm: episodes tiling ``[0, duration_s]`` (module docstring)."""
        base: list[Episode] = []
        for i, e in enumerate(self.algorithm_episodes):
            if e.label != "A":
                base.append(e)
                continue
            before = next((b.label for b in reversed(self.algorithm_episodes[:i])
                           if b.label != "A"), None)
            after = next((b.label for b in self.algorithm_episodes[i + 1:] if b.label != "A"),
                         None)
            base.append(Episode(before or after or "N", e.start_s, e.end_s))
        for item in self.episodes:
            if item.status != "rejected":
                base = _overlay(base, Episode(item.label, item.start_s, item.end_s))
        return _merged(base)

    @property
    def af_seconds(self) -> float:
        return sum(e.duration_s for e in self.reviewed_episodes() if e.label == "A")

    @property
    def af_burden(self) -> float:
        return self.af_seconds / self.duration_s if self.duration_s else 0.0

    @property
    def status(self) -> str:
        """``signed off``, ``not started``, or ``k of n reviewed``."""
        if self.signed_off:
            return "signed off"
        done = sum(e.status != "pending" for e in self.episodes)
        return "not started" if not done and not self.history else \
            f"{done} of {len(self.episodes)} reviewed"

    def summary(self) -> dict[str, Any]:
        return {"af_burden": round(self.af_burden, 6), "af_seconds": round(self.af_seconds, 3),
                "status": self.status, "signed_off": self.signed_off,
                "n_episodes": len(self.episodes),
                "n_pending": sum(e.status == "pending" for e in self.episodes)}

    def decisions(self) -> dict[str, int]:
        """The episodes under review by decision: ``confirmed`` (as the algorithm found
        it), ``with bounds edited`` (confirmed with its onset or offset moved),
        ``relabelled``, ``rejected``, ``added``, ``pending``."""
        out = dict.fromkeys(("confirmed", "with bounds edited", "relabelled", "rejected",
                             "added", "pending"), 0)
        for e in self.episodes:
            moved = e.original is not None and (e.start_s, e.end_s) != (
                e.original["start_s"], e.original["end_s"])
            out["with bounds edited" if e.status == "confirmed" and moved else e.status] += 1
        return out

    def mark(self) -> ReviewMark:
        """What the report of the reviewed recording says about the review."""
        reviewers = tuple(dict.fromkeys(str(h["by"]) for h in self.history))
        moments = [str(h["at"]) for h in self.history]
        signed = self.signed_off
        algorithm_af = sum(e.duration_s for e in self.algorithm_episodes if e.label == "A")
        return ReviewMark(reviewers, moments[0] if moments else None,
                          moments[-1] if moments else None,
                          (str(signed["by"]), str(signed["at"])) if signed else None,
                          self.decisions(),
                          algorithm_af / self.duration_s if self.duration_s else 0.0)

    def state(self) -> dict[str, Any]:
        """What the page draws: the episodes under review, the reviewed rhythm, totals."""
        return {**self.summary(), "episodes": [asdict(e) for e in self.episodes],
                "reviewed_episodes": [e.to_dict() for e in self.reviewed_episodes()],
                "history": self.history[-50:]}

    # --- changes --------------------------------------------------------------------------

    def apply(self, action: Action, reviewer: str, episode: str | None = None,
              label: str | None = None, start_s: float | None = None,
              end_s: float | None = None, note: str | None = None,
              now: datetime | None = None) -> ReviewedEpisode | None:
        """Apply one change by ``reviewer``, record it in the history and save.

        Raises :class:`ChangeError` (nothing changes) when the change does not fit.
        """
        reviewer = reviewer.strip()
        if not reviewer:
            raise ChangeError("a reviewer name is needed for every change")
        at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        if action == "signoff":
            self.signed_off = {"by": reviewer, "at": at}
            self.history.append({"at": at, "by": reviewer, "action": action})
            self.save()
            return None
        if action == "add":
            item = ReviewedEpisode(self._new_id(), label or "A", 0.0, 0.0, status="added",
                                   note=note or "")
            self._set_bounds(item, start_s, end_s, require=True)
            self._check_label(item.label)
            self.episodes.append(item)
            self.episodes.sort(key=lambda e: e.start_s)
        else:
            item = self._find(episode)
            before = asdict(item)
            if action == "confirm":
                item.status = "confirmed"
            elif action == "reject":
                item.status = "rejected"
            elif action == "relabel":
                self._check_label(label)
                item.label = str(label)
                item.status = "confirmed" if label == "A" else "relabelled"
            elif action == "bounds":
                self._set_bounds(item, start_s, end_s, require=False)
                item.status = "confirmed" if item.status == "pending" else item.status
            elif action == "note":
                item.note = (note or "").strip()
            elif action == "reset":
                if item.original is None:
                    raise ChangeError(f"episode {item.id} was added by a reviewer: reject it "
                                      "instead")
                item.label, item.start_s, item.end_s = (item.original["label"],
                                                        item.original["start_s"],
                                                        item.original["end_s"])
                item.status, item.note = "pending", ""
            else:
                raise ChangeError(f"unknown action {action!r}")
            if action != "note" and asdict(item) == before:
                return item  # nothing changed: no history entry, no write
        item.reviewed_by, item.reviewed_at = reviewer, at
        self.signed_off = None  # a change after sign-off needs a new sign-off
        self.history.append({"at": at, "by": reviewer, "action": action, "episode": item.id,
                             "label": item.label, "start_s": item.start_s, "end_s": item.end_s,
                             "status": item.status})
        self.save()
        return item

    def _find(self, episode: str | None) -> ReviewedEpisode:
        for item in self.episodes:
            if item.id == episode:
                return item
        raise ChangeError(f"no episode {episode!r} in record {self.record}")

    def _new_id(self) -> str:
        used = {e.id for e in self.episodes}
        n = 1
        while f"r{n}" in used:
            n += 1
        return f"r{n}"

    @staticmethod
    def _check_label(label: str | None) -> None:
        if label not in CLASSES:
            raise ChangeError(f"label must be one of {', '.join(CLASSES)}, not {label!r}")

    def _set_bounds(self, item: ReviewedEpisode, start_s: float | None, end_s: float | None,
                    require: bool) -> None:
        if require and (start_s is None or end_s is None):
            raise ChangeError("a new episode needs its onset and offset")
        start = item.start_s if start_s is None else float(start_s)
        end = item.end_s if end_s is None else float(end_s)
        if self.duration_s < end <= round(self.duration_s, 3):
            end = self.duration_s  # the end of the recording, rounded up to the millisecond
        if not 0 <= start < end <= self.duration_s:
            raise ChangeError(f"onset {start:.3f} s and offset {end:.3f} s must satisfy "
                              f"0 <= onset < offset <= {self.duration_s:.3f} s (the end "
                              "of the recording)")
        item.start_s, item.end_s = round(start, 3), round(end, 3)

    # --- exports --------------------------------------------------------------------------

    def export(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``RECORD.rev`` (WFDB rhythm annotations of the reviewed rhythm) and
        ``RECORD.reviewed.csv`` (the episodes under review with their decisions), both
        atomically, into ``out_dir``; return their paths. An existing ``RECORD.rev`` that
        afdetect did not write is never replaced (:class:`OutputError`)."""
        out = Path(out_dir)
        dest = out / f"{self.record}.{REVIEWED_EXTENSION}"
        if dest.is_file() and not written_by_afdetect(dest):  # someone else's annotations
            raise OutputError(dest, "exists and holds annotations afdetect did not write; "
                                    "nothing was exported")
        ann = write_rhythm_annotations(dest, self.reviewed_episodes(), self.fs)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        signed = self.signed_off or {}
        writer.writerow(["record", "episode", "label", "start_s", "end_s", "duration_s",
                         "status", "algorithm_start_s", "algorithm_end_s", "note",
                         "reviewed_by", "reviewed_at", "signed_off_by", "signed_off_at"])
        for e in self.episodes:
            original = e.original or {}
            writer.writerow([self.record, e.id, e.label, f"{e.start_s:.3f}", f"{e.end_s:.3f}",
                             f"{e.end_s - e.start_s:.3f}", e.status,
                             original.get("start_s", ""), original.get("end_s", ""), e.note,
                             e.reviewed_by or "", e.reviewed_at or "", signed.get("by", ""),
                             signed.get("at", "")])
        table = out / f"{self.record}.reviewed.csv"
        write_text_atomic(table, buffer.getvalue())
        return {"annotations": str(ann), "csv": str(table)}


def _shape_problem(data: dict[str, Any]) -> str | None:
    """The first field a sidecar's JSON lacks (or holds as the wrong kind), or None."""
    for key in ("record", "fs", "duration_s", "scan", "algorithm_episodes", "episodes"):
        if key not in data:
            return f"no {key!r}"
    for key, needed, allowed in (
            ("algorithm_episodes", {"label", "start_s", "end_s"}, {"label", "start_s", "end_s"}),
            ("episodes", {"id", "label", "start_s", "end_s"},
             {f.name for f in fields(ReviewedEpisode)})):
        if not isinstance(data[key], list):
            return f"{key!r} is not a list"
        for i, e in enumerate(data[key]):
            if not isinstance(e, dict) or not needed <= e.keys() or not e.keys() <= allowed:
                return (f"entry {i + 1} of {key!r} is not an episode with "
                        f"{', '.join(sorted(needed))}")
    for i, e in enumerate(data["episodes"]):
        original = e.get("original")
        if original is not None and not (isinstance(original, dict)
                                         and {"start_s", "end_s"} <= original.keys()):
            return f"episode {i + 1}'s 'original' has no start_s and end_s"
    signed, history = data.get("signed_off"), data.get("history") or []
    if signed is not None and not (isinstance(signed, dict) and {"by", "at"} <= signed.keys()):
        return "'signed_off' has no 'by' and 'at'"
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and {"by", "at"} <= h.keys() for h in history):
        return "'history' is not a list of changes with 'by' and 'at'"
    return None


def _overlay(tiling: list[Episode], top: Episode) -> list[Episode]:
    """``tiling`` with ``top`` laid over it (cut to the tiling's span)."""
    out = []
    for e in tiling:
        if e.end_s <= top.start_s or e.start_s >= top.end_s:
            out.append(e)
            continue
        if e.start_s < top.start_s:
            out.append(Episode(e.label, e.start_s, top.start_s))
        if e.end_s > top.end_s:
            out.append(Episode(e.label, top.end_s, e.end_s))
    out.append(top)
    return sorted(out, key=lambda e: e.start_s)


def _merged(tiling: list[Episode]) -> list[Episode]:
    """Neighbouring episodes of one label become one."""
    out: list[Episode] = []
    for e in tiling:
        if out and out[-1].label == e.label:
            out[-1] = Episode(e.label, out[-1].start_s, e.end_s)
        else:
            out.append(e)
    return out
