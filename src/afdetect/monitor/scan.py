"""``afdetect scan``: a recording of any length -> window decisions, episodes, AF burden.

Data flows one way, a chunk at a time, so memory does not grow with the recording:
:class:`~afdetect.io.records.SignalStream` (raw counts) -> :class:`IntegerFrontEnd`
(resample, baseline, scale, quantise) -> :class:`StreamingStack` (the conv blocks, once
over the recording) -> per-step class scores -> windows (sums of ``window_steps`` steps
every ``hop_steps``, plus one ending at the last step so that the tail is decided too)
-> :mod:`afdetect.monitor.episodes`, whose episodes tile the whole recording.

A window's logits are the classifier applied to the mean of the last block's columns in
it, exactly as a strip's are over the whole strip; the conv blocks just see the recording
around the window instead of zero padding. A model with RR features
(:mod:`afdetect.model.rr`) gets them from the R peaks the scan's beat detector found in
the window (:mod:`afdetect.monitor.rr_windows`), where a strip's come from its own detector pass.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
import torch
from tqdm import tqdm

from afdetect import CLASSES
from afdetect.clock import StartTime, span_of
from afdetect.compress.integer import IntegerModel, dense_weights
from afdetect.data.preprocess import MIN_FS, block_peak_to_peak, check_millivolts
from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import SignalStream, open_stream
from afdetect.model.cnn import AFNet
from afdetect.model.rr import N_FEATURES, SCALE_BITS
from afdetect.models import Classifier, CompressedClassifier, FloatClassifier, softmax
from afdetect.monitor.atrial import AtrialConfig, AtrialStream, coherence
from afdetect.monitor.beats import BeatStream
from afdetect.monitor.episodes import (
    AF,
    Episode,
    EpisodeRule,
    checked_probabilities,
    episodes_of,
    step_labels,
    step_probabilities,
)
from afdetect.monitor.frontend import FrontEndConfig, IntegerFrontEnd, resample_ratio
from afdetect.monitor.rate import HeartRate, as_heart_rate, hourly_trend, pooled_rate, span_rates
from afdetect.monitor.rr_windows import WindowRRStream
from afdetect.monitor.stack import StreamingStack, float_stack, integer_stack


@dataclass(frozen=True)
class ScanConfig:
    """Windows, chunking and the episode rule of a scan.

    Attributes:
        window_s: window length in seconds, rounded to whole model steps.
        hop_s: seconds between window starts, rounded to whole model steps; at most
            ``window_s``, so that every part of the recording is seen.
        chunk_s: seconds of recording read at a time (bounds memory).
        frontend: streaming normalisation.
        rule: how windows become episodes.
        atrial: where the atrial check reads the activity before each QRS.
    """

    window_s: float = 30.0
    hop_s: float = 10.0
    chunk_s: float = 150.0
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    rule: EpisodeRule = field(default_factory=EpisodeRule)
    atrial: AtrialConfig = field(default_factory=AtrialConfig)

    def __post_init__(self) -> None:
        lengths = (self.window_s, self.hop_s, self.chunk_s)
        if not all(np.isfinite(v) and v > 0 for v in lengths):
            raise ValueError("window, hop and chunk lengths must be positive seconds")
        if self.hop_s > self.window_s:
            raise ValueError(f"the hop ({self.hop_s:g} s) is longer than the window "
                             f"({self.window_s:g} s): parts of the recording would go unseen")


class StepModel(Protocol):
    """What a scan needs from a model: the conv blocks as a stream, and the classifier
    split into a per-step score and a per-window finish."""

    @property
    def name(self) -> str: ...

    @property
    def fs(self) -> int: ...

    @property
    def downsampling(self) -> int: ...

    @property
    def input_frac(self) -> int: ...

    @property
    def input_bits(self) -> int: ...

    def stack(self) -> StreamingStack: ...

    @property
    def has_rr(self) -> bool:
        """Whether the classifier also reads RR features (:mod:`afdetect.model.rr`)."""
        ...

    def step_scores(self, columns: torch.Tensor) -> np.ndarray:
        """(c_last, n_steps) columns -> (n_steps, n_classes) additive class scores."""
        ...

    def window_logits(self, sums: np.ndarray, n_steps: int,
                      rr: np.ndarray | None = None) -> np.ndarray:
        """(n_windows, n_classes) score sums over ``n_steps`` steps, and for a model with
        RR features their integers (n_windows, N_FEATURES), -> float logits."""
        ...


@dataclass
class IntegerStepModel:
    """The compressed model: integer scores; window logits ``sum + bias * T``."""

    name: str
    model: IntegerModel
    fs: int

    @property
    def downsampling(self) -> int:
        return self.model.convs[0].stride * 2 ** len(self.model.convs)

    @property
    def input_frac(self) -> int:
        return self.model.input_frac

    @property
    def input_bits(self) -> int:
        return self.model.input_bits

    @property
    def has_rr(self) -> bool:
        return self.model.rr is not None

    def stack(self) -> StreamingStack:
        return integer_stack(self.model)

    @cached_property
    def _classifier_weights(self) -> np.ndarray:
        return dense_weights(self.model.classifier)[:, :, 0].astype(np.int64)

    def step_scores(self, columns: torch.Tensor) -> np.ndarray:
        weights = self._classifier_weights[:, :len(columns)]  # the RR columns come later
        # on the classifier's input grid, as a strip's sums (finer with RR features)
        shift = self.model.classifier.in_frac - self.model.convs[-1].out_frac
        return (weights @ (columns.numpy().astype(np.int64) << shift)).T

    def integer_logits(self, sums: np.ndarray, n_steps: int,
                       rr: np.ndarray | None = None) -> np.ndarray:
        """The C engine's window logits: int64 (n_windows, n_classes). The RR features
        enter as a strip's do (:meth:`IntegerModel.classifier_columns`): ``f * T`` on the
        classifier's input grid."""
        logits = sums + self.model.classifier.bias[None, :] * n_steps
        if self.has_rr:
            if rr is None:
                raise ValueError(f"{self.name} reads RR features: pass them")
            shift = self.model.classifier.in_frac - SCALE_BITS
            columns = (np.asarray(rr, dtype=np.int64) * n_steps) << shift
            logits = logits + columns @ self._classifier_weights[:, -N_FEATURES:].T
        return logits

    def window_logits(self, sums: np.ndarray, n_steps: int,
                      rr: np.ndarray | None = None) -> np.ndarray:
        return self.integer_logits(sums, n_steps, rr) * self.model.logit_scale(n_steps)


