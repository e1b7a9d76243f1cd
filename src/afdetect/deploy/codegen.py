"""C99 export of an integer model: the model's tables and configuration for the C runtime.

The runtime is hand-written C in ``afdetect/deploy/c`` (the layer kernels of each weight
layout, the streaming network, strips, the continuous mode's front end, the RR detector
and the batch mode), the same for every model. This module emits only what a model
changes: ``afd_config.h`` (its dimensions) and ``afd_model_tables.c`` (its weights as
``const`` tables), and proves at export that no int32 accumulator overflows on strips up
to ``max_seconds`` or windows up to ``max_window_steps``. The library then computes
exactly what :class:`afdetect.runtime.engine.IntegerEngine` computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.atomic import write_text_atomic
from afdetect.compress.integer import IntegerLayer, IntegerModel, conv_accumulator_bound
from afdetect.compress.sparse_index import KERNEL, bits_for, signed_width, whole_kernels
from afdetect.errors import AfdetectError
from afdetect.model.rr import FEATURE_MAX, MEDIAN_OF, N_FEATURES, SCALE_BITS, RRConfig
from afdetect.monitor.atrial import SHIFT, THRESHOLD_BITS, AtrialConfig
from afdetect.monitor.beats import SCAN_DETECTOR, STRIP_DETECTOR
from afdetect.monitor.episodes import AF, EpisodeRule
from afdetect.monitor.frontend import FrontEndConfig
from afdetect.monitor.stack import integer_stack
from afdetect.runtime.format import pack_layer

INT32_MAX = 2**31 - 1
LAYOUTS = ("fast", "packed")
MAX_WINDOW_STEPS = 64  # longest monitoring window of the continuous mode (109 s at 300 Hz)
ATRIAL_BLOCKS = 4  # hop-blocks the atrial check holds: windows of 3 hops (18 / 6 steps)


@dataclass(frozen=True)
class ExportSizes:
    """Memory of the exported engine, in bytes: const tables (flash), and the RAM of one
    instance, the larger of ``afd_strip_t`` and ``afd_stream_t`` (``ram_rings``: the
    layers' input buffers, ``ram_columns``: their unpaired output columns and the pooled
    output; the rest of the instance; C alignment may add a few bytes)."""

    weight_codes: int
    weight_indices: int
    row_pointers: int
    biases: int
    ram_rings: int
    ram_columns: int
    ram_other: int

    @property
    def tables(self) -> int:
        return self.weight_codes + self.weight_indices + self.row_pointers + self.biases

    @property
    def ram(self) -> int:
        return self.ram_rings + self.ram_columns + self.ram_other


def accumulator_bound(model: IntegerModel, steps: int) -> int:
    """Largest |accumulator| any layer can reach when the classifier sums ``steps`` steps
    (a strip's whole length, or a monitoring window)."""
    bound = conv_accumulator_bound(model)
    top = 2 ** model.act_bits - 1
    fc = model.classifier
    c_last = model.convs[-1].mask.shape[0]
    # the classifier's inputs at their largest, on its input grid (RR features last)
    peak = np.full(fc.mask.shape[1], float(top * steps
                                           << (fc.in_frac - model.convs[-1].out_frac)))
    if model.rr is not None:
        peak[c_last:] = FEATURE_MAX * steps * 2.0 ** (fc.in_frac - SCALE_BITS)
    terms = np.where(fc.mask, peak[None, :, None] * np.exp2(fc.shift.astype(np.float64)), 0)
    per_class = terms.reshape(terms.shape[0], -1).sum(axis=1) + np.abs(fc.bias) * steps
    return max(bound, int(per_class.max()), int(peak.max()))


TILE_BYTES = 1536  # a layer's input buffer holds about this much: tile = its output times
MAX_TILE = 32      # beyond this a kernel's decoding is already a small share of its use


@dataclass(frozen=True)
class Tiling:
    """How a conv layer streams: ``tile`` output times computed at once from an input
    buffer of ``cap = K - 1 + tile * stride`` columns per input channel."""

    tile: int
    cap: int


def tiling(layer: IntegerLayer, value_bytes: int) -> Tiling:
    """The tile of a conv layer whose inputs take ``value_bytes`` bytes each: as many
    output times (even, 2 to :data:`MAX_TILE`) as fit a buffer of about
    :data:`TILE_BYTES`."""
    _, c_in, k = layer.mask.shape
    fit = (TILE_BYTES // (value_bytes * c_in) - (k - 1)) // layer.stride
    tile = max(2, min(MAX_TILE, fit) // 2 * 2)
    return Tiling(tile, k - 1 + tile * layer.stride)


def _bit_stream(fields: list[tuple[int, int]]) -> np.ndarray:
    """(value, width) fields packed MSB first into bytes, the last one zero-padded."""
    bits = "".join(format(v, f"0{w}b") for v, w in fields if w > 0)
    bits += "0" * (-len(bits) % 8)
    return np.array([int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)], dtype=np.uint8)


def _fast_layer(i: int, layer: IntegerLayer, is_conv: bool, geometry: str
                ) -> tuple[str, str, tuple[int, int, int, int]]:
    """Tables and descriptor of one layer in the fast layout; (index, row count, code,
    bias) bytes (index: the records' channel and tap fields, their share of the stream)."""
    c_out, c_in, k = layer.mask.shape
    whole = (whole_kernels(layer.mask) is not None) if is_conv else k == 1
    chan_bits = (c_in - 1).bit_length()
    tap_bits = 0 if whole else (k - 1).bit_length()
    codes = (layer.sign < 0).astype(np.int64) << (layer.bits - 1) | layer.shift
    fields: list[tuple[int, int]] = []
    counts = np.zeros(c_out, dtype=np.int64)
    # C order: a kernel's taps consecutive
    for o, c, t in zip(*np.nonzero(layer.mask), strict=True):
        if whole and t > 0:
            continue
        counts[o] += 1
        fields.append((int(c), chan_bits))
        if whole:
            fields += [(int(v), layer.bits) for v in codes[o, c]]
        else:
            fields += [(int(t), tap_bits), (int(codes[o, c, t]), layer.bits)]
    if counts.max(initial=0) > 255:
        raise AfdetectError(f"layer {i}: {counts.max()} kernels in one row; the fast layout "
                            "counts at most 255 (export --layout packed)")
    records = _bit_stream(fields)
    index_bytes = int(counts.sum()) * (chan_bits + tap_bits) // 8
    bias_bits = signed_width(layer.bias)
    if bias_bits > 24:
        raise AfdetectError(f"layer {i}: {bias_bits}-bit biases; the fast layout reads at "
                            "most 24 bits at a time (export --layout packed)")
    biases = _bit_stream([(int(b) & (2**bias_bits - 1), bias_bits) for b in layer.bias])
    table = "".join([
        _c_array("uint8_t", f"L{i}_records", records),
        _c_array("uint8_t", f"L{i}_count", counts),
        _c_array("uint8_t", f"L{i}_biases", biases),
    ])
    descriptor = (f"    {{{geometry}, L{i}_records, L{i}_count, L{i}_biases, {layer.bits}, "
                  f"{chan_bits}, {tap_bits}, {bias_bits}}}")
    return table, descriptor, (index_bytes, len(counts), len(records) - index_bytes,
                               len(biases))


_SCHEME_IDS = {"dense": 0, "bitmap": 1, "relative": 2, "csr": 3}


def _packed_layer(i: int, layer: IntegerLayer, geometry: str
                  ) -> tuple[str, str, tuple[int, int, int]]:
    """Tables and descriptor of one layer in the packed layout: the file's blocks as
    bytes; (index, code, bias) bytes."""
    packed = pack_layer(layer)
    index = packed.index
    c_out, c_in, k = layer.mask.shape
    kernel_grid = index.scheme.startswith(KERNEL)
    base = index.scheme.removeprefix(KERNEL)
    group = k if kernel_grid else 1
    row_len = c_in if kernel_grid else c_in * k
    if packed.bias_width > 24:
        raise AfdetectError(f"layer {i}: {packed.bias_width}-bit biases; the packed layout "
                            "reads at most 24 bits at a time")
    streams = list(index.streams) + [b""] * (2 - len(index.streams))
    entries = index.entries if base == "relative" else c_out * row_len
    table = "".join([
        _c_array("uint8_t", f"P{i}_index", np.frombuffer(streams[0], dtype=np.uint8)),
        _c_array("uint8_t", f"P{i}_columns", np.frombuffer(streams[1], dtype=np.uint8)),
        _c_array("uint8_t", f"P{i}_codes", np.frombuffer(packed.codes, dtype=np.uint8)),
        _c_array("uint8_t", f"P{i}_biases", np.frombuffer(packed.biases, dtype=np.uint8)),
    ])
    descriptor = (
        f"    {{{geometry}, P{i}_index, P{i}_columns, P{i}_codes, P{i}_biases, {entries}, "
        f"{_SCHEME_IDS[base]}, {index.param}, {layer.bits}, {packed.bias_width}, "
        f"{packed.bias_shift}, {bits_for(row_len)}, {bits_for(max(row_len - 1, 0))}, "
        f"{group}}}")
    n_index = sum(len(st) for st in index.streams)
    return table, descriptor, (n_index, len(packed.codes), len(packed.biases))


def _c_array(ctype: str, name: str, values: np.ndarray | list[int], per_line: int = 16) -> str:
    values = [int(v) for v in np.asarray(values).ravel()] or [0]
    lines = [", ".join(str(v) for v in values[i:i + per_line])
             for i in range(0, len(values), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(values)}] = {{\n    {body}\n}};\n"


def generate(model: IntegerModel, metadata: dict[str, Any], max_seconds: float = 600.0,
             frontend: FrontEndConfig | None = None,
             max_window_steps: int = MAX_WINDOW_STEPS, layout: str = "fast",
             atrial_check: bool = True) -> tuple[dict[str, str], ExportSizes]:
    """The C library for ``model`` as ``{path in the export: text}``, and its static sizes.

    Paths: ``src/`` holds the runtime (copied, see :func:`runtime_files`) with the
    generated ``src/afd_config.h`` and ``src/afd_model_tables.c``; ``examples/`` the host
    demo. Strips may be up to ``max_seconds`` long; the continuous mode takes windows of up
    to ``max_window_steps`` steps and any number of samples. Both are proven free of int32
    overflow here. Both layouts decode each kept kernel once per tile of output times
    (:func:`tiling`) and share the arithmetic and the host batch mode. ``layout`` "fast"
    holds the weights as per-row record counts and one bit stream of records (an input
    channel and its codes), decoded with few instructions; "packed" holds them exactly as
    the .afq file packs them (its sparse index schemes), for the least flash.
    """
    fs = int(metadata["fs"])
    frontend = frontend or FrontEndConfig()
    max_samples = int(max_seconds * fs)
    bound = accumulator_bound(model, model.output_steps(max_samples))
    if bound > INT32_MAX:
        raise AfdetectError(f"accumulators may reach {bound} > 2^31 - 1 on {max_seconds:g} s "
                            "recordings; the int32 C engine cannot run this model")
    stream_bound = accumulator_bound(model, max_window_steps)
    if stream_bound > INT32_MAX:
        raise AfdetectError(f"window logits may reach {stream_bound} > 2^31 - 1 over "
                            f"{max_window_steps} steps; export a shorter maximum window")
    n_classes = model.classifier.mask.shape[0]
    if layout not in LAYOUTS:
        raise AfdetectError(f"unknown layout {layout!r} (layouts: {', '.join(LAYOUTS)})")
    if model.convs[0].mask.shape[1] != 1:
        raise AfdetectError("the C engine takes one input channel (a single lead)")
    act_bytes = 1 if model.act_bits <= 8 else 2
    tilings = [tiling(layer, 2 if i == 0 else act_bytes) for i, layer in enumerate(model.convs)]
    for layer, tiled in zip(model.convs, tilings, strict=True):
        if not layer.padding < layer.mask.shape[2] <= tiled.cap:
            raise AfdetectError(f"padding {layer.padding} of a kernel of "
                                f"{layer.mask.shape[2]}: the C engine needs pad < K")
        if max(layer.mask.shape[2], layer.stride) > 255 or abs(layer.requant_shift) > 127:
            raise AfdetectError("the C engine takes kernels and strides of up to 255 and "
                                "requantisation shifts of up to 127")
    tables, descriptors = [], []
    codes_bytes = index_bytes = row_bytes = bias_bytes = 0
    input_total = act_total = half_total = 0
    fc_descriptor = ""
    for i, layer in enumerate(model.layers):
        is_conv = i < len(model.convs)
        c_out, c_in, k = layer.mask.shape
        if is_conv:
            tiled = tilings[i]
            buf = input_total if i == 0 else act_total
            geometry = (f"{c_in}, {c_out}, {k}, {layer.stride}, {layer.padding}, "
                        f"{layer.requant_shift}, {tiled.tile}, {tiled.cap}, {buf}, "
                        f"{half_total}")
            if i == 0:
                input_total += c_in * tiled.cap
            else:
                act_total += c_in * tiled.cap
            half_total += c_out
        else:
            geometry = f"{c_in}, {c_out}, {k}, 1, 0, 0, 0, 0, 0, 0"
        if layout == "packed":
            table, descriptor, (n_index, n_codes, n_bias) = _packed_layer(i, layer, geometry)
        else:
            table, descriptor, (n_index, n_rows, n_codes, n_bias) = _fast_layer(
                i, layer, is_conv, geometry)
            row_bytes += n_rows
        tables.append(table)
        index_bytes += n_index
        codes_bytes += n_codes
        bias_bytes += n_bias
        if is_conv:
            descriptors.append(descriptor)
        else:
            fc_descriptor = descriptor.strip()
    if max(input_total, act_total) >= 2**16:
        raise AfdetectError("the layers' input buffers need more than 64 KB")
    n_convs = len(model.convs)
    c_last = model.convs[-1].mask.shape[0]
    out_at, out_cap = act_total, tilings[-1].tile // 2 + 1  # the last layer's pooled output
    act_total += c_last * out_cap
    ring_bytes = 2 * input_total + act_bytes * act_total
    column_bytes = act_bytes * half_total
    net = ring_bytes + column_bytes + 4 * (2 * n_convs + 1)
    strip = net + 4 * c_last + 8
    beats = model.rr or SCAN_DETECTOR.rr
    if model.rr is not None:  # afd_rr_t: the detector; 11 int32 scalars, one int64, a ring
        strip += _detector_bytes(model.rr) + 4 * (11 + 2 + MEDIAN_OF)
    atrial = AtrialConfig(fs=fs)
    lag = step_lag(model)
    # the check needs a window's beats final when its last step comes out: a network that
    # answers sooner (the small test nets) goes without it; and its blocks of held steps
    # rest on the front end's blocks ending at step boundaries (the stream flushes the
    # network at each), else a beat could land past them. With RR features the same
    # conditions hold; the check then reads the RR windows' detector (one for both).
    step = model.convs[0].stride * 2 ** len(model.convs)
    has_atrial = (atrial_check
                  and EpisodeRule().max_atrial_coherence is not None
                  and lag >= beats.integrate // 2 + beats.segment + beats.refractory + 1
                  and step % frontend.block == 0)
    rr_peaks, rr_pending = rr_stream_bounds(beats, lag, step, frontend.block,
                                            max_window_steps)
    stream = (net + 2 * frontend.block + 2 * frontend.block + 16 * frontend.span
              + 4 * n_classes * max_window_steps + 4 * 24 + 8
              + (_atrial_bytes(beats, atrial, model.rr is None) if has_atrial else 0)
              + (_detector_bytes(beats) + 4 * (5 + rr_peaks + n_classes * rr_pending)
                 if model.rr is not None else 0))
    sizes = ExportSizes(codes_bytes, index_bytes, row_bytes, bias_bytes, ring_bytes,
                        column_bytes, max(strip, stream) - ring_bytes - column_bytes)
    config = _CONFIG.format(
        layout=layout, packed=int(layout == "packed"),
        n_classes=n_classes, fs=fs, input_bits=model.input_bits,
        input_frac=model.input_frac, act_top=2 ** model.act_bits - 1, n_convs=n_convs,
        c_last=c_last, max_k=max(layer.mask.shape[2] for layer in model.layers),
        max_bits=max(layer.bits for layer in model.layers),
        max_shift=max(int(layer.shift[layer.mask].max(initial=0)) for layer in model.layers),
        max_tile=max(t.tile for t in tilings), input_total=input_total, act_total=act_total,
        out_at=out_at, out_cap=out_cap, column_total=half_total,
        min_samples=int(metadata["preprocess"]["min_seconds"] * fs), max_samples=max_samples,
        step_samples=model.convs[0].stride * 2 ** n_convs, max_window=max_window_steps,
        block=frontend.block, block_log2=frontend.block.bit_length() - 1,
        span=frontend.span, has_rr=int(model.rr is not None),
        beats=_CONFIG_BEATS.format(
            integrate=beats.integrate, segment=beats.segment, history=beats.history,
            refractory=beats.refractory, strip=STRIP_DETECTOR.threshold_eighths,
            scan=SCAN_DETECTOR.threshold_eighths, lag=lag),
        atrial=_CONFIG_ATRIAL.format(
            on=int(has_atrial), start=atrial.start, end=atrial.end, bin=atrial.bin_samples,
            bins=atrial.n_bins, shift=SHIFT, min_beats=atrial.min_beats,
            limit=round((EpisodeRule().max_atrial_coherence or 0) * 2 ** THRESHOLD_BITS),
            af=AF, blocks=ATRIAL_BLOCKS,
            ahead=(lag - 1) // (model.convs[0].stride * 2 ** n_convs)),
        rr="" if model.rr is None else _CONFIG_RR.format(
            rr_fs=model.rr.fs, rr_median_of=MEDIAN_OF, rr_n_features=N_FEATURES,
            rr_feature_max=FEATURE_MAX,
            rr_shift_sums=model.classifier.in_frac - model.convs[-1].out_frac,
            rr_shift_features=model.classifier.in_frac - SCALE_BITS,
            rr_peaks=rr_peaks, rr_pending=rr_pending))
    names = ", ".join(f'"{c}"' for c in metadata["classes"])
    model_tables = (_TABLES_HEAD + "\n".join(tables)
                    + "\nconst afd_layer afd_layers[AFD_N_CONVS] = {\n"
                    + ",\n".join(descriptors) + "\n};\n"
                    + f"const afd_layer afd_fc_layer = {fc_descriptor};\n"
                    + f"const char *const afd_class_names[AFD_N_CLASSES] = {{{names}}};\n")
    files = runtime_files(layout, model.rr is not None)
    files.update({"src/afd_config.h": config, "src/afd_model_tables.c": model_tables})
    return files, sizes


def runtime_files(layout: str, rr: bool) -> dict[str, str]:
    """The hand-written runtime a model in ``layout`` needs (with the RR detector when
    ``rr``), and the host demo: ``{path in the export: text}``, from the package's ``c/``."""
    root = resources.files("afdetect.deploy") / "c"
    names = [*COMMON_SOURCES, f"afd_kernels_{layout}.c"]
    if rr:
        names.append("afd_rr.c")
    names.append("afd_batch.c")
    files = {f"src/{name}": (root / name).read_text() for name in names}
    for name in DEMO_FILES:
        files[f"examples/{name}"] = (root / "examples" / name).read_text()
    return files


def firmware_files() -> dict[str, str]:
    """The bare-metal Cortex-M example: startup file, linker script and the semihosting
    driver the target checks run, ``{path in the export: text}``."""
    root = resources.files("afdetect.deploy") / "c" / "examples"
    return {f"examples/{name}": (root / name).read_text() for name in FIRMWARE_FILES}


# The runtime every export holds; the layout's decoder, afd_rr.c and afd_batch.c join
# them (afd_beats.c compiles to nothing where neither RR features nor the atrial check use it).
COMMON_SOURCES = ("afdetect.h", "afd_internal.h", "afd_net.c", "afd_conv.c", "afd_strip.c",
                  "afd_stream.c", "afd_quantise.c", "afd_beats.c")
DEMO_FILES = ("afd_print.h", "demo/demo.c")
FIRMWARE_FILES = ("cortex-m/startup.c", "cortex-m/target.ld", "cortex-m/target_main.c")


def write_export(out_dir: str | Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` under ``out_dir``, making folders as needed, each
    file whole and verified; all the destinations are checked before the first is
    written."""
    from afdetect.outputs import check_outputs

    out = Path(out_dir)
    check_outputs([out / name for name in files], ())
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / name, text)


_TABLES_HEAD = """\
/* afdetect model tables: the weights of one model for the afdetect runtime, const.
   Generated file. */
#include "afd_internal.h"

"""

_CONFIG = """\
/* afdetect model configuration: what the runtime needs to know of one model. Generated
   file (afdetect export); the runtime's API is in afdetect.h. */
#ifndef AFD_CONFIG_H
#define AFD_CONFIG_H

#define AFD_N_CLASSES {n_classes}
#define AFD_SAMPLING_RATE_HZ {fs}
/* afd_strip_push() takes round_half_up(x * 2^AFD_INPUT_FRAC_BITS) clamped to a signed
   AFD_INPUT_BITS-bit integer, x being the normalised signal (see README.md). */
#define AFD_INPUT_FRAC_BITS {input_frac}
#define AFD_INPUT_BITS {input_bits}
#define AFD_MIN_SAMPLES {min_samples}
/* int32 accumulators are proven not to overflow up to this many samples per strip. */
#define AFD_MAX_SAMPLES {max_samples}L
/* The continuous mode: a model step is AFD_STEP_SAMPLES samples; windows of up to
   AFD_MAX_WINDOW_STEPS steps are proven; the front end's block and span (in blocks). */
#define AFD_STEP_SAMPLES {step_samples}
#define AFD_MAX_WINDOW_STEPS {max_window}
#define AFD_BLOCK {block}
#define AFD_BLOCK_LOG2 {block_log2}
#define AFD_SPAN {span}
/* Weight layout of this export: "fast" (records of an input channel and its codes, read
   once per tile) or "packed" (the .afq file's bit-packed blocks, decoded once per tile). */
#define AFD_LAYOUT "{layout}"
#define AFD_LAYOUT_PACKED {packed}
#define AFD_HAS_BATCH 1
/* The network: conv layers, channels of the last layer, the longest kernel, the
   widest code and the largest exponent offset of any weight, the activation ceiling,
   the largest tile of output times; the totals of the layers' input buffers (layer 0's
   int16, the others' activations, the last layer's pooled output at AFD_OUT_AT,
   AFD_OUT_CAP columns) and output columns. */
#define AFD_N_CONVS {n_convs}
#define AFD_C_LAST {c_last}
#define AFD_MAX_K {max_k}
#define AFD_MAX_BITS {max_bits}
#define AFD_MAX_SHIFT {max_shift}
#define AFD_ACT_TOP {act_top}
#define AFD_MAX_TILE {max_tile}
#define AFD_INPUT_TOTAL {input_total}
#define AFD_ACT_TOTAL {act_total}
#define AFD_OUT_AT {out_at}
#define AFD_OUT_CAP {out_cap}
#define AFD_COLUMN_TOTAL {column_total}
/* 1 when the classifier also reads RR-interval features from an integer R-peak detector
   on the same input (afdetect.model.rr): a strip's from its own pass, each monitoring
   window's from the continuous mode's detector (afdetect scan's windows). */
#define AFD_RR {has_rr}
{rr}{beats}{atrial}
#endif
"""

_CONFIG_RR = """\
#define AFD_RR_FS {rr_fs}
#define AFD_RR_MEDIAN_OF {rr_median_of}
#define AFD_RR_N_FEATURES {rr_n_features}
#define AFD_RR_FEATURE_MAX {rr_feature_max}
/* the classifier's input grid: activation sums and features are shifted left by these */
#define AFD_RR_SHIFT_SUMS {rr_shift_sums}
#define AFD_RR_SHIFT_FEATURES {rr_shift_features}
/* the continuous mode: R peaks held (the longest window and how far final beats run
   ahead of it, at one beat per refractory period), and windows waiting for their beats */
#define AFD_RR_PEAKS {rr_peaks}
#define AFD_RR_PENDING {rr_pending}
"""

_CONFIG_BEATS = """\
/* The R-peak detector (afdetect.model.rr's with RR features, else afdetect scan's), in
   samples: energy window, threshold segment and history, refractory period; the
   threshold in eighths of the median for strips and for the continuous mode. A window's
   last step comes out of the network AFD_STEP_LAG samples after the window's end. */
#define AFD_BEAT_INTEGRATE {integrate}
#define AFD_BEAT_SEGMENT {segment}
#define AFD_BEAT_HISTORY {history}
#define AFD_BEAT_REFRACTORY {refractory}
#define AFD_STRIP_THRESHOLD_EIGHTHS {strip}
#define AFD_SCAN_THRESHOLD_EIGHTHS {scan}
#define AFD_STEP_LAG {lag}
"""

_CONFIG_ATRIAL = """\
/* The continuous mode's atrial check (afdetect.monitor.atrial; see afdetect.h): on
   unless compiled with -DAFD_ATRIAL=0. The stretch from AFD_ATRIAL_START to
   AFD_ATRIAL_END samples before each R peak, in AFD_ATRIAL_BINS bins of AFD_ATRIAL_BIN;
   windows of fewer than AFD_ATRIAL_MIN_BEATS beats are not checked; organised when the
   coherence exceeds AFD_ATRIAL_LIMIT / 256; the class it rules out; the hop-blocks held,
   and the steps by which final beats run ahead of the last window reported. */
#ifndef AFD_ATRIAL
#define AFD_ATRIAL {on}
#endif
#define AFD_ATRIAL_START {start}
#define AFD_ATRIAL_END {end}
#define AFD_ATRIAL_BIN {bin}
#define AFD_ATRIAL_BINS {bins}
#define AFD_ATRIAL_SHIFT {shift}
#define AFD_ATRIAL_MIN_BEATS {min_beats}
#define AFD_ATRIAL_LIMIT {limit}
#define AFD_AF_CLASS {af}
#define AFD_ATRIAL_BLOCKS {blocks}
#define AFD_ATRIAL_AHEAD_STEPS {ahead}
"""


def step_lag(model: IntegerModel) -> int:
    """Input samples from the end of a model step to the last sample its output needs
    (:attr:`afdetect.monitor.stack.StreamingStack.lag`): the streaming network emits step
    t once sample ``(t + 1) * step + lag - 1`` is in."""
    return integer_stack(model).lag


def rr_stream_bounds(rr: RRConfig, lag: int, step: int, block: int,
                     max_window_steps: int) -> tuple[int, int]:
    """(R peaks, windows) the continuous mode holds for RR features at most.

    A beat is final ``beat_lag`` samples after its R peak at the latest, and a window's
    last step comes out ``lag`` samples after its end at the earliest, or at the block's
    end after that: windows wait while the detector lags the network, one per step of
    the difference at most; the peaks held span the oldest waiting window and what the
    detector decided past it, the one segment it decides at once or the network's lag
    and block past its own, with more than ``refractory`` samples between two peaks.
    """
    beat_lag = rr.integrate // 2 + rr.segment + rr.refractory + 1
    pending = max(0, -(-(beat_lag - lag) // step)) + 1
    span = max_window_steps * step + rr.segment + max(0, lag + block - beat_lag)
    return (span - 1) // (rr.refractory + 1) + 2, pending


def _detector_bytes(rr: RRConfig) -> int:
    """afd_beats_t: q[5], the |slope| ring and candidate offsets (int16); 13 int32
    scalars, the maxima, two thresholds and the candidates' energies."""
    candidates = (rr.segment + rr.refractory) // (rr.refractory + 1)
    int16 = 5 + rr.refractory + rr.integrate + candidates
    return 2 * int16 + 2 * (int16 % 2) + 4 * (13 + rr.history + 2 + candidates)


def _atrial_bytes(rr: RRConfig, atrial: AtrialConfig, detector: bool = True) -> int:
    """afd_atrial_state_t: the detector (unless ``detector`` is False: with RR features
    the check shares the RR windows'), the input ring, the stretches (pending and per
    candidate), the hop-blocks' sums and 9 int32 scalars; rounded up to 8 bytes."""
    candidates = (rr.segment + rr.refractory) // (rr.refractory + 1)
    int16 = (atrial.start + rr.integrate // 2 + 3) + (1 + candidates) * (atrial.n_bins + 1)
    block = 4 * atrial.n_bins + 4 + 8
    block += -block % 8
    total = ((_detector_bytes(rr) if detector else 0) + 2 * int16 + 2 * (int16 % 2)
             + ATRIAL_BLOCKS * block + 36)
    return total + -total % 8
