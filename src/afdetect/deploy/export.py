"""``afdetect export``: the C99 library, its packaging and README, and the bit-exactness
check."""

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
from afdetect.deploy.codegen import (
    MAX_WINDOW_STEPS,
    ExportSizes,
    generate,
    rr_stream_bounds,
    step_lag,
    write_export,
)
from afdetect.deploy.packaging import package_files
from afdetect.errors import AfdetectError, InputError
from afdetect.io.records import SignalStream, open_stream, read_record
from afdetect.monitor.atrial import organised
from afdetect.monitor.scan import IntegerStepModel, ScanConfig, scan_stream, window_geometry
from afdetect.runtime.engine import IntegerEngine

# -O3 vectorises the batch mode
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-O3"]
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
           layout: str = "fast", max_seconds: float = 600.0, atrial_check: bool = True
           ) -> ExportSizes:
    """Write the C library (weights in ``layout``, strips of up to ``max_seconds``, the
    continuous mode's atrial check unless ``atrial_check`` is False; see
    :func:`generate`), its demo, build-system files and README into ``out_dir``."""
    files, sizes = generate(model, metadata, max_seconds, layout=layout,
                            atrial_check=atrial_check)
    files.update(package_files())
    files["README.md"] = _readme(model, metadata, sizes)
    write_export(out_dir, files)
    return sizes


def library_sources(out_dir: str | Path) -> list[Path]:
    """The library's C files in an export (runtime and model tables), sorted."""
    return sorted((Path(out_dir) / "src").glob("*.c"))