@dataclass
class FloatStepModel:
    """A float network on the same front end (its input is ``d / 2^k`` unquantised)."""

    name: str
    network: AFNet
    fs: int
    input_frac: int = 16
    input_bits: int = 40

    @property
    def downsampling(self) -> int:
        return self.network.config.downsampling

    @property
    def has_rr(self) -> bool:
        return self.network.config.rr is not None

    def stack(self) -> StreamingStack:
        return float_stack(self.network)

    @cached_property
    def _weight(self) -> np.ndarray:
        return self.network.classifier.weight.detach().double().numpy()

    def step_scores(self, columns: torch.Tensor) -> np.ndarray:
        return (self._weight[:, :len(columns)] @ columns.double().numpy()).T

    def window_logits(self, sums: np.ndarray, n_steps: int,
                      rr: np.ndarray | None = None) -> np.ndarray:
        bias = self.network.classifier.bias.detach().double().numpy()
        logits = sums / n_steps + bias[None, :]
        if self.has_rr:
            if rr is None:
                raise ValueError(f"{self.name} reads RR features: pass them")
            features = np.asarray(rr, dtype=np.float64) / 2.0 ** SCALE_BITS
            logits = logits + features @ self._weight[:, -N_FEATURES:].T
        return logits


def step_model(classifier: Classifier) -> IntegerStepModel | FloatStepModel:
    """The scan view of a loaded model."""
    fs = int(classifier.preprocess.fs)
    if isinstance(classifier, CompressedClassifier):
        steps: IntegerStepModel | FloatStepModel = IntegerStepModel(
            classifier.name, classifier.model, fs)
    elif isinstance(classifier, FloatClassifier):
        steps = FloatStepModel(classifier.name, classifier.model.network, fs)
        if classifier.model.network.config.pooling != "mean":  # a window is a sum of steps
            raise AfdetectError(f"{classifier.name}: models with "
                                f"{classifier.model.network.config.pooling} pooling classify "
                                "strips; scanning long recordings with them is not supported")
    else:
        raise TypeError(f"cannot scan with {type(classifier).__name__}")
    return steps


