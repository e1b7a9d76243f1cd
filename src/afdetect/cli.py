"""The ``afdetect`` command: argument parsing only; every command calls the library."""

from __future__ import annotations

import sys

INTERRUPTED = "afdetect: interrupted; outputs not yet written are absent, the others are complete"

try:  # Ctrl-C while the command starts up: one line, exit 130, as in main()
    import argparse
    import csv
    import io
    import json
    import math
    import signal
    from collections.abc import Sequence
    from pathlib import Path
    from typing import TYPE_CHECKING, Any

    from afdetect import CLASSES, __version__
    from afdetect.errors import AfdetectError
except KeyboardInterrupt:
    print(INTERRUPTED, file=sys.stderr)
    raise SystemExit(130) from None

if TYPE_CHECKING:  # the CLI imports torch-backed modules only inside commands
    from afdetect.train import FitConfig


def main(argv: Sequence[str] | None = None) -> int:
    interrupts: list[int] = []
    previous = _note_interrupts(interrupts)
    try:  # from the very top: Ctrl-C while the parser or a command imports is one line too
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except AfdetectError as exc:
        print(f"afdetect: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # every output write names its file (OutputError); this is a read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"afdetect: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except ImportError:  # Ctrl-C inside an extension's import comes out as an ImportError
        if not interrupts:
            raise
        print(INTERRUPTED, file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _note_interrupts(interrupts: list[int]) -> Any:
    """Make SIGINT append to ``interrupts`` before raising KeyboardInterrupt as usual, so
    an import that turns it into another error is still known as interrupted; returns the
    handler to restore (None off the main thread, where signals cannot be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupted(signum: int, frame: Any) -> None:
        interrupts.append(signum)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, interrupted)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afdetect", description="Atrial fibrillation detection in single-lead ECG.")
    parser.add_argument("--version", action="version", version=f"afdetect {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="classify recordings (files or folders)")
    _recording_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="draw the trace with its verdict (one file per recording if several)")
    p.set_defaults(run=_predict)

    p = sub.add_parser("scan", help="monitor long recordings: AF episodes and AF burden")
    _recording_options(p)
    _scan_options(p)
    p.add_argument("--json", action="store_true", help="print JSON (with every window)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the episodes as CSV")
    p.add_argument("--annotations", metavar="EXT",
                   help="write WFDB rhythm annotations RECORD.EXT (see --annotations-dir)")
    p.add_argument("--annotations-dir", type=Path, metavar="DIR", default=Path("."),
                   help="folder for --annotations (default: the current folder)")
    p.add_argument("--beats", metavar="EXT",
                   help="write the detected beats as WFDB beat annotations RECORD.EXT "
                        "(see --annotations-dir)")
    p.add_argument("--reference", default="atr", metavar="EXT",
                   help="reference rhythm annotator drawn by --plot when present (default atr)")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="draw the timeline and episode onsets (FILE_<record>.png if several)")
    p.add_argument("--start", metavar="ISO",
                   help="clock time at which the recording started, ISO 8601 local time "
                        "(2020-01-02T17:42:40, or 17:42:40 for a time of day): for CSV/.npy "
                        "input, or in place of the file's own")
    _cohort_options(p)
    p.add_argument("--report", nargs="?", const="", metavar="FILE.pdf",
                   help="write a printable AF report (with several recordings FILE is a "
                        "folder holding RECORD.pdf for each; with --out, no FILE: each "
                        "recording's NAME.report.pdf)")
    p.set_defaults(run=_scan)

    p = sub.add_parser("review", help="check detected AF episodes on the trace in the "
                                      "browser, adjudicate them and sign off")
    _recording_options(p)
    _scan_options(p)
    _review_options(p)
    p.set_defaults(run=_review)

    p = sub.add_parser("evaluate", help="score a model on a labelled dataset folder")
    p.add_argument("--data", required=True, type=Path, help="CinC 2017 style dataset folder, "
                   "or with --episodes a folder of WFDB records with rhythm annotations")
    _model_option(p)
    p.add_argument("--episodes", action="store_true",
                   help="scan long records and score AF episodes (EC57) against annotations")
    p.add_argument("--annotator", default="atr",
                   help="reference annotation extension for --episodes (default atr)")
    _scan_options(p)
    p.add_argument("--compare-from", type=float, default=0.0, metavar="S",
                   help="with --episodes: start the EC57 comparison S seconds into each "
                        "record, like epicmp -f (default 0; EC57's learning period is 300)")
    p.add_argument("--exclude-flutter", action="store_true",
                   help="with --episodes: cut reference atrial flutter out of the detections "
                        "for the positive predictivities, like epicmp -x")
    p.add_argument("--review", nargs="+", type=Path, metavar="SIDECAR_OR_DIR",
                   help="with --episodes: score these `afdetect review` sidecars "
                        "(RECORD.review.json, or folders of them) instead of scanning; each "
                        "record's reference annotations are in --data")
    p.add_argument("--decision", choices=("reviewed", "algorithm"), default="reviewed",
                   help="with --review: score the reviewer's episodes (default) or the "
                        "algorithm's, as the scan found them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the confusion matrix "
                   "(with --episodes: reference and detected AF burden per record)")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("train", help="train the float CNN")
    p.add_argument("--data", required=True, type=Path, help="CinC 2017 style dataset folder")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, model.pt)")
    p.add_argument("--epochs", type=int, help="training epochs (default: TrainConfig)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--crop-seconds", type=float, metavar="S",
                   help="length of the random training crops, at least 2 s (default: "
                        "FitConfig's 20 s)")
    p.add_argument("--rr", action="store_true",
                   help="fuse the integer RR-interval features into the classifier")
    p.add_argument("--channels", metavar="C1,C2,...",
                   help="output channels of each conv block (default: CNNConfig's 8 blocks)")
    p.add_argument("--pooling", choices=["mean", "mean_max"], default="mean",
                   help="pool the time axis by each channel's mean (default), or its mean "
                        "and maximum (a float model: compress refuses it)")
    p.add_argument("--noise", type=float, default=0.0, metavar="STD",
                   help="augmentation: white noise of this std (normalised units; default 0)")
    p.add_argument("--wander", type=float, default=0.0, metavar="AMP",
                   help="augmentation: 0.05-0.5 Hz baseline wander of this amplitude")
    p.add_argument("--invert", type=float, default=0.0, metavar="SHARE",
                   help="augmentation: share of crops with inverted polarity")
    p.add_argument("--resample", type=float, default=0.0, metavar="SHARE",
                   help="augmentation: share of crops resampled to 128, 200, 250 or 256 Hz "
                        "and back (other recorders)")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="share of each label spread evenly over the classes, in [0, 1) "
                        "(default 0: one-hot)")
    p.add_argument("--soft-labels", type=Path, metavar="FILE.csv",
                   help="teacher probabilities per record (CSV record,N,A,O,~) to distil")
    p.add_argument("--soft-weight", type=float, default=0.5, metavar="W",
                   help="weight of --soft-labels in the loss, (0, 1] (default 0.5)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="save an exponential moving average of the weights with this decay "
                        "per step, in [0, 1) (default 0: the final weights)")
    p.add_argument("--splits", type=Path, help="fold file (created if missing)")
    p.add_argument("--fold", type=int, help="hold out this fold of --splits for validation")
    p.add_argument("--k", type=int, default=5, help="folds when creating --splits (default 5)")
    p.add_argument("--val-every", type=int, default=1, metavar="N",
                   help="score the held-out fold every N epochs (default 1)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    p.add_argument("--device", default="cpu",
                   help="where the training steps run: cpu (default), cuda or cuda:N; under "
                        "torchrun, cuda is each rank's own GPU")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.set_defaults(run=_train)

    p = sub.add_parser("compress", help="prune and log-quantise a float model")
    p.add_argument("--model", required=True, metavar="FLOAT", help="float model name or file")
    p.add_argument("--data", required=True, type=Path, help="CinC 2017 style dataset folder")
    p.add_argument("--out", required=True, type=Path, help="compressed model file to write")
    # Defaults come from CompressConfig (the best recipe found; see the README).
    p.add_argument("--sparsity", type=float, help="overall pruned fraction")
    p.add_argument("--bits", type=int, help="bits per kept weight, sign included")
    p.add_argument("--size-budget", type=int, metavar="BYTES",
                   help="widen layers to --bits + 1 by sensitivity while the stored model "
                        "fits BYTES (0: every layer --bits)")
    p.add_argument("--extra-bits", type=int, metavar="N",
                   help="the most bits a layer may get above --bits within --size-budget "
                        "(default 1)")
    p.add_argument("--act-bits", type=int, help="activation bits")
    p.add_argument("--prune-epochs", type=int, help="fine-tuning epochs while pruning")
    p.add_argument("--qat-epochs", type=int, help="quantisation-aware fine-tuning epochs")
    p.add_argument("--prune-lr", type=float, help="learning rate while pruning")
    p.add_argument("--qat-lr", type=float, help="learning rate of quantisation-aware tuning")
    p.add_argument("--prune-end", type=float, metavar="FRACTION",
                   help="share of the pruning stage after which sparsity is final")
    p.add_argument("--distill", type=float, metavar="WEIGHT",
                   help="weight of distillation from the float parent, 0..1")
    p.add_argument("--granularity", choices=("weight", "kernel"),
                   help="prune single weights or whole kernels (one index entry per kernel)")
    p.add_argument("--work", type=Path, help="stage folder (default OUT.work); resumes")
    p.add_argument("--splits", type=Path, help="fold file (created if missing)")
    p.add_argument("--fold", type=int, help="hold out this fold: train on the rest, score it")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    p.set_defaults(run=_compress)

    p = sub.add_parser("report", help="per-layer compression table and totals")
    _model_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_report)

    p = sub.add_parser("export", help="write the compressed model as a C99 library")
    _model_option(p)
    p.add_argument("--out", required=True, type=Path, help="folder for the C sources")
    p.add_argument("--check", nargs="+", metavar="RECORD",
                   help="compile, run on these recordings, compare with the Python engine")
    p.add_argument("--json", action="store_true", help="print the check as JSON")
    p.add_argument("--format", choices=("c", "onnx"), default="c", dest="fmt",
                   help="c: the C99 integer engine of a compressed model (default); onnx: a "
                        "float model as an ONNX graph file (--out FILE.onnx)")
    p.add_argument("--layout", choices=("fast", "packed"), default="fast",
                   help="weights as records of an input channel and its codes (fast, "
                        "default) or exactly as the model file packs them (packed: least "
                        "flash); both decode each kernel once per tile of output times")
    p.add_argument("--target", default=None,
                   help="host (default), cortex-m4 or cortex-m0plus: cross-compile, and with "
                        "--check run under QEMU")
    p.add_argument("--no-atrial-check", dest="atrial_check", action="store_false",
                   help="leave the continuous mode's atrial check out (about 1.4 KB of flash "
                        "and 1.1 KB of RAM less; the windows are then the network's alone)")
    p.set_defaults(run=_export)

    p = sub.add_parser("download", help="fetch CinC 2017 (or any PhysioNet database)")
    p.add_argument("--out", required=True, type=Path, help="destination folder")
    p.add_argument("--database", default=None,
                   help="PhysioNet path <slug>/<version> (default challenge-2017/1.0.0)")
    p.add_argument("--base-url", default=None, help="file server (default physionet.org/files)")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="only files matching this pattern (repeatable)")
    p.set_defaults(run=_download)
    return parser


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                   help="built-in model name or model file (default: the shipped default)")


def _recording_options(p: argparse.ArgumentParser) -> None:
    """Inputs, model, sampling rate and lead: what predict and scan both take."""
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                   help="WFDB record (.hea/.mat/.dat), EDF/BDF (.edf/.bdf), .csv (mV) "
                        "or .npy (mV), or a folder")
    _model_option(p)
    p.add_argument("--fs", type=float, help="sampling rate in Hz (required for .csv/.npy)")
    p.add_argument("--lead", default="0", help="lead name or 0-based index (default 0)")


def _scan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=float, metavar="S",
                   help="window length in seconds (default 30; rounded to model steps)")
    p.add_argument("--hop", type=float, metavar="S",
                   help="seconds between window starts (default 10)")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="mean P(AF) from which a model step is AF (default 0.6)")
    p.add_argument("--min-episode", type=float, metavar="S",
                   help="shortest AF episode reported, in seconds (default 60)")
    p.add_argument("--min-gap", type=float, metavar="S",
                   help="shorter non-AF gaps between AF episodes become AF (default 60)")
    p.add_argument("--min-rhythm", type=float, metavar="S",
                   help="shorter runs of other rhythms join their neighbours (default 60)")
    p.add_argument("--atrial-check", type=_atrial_limit, metavar="C|off",
                   help="windows whose atrial coherence (the same P or flutter wave before "
                        "every QRS, 0 to 1) exceeds C (compared in steps of 1/256) are not "
                        "AF; 'off' trusts the network alone (default 0.5625)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for PyTorch (default 1)")


def _atrial_limit(text: str) -> float | str:
    """``--atrial-check``: a coherence limit, or "off" (kept as the string)."""
    if text.strip().lower() == "off":
        return "off"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'off', not {text!r}"
                                         ) from None


def _scan_config(args: argparse.Namespace) -> Any:
    import dataclasses

    from afdetect.monitor.episodes import EpisodeRule
    from afdetect.monitor.scan import ScanConfig

    default = ScanConfig()
    window = default.window_s if args.window is None else args.window
    hop = default.hop_s if args.hop is None else args.hop
    rule = {field: value for field, value in (
        ("af_threshold", args.threshold), ("min_af_s", args.min_episode),
        ("min_gap_s", args.min_gap), ("min_rhythm_s", args.min_rhythm)) if value is not None}
    if args.atrial_check is not None:
        rule["max_atrial_coherence"] = None if args.atrial_check == "off" else args.atrial_check
    try:
        return dataclasses.replace(default, window_s=window, hop_s=hop,
                                   rule=dataclasses.replace(EpisodeRule(), **rule))
    except ValueError as exc:  # the dataclasses validate; name the options instead
        raise AfdetectError(f"--window/--hop/--threshold/--min-*/--atrial-check: {exc}"
                            ) from None


def _step_model(args: argparse.Namespace) -> Any:
    import torch

    from afdetect.monitor.scan import step_model

    torch.set_num_threads(max(1, args.threads))
    return step_model(_classifier(args))


def _fs(args: argparse.Namespace) -> float | None:
    """``--fs``, checked: a positive, finite number of Hz (or None when not given)."""
    if args.fs is not None and not 0 < args.fs < math.inf:
        raise AfdetectError(f"--fs {args.fs:g}: the sampling rate must be a positive, "
                            "finite number of Hz")
    return args.fs


def _lead(text: str) -> str | int:
    return int(text) if text.lstrip("-").isdigit() else text


def _classifier(args: argparse.Namespace) -> Any:
    from afdetect.models import DEFAULT_MODEL, load_classifier

    return load_classifier(args.model or DEFAULT_MODEL)


def _predict(args: argparse.Namespace) -> int:
    from afdetect.plots import plot_trace
    from afdetect.predict import classify_files, long_recording_note

    targets = _plan_outputs(args, [], plot=args.plot)
    classifier = _classifier(args)
    predictions, failures = classify_files(classifier, args.inputs, fs=_fs(args),
                                           lead=_lead(args.lead),
                                           progress=len(args.inputs) > 1 or
                                           any(Path(i).is_dir() for i in args.inputs))
    rows = [p.to_dict() for p in predictions]
    if args.json:
        print(json.dumps({"model": classifier.name, "predictions": rows,
                          "errors": [str(f) for f in failures]}, indent=2))
    elif rows:
        print(_table(["record", "label"] + [f"P({c})" for c in CLASSES] + ["seconds"],
                     [[r["record"], r["label"], *(f"{v:.3f}" for v in r["probabilities"].values()),
                       f"{r['duration_s']:.1f}"] for r in rows]))
    if args.csv and rows:  # a run where every input failed keeps the previous table
        _write_or_fail(failures, _write_predictions_csv, args.csv, rows)
    for p in predictions:
        if args.plot:
            target = targets[p.source]["plot"]
            written = _write_or_fail(failures, plot_trace, p.recording.signal, p.recording.fs,
                                     target, f"{p.recording.name}: {p.label} "
                                     f"({max(p.probabilities.values()):.0%})", p.probabilities)
            if written and len(written) > 1:
                print(f"afdetect: note: {p.recording.name}: drawn as an overview {target} and "
                      f"{len(written) - 1} pages {written[1].name} .. {written[-1].name}",
                      file=sys.stderr)
    for prediction in predictions:
        note = long_recording_note(prediction)
        if note:
            print(f"afdetect: note: {note}", file=sys.stderr)
    return _report_failures(failures, len(rows), "classified")


def _write_predictions_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from afdetect.atomic import write_text_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record", "source", "label", *(f"p_{c}" for c in CLASSES),
                     "duration_s", "fs"])
    for r in rows:
        writer.writerow([r["record"], r["source"], r["label"],
                         *(f"{v:.6f}" for v in r["probabilities"].values()),
                         r["duration_s"], r["fs"]])
    write_text_atomic(path, buffer.getvalue())


def _scan(args: argparse.Namespace) -> int:
    from afdetect.clock import StartTime
    from afdetect.monitor.rhythm import write_beat_annotations, write_rhythm_annotations
    from afdetect.monitor.scan import scan_files, scan_header, write_scan_json
    from afdetect.outputs import check_annotator

    if args.out is not None or args.jobs is not None or args.cluster is not None:
        return _scan_cohort(args)
    config = _scan_config(args)
    if args.report == "":
        raise AfdetectError("--report needs FILE.pdf, or a folder (without a file only with "
                            "--out)")
    args.report = Path(args.report) if args.report else None
    start = StartTime.parse(args.start) if args.start else None
    if args.annotations is not None:
        check_annotator(args.annotations, "--annotations")
    check_annotator(args.reference, "--reference")
    if args.beats is not None:
        check_annotator(args.beats, "--beats")
    targets = _plan_outputs(args, [args.reference], plot=args.plot,
                            annotations=args.annotations, beats=args.beats, report=args.report)
    model = _step_model(args)
    scans, failures = scan_files(model, args.inputs, config, fs=_fs(args),
                                 lead=_lead(args.lead), progress=not args.json, start=start)
    if args.json:
        write_scan_json(sys.stdout, scan_header(model, config), scans,
                        [str(f) for f in failures])
    else:
        for scan in scans:
            _print_scan(scan)
    if args.csv and scans:  # a run where every input failed keeps the previous table
        _write_or_fail(failures, _write_episodes_csv, args.csv, scans)
    for scan in scans:
        if args.annotations:
            _write_or_fail(failures, write_rhythm_annotations,
                           targets[scan.source]["annotations"], scan.episodes, scan.fs)
        if args.beats:
            _write_or_fail(failures, write_beat_annotations, targets[scan.source]["beats"],
                           scan.beats, scan.fs)
        if args.plot:
            _write_or_fail(failures, _plot_scan, args, scan, targets[scan.source]["plot"])
        if args.report:
            _write_or_fail(failures, _report_scan, args, scan, targets[scan.source]["report"],
                           model.name, config.rule)
    return _report_failures(failures, len(scans), "scanned")


def _report_scan(args: argparse.Namespace, scan: Any, target: Path, model: str,
                 rule: Any) -> None:
    """``--report``: the printable AF report of one recording, into ``target``."""
    from afdetect.io.records import open_stream
    from afdetect.monitor.report import ReportOptions, write_report

    stream = open_stream(scan.source, fs=args.fs, lead=_lead(args.lead))
    write_report(scan, stream, target, ReportOptions(model=model, rule=rule, start=scan.start))


def _bpm(rate: Any) -> str:
    """A heart rate (min, mean, max) for the terminal; "n/a" when undefined."""
    if rate is None:
        return "n/a"
    return f"mean {rate['mean']:.0f} bpm (min {rate['min']:.0f}, max {rate['max']:.0f})"


def _print_scan(scan: Any) -> None:
    """The text summary of one scan: a line, then the episodes (with clock times when the
    recording has them)."""
    af = scan.af_episodes()
    began = f", started {scan.start.label(0)}" if scan.start else ""
    print(f"{scan.record}: {scan.duration_s / 3600:.2f} h at {scan.fs:g} Hz{began}, AF burden "
          f"{scan.af_burden:.1%} ({scan.af_seconds:.0f} s), {len(af)} AF episode(s)")
    print(f"heart rate: {_bpm(scan.heart_rate())} ({len(scan.beats)} beats); in AF "
          f"{_bpm(scan.heart_rate('A'))}; non-AF {_bpm(scan.heart_rate('A', exclude=True))}")
    clock = ["clock start", "clock end"] if scan.start else []
    print(_table(["label", "start", "end", *clock, "duration_s"],
                 [[e.label, _clock(e.start_s), _clock(e.end_s),
                   *([scan.start.label(e.start_s), scan.start.label(e.end_s)] if clock else []),
                   f"{e.duration_s:.0f}"] for e in scan.episodes]))


def _cohort_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, metavar="RESULTS",
                   help="scan a cohort into this folder: per-recording results mirroring "
                        "the inputs, cohort.csv, failures.csv; resumable (inputs may also "
                        "be text lists of records or CSV manifests with a record column)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="with --out: worker processes (default: all cores)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="with --out: scan on the Dask cluster at ADDRESS (tcp://host:8786)")


def _scan_cohort(args: argparse.Namespace) -> int:
    from afdetect.cohort import CohortSettings, run_cohort
    from afdetect.cohort.run import default_jobs
    from afdetect.cohort.worker import ScanSettings
    from afdetect.models import DEFAULT_MODEL

    if args.out is None:
        raise AfdetectError("--jobs and --cluster scan a cohort: give --out RESULTS too")
    if args.jobs is not None and args.jobs < 1:
        raise AfdetectError(f"--jobs {args.jobs}: give at least 1 process")
    unused = [o for o, v in (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot),
                             ("--annotations-dir", args.annotations_dir != Path(".")),
                             ("--report FILE", args.report), ("--start", args.start))
              if v]
    if unused:
        raise AfdetectError(f"{', '.join(unused)}: not with --out, which writes each "
                            "recording's JSON, episodes CSV, annotations and (with --report) "
                            "NAME.report.pdf under RESULTS/")
    from afdetect.outputs import check_annotator

    for option, name in (("--annotations", args.annotations), ("--beats", args.beats)):
        if name is not None:
            check_annotator(name, option)
    if args.beats is not None and args.beats == (args.annotations or "af"):
        raise AfdetectError(f"--beats {args.beats}: the rhythm annotations have that name; "
                            "choose another")
    scan = ScanSettings(args.model or DEFAULT_MODEL, _scan_config(args), args.fs,
                        _lead(args.lead), args.annotations or "af", beats=args.beats,
                        report=args.report is not None)
    report = run_cohort(args.inputs, args.out, CohortSettings(
        scan, jobs=args.jobs or default_jobs(), cluster=args.cluster, threads=args.threads,
        progress=sys.stderr.isatty()))
    for _, reason in report.failures:
        print(f"afdetect: error: {reason}", file=sys.stderr)
    print(f"{report.recordings} recording(s): {report.scanned} scanned ({report.hours:.1f} h), "
          f"{report.skipped} already done, {len(report.failures)} failed; results in "
          f"{args.out}/ (cohort.csv, failures.csv)")
    return 1 if report.failures else 0


def _plan_outputs(args: argparse.Namespace, annotators: list[str], plot: Path | None = None,
                  annotations: str | None = None, beats: str | None = None,
                  report: Path | None = None) -> dict[str, dict[str, Path]]:
    """:func:`afdetect.outputs.plan_recording_outputs` for a predict or scan command line."""
    from afdetect.outputs import plan_recording_outputs

    model = [Path(args.model)] if args.model and Path(args.model).is_file() else []
    return plan_recording_outputs(args.inputs, annotators=annotators, table=args.csv,
                                  plot=plot, annotations=annotations, beats=beats,
                                  report=report,
                                  annotations_dir=getattr(args, "annotations_dir", Path(".")),
                                  other_inputs=model)


def _write_or_fail(failures: list[Any], write: Any, *args: Any) -> Any:
    """``write(*args)``; a file it could not write joins ``failures`` (the batch goes on,
    and the run exits 1) and gives None."""
    from afdetect.atomic import OutputError

    try:
        return write(*args)
    except OutputError as exc:
        failures.append(exc)
        return None


def _review_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scan", type=Path, metavar="FILE.json",
                   help="use this `afdetect scan --json` output instead of scanning")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder for new scans, the review sidecars and exports (default: the "
                        "folder of --scan, else the current folder)")
    p.add_argument("--reference", default="atr", metavar="EXT",
                   help="reference annotations RECORD.EXT drawn when present (default atr)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, metavar="N",
                   help="port to serve on (default 8765; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open the browser")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="write each reviewed recording's RECORD.rev, RECORD.reviewed.csv and "
                        "PDF report RECORD.reviewed.pdf into DIR and exit (no server, no scan)")


def _review(args: argparse.Namespace) -> int:
    try:
        from afdetect.review.server import open_reviews, serve
    except ImportError as exc:
        raise AfdetectError(f"review needs the web server ({exc.name} is missing): "
                            "pip install 'afdetect[review]'") from None
    from afdetect.review.recordings import open_recordings

    out = args.out or (args.scan.parent if args.scan else Path("."))
    asked = any(getattr(args, o) is not None for o in (
        "window", "hop", "threshold", "min_episode", "min_gap", "min_rhythm",
        "atrial_check"))
    recordings, failures = open_recordings(
        args.inputs, out_dir=out, scan_file=args.scan, reference=args.reference, fs=args.fs,
        lead=_lead(args.lead), model=None if args.export else lambda: _step_model(args),
        config=_scan_config(args) if asked else None, progress=True)
    reviews, bad_sidecars = open_reviews(recordings)
    failures += bad_sidecars
    if args.export is not None:
        return _export_reviews(reviews, args.export, failures)
    _report_failures(failures, len(reviews), "opened")
    if not reviews:
        raise AfdetectError("nothing to review")
    serve(reviews, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 1 if failures else 0


def _export_reviews(reviews: list[Any], folder: Path, failures: list[Any]) -> int:
    """``review --export DIR``: each review's exports into ``folder``; a recording not
    reviewed yet, or an export not written, joins ``failures`` and the others go on."""
    from afdetect.errors import InputError
    from afdetect.review.report import export_review

    done = 0
    for r in reviews:
        if not r.review.path.is_file():
            failures.append(InputError(r.review.path, "no review of this recording yet "
                                                      "(review it in the browser first)"))
            continue
        try:
            files = _write_or_fail(failures, export_review, r.recording, r.review,
                                   r.detected_beats(), folder)
        except InputError as exc:
            failures.append(exc)
            continue
        if files:
            done += 1
            print(f"{r.review.record}: {r.review.status}, AF burden {r.review.af_burden:.1%}: "
                  + ", ".join(files.values()))
    code = _report_failures(failures, done, "exported")
    if not done:
        raise AfdetectError("nothing exported")
    return code


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _plot_scan(args: argparse.Namespace, scan: Any, target: Path) -> None:
    from afdetect.errors import InputError
    from afdetect.io.records import open_stream
    from afdetect.monitor.rhythm import read_rhythm
    from afdetect.plots import plot_scan

    stream = open_stream(scan.source, fs=args.fs, lead=_lead(args.lead))
    try:
        reference = read_rhythm(scan.source, args.reference, scan.fs, scan.duration_s)
    except InputError:
        reference = None  # a record without annotations is drawn without a reference row
    plot_scan(scan, stream, target, reference, threshold=_scan_config(args).rule.af_threshold)


def _write_episodes_csv(path: Path, scans: list[Any]) -> None:
    from afdetect.atomic import write_text_atomic
    from afdetect.monitor.scan import episodes_table

    write_text_atomic(path, episodes_table(scans))


def _report_failures(failures: list[Any], n_done: int, verb: str) -> int:
    """Print each failure (an unusable input, or an output not written); 1 if any."""
    from afdetect.atomic import OutputError

    for failure in failures:
        print(f"afdetect: error: {failure}", file=sys.stderr)
    unwritten = sum(isinstance(f, OutputError) for f in failures)
    if failures and n_done:
        failed = len(failures) - unwritten
        print(f"afdetect: {n_done} {verb}" + (f", {failed} failed" if failed else "")
              + (f", {unwritten} output file(s) not written" if unwritten else ""),
              file=sys.stderr)
    return 1 if failures else 0


def _evaluate_episodes(args: argparse.Namespace) -> int:
    from afdetect.monitor.ec57 import Ec57Options
    from afdetect.monitor.evaluate import episode_report, scan_annotated
    from afdetect.monitor.scan import window_seconds

    config = _scan_config(args)
    try:
        options = Ec57Options(start_s=args.compare_from, exclude_flutter=args.exclude_flutter)
    except ValueError as exc:
        raise AfdetectError(f"--compare-from: {exc}") from None
    if args.review is not None:
        return _evaluate_review(args, options)
    _check_evaluate_plot(args, [args.annotator])
    model = _step_model(args)
    scored, failures = scan_annotated(model, args.data, config, args.annotator,
                                      progress=not args.json)
    if not scored:
        for failure in failures:
            print(f"afdetect: error: {failure}", file=sys.stderr)
        raise AfdetectError(f"{args.data}: no record with {args.annotator!r} rhythm annotations "
                            "could be scored")
    try:
        report = episode_report(scored, options)
    except ValueError as exc:
        raise AfdetectError(f"{args.data}: {exc}") from None
    window_s, hop_s = window_seconds(model, config)
    report.update(model=model.name, data=str(args.data), window_s=round(window_s, 6),
                  hop_s=round(hop_s, 6), rule=config.rule.to_dict(),
                  skipped={f.path: f.problem for f in failures})
    _emit_episode_report(args, report, options,
                         f"model {model.name} on {args.data}: {len(scored)} records")
    for failure in failures:
        print(f"afdetect: skipped {failure}", file=sys.stderr)
    if args.plot:
        _plot_episode_burden(report, args.plot, model.name)
    return 0


def _emit_episode_report(args: argparse.Namespace, report: dict[str, Any], options: Any,
                         heading: str) -> None:
    """An EC57 report as JSON (``--json``) or as a heading and the tables."""
    if args.json:
        print(json.dumps(report, indent=2))
        return
    flutter = ", reference flutter excluded from +P" if options.exclude_flutter else ""
    print(f"{heading}, compared from {options.start_s:g} s{flutter} (as WFDB's epicmp -f "
          f"{options.start_s:g}{' -x' if options.exclude_flutter else ''})")
    _print_episode_report(report, options)


def _evaluate_review(args: argparse.Namespace, options: Any) -> int:
    """``evaluate --episodes --review``: the sidecars' reviewed or algorithm episodes
    against the records' reference annotations (no model, no scan)."""
    from afdetect.review.scoring import review_report

    given = [name for name in ("model", "window", "hop", "threshold", "min_episode",
                               "min_gap", "min_rhythm", "atrial_check")
             if getattr(args, name) is not None]
    if given:
        raise AfdetectError(f"--{given[0].replace('_', '-')} does not apply to --review: the "
                            "review's episodes are scored as they are")
    _check_evaluate_plot(args, [args.annotator])
    try:
        report, failures = review_report(args.review, args.data, args.annotator,
                                         args.decision, options)
    except ValueError as exc:
        raise AfdetectError(f"{args.data}: {exc}") from None
    for failure in failures:
        print(f"afdetect: error: {failure}", file=sys.stderr)
    if report is None:
        raise AfdetectError("no review could be scored")
    report.update(decision=args.decision, data=str(args.data), annotator=args.annotator)
    _emit_episode_report(args, report, options,
                         f"{args.decision} episodes of {len(report['records'])} review(s) "
                         f"against the {args.annotator!r} annotations in {args.data}")
    if args.plot:
        _plot_episode_burden(report, args.plot, f"{args.decision} review")
    return 1 if failures else 0


def _print_episode_report(report: dict[str, Any], options: Any) -> None:
    """The EC57 tables of ``evaluate --episodes`` (window figures where the report has
    them)."""
    names = (("episode_sensitivity", "episode Se"), ("episode_ppv", "episode +P"),
             ("duration_sensitivity", "duration Se"), ("duration_ppv", "duration +P"),
             ("long_episode_sensitivity",
              f"Se, episodes >= {options.long_episode_s:g} s (clinical)"))
    print(_table(["EC57 AF statistic", "gross", "average"],
                 [[name, _fmt(report["gross"][key]), _fmt(report["average"][key])]
                  for key, name in names]))
    if "windows" in report:
        w = report["windows"]
        print(f"windows: {w['n_windows']}, AF sensitivity {_fmt(w['sensitivity'])}, "
              f"specificity {_fmt(w['specificity'])}, positive predictivity {_fmt(w['ppv'])}")
    print(_table(["record", "episode Se", "episode +P", "duration Se", "duration +P",
                  "reference burden", "detected burden"],
                 [[name, *(_fmt(r[key]) for key, _ in names[:4]),
                   _fmt(r["reference_burden"]), _fmt(r["detected_burden"])]
                  for name, r in report["records"].items()]))
    print(f"mean absolute burden error {_fmt(report['burden_mae'])}")


def _plot_episode_burden(report: dict[str, Any], path: Path, what: str) -> None:
    """``evaluate --episodes --plot``: reference and detected AF burden per record."""
    from afdetect.plots import plot_burden

    plot_burden({name: (_burden(r["reference_burden"]), _burden(r["detected_burden"]))
                 for name, r in report["records"].items()}, path,
                f"{what}: AF burden per record (mean absolute error "
                f"{_fmt(report['burden_mae'])})")


def _burden(value: float | None) -> float:
    return math.nan if value is None else value


def _check_evaluate_plot(args: argparse.Namespace, annotators: list[str]) -> None:
    """Refuse an ``evaluate --plot`` that matplotlib cannot write or that lands on a file
    of the dataset or the model, before the evaluation runs."""
    from afdetect.outputs import check_figure_path, check_outputs, folder_files

    if args.plot is None:
        return
    check_figure_path(args.plot)
    model = [Path(args.model)] if args.model and Path(args.model).is_file() else []
    check_outputs([args.plot], [*folder_files(args.data, annotators), *model])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _evaluate(args: argparse.Namespace) -> int:
    from afdetect.evaluate import evaluate
    from afdetect.plots import plot_confusion

    if args.review is not None and not args.episodes:
        raise AfdetectError("--review scores AF episodes: it needs --episodes")
    if args.episodes:
        return _evaluate_episodes(args)
    _check_evaluate_plot(args, [])
    summary = evaluate(_classifier(args), args.data, progress=not args.json)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"model {summary['model']} on {summary['data']}: {summary['n_records']} records")
        print(f"CinC score (mean F1 of N, A, O): {summary['cinc_score']:.4f}")
        print(_table(["class", "F1"], [[c, f"{v:.4f}"] for c, v in summary["f1"].items()]))
        print(f"accuracy {summary['accuracy']:.4f}   AF-vs-rest accuracy "
              f"{summary['af_accuracy']:.4f}   AF sensitivity {summary['af_sensitivity']:.4f}"
              f"   AF specificity {summary['af_specificity']:.4f}")
        print("confusion (rows truth, columns predicted):")
        print(_table(["", *CLASSES], [[c, *map(str, row)]
                                      for c, row in zip(CLASSES, summary["confusion"],
                                                        strict=True)]))
    for name, reason in summary["skipped"].items():
        print(f"afdetect: skipped {name}: {reason}", file=sys.stderr)
    if args.plot:
        plot_confusion(summary["confusion"], args.plot,
                       f"{summary['model']}: CinC {summary['cinc_score']:.3f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    import torch

    from afdetect.data.soft_labels import file_digest, read_soft_labels
    from afdetect.data.splits import load_or_make_splits
    from afdetect.data.store import load_dataset
    from afdetect.model.cnn import CNNConfig
    from afdetect.model.rr import RRConfig
    from afdetect.train import FitConfig, TrainConfig, train
    from afdetect.train.distributed import init_from_env, rank_device

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = rank_device(args.device)
    except (RuntimeError, ValueError) as error:  # an unknown device string, or no GPU
        raise AfdetectError(f"--device: {error}") from None
    group = init_from_env(device)  # torchrun: one process per rank; else a single process
    if args.noise < 0 or args.wander < 0 or not 0 <= args.invert <= 1 \
            or not 0 <= args.resample <= 1:
        raise AfdetectError("--noise and --wander must be >= 0, --invert and --resample "
                            "within [0, 1]")
    if not 0 <= args.label_smoothing < 1:
        raise AfdetectError("--label-smoothing must be in [0, 1)")
    fit = dataclasses.replace(FitConfig(), seed=args.seed, noise_std=args.noise,
                              wander=args.wander, invert_share=args.invert,
                              resample_share=args.resample,
                              label_smoothing=args.label_smoothing)
    if args.epochs is not None:
        fit = dataclasses.replace(fit, epochs=args.epochs)
    if args.crop_seconds is not None:
        if not 2 <= args.crop_seconds < math.inf:  # the network decimates by 512 samples
            raise AfdetectError("--crop-seconds must be a finite number of seconds, at least 2")
        fit = dataclasses.replace(fit, crop_seconds=args.crop_seconds)
    model = CNNConfig(rr=RRConfig() if args.rr else None, pooling=args.pooling)
    if args.channels:
        channels = tuple(int(c) for c in args.channels.split(","))
        if len(channels) != len(model.kernel_sizes) or min(channels) < 1:
            raise AfdetectError(f"--channels needs {len(model.kernel_sizes)} positive "
                                f"integers, got {args.channels!r}")
        model = dataclasses.replace(model, channels=channels)
    if not 0 < args.soft_weight <= 1:
        raise AfdetectError("--soft-weight must be in (0, 1]")
    if not 0 <= args.ema < 1:
        raise AfdetectError("--ema must be in [0, 1)")
    config = TrainConfig(fit=fit, model=model, ema=args.ema)
    if args.soft_labels is not None:
        config = dataclasses.replace(config, distill=args.soft_weight,
                                     soft_labels_sha256=file_digest(args.soft_labels))
    dataset = load_dataset(args.data, config.preprocess)
    train_set, val_set = dataset, None
    if args.fold is not None:
        if args.splits is None:
            raise AfdetectError("--fold needs --splits FILE")
        folds = load_or_make_splits(args.splits, dataset.names, dataset.labels, k=args.k)
        fold_of = np.array([folds[str(n)] for n in dataset.names])
        if args.fold not in set(fold_of.tolist()):
            raise AfdetectError(f"{args.splits}: has no fold {args.fold}")
        train_set = dataset.subset(np.flatnonzero(fold_of != args.fold))
        val_set = dataset.subset(np.flatnonzero(fold_of == args.fold))
    soft = None if args.soft_labels is None else read_soft_labels(args.soft_labels,
                                                                  train_set.names)
    train(config, train_set, args.out, val_set=val_set, val_every=args.val_every,
          resume=args.resume, progress=group.is_main, soft_targets=soft, device=device)
    if group.is_main:
        print(f"wrote {args.out / 'model.pt'}"
              + (f" ({group.world_size} ranks)" if group.world_size > 1 else ""))
    return 0


def _stage(default: FitConfig, epochs: int | None, lr: float | None) -> FitConfig:
    """``default`` with the epochs and learning rate given on the command line."""
    import dataclasses

    return dataclasses.replace(default, epochs=epochs or default.epochs,
                               lr=default.lr if lr is None else lr)


def _compress(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from afdetect.compress.network import QuantSpec
    from afdetect.compress.recipe import CompressConfig
    from afdetect.deploy.package import compress_file
    from afdetect.models import resolve_model
    from afdetect.outputs import check_outputs, folder_files

    if args.threads:
        torch.set_num_threads(args.threads)
    default = CompressConfig()
    quant = QuantSpec(
        weight_bits=args.bits if args.bits is not None else default.quant.weight_bits,
        act_bits=args.act_bits if args.act_bits is not None else default.quant.act_bits,
        input_bits=default.quant.input_bits)
    if not 2 <= quant.weight_bits <= 8 or not 2 <= quant.act_bits <= 16:
        raise AfdetectError("--bits must be in 2..8 and --act-bits in 2..16")
    if args.size_budget is not None and args.size_budget < 0:
        raise AfdetectError("--size-budget must be 0 or a number of bytes")
    extra_bits = default.extra_bits if args.extra_bits is None else args.extra_bits
    budget = default.size_budget if args.size_budget is None else args.size_budget
    if extra_bits < 1 or (budget and quant.weight_bits + extra_bits > 8):
        raise AfdetectError("--extra-bits must be at least 1, with --bits + --extra-bits "
                            "at most 8")
    sparsity = default.sparsity if args.sparsity is None else args.sparsity
    if not 0 <= sparsity < 1:
        raise AfdetectError("--sparsity must be in [0, 1)")
    config = dataclasses.replace(
        default, sparsity=sparsity, quant=quant,
        prune=_stage(default.prune, args.prune_epochs, args.prune_lr),
        qat=_stage(default.qat, args.qat_epochs, args.qat_lr),
        prune_end_fraction=args.prune_end or default.prune_end_fraction,
        distill=default.distill if args.distill is None else args.distill,
        granularity=args.granularity or default.granularity,
        size_budget=budget, extra_bits=extra_bits)
    if not 0 <= config.distill <= 1:
        raise AfdetectError("--distill must be in [0, 1]")
    if config.prune.lr <= 0 or config.qat.lr <= 0:
        raise AfdetectError("--prune-lr and --qat-lr must be positive")
    _, parent = resolve_model(args.model)
    check_outputs([args.out], [parent, *folder_files(args.data)])
    metadata = compress_file(parent, args.data, args.out, config, work_dir=args.work,
                             splits=args.splits, fold=args.fold)
    at_export = metadata["metrics_at_export"]
    size = metadata["size"]
    print(f"wrote {args.out}: {size['stored_bytes']} bytes stored, compression "
          f"{size['compression_ratio']:.1f}x, sparsity {size['sparsity']:.3f}")
    print(f"on {at_export['evaluated_on']} ({at_export['records']} records): CinC "
          f"{at_export['compressed']['cinc_score']:.4f} (float parent "
          f"{at_export['float_parent']['cinc_score']:.4f}), accuracy "
          f"{at_export['compressed']['accuracy']:.4f} (float parent "
          f"{at_export['float_parent']['accuracy']:.4f})")
    return 0


def _load_compressed_model(model: str | None, command: str) -> tuple[str, Path, Any, Any]:
    from afdetect.models import DEFAULT_MODEL, resolve_model
    from afdetect.runtime.format import is_compressed_file, load_compressed

    name, path = resolve_model(model or DEFAULT_MODEL)
    if not is_compressed_file(path):
        raise AfdetectError(f"{path}: not a compressed model; `{command}` needs the output "
                            "of `afdetect compress` (e.g. --model compressed)")
    integer, metadata = load_compressed(path)
    return name, path, integer, metadata


def _report(args: argparse.Namespace) -> int:
    from afdetect.deploy.report import full_report

    name, path, model, metadata = _load_compressed_model(args.model, "report")
    result = full_report(model, metadata)
    result.update(model=name, file_bytes=path.stat().st_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {name}: {model.weight_bits_text}-bit power-of-two weights, "
          f"{model.act_bits}-bit activations")
    header = ["layer", "shape", "weights", "kept", "sparsity", "bits", "code bits",
              "index bits", "scheme", "bias+scale bits", "stored bytes"]
    rows = [[r["name"], "x".join(map(str, r["shape"])), str(r["weights"]), str(r["kept"]),
             f"{r['sparsity']:.3f}", str(bits), str(r["code_bits"]), str(r["index_bits"]),
             r["index_scheme"] + (f"(r={r['index_param']})"
                                  if r["index_scheme"].endswith("relative") else ""),
             str(r["bias_bits"] + r["scalar_bits"]), f"{r['stored_bytes']:.1f}"]
            for r, bits in zip(result["layers"], result["weight_bits"], strict=True)]
    rows.append(["total", "", str(result["weights"]), str(result["kept"]),
                 f"{result['sparsity']:.3f}", "", "", "", "", "", str(result["stored_bytes"])])
    print(_table(header, rows))
    print(f"compression ratio {result['compression_ratio']:.1f}x (whole model vs "
          f"{result['baseline_bytes']} bytes of 32-bit float parameters), weights-only "
          f"{result['weights_only_ratio']:.1f}x; file {result['file_bytes']} bytes "
          f"including header and metadata")
    if result["rr"] is not None:
        print("RR features: integer R-peak detector (" + ", ".join(
            f"{k} {v}" for k, v in result["rr"].items()) + "; 16 bits each in the total); "
            "the operation counts below leave its per-sample compares out")
    d = result["deployment"]
    ops, dense, e = d["operations_30s"], d["dense_float_30s"], d["energy"]
    flash = d["flash"]
    print(f"\nC engine (afdetect export), per {d['seconds']:g}-s recording:")
    print(f"  flash: tables {flash['tables']} B in the fast layout (codes "
          f"{flash['weight_codes']}, indices {flash['weight_indices']}, rows "
          f"{flash['row_pointers']}, biases {flash['biases']}), "
          f"{flash['packed_layout_tables']} B in the packed layout"
          + (f"; compiled object text {flash['compiled']['text']} B, code "
             f"{flash['code']} B" if flash.get("compiled") else ""))
    compiled = flash.get("compiled")
    print(f"  RAM: {d['ram']['streaming']} B static (streaming, any length"
          + (f"; compiled .bss + .data {compiled['bss'] + compiled['data']} B" if compiled
             else "") + f"); a layer-by-layer schedule would need "
          f"{d['ram']['layer_by_layer_30s']} B")
    print(f"  operations: {ops['shifts']:,} shifts, {ops['adds']:,} adds, "
          f"{ops['compares']:,} compares, {ops['memory_reads']:,} memory reads, 0 multiplies"
          f" (dense float: {dense['multiplies']:,} multiplies, {dense['adds']:,} adds)")
    print(f"  energy (45 nm, Horowitz 2014): {e['compressed_uj']:.2f} uJ with every read "
          f"from SRAM, {e['compressed_local_memory_uj']:.2f} uJ with weights and ring buffers "
          f"in a local memory (0.3 pJ a read); dense float "
          f"{e['dense_float_weights_in_sram_uj']:.1f} uJ with weights in SRAM "
          f"({e['ratio_vs_float_sram']:.0f}x) or {e['dense_float_weights_in_dram_uj']:.0f} uJ "
          f"from DRAM ({e['ratio_vs_float_dram']:.0f}x)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from afdetect.deploy.costs import compiled_size
    from afdetect.deploy.export import build, check, export
    from afdetect.deploy.targets import get_target, instance_sizes, require_toolchain

    if args.fmt == "onnx":
        return _export_onnx(args)
    name, _, model, metadata = _load_compressed_model(args.model, "export")
    target = get_target(args.target or "host")
    require_toolchain(target)
    sizes = export(model, metadata, args.out, layout=args.layout,
                   atrial_check=args.atrial_check)
    if not target.is_host:
        return _export_target(args, name, model, metadata, target)
    if not args.check:
        print(f"wrote the C engine for {name} to {args.out} ({sizes.tables} bytes of tables, "
              f"{sizes.ram} bytes of RAM); see {args.out / 'README.md'}")
        return 0
    result = check(model, metadata, build(args.out), args.check)
    if args.json:
        out: dict[str, Any] = {"records": result.records, "identical": result.identical,
                               "errors": result.failures}
        if args.target:  # --target host: this machine's object sizes; QEMU counts none
            compiled = compiled_size(args.out)
            instances = instance_sizes(args.out, target)
            out.update(target="host", flash_bytes=compiled["text"],
                       ram_bytes=compiled["data"] + compiled["bss"] + max(instances.values()),
                       instance_bytes=instances, instructions_per_30s=None)
        print(json.dumps(out, indent=2))
    else:
        print(_table(["record", "mode", "class", "identical", "C logits"],
                     [[r["record"], r["mode"], r["label"], str(r["identical"]),
                       " ".join(map(str, r["c_logits"])) if "c_logits" in r else
                       f"{r['windows_identical']} of {r['windows']} windows"]
                      for r in result.records]))
        print(f"{sum(r['identical'] for r in result.records)} of {len(result.records)} "
              "recordings: C logits identical to the Python integer engine")
    for failure in result.failures:
        print(f"afdetect: error: {failure}", file=sys.stderr)
    return 0 if result.identical and not result.failures else 1


def _export_onnx(args: argparse.Namespace) -> int:
    from afdetect.model.io import load_float_model
    from afdetect.models import resolve_model
    from afdetect.outputs import check_outputs
    from afdetect.runtime.format import is_compressed_file

    name, path = resolve_model(args.model or "float")
    check_outputs([args.out], [path])
    if is_compressed_file(path):
        raise AfdetectError(f"{path}: ONNX export takes a float model (e.g. --model float); "
                            "a compressed model exports as C")
    try:
        from afdetect.deploy.onnx_export import export_onnx
    except ImportError:
        raise AfdetectError("ONNX export needs the onnx package: "
                            "pip install 'afdetect[onnx]'") from None
    model = load_float_model(path)
    export_onnx(model, args.out)
    print(f"wrote {args.out}: {name} as ONNX, input 'ecg_mv' (1, n) float32 mV at "
          f"{model.preprocess.fs} Hz, output 'probabilities' (1, 4) in "
          f"{', '.join(CLASSES)} order")
    return 0


def _export_target(args: argparse.Namespace, name: str, model: Any, metadata: Any,
                   target: Any) -> int:
    from afdetect.deploy.codegen import firmware_files, write_export
    from afdetect.deploy.targets import check_on_target, library_memory

    write_export(args.out, firmware_files())
    if not args.check:
        flash, ram = library_memory(args.out, target)
        print(f"wrote the C engine for {name} to {args.out} with a {target.name} startup file, "
              f"linker script and driver: library flash {flash} B, RAM {ram} B")
        return 0
    result = check_on_target(model, metadata, args.out, target, args.check)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_table(["record", "mode", "class", "identical", "instructions"],
                     [[r["record"], r["mode"], r["label"], str(r["identical"]),
                       f"{r['instructions']:,}" if "instructions" in r else
                       f"{r['windows_identical']} of {r['windows']} windows"]
                      for r in result["records"]]))
        print(f"{target.name} ({result['machine']}): library flash {result['flash_bytes']} B, "
              f"RAM {result['ram_bytes']} B")
        if result["estimate"]:
            e = result["estimate"]
            print(f"{result['instructions_per_30s']:,} instructions per 30-s recording: "
                  f"{e['time_at_64mhz_ms']:.1f} ms at 64 MHz, {e['energy_uj']:.0f} uJ on a "
                  f"{e['part']['name']} ({e['part']['ua_per_mhz']:g} uA/MHz at "
                  f"{e['part']['volts']:g} V), one instruction per cycle")
        if result["stream_instructions_per_s"]:
            print(f"continuous mode: {result['stream_instructions_per_s']:,} instructions per "
                  f"second of monitoring, {result['stream_average_ua']:g} uA on average at "
                  "64 MHz, one instruction per cycle")
    for failure in result["errors"]:
        print(f"afdetect: error: {failure}", file=sys.stderr)
    return 0 if result["identical"] and not result["errors"] else 1


def _download(args: argparse.Namespace) -> int:
    from afdetect.io.download import CINC2017, DEFAULT_BASE_URL, download

    report = download(args.out, args.database or CINC2017,
                      base_url=args.base_url or DEFAULT_BASE_URL,
                      include=tuple(args.include) if args.include else None)
    print(f"{len(report.fetched)} fetched, {len(report.present)} already present and verified, "
          f"{len(report.failed)} failed, in {args.out}")
    for rel, reason in report.failed.items():
        print(f"afdetect: error: {rel}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