def _compile(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AfdetectError(f"C compilation failed: {result.stderr.strip()[:2000]}")


def _host_compiler() -> str:
    compiler = c_compiler()
    if compiler is None:
        raise AfdetectError("no C compiler (cc, gcc or clang) found on PATH")
    return compiler


def build(out_dir: str | Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile the demo program with the system C compiler; return its path."""
    out = Path(out_dir)
    binary = out / "afd_demo"
    _compile([_host_compiler(), *CFLAGS, *extra_flags, f"-I{out / 'src'}", "-o", str(binary),
              str(out / "examples" / "demo" / "demo.c"), *map(str, library_sources(out))])
    return binary


def build_objects(out_dir: str | Path) -> list[Path]:
    """Compile the library alone, one object per C file under ``build/`` (for ``size``)."""
    out = Path(out_dir)
    (out / "build").mkdir(exist_ok=True)
    objects = []
    for source in library_sources(out):
        obj = out / "build" / f"{source.stem}.o"
        _compile([_host_compiler(), *CFLAGS, "-c", "-o", str(obj), str(source)])
        objects.append(obj)
    return objects


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


def window_rows(lines: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The continuous mode's window lines ("class logits... atrial TEMPL SPREAD BEATS
    ORGANISED", or "atrial -" without the check) -> int64 (n_windows, n_classes) logits and
    int64 (n_windows, 4) atrial terms (-1 where none), or None when no window had them."""
    logits, atrial = [], []
    for line in lines:
        tokens = line.split()
        cut = tokens.index("atrial") if "atrial" in tokens else len(tokens)
        logits.append([int(v) for v in tokens[1:cut]])
        terms = tokens[cut + 1:]
        atrial.append([int(v) for v in terms] if terms and terms != ["-"] else [-1] * 4)
    terms_array = np.array(atrial, dtype=np.int64).reshape(len(atrial), 4)
    return (np.array(logits, dtype=np.int64).reshape(len(logits), -1),
            terms_array if (terms_array[:, 3] >= 0).any() else None)


def run_stream_demo(binary: Path, stream: SignalStream, window_steps: int, hop_steps: int
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Feed a recording's raw counts to the demo's continuous mode, chunk by chunk; return
    its window logits and atrial terms (see :func:`window_rows`)."""
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
        return window_rows([line for line in out if line.strip()])


class Runner(Protocol):
    """Runs the compiled engine: strips (one decision) and streams (one per window)."""

    def strip(self, samples: np.ndarray) -> tuple[str, np.ndarray, int | None]:
        """Quantised samples -> (class label, integer logits, instructions or None)."""
        ...

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int
               ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
        """Raw counts -> (window logits, int64 (n_windows, n_classes); the atrial check's
        terms, int64 (n_windows, 4), or None (see :func:`window_rows`); instructions in
        the engine or None)."""
        ...


@dataclass
class HostRunner:
    """The demo program compiled for this machine."""

    binary: Path

    def strip(self, samples: np.ndarray) -> tuple[str, np.ndarray, int | None]:
        label, logits = run_demo(self.binary, samples)
        return label, logits, None

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int
               ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
        return (*run_stream_demo(self.binary, stream, window_steps, hop_steps), None)


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
    on_grid = scan.window_starts % hop_steps == 0
    expected = scan.integer_logits[on_grid]
    c_logits, c_atrial, instructions = runner.stream(stream, window_steps, hop_steps)
    # With RR features a window waits for its beats to be final; those still waiting when
    # the recording stops never come (the scan decides them with its detector's end).
    waiting = 0
    if scanner.model.rr is not None:
        waiting = rr_stream_bounds(scanner.model.rr, step_lag(scanner.model),
                                   scanner.downsampling, config.frontend.block,
                                   MAX_WINDOW_STEPS)[1]
    undecided = len(expected) - len(c_logits)
    identical = (0 <= undecided <= waiting and expected.shape[1:] == c_logits.shape[1:]
                 and bool(np.array_equal(expected[:len(c_logits)], c_logits)))
    n_same = int(np.all(expected[:len(c_logits)] == c_logits[:len(expected)], axis=1).sum())
    row = {"record": stream.name, "mode": "stream", "fs": stream.fs,
           "duration_s": round(stream.duration_s, 3), "windows": len(expected),
           "c_windows": len(c_logits), "windows_identical": n_same,
           "label": CLASSES[int(expected[-1].argmax())] if len(expected) else "",
           "identical": identical}
    if c_atrial is not None:  # the atrial check: its terms and verdicts, window by window
        # (the windows the device reported: with RR features the last may be waiting)
        terms = scan.atrial_terms[on_grid]
        limit = config.rule.max_atrial_coherence
        verdicts = (organised(terms, limit) if limit is not None
                    else np.zeros(len(terms), dtype=bool))
        n = len(c_atrial)
        same = (n == len(c_logits) and 0 <= len(terms) - n <= waiting
                and bool(np.array_equal(terms[:n], c_atrial[:, :2]))
                and bool(np.array_equal(verdicts[:n], c_atrial[:, 3] == 1)))
        row.update(atrial_identical=same, organised_windows=int(verdicts.sum()))
        row["identical"] = identical and same
    if instructions is not None:
        row["instructions"] = instructions
    return row


def _readme(model: IntegerModel, metadata: dict[str, Any], sizes: ExportSizes) -> str:
    fs = metadata["fs"]
    metadata_step = model.convs[0].stride * 2 ** len(model.convs)
    return f"""# afdetect C engine

Generated by `afdetect export`. A C99 library classifying a single-lead ECG recording as
normal sinus rhythm (`N`), atrial fibrillation (`A`), other rhythm (`O`) or too noisy
(`~`), and monitoring a signal that never ends. Integer-only: the inference path has no
floating point, no multiplier by default (every product is a shift; see `AFD_MULTIPLY`
below), no `malloc`, no globals and no library calls; it needs only `<stdint.h>` and `<stddef.h>`.

## Files

- `src/`: the library. `afdetect.h` is the API (every call, its units, ranges and return
  codes). The runtime (`afd_net.c` the streaming network, `afd_conv.c` the layer
  arithmetic, `afd_kernels_*.c` the weight decoder of this layout, `afd_strip.c`,
  `afd_stream.c` the continuous mode, `afd_quantise.c`, `afd_beats.c` the R-peak
  detector, and `afd_rr.c` / `afd_batch.c`
  where present) is the same for every model; `afd_config.h` (dimensions) and
  `afd_model_tables.c` (weights, `const`) are this model's, generated.
- `examples/demo/demo.c`: a host program reading a file of samples; `examples/cortex-m/`
  (with `--target`): a bare-metal startup file, linker script and driver.
- Build systems: `Makefile`, `CMakeLists.txt` (+ `cmake/arm-none-eabi.cmake`), a Zephyr
  module (`zephyr/module.yml`, `zephyr/Kconfig`: `CONFIG_AFDETECT=y`), PlatformIO's
  `library.json` and Arduino's `library.properties`. Each compiles every `src/*.c`.

## Instances

All state lives in structs you allocate: `afd_strip_t` for a strip, `afd_stream_t` for
continuous monitoring. Their `sizeof` is a compile-time constant; declare them `static`
(they hold the network's input buffers), in a pool, or anywhere else. Any number of them run side
by side, interleaved in any order: two channels, or a strip classified while the monitor
keeps running.

## Input

- One lead, sampled at **{fs} Hz** for strips. Recordings at other rates are resampled
  first, exactly as afdetect does it: `scipy.signal.resample_poly(x, up, down)` with
  `up/down` the reduced fraction of {fs}/rate. (The continuous mode resamples inside.)
- At least {metadata["preprocess"]["min_seconds"]:g} s (`AFD_MIN_SAMPLES` samples). The
  int32 accumulators are proven not to overflow up to `AFD_MAX_SAMPLES` samples.
- `afd_strip_push()` takes the normalised signal as a signed {model.input_bits}-bit
  integer: with `x` in mV, `x -= mean(x)`, `x *= 2^-round(log2(std(x)))`, then
  `q = floor(x * 2^{model.input_frac} + 1/2)` clamped to
  [-{2 ** (model.input_bits - 1)}, {2 ** (model.input_bits - 1) - 1}].
  `afd_quantise_input()` computes exactly this from raw ADC counts in integers (mean and
  standard deviation need the whole recording, so it makes two passes over a buffer).

## Calling it from firmware

```c
#include "afdetect.h"

static int16_t adc[30 * AFD_SAMPLING_RATE_HZ];   /* a 30 s strip, raw counts */
static int16_t q[30 * AFD_SAMPLING_RATE_HZ];
static afd_strip_t strip;                          /* the classifier's state */

int classify_strip(int32_t n, int32_t adc_per_mv)
{{
    int32_t logits[AFD_N_CLASSES];
    afd_quantise_input(adc, n, adc_per_mv, q);      /* integer preprocessing */
    return afd_classify(&strip, q, n, logits);       /* 0 N, 1 A, 2 O, 3 ~ */
}}
```

Or stream a strip: `afd_strip_init(&strip)`, then `afd_strip_push(&strip, q)` per sample
as it arrives, then `afd_strip_finish(&strip, logits)`. The instance keeps one ring of the
last K input columns per layer, so its size does not depend on the recording length.

## Continuous monitoring

For a patch or Holter that never stops, feed raw ADC counts (up to 16 bits, any integer
rate of 100 Hz or more: 250, 256, 360, 500 Hz...) one at a time; the instance resamples
to {fs} Hz, removes the baseline, scales and quantises inside, in integers, exactly as
`afdetect scan` does, and reports a decision over the last window every hop:

```c
#include "afdetect.h"

static afd_stream_t monitor;

static void on_window(int cls, const int32_t logits[AFD_N_CLASSES],
                      const afd_atrial_t *atrial, void *user)
{{
    /* cls: 0 N, 1 A (atrial fibrillation), 2 O, 3 ~, after the atrial check; logits:
       the network's integer logits; atrial: the check's terms (NULL when it is off) */
    (void)logits; (void)atrial; (void)user;
    if (cls == 1) {{ /* flag AF for this window */ }}
}}

void start_monitor(void)
{{
    /* windows of 18 steps (18 x {metadata_step} samples = 30.7 s) every 6 steps (10.2 s),
       the afdetect scan defaults, from a 250 Hz ADC */
    afd_stream_init(&monitor, 250, 18, 6, on_window, 0);
}}

void adc_isr(int16_t count) {{ afd_stream_push(&monitor, count); }}
```

A step is `AFD_STEP_SAMPLES` samples at {fs} Hz; windows may span up to
`AFD_MAX_WINDOW_STEPS` steps, over which every int32 sum was proven bounded at export,
however long the engine runs (counters wrap or saturate). The front end works in blocks of
`AFD_BLOCK` samples, so decisions come in bursts at block ends (latency about 2.6 s on top
of the window). Its interpolation and variance estimate use integer multiplies and one
division per output sample; the network itself uses none.

Each window also gets the **atrial check** of `afdetect scan`: an R-peak detector on the
same input (with RR features, the one that finds the windows' beats) takes the 220 ms of
signal ending 80 ms before each R peak; when the same wave
stands before every QRS of the window (P waves, however irregular the rate, or flutter
waves) the window is *organised* and not AF: `cls` is then the best of the other classes,
`logits` stay the network's, and `atrial` holds the two integer terms (`templ`,
`spread`: their ratio is the coherence, 0 to 1), the beats and the `organised` flag,
exactly as `afdetect scan` computes them. It runs when the window is a whole number of
hops, up to `AFD_ATRIAL_BLOCKS - 1 - AFD_ATRIAL_AHEAD_STEPS / hop` hops (3 for the default
18 / 6); otherwise `atrial` is NULL. It squares its bins, once per beat and per window;
`-DAFD_ATRIAL=0` compiles it out (about 1.1 KB of RAM and 1.4 KB of code less; with RR
features 0.7 KB and 0.9 KB).

Two channels are two `afd_stream_t`, each with its own callback or `user` pointer.
Turning decisions into episodes (mean P(AF) per step over overlapping windows, minimum
episode and gap lengths) is left to the host, as in `afdetect.monitor.episodes`.

## Build and try

```sh
make                      # cc -std=c99 -Wall -Wextra -Werror -O3: ./afd_demo
./afd_demo --adc 1000 raw_counts.txt   # one integer per line, 1000 counts/mV
cmake -B build && cmake --build build   # the same, with CMake: build/afd_demo
cmake -B arm -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake -DAFDETECT_CPU=cortex-m4 \\
    && cmake --build arm                 # libafdetect.a for the core
```

On a core whose multiply costs what a shift does (Cortex-M0+ with the single-cycle
multiplier, M3, M4, M7, M33), compile with `-DAFD_MULTIPLY=1`: the kernels then multiply
by sign x 2^shift instead of shifting and negating, with the same integers as results,
and on cores with the DSP extension (M4, M7, M33) use dual 16-bit multiply-accumulates
(`afdetect export --target cortex-m4` and `--target cortex-m0plus` do). The default, 0,
uses no multiplier (cores with a slow one, ASIC estimates).

The demo prints the class and the four integer logits (larger is more likely; divide by
2^{-model.classifier.e_min + model.classifier.in_frac} times the number of final time steps
for the float model's logits).

## Sizes

Weight layout: `AFD_LAYOUT` in `afd_config.h` ("fast": per-row counts and a bit stream
of records, an input channel and its codes; "packed": the model file's bit-packed
blocks, for the least flash); both decode each kernel once per tile of output times and
have the host batch mode `afd_classify_batch`.
Tables: {sizes.tables} bytes const (codes {sizes.weight_codes}, indices
{sizes.weight_indices}, row pointers {sizes.row_pointers}, biases {sizes.biases}).
RAM of one instance: about {sizes.ram} bytes (input buffers {sizes.ram_rings}, columns
{sizes.ram_columns}, other {sizes.ram_other}; `sizeof` gives the exact figure for your
compiler), independent of the recording length; the library itself has no static data.

Model metadata: classes {metadata["classes"]}, recipe {metadata.get("recipe", {})
.get("sparsity")} sparsity / {model.weight_bits_text}-bit power-of-two weights /
{model.act_bits}-bit activations.
"""