@dataclass
class RecordingScan:
    """What a scan found in one recording.

    Attributes:
        window_starts: (n_windows,) first model step of each window.
        window_steps: steps per window; ``step_s`` seconds per step.
        probabilities: (n_windows, n_classes) the network's window class probabilities.
        integer_logits: (n_windows, n_classes) int64 for the compressed model, else None.
        atrial_terms: (n_windows, 2) int64 terms of the atrial check
            (:mod:`afdetect.monitor.atrial`); :attr:`atrial_coherence` gives the ratio
            (NaN where fewer than ``min_beats`` beats, or only flat stretches, were seen).
        rule: the episode rule that made ``steps`` and ``episodes``.
        steps: (n_steps, n_classes) mean probabilities per step after the atrial check
            (see episodes).
        episodes: rhythm episodes, in order, from 0 to ``duration_s``.
        n_samples: samples in the recording, at ``fs``.
        start: when the recording started (clock time), or None when unknown; from it the
            JSON gives the recording's ``start_time`` and each episode's and window's
            ``start_time``/``end_time`` (ISO 8601, null when unknown).
        beats: (n_beats,) int64 sample indices (at ``fs``) of the detected R peaks.
    """

    record: str
    source: str
    fs: float
    n_samples: int
    duration_s: float
    lead: str
    step_s: float
    window_starts: np.ndarray
    window_steps: int
    probabilities: np.ndarray
    integer_logits: np.ndarray | None
    atrial_terms: np.ndarray
    rule: EpisodeRule
    steps: np.ndarray
    episodes: list[Episode]
    start: StartTime | None = None
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def window_s(self) -> float:
        """The window length used, in seconds (whole model steps)."""
        return self.window_steps * self.step_s

    @property
    def covered_s(self) -> float:
        """Seconds the model's steps cover (the rest, under two steps, takes the last
        decision)."""
        return len(self.steps) * self.step_s

    @property
    def af_seconds(self) -> float:
        return sum(e.duration_s for e in self.episodes if e.label == "A")

    @property
    def af_burden(self) -> float:
        """AF time over the duration of the recording."""
        return self.af_seconds / self.duration_s if self.duration_s else 0.0

    @property
    def atrial_coherence(self) -> np.ndarray:
        """(n_windows,) coherence of the activity before the QRS complexes, in [0, 1];
        NaN where a window holds too few beats to tell (or only flat stretches)."""
        return coherence(self.atrial_terms)

    @property
    def checked_probabilities(self) -> np.ndarray:
        """(n_windows, n_classes) window probabilities after the atrial check (what the
        episodes are made of)."""
        return checked_probabilities(self.probabilities, self.atrial_terms, self.rule)

    @property
    def window_labels(self) -> np.ndarray:
        """(n_windows,) class index of each window after the atrial check."""
        return self.checked_probabilities.argmax(axis=1)

    def af_episodes(self) -> list[Episode]:
        return [e for e in self.episodes if e.label == "A"]

    def window_rates(self) -> np.ndarray:
        """(n_windows, 3) heart rate min, mean, max per window (NaN: under 2 beats)."""
        starts = np.round(self.window_starts * self.step_s * self.fs)
        ends = np.round((self.window_starts + self.window_steps) * self.step_s * self.fs)
        return span_rates(self.beats, self.fs, starts, ends)

    def episode_rates(self, episodes: list[Episode] | None = None) -> np.ndarray:
        """(n_episodes, 3) heart rate min, mean, max per episode (NaN: under 2 beats)."""
        episodes = self.episodes if episodes is None else episodes
        starts, ends = self._sample_spans(episodes)
        return span_rates(self.beats, self.fs, starts, ends)

    def heart_rate(self, label: str | None = None, exclude: bool = False
                   ) -> HeartRate | None:
        """Heart rate over the whole recording, over the episodes labelled ``label``, or
        with ``exclude`` over all the others (``heart_rate("A", exclude=True)``: non-AF)."""
        chosen = [e for e in self.episodes
                  if label is None or (e.label == label) != exclude]
        starts, ends = self._sample_spans(chosen)
        return pooled_rate(self.beats, self.fs, starts, ends)

    def hourly(self) -> list[dict[str, Any]]:
        """AF burden and heart rate per hour from the start (see
        :func:`afdetect.monitor.rate.hourly_trend`)."""
        return hourly_trend(self.beats, self.fs, self.n_samples,
                            [(e.start_s, e.end_s) for e in self.af_episodes()])

    def _sample_spans(self, episodes: list[Episode]) -> tuple[np.ndarray, np.ndarray]:
        starts = np.array([round(e.start_s * self.fs) for e in episodes], dtype=np.int64)
        ends = np.array([round(e.end_s * self.fs) for e in episodes], dtype=np.int64)
        return starts, ends

    def to_dict(self, windows: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "record": self.record, "source": self.source, "fs": self.fs,
            "duration_s": round(self.duration_s, 3), "lead": self.lead,
            "start_time": self.start.iso() if self.start else None,
            "covered_s": round(self.covered_s, 3),
            "af_burden": round(self.af_burden, 6), "af_seconds": round(self.af_seconds, 3),
            "n_beats": len(self.beats), "heart_rate_bpm": self.heart_rate(),
            "heart_rate_af_bpm": self.heart_rate("A"),
            "heart_rate_non_af_bpm": self.heart_rate("A", exclude=True),
            "episodes": [{**e.to_dict(), **span_of(self.start, e.start_s, e.end_s),
                          "heart_rate_bpm": as_heart_rate(r)}
                         for e, r in zip(self.episodes, self.episode_rates(), strict=True)],
            "hourly": self.hourly(),
        }
        if windows:
            out["windows"] = list(self.window_dicts())
        return out

    def window_dicts(self) -> Iterator[dict[str, Any]]:
        """Each window as the JSON gives it, one at a time (a day holds 8,640)."""
        checked = self.checked_probabilities
        for s, p, checked_p, ratio, r in zip(self.window_starts, self.probabilities,
                                             checked, self.atrial_coherence,
                                             self.window_rates(), strict=True):
            start_s, end_s = float(s) * self.step_s, float(s + self.window_steps) * self.step_s
            yield {"start_s": round(start_s, 3), "end_s": round(end_s, 3),
                   **span_of(self.start, start_s, end_s),
                   "label": CLASSES[int(checked_p.argmax())],
                   "probabilities": {c: round(float(v), 6)
                                     for c, v in zip(CLASSES, p, strict=True)},
                   "atrial_coherence": None if np.isnan(ratio) else round(float(ratio), 4),
                   "atrial_organised": bool(checked_p[AF] == 0 and p[AF] > 0),
                   "heart_rate_bpm": as_heart_rate(r)}


