"""``afdetect export``: the C99 library, its README, and the bit-exactness check."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from afdetect import CLASSES
from afdetect.compress.integer import IntegerModel
from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.deploy.codegen import MAX_WINDOW_STEPS, ExportSizes, generate, write_export
from afdetect.deploy.engine import IntegerEngine
from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import SignalStream, open_stream, read_record
from afdetect.monitor.scan import IntegerStepModel, ScanConfig, scan_stream, window_geometry

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O3"]  # -O3 vectorises the batch mode
STRIP_MAX_S = 61.0  # longer recordings are checked in the continuous mode


@dataclass
class CheckResult:
    """Per-record comparison of the compiled C engine with the NumPy engine."""

    records: list[dict[str, Any]]
    failures: list[str]

    @property
    def identical(self) -> bool:
        return bool(self.records) and all(r["identical"] for r in self.records)


def c_compiler() -> str | None:
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


def export(model: IntegerModel, metadata: dict[str, Any], out_dir: str | Path,
           layout: str = "fast", max_seconds: float = 600.0) -> ExportSizes:
    """Write the C library (weights in ``layout``, strips of up to ``max_seconds``; see
    :func:`generate`), demo, Makefile and README into ``out_dir``."""
    files, sizes = generate(model, metadata, max_seconds, layout=layout)
    files["README.md"] = _readme(model, metadata, sizes)
    write_export(out_dir, files)
    return sizes


def build(out_dir: str | Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile the demo program with the system C compiler; return its path."""
    out = Path(out_dir)
    compiler = c_compiler()
    if compiler is None:
        raise AfdetectError("no C compiler (cc, gcc or clang) found on PATH")
    binary = out / "afd_demo"
    cmd = [compiler, *CFLAGS, *extra_flags, "-o", str(binary), str(out / "demo.c"),
           str(out / "afdetect_model.c")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AfdetectError(f"C compilation failed: {result.stderr.strip()[:2000]}")
    return binary


def build_object(out_dir: str | Path) -> Path:
    """Compile the library alone to ``afdetect_model.o`` (for its ``size``)."""
    out = Path(out_dir)
    compiler = c_compiler()
    if compiler is None:
        raise AfdetectError("no C compiler (cc, gcc or clang) found on PATH")
    obj = out / "afdetect_model.o"
    result = subprocess.run([compiler, *CFLAGS, "-c", "-o", str(obj),
                             str(out / "afdetect_model.c")], capture_output=True, text=True)
    if result.returncode != 0:
        raise AfdetectError(f"C compilation failed: {result.stderr.strip()[:2000]}")
    return obj


def run_demo(binary: Path, samples: np.ndarray, adc_gain: int | None = None
             ) -> tuple[str, np.ndarray]:
    """Run the demo on integer samples; return (class label, integer logits)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(str(int(v)) for v in samples))
        path = fh.name
    try:
        args = [str(binary), *(["--adc", str(adc_gain)] if adc_gain else []), path]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    finally:
        Path(path).unlink()
    if result.returncode != 0:
        raise AfdetectError(f"{binary}: {result.stderr.strip() or 'failed'}")
    label, *logits = result.stdout.split()
    return label, np.array([int(v) for v in logits], dtype=np.int64)


def run_stream_demo(binary: Path, stream: SignalStream, window_steps: int, hop_steps: int
                    ) -> np.ndarray:
    """Feed a recording's raw counts to the demo's continuous mode, chunk by chunk; return
    its window logits, int64 (n_windows, n_classes)."""
    if abs(stream.fs - round(stream.fs)) > 1e-9:
        raise InputError(stream.source, f"the C engine takes integer rates, not {stream.fs:g}")
    timeout = 60 + stream.duration_s / 50  # far slower than any real run: never a hang
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([str(binary), "--stream", str(round(stream.fs)),
                                 str(window_steps), str(hop_steps), "-"],
                                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdin is not None
        try:
            for counts in stream.chunks(1 << 16):
                proc.stdin.write("\n".join(map(str, counts.tolist())) + "\n")
            proc.stdin.close()
        except BrokenPipeError:  # the demo stopped early; its exit status says why
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AfdetectError(f"{binary}: no answer within {timeout:.0f} s") from None
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise AfdetectError(f"{binary}: {err.strip() or 'failed'}")
        out.seek(0)
        rows = [[int(v) for v in line.split()[1:]] for line in out if line.strip()]
    return np.array(rows, dtype=np.int64).reshape(len(rows), -1)


class Runner(Protocol):
    """Runs the compiled engine: strips (one decision) and streams (one per window)."""

    def strip(self, samples: np.ndarray) -> tuple[str, np.ndarray, int | None]:
        """Quantised samples -> (class label, integer logits, instructions or None)."""
        ...

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int) -> np.ndarray:
        """Raw counts -> window logits, int64 (n_windows, n_classes)."""
        ...


@dataclass
class HostRunner:
    """The demo program compiled for this machine."""

    binary: Path

    def strip(self, samples: np.ndarray) -> tuple[str, np.ndarray, int | None]:
        label, logits = run_demo(self.binary, samples)
        return label, logits, None

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int) -> np.ndarray:
        return run_stream_demo(self.binary, stream, window_steps, hop_steps)


def check(model: IntegerModel, metadata: dict[str, Any], runner: Path | Runner,
          records: list[str | Path], scan_config: ScanConfig | None = None) -> CheckResult:
    """Compare the compiled engine's logits with the Python engine's on each recording.

    Strips of up to :data:`STRIP_MAX_S` seconds go through the strip mode (whole-recording
    preprocessing, one decision); longer recordings through the continuous mode, every
    window's logits against ``afdetect scan``'s. ``runner`` is a host binary or a
    :class:`Runner` (a microcontroller target under QEMU).
    """
    if isinstance(runner, Path):
        runner = HostRunner(runner)
    engine = IntegerEngine(model)
    preprocess_config = PreprocessConfig(**metadata["preprocess"])
    scanner = IntegerStepModel("export", model, int(metadata["fs"]))
    scan_config = scan_config or ScanConfig()
    rows, failures = [], []
    for path in records:
        try:
            stream = open_stream(path)
            if stream.duration_s > STRIP_MAX_S:
                if model.rr is not None:
                    raise InputError(path, "longer than a strip; the continuous mode does "
                                           "not take models with RR features yet")
                rows.append(_check_stream(scanner, runner, stream, scan_config))
                continue
            recording = read_record(path)
            signal = preprocess(recording, preprocess_config)
        except InputError as exc:
            failures.append(str(exc))
            continue
        expected = engine.logits(signal)
        label, logits, instructions = runner.strip(model.quantise_input(signal))
        row = {"record": recording.name, "mode": "strip", "label": label,
               "duration_s": round(len(signal) / preprocess_config.fs, 3),
               "python_logits": expected.tolist(), "c_logits": logits.tolist(),
               "identical": bool(np.array_equal(expected, logits))}
        if instructions is not None:
            row["instructions"] = instructions
        rows.append(row)
    return CheckResult(rows, failures)


def _check_stream(scanner: IntegerStepModel, runner: Runner, stream: SignalStream,
                  config: ScanConfig) -> dict[str, Any]:
    window_steps, hop_steps = window_geometry(config, scanner.downsampling / scanner.fs)
    if window_steps > MAX_WINDOW_STEPS:
        raise AfdetectError(f"a {config.window_s:g}-s window is {window_steps} steps of this "
                            f"model; the C continuous mode takes at most {MAX_WINDOW_STEPS}")
    scan = scan_stream(scanner, stream, config)
    assert scan.integer_logits is not None
    # A stream has no end: the device emits the windows on the hop grid, not the extra
    # window a host scan adds at the end of a finite recording.
    expected = scan.integer_logits[scan.window_starts % hop_steps == 0]
    c_logits = runner.stream(stream, window_steps, hop_steps)
    identical = expected.shape == c_logits.shape and bool(np.array_equal(expected, c_logits))
    n_same = int(np.all(expected[:len(c_logits)] == c_logits[:len(expected)], axis=1).sum())
    return {"record": stream.name, "mode": "stream", "fs": stream.fs,
            "duration_s": round(stream.duration_s, 3), "windows": len(expected),
            "c_windows": len(c_logits), "windows_identical": n_same,
            "label": CLASSES[int(expected[-1].argmax())] if len(expected) else "",
            "identical": identical}


def _readme(model: IntegerModel, metadata: dict[str, Any], sizes: ExportSizes) -> str:
    fs = metadata["fs"]
    metadata_step = model.convs[0].stride * 2 ** len(model.convs)
    return f"""# afdetect C engine

Generated by `afdetect export`. A self-contained C99 library classifying a single-lead ECG
recording as normal sinus rhythm (`N`), atrial fibrillation (`A`), other rhythm (`O`) or
too noisy (`~`). Integer-only: the inference path has no floating point, no multiplier
(every product is a shift), no `malloc` and no library calls; it needs only `<stdint.h>`.

Files: `afdetect_model.h` / `afdetect_model.c` (the library), `demo.c` and `Makefile`.

## Input

- One lead, sampled at **{fs} Hz**. Recordings at other rates are resampled first, exactly
  as afdetect does it: `scipy.signal.resample_poly(x, up, down)` with `up/down` the
  reduced fraction of {fs}/rate.
- At least {metadata["preprocess"]["min_seconds"]:g} s (`AFD_MIN_SAMPLES` samples). The
  int32 accumulators are proven not to overflow up to `AFD_MAX_SAMPLES` samples.
- `afd_push()` takes the normalised signal as a signed {model.input_bits}-bit integer:
  with `x` in mV, `x -= mean(x)`, `x *= 2^-round(log2(std(x)))`, then
  `q = floor(x * 2^{model.input_frac} + 1/2)` clamped to
  [-{2 ** (model.input_bits - 1)}, {2 ** (model.input_bits - 1) - 1}].
  `afd_quantise_input()` computes exactly this from raw ADC counts in integers (mean and
  standard deviation need the whole recording, so it makes two passes over a buffer).

## Calling it from firmware

```c
#include "afdetect_model.h"

static int16_t adc[30 * AFD_SAMPLING_RATE_HZ];   /* a 30 s strip, raw counts */
static int16_t q[30 * AFD_SAMPLING_RATE_HZ];

int classify_strip(int32_t n, int32_t adc_per_mv)
{{
    int32_t logits[AFD_N_CLASSES];
    afd_quantise_input(adc, n, adc_per_mv, q);      /* integer preprocessing */
    return afd_classify(q, n, logits);               /* 0 N, 1 A, 2 O, 3 ~ */
}}
```

Or stream a strip: `afd_reset()`, then `afd_push(q)` per sample as it arrives, then
`afd_finish(logits)`. The engine keeps one ring of the last K input columns per layer, so
its RAM does not depend on the recording length. It is not re-entrant (static state).

## Continuous monitoring

For a patch or Holter that never stops, feed raw ADC counts (up to 16 bits, any integer
rate of 100 Hz or more: 250, 256, 360, 500 Hz...) one at a time; the engine resamples to
{fs} Hz, removes the baseline, scales and quantises inside, in integers, exactly as
`afdetect scan` does, and reports a decision over the last window every hop:

```c
#include "afdetect_model.h"

static void on_window(int cls, const int32_t logits[AFD_N_CLASSES], void *user)
{{
    /* cls: 0 N, 1 A (atrial fibrillation), 2 O, 3 ~ ; logits: the integer logits */
    (void)logits; (void)user;
    if (cls == 1) {{ /* flag AF for this window */ }}
}}

void start_monitor(void)
{{
    /* windows of 18 steps (18 x {metadata_step} samples = 30.7 s) every 6 steps (10.2 s),
       the afdetect scan defaults, from a 250 Hz ADC */
    afd_stream_init(250, 18, 6, on_window, 0);
}}

void adc_isr(int16_t count) {{ afd_stream_push(count); }}
```

A step is `AFD_STEP_SAMPLES` samples at {fs} Hz; windows may span up to
`AFD_MAX_WINDOW_STEPS` steps, over which every int32 sum was proven bounded at export,
however long the engine runs (counters wrap or saturate). The front end works in blocks of
`AFD_BLOCK` samples, so decisions come in bursts at block ends (latency about 2.6 s on top
of the window). Its interpolation and variance estimate use integer multiplies and one
division per output sample; the network itself uses none. Turning decisions into episodes
(mean P(AF) per step over overlapping windows, minimum episode and gap lengths) is left to
the host, as in `afdetect.monitor.episodes`.

## Build and try

```sh
make                      # cc -std=c99 -Wall -Wextra -Werror -O3
./afd_demo --adc 1000 raw_counts.txt   # one integer per line, 1000 counts/mV
```

The demo prints the class and the four integer logits (larger is more likely; divide by
2^{-model.classifier.e_min + model.classifier.in_frac} times the number of final time steps
for the float model's logits).

## Sizes

Weight layout: `AFD_LAYOUT` in the header ("fast": byte codes and 16-bit offsets, with
the host batch mode `afd_classify_batch` when `AFD_HAS_BATCH`; "packed": the model file's
bit-packed blocks, decoded on the fly for the least flash).
Tables: {sizes.tables} bytes const (codes {sizes.weight_codes}, indices
{sizes.weight_indices}, row pointers {sizes.row_pointers}, biases {sizes.biases}).
Static RAM: {sizes.ram} bytes (rings {sizes.ram_rings}, columns {sizes.ram_columns},
other {sizes.ram_other}), independent of the recording length.

Model metadata: classes {metadata["classes"]}, recipe {metadata.get("recipe", {})
.get("sparsity")} sparsity / {model.weight_bits_text}-bit power-of-two weights /
{model.act_bits}-bit activations.
"""