def scan_header(model: StepModel, config: ScanConfig) -> dict[str, Any]:
    """The top of the ``scan --json`` document: the model, its output step, the window and
    hop as used (whole model steps; all in seconds) and the episode rule."""
    window_s, hop_s = window_seconds(model, config)
    return {"model": model.name, "step_s": round(model.downsampling / model.fs, 9),
            "window_s": round(window_s, 6), "hop_s": round(hop_s, 6),
            "rule": config.rule.to_dict()}


def write_scan_json(out: TextIO, header: dict[str, Any], scans: list[RecordingScan],
                    errors: list[str]) -> None:
    """Write the ``scan --json`` document (``header``, then ``recordings`` and ``errors``)
    to ``out``, a window per line, so that memory does not grow with the recording's
    length (a whole-document string of 14 days is over 200 MB)."""
    out.write(json.dumps(header)[:-1] + ', "recordings": [')
    for i, scan in enumerate(scans):
        recording = json.dumps(scan.to_dict(windows=False))
        out.write(("," if i else "") + "\n" + recording[:-1] + ', "windows": [')
        for j, window in enumerate(scan.window_dicts()):
            out.write(("," if j else "") + "\n" + json.dumps(window))
        out.write("]}")
    out.write('],\n"errors": ' + json.dumps(errors) + "}\n")


def window_geometry(config: ScanConfig, step_s: float) -> tuple[int, int]:
    """(window_steps, hop_steps): the window and hop rounded to whole steps (at least 1)."""
    window = max(1, round(config.window_s / step_s))
    return window, min(window, max(1, round(config.hop_s / step_s)))


def window_seconds(model: StepModel, config: ScanConfig) -> tuple[float, float]:
    """(window_s, hop_s) as a scan with ``model`` uses them (whole model steps)."""
    step_s = model.downsampling / model.fs
    window_steps, hop_steps = window_geometry(config, step_s)
    return window_steps * step_s, hop_steps * step_s


def step_scores_of(model: StepModel, stream: SignalStream, config: ScanConfig,
                   progress: bool = False, beats: BeatStream | None = None,
                   atrial: AtrialStream | None = None, rr: WindowRRStream | None = None
                   ) -> np.ndarray:
    """Per-step class scores (n_steps, n_classes) over the whole stream, chunk by chunk;
    ``beats``, when given, is pushed the same front-end output, and ``atrial`` and ``rr``
    (which need ``beats``) the beats found in it (``atrial`` that output too)."""
    if stream.fs < MIN_FS:
        raise InputError(stream.source, f"sampling rate {stream.fs:g} Hz is below the "
                                        f"{MIN_FS:g} Hz an ECG classifier needs")
    front = IntegerFrontEnd(stream.fs, model.fs, model.input_frac, model.input_bits,
                            config.frontend)
    stack = model.stack()
    scale = 2.0 ** -model.input_frac if isinstance(model, FloatStepModel) else 1.0
    chunk = max(1, int(config.chunk_s * stream.fs))
    # One array filled in place, not a list of per-chunk arrays: thousands of small
    # long-lived blocks between the chunks' large temporaries fragment the heap, and the
    # process then grows with the recording (to 0.8 GB at 24 h) though little is live.
    # The front end emits at most ceil(n q / p) samples, the stack at most one step per
    # `downsampling` of them plus one (each block's left padding is under its kernel).
    n_model = -(-stream.n_samples * front.q // front.p)
    scores = np.zeros((n_model // model.downsampling + 1, len(CLASSES)),
                      dtype=np.float64 if isinstance(model, FloatStepModel) else np.int64)
    n_steps, low, high, spans = 0, None, None, []
    for counts in tqdm(stream.chunks(chunk), total=-(-stream.n_samples // chunk),
                       desc=f"scanning {stream.name}", unit="chunk", disable=not progress,
                       leave=False):
        low = counts.min() if low is None else min(low, counts.min())
        high = counts.max() if high is None else max(high, counts.max())
        # the median 2-s peak-to-peak of each chunk (one number: a list of per-chunk arrays
        # would grow with the recording)
        spans.append(float(np.median(block_peak_to_peak(counts, stream.fs))))
        if len(spans) == 1:  # a wrong unit shows in the first chunk: refuse it early
            check_millivolts(stream.source, spans[0] / stream.counts_per_mv)
        q = front.push(counts)
        new = model.step_scores(stack.push(q * scale if scale != 1.0 else q))
        scores[n_steps:n_steps + len(new)] = new
        n_steps += len(new)
        if beats is not None:
            peaks = beats.push_model(q)
            # windows past the steps emitted may not exist
            known = min(beats.final_through, n_steps * model.downsampling)
            if atrial is not None:
                atrial.push(q, peaks, known)
            if rr is not None:
                rr.push(peaks, known)
    if high is None or low is None or (high - low) / stream.counts_per_mv < 0.05:
        raise InputError(stream.source, "flat line: no signal in the whole recording (or "
                                        "values in volts rather than mV)")
    check_millivolts(stream.source, float(np.median(spans)) / stream.counts_per_mv)
    return scores[:n_steps]


def window_sums(scores: np.ndarray, starts: np.ndarray, window_steps: int) -> np.ndarray:
    """(n_windows, n_classes) sums of ``scores`` (n_steps, n_classes) over ``window_steps``
    steps from each of ``starts``, through one running sum (cumulated in place: per-step
    arrays are what grows with the recording, 23 MB each at 14 days)."""
    csum = np.zeros((len(scores) + 1, scores.shape[1]), dtype=scores.dtype)
    np.cumsum(scores, axis=0, out=csum[1:])
    return csum[starts + window_steps] - csum[starts]


def scan_stream(model: StepModel, stream: SignalStream, config: ScanConfig | None = None,
                progress: bool = False) -> RecordingScan:
    """Scan one opened recording; see the module docstring."""
    config = config or ScanConfig()
    step_s = model.downsampling / model.fs
    window_steps, hop_steps = window_geometry(config, step_s)
    min_s = window_steps * step_s + 1.5 * config.frontend.block / model.fs
    if stream.duration_s < min_s:
        raise InputError(stream.source, f"too short to scan: {stream.duration_s:.1f} s; "
                                        f"one {window_steps * step_s:.1f}-s window needs "
                                        f"{min_s:.1f} s (use `afdetect predict` for strips)")
    beats = BeatStream(*resample_ratio(stream.fs, model.fs))
    rr = beats.config.rr
    atrial = AtrialStream(replace(config.atrial, fs=model.fs), model.downsampling,
                          window_steps, hop_steps,
                          lead_steps=-(-model.stack().lag // model.downsampling) + 1,
                          final_lag=rr.segment + rr.refractory + rr.integrate + 4)
    rr_windows = (WindowRRStream(window_steps, hop_steps, model.downsampling, model.fs)
                  if model.has_rr else None)
    scores = step_scores_of(model, stream, config, progress, beats, atrial, rr_windows)
    last_peaks = beats.finish_model()
    starts = np.arange(0, len(scores) - window_steps + 1, hop_steps)
    if starts[-1] + window_steps < len(scores):  # the tail gets a window of its own
        starts = np.append(starts, len(scores) - window_steps)
    sums = window_sums(scores, starts, window_steps)
    del scores  # per-step arrays are what grows with the length: free each once used
    features = rr_windows.finish(last_peaks, starts) if rr_windows is not None else None
    integer = (model.integer_logits(sums, window_steps, features)
               if isinstance(model, IntegerStepModel) else None)
    probabilities = softmax(model.window_logits(sums, window_steps, features
                                                ).astype(np.float64))
    scan = RecordingScan(stream.name, stream.source, stream.fs, stream.n_samples,
                         stream.duration_s, stream.lead, step_s, starts, window_steps,
                         probabilities, integer, atrial.finish(last_peaks, starts),
                         config.rule, np.zeros((0, len(CLASSES))), [], stream.start,
                         beats.beats())
    return relabel(scan, config.rule)


def relabel(scan: RecordingScan, rule: EpisodeRule) -> RecordingScan:
    """The same windows under another episode rule (no re-scan)."""
    checked = checked_probabilities(scan.probabilities, scan.atrial_terms, rule)
    steps = step_probabilities(scan.window_starts, scan.window_steps, checked)
    labels = step_labels(steps, scan.step_s, rule)
    return replace(scan, rule=rule, steps=steps,
                   episodes=episodes_of(labels, scan.step_s, scan.duration_s))


def scan_files(model: StepModel, inputs: list[str | Path], config: ScanConfig | None = None,
               *, fs: float | None = None, lead: str | int = 0, progress: bool = False,
               start: StartTime | None = None
               ) -> tuple[list[RecordingScan], list[InputError]]:
    """Scan every recording in ``inputs`` (files or folders); bad files are returned.

    ``start``, when given, is the clock time at which every recording started, in place
    of what the files say (CSV and ``.npy`` say nothing)."""
    from afdetect.predict import expand_inputs

    scans: list[RecordingScan] = []
    files, failures = expand_inputs(inputs)
    for path in tqdm(files, desc="recordings", unit="rec", disable=not progress or len(files) < 2):
        try:
            stream = open_stream(path, fs=fs, lead=lead)
            if start is not None:
                stream = replace(stream, start=start)
            scans.append(scan_stream(model, stream, config, progress))
        except InputError as exc:
            failures.append(exc if exc.path == str(path) else InputError(path, exc.problem))
    return scans, failures



def episodes_table(scans: list[RecordingScan]) -> str:
    """The episodes of ``scans`` as CSV text: record, label, start_s, end_s, duration_s,
    start_time, end_time (the clock times empty when the start is unknown)."""
    from afdetect.clock import span_of

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record", "label", "start_s", "end_s", "duration_s", "start_time",
                     "end_time"])
    for scan in scans:
        for e in scan.episodes:
            clock = span_of(scan.start, e.start_s, e.end_s)
            writer.writerow([scan.record, e.label, f"{e.start_s:.3f}", f"{e.end_s:.3f}",
                             f"{e.duration_s:.3f}", clock["start_time"] or "",
                             clock["end_time"] or ""])
    return buffer.getvalue()
