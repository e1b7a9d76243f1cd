"""C99 export of an integer model: a streaming shift-add engine with ``const`` tables.

The generated library holds no floating point, calls no allocator and needs only
``<stdint.h>``. It is streaming: every convolution keeps a ring of its last K input
columns, so RAM does not grow with the recording and samples can be pushed as the ADC
delivers them. It computes exactly what :class:`afdetect.deploy.engine.IntegerEngine`
computes, provided no accumulator overflows int32 (checked here, at export, for
recordings up to ``max_seconds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.compress.integer import IntegerLayer, IntegerModel, conv_accumulator_bound
from afdetect.compress.sparse_index import KERNEL, bits_for, whole_kernels
from afdetect.deploy.format import pack_layer
from afdetect.errors import AfdetectError
from afdetect.model.rr import FEATURE_MAX, MEDIAN_OF, N_FEATURES, SCALE_BITS
from afdetect.monitor.frontend import FrontEndConfig

INT32_MAX = 2**31 - 1
LAYOUTS = ("fast", "packed")
MAX_WINDOW_STEPS = 64  # longest monitoring window of the continuous mode (109 s at 300 Hz)


@dataclass(frozen=True)
class ExportSizes:
    """Static memory of the generated engine, in bytes."""

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


def _fast_layer(i: int, layer: IntegerLayer, is_conv: bool, ring_at: int, col_at: int
                ) -> tuple[str, str, tuple[int, int, int, int]]:
    """Tables and descriptor of one layer in the fast layout; (index, row pointer, code,
    bias) bytes."""
    c_out, c_in, k = layer.mask.shape
    ring = 2 * k
    kernels = whole_kernels(layer.mask) if is_conv else None
    group = 1 if kernels is None else k  # weights located by one index entry
    if kernels is None:
        out, src, tap = np.nonzero(layer.mask)
    else:
        out, src = np.nonzero(kernels)
        tap = np.zeros_like(src)
    rows = np.searchsorted(out, np.arange(c_out + 1))
    offsets = src * ring + tap if is_conv else src
    kept = np.nonzero(layer.mask)  # C order: a kernel's taps are consecutive
    codes = (layer.sign[kept] < 0).astype(np.int64) << 7 | layer.shift[kept]
    table = "".join([
        _c_array("uint16_t", f"L{i}_row", rows),
        _c_array("uint16_t", f"L{i}_off", offsets),
        _c_array("uint8_t", f"L{i}_code", codes),
        _c_array("int32_t", f"L{i}_bias", layer.bias),
    ])
    descriptor = (f"    {{L{i}_row, L{i}_off, L{i}_code, L{i}_bias, {c_in}, {c_out}, {k}, "
                  f"{group}, {layer.stride}, {layer.padding}, {layer.requant_shift}, "
                  f"{ring_at}, {col_at}}}")
    return table, descriptor, (2 * len(offsets), 2 * len(rows), len(codes), 4 * c_out)


_SCHEME_IDS = {"dense": 0, "bitmap": 1, "relative": 2, "csr": 3}


def _packed_layer(i: int, layer: IntegerLayer, is_conv: bool, ring_at: int, col_at: int
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
        f"    {{P{i}_index, P{i}_columns, P{i}_codes, P{i}_biases, {entries}, "
        f"{_SCHEME_IDS[base]}, {index.param}, {layer.bits}, {packed.bias_width}, "
        f"{packed.bias_shift}, {bits_for(row_len)}, {bits_for(max(row_len - 1, 0))}, "
        f"{c_in}, {c_out}, {k}, {group}, {layer.stride}, {layer.padding}, "
        f"{layer.requant_shift if is_conv else 0}, "
        f"{ring_at}, {col_at}}}")
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
             max_window_steps: int = MAX_WINDOW_STEPS, layout: str = "fast"
             ) -> tuple[dict[str, str], ExportSizes]:
    """C sources ``{file name: text}`` for ``model`` and their static memory sizes.

    Strips may be up to ``max_seconds`` long; the continuous mode takes windows of up to
    ``max_window_steps`` steps and any number of samples. Both are proven free of int32
    overflow here. ``layout`` "fast" holds the weights as byte codes and 16-bit offsets
    (direct indexing; adds the host batch mode); "packed" holds them exactly as the .afq
    file packs them and decodes them on the fly, for the smallest flash.
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
    tables, descriptors = [], []
    codes_bytes = index_bytes = row_bytes = bias_bytes = ring_bytes = column_bytes = 0
    fc_descriptor = ""
    for i, layer in enumerate(model.layers):
        is_conv = i < len(model.convs)
        c_out, c_in, k = layer.mask.shape
        ring = 2 * k  # each column stored twice: every window is contiguous
        if layout == "packed":
            table, descriptor, (n_index, n_codes, n_bias) = _packed_layer(
                i, layer, is_conv, ring_bytes // 2 if is_conv else 0,
                column_bytes // 4 if is_conv else 0)
            tables.append(table)
            index_bytes += n_index
            codes_bytes += n_codes
            bias_bytes += n_bias
        else:
            table, descriptor, (n_index, n_rows, n_codes, n_bias) = _fast_layer(
                i, layer, is_conv, ring_bytes // 2, column_bytes // 4)
            tables.append(table)
            index_bytes += n_index
            row_bytes += n_rows
            codes_bytes += n_codes
            bias_bytes += n_bias
        if is_conv:
            descriptors.append(descriptor)
            ring_bytes += 2 * c_in * ring
            column_bytes += 2 * c_out * 2  # output column and pooled-pair partner
        else:
            fc_descriptor = descriptor.strip()
    n_convs = len(model.convs)
    c_last = model.convs[-1].mask.shape[0]
    max_c = max(layer.mask.shape[0] for layer in model.convs)
    stream = (2 * frontend.block + 2 * frontend.block + 16 * frontend.span
              + 4 * n_classes * (max_window_steps + 1) + 4 * 16)
    other = 4 * c_last + 4 * n_convs * 4 + 4 + stream + (4 * max_c if layout == "packed" else 0)
    if model.rr is not None:  # the detector's state (rr_state) of the strip mode
        rr = model.rr
        # q[5] int16; rings of integrate, 2r + 1, history, candidates x 2 and MEDIAN_OF
        # int32; 26 int32 scalars and one int64
        other += 2 * 5 + 4 * (rr.integrate + 2 * rr.refractory + 1 + rr.history
                              + 2 * (rr.segment // (rr.refractory + 1) + 2) + MEDIAN_OF
                              + 26 + 2)
    sizes = ExportSizes(codes_bytes, index_bytes, row_bytes, bias_bytes, ring_bytes,
                        column_bytes, other)
    values = {
        "n_classes": n_classes, "fs": fs, "input_bits": model.input_bits,
        "input_frac": model.input_frac, "act_top": 2 ** model.act_bits - 1,
        "n_convs": n_convs, "c_last": c_last, "max_c": max_c,
        "ring_total": ring_bytes // 2, "column_total": column_bytes // 4,
        "fc": n_convs, "min_samples": int(metadata["preprocess"]["min_seconds"] * fs),
        "classes": ", ".join(f'"{c}"' for c in metadata["classes"]),
        "max_samples": max_samples, "bound": bound,
        "step_samples": model.convs[0].stride * 2 ** n_convs, "max_window": max_window_steps,
        "block": frontend.block, "block_log2": frontend.block.bit_length() - 1,
        "span": frontend.span, "has_rr": int(model.rr is not None),
    }
    values["rr_code"] = "" if model.rr is None else (_SOURCE_RR + _RR_CLASSIFIER).format(
        rr_fs=model.rr.fs, rr_integrate=model.rr.integrate, rr_segment=model.rr.segment,
        rr_history=model.rr.history, rr_refractory=model.rr.refractory,
        rr_median_of=MEDIAN_OF, rr_n_features=N_FEATURES, rr_feature_max=FEATURE_MAX,
        rr_shift_sums=model.classifier.in_frac - model.convs[-1].out_frac,
        rr_shift_features=model.classifier.in_frac - SCALE_BITS, c_last=c_last)
    layout_code = (_PACKED_LAYOUT if layout == "packed" else _FAST_LAYOUT).format(
        tables="\n".join(tables), descriptors=",\n".join(descriptors),
        fc_descriptor=fc_descriptor, **values)
    header = _HEADER.format(layout=layout, has_batch=int(layout == "fast"), **values)
    source = _SOURCE.format(layout_code=layout_code, **values) \
        + _SOURCE_STREAM.format(**values) \
        + (_SOURCE_BATCH.format(**values) if layout == "fast" else "")
    return {"afdetect_model.h": header, "afdetect_model.c": source, "demo.c": _DEMO,
            "Makefile": _MAKEFILE}, sizes


def write_export(out_dir: str | Path, files: dict[str, str]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)


_HEADER = """\
/* afdetect compressed AF classifier: integer-only, streaming, C99. Generated file. */
#ifndef AFDETECT_MODEL_H
#define AFDETECT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define AFD_N_CLASSES {n_classes}
#define AFD_SAMPLING_RATE_HZ {fs}
/* afd_push() takes round_half_up(x * 2^AFD_INPUT_FRAC_BITS) clamped to a signed
   AFD_INPUT_BITS-bit integer, x being the normalised signal (see README.md). */
#define AFD_INPUT_FRAC_BITS {input_frac}
#define AFD_INPUT_BITS {input_bits}
#define AFD_MIN_SAMPLES {min_samples}
/* 1 when the classifier also reads RR-interval features from an integer R-peak detector
   on the same input (afdetect.model.rr); the continuous mode then refuses to start. */
#define AFD_RR {has_rr}
/* int32 accumulators are proven not to overflow up to this many samples. */
#define AFD_MAX_SAMPLES {max_samples}L

extern const char *const afd_class_names[AFD_N_CLASSES];

/* Start a new recording. */
void afd_reset(void);
/* Feed one quantised input sample. */
void afd_push(int16_t sample);
/* End the recording: writes the integer logits and returns the class index
   (0 N normal, 1 A atrial fibrillation, 2 O other rhythm, 3 ~ noisy), or -1 when
   fewer than AFD_MIN_SAMPLES samples were pushed. */
int afd_finish(int32_t logits[AFD_N_CLASSES]);
/* afd_reset, afd_push for each sample, afd_finish. */
int afd_classify(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES]);
/* Continuous monitoring (afdetect scan's integer pipeline): raw ADC counts of up to 16
   bits at fs_in_hz go in one by one, indefinitely, in static RAM; the engine resamples,
   removes the baseline, scales and quantises inside. Accepted rates: whole Hz from
   AFD_MIN_FS_IN_HZ to AFD_MAX_FS_IN_HZ (the resampler's phase, under
   AFD_SAMPLING_RATE_HZ, plus the reduced input rate must fit in int32; 1 MHz leaves a
   wide margin and is far above any ECG front end). A decision comes every hop_steps
   model steps (AFD_STEP_SAMPLES samples at AFD_SAMPLING_RATE_HZ each) over the last
   window_steps steps (1 to AFD_MAX_WINDOW_STEPS), hop_steps >= 1. Returns 0, or -1 for
   a rate or window outside those ranges, no on_window, or a model with RR features
   (AFD_RR); on -1 nothing changes, else it ends any strip in progress. */
#define AFD_MIN_FS_IN_HZ 100L
#define AFD_MAX_FS_IN_HZ 1000000L
#define AFD_STEP_SAMPLES {step_samples}
#define AFD_MAX_WINDOW_STEPS {max_window}
#define AFD_BLOCK {block}
#define AFD_BLOCK_LOG2 {block_log2}
#define AFD_SPAN {span}
typedef void (*afd_window_fn)(int cls, const int32_t logits[AFD_N_CLASSES], void *user);
int afd_stream_init(int32_t fs_in_hz, int32_t window_steps, int32_t hop_steps,
                    afd_window_fn on_window, void *user);
/* Push one raw count. Every window it completes is reported, in order, through
   on_window(class index (0 N, 1 A, 2 O, 3 ~), integer logits, user); the front end
   works in blocks of AFD_BLOCK samples, so a push may complete several windows. Returns
   how many. */
int afd_stream_push(int32_t adc_count);
/* Weight layout of this export: "fast" (byte codes, 16-bit offsets) or "packed" (the
   .afq file's bit-packed blocks, decoded on the fly). */
#define AFD_LAYOUT "{layout}"
#define AFD_HAS_BATCH {has_batch}
#if AFD_HAS_BATCH
/* Batch mode (fast layout), for hosts with memory to spare: the same logits as
   afd_classify, computed layer by layer over the whole recording (vectorised), in work
   memory of afd_batch_work_bytes(n) bytes (aligned for int32_t) that the caller provides. */
size_t afd_batch_work_bytes(int32_t n);
int afd_classify_batch(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES],
                       void *work);
#endif
/* afd_push's input from raw samples at AFD_SAMPLING_RATE_HZ with adc_per_mv counts per
   millivolt, in integers: subtract the mean, scale by the power of two nearest the
   standard deviation, multiply by 2^AFD_INPUT_FRAC_BITS, round half up, clamp. Needs the
   whole recording (two passes). Returns 0, or -1 for n outside 1..AFD_MAX_SAMPLES or
   adc_per_mv outside 1..65535 (the ranges its int64 arithmetic is safe for). */
int afd_quantise_input(const int16_t *adc, int32_t n, int32_t adc_per_mv, int16_t *out);

#endif
"""

_SOURCE = """\
/* afdetect compressed AF classifier: integer-only, streaming, C99. Generated file.
   Every product is a shift of an activation by a weight's exponent offset, added or
   subtracted by its sign; requantisation is a rounding right shift; ReLU and max
   pooling are compares. No floating point, no malloc, no library calls. */
#include "afdetect_model.h"

const char *const afd_class_names[AFD_N_CLASSES] = {{{classes}}};

#define ACT_TOP {act_top}

static int32_t shifted(int32_t x, int32_t s)
{{
    /* x << s without shifting a negative value (undefined in C99) */
    return x >= 0 ? (int32_t)(x << s) : -(int32_t)((-x) << s);
}}

static int32_t times_by_shifts(int32_t b, int32_t times)
{{
    /* b * times (times >= 0) by shifts and adds, one per bit of times */
    int32_t acc = 0;
    for (; times > 0; times >>= 1, b = (int32_t)((uint32_t)b << 1))
        if (times & 1) acc += b;
    return acc;
}}

static int16_t requantise(int32_t acc, int32_t shift)
{{
    int32_t v;
    if (acc <= 0) v = 0;  /* ReLU: a non-positive accumulator rounds to <= 0 */
    else if (shift > 0) v = (acc + ((int32_t)1 << (shift - 1))) >> shift;
    else v = acc << -shift;
    return (int16_t)(v > ACT_TOP ? ACT_TOP : v);
}}
{layout_code}
#define AFD_RR_CODE {has_rr}
#if AFD_RR_CODE
{rr_code}
static rr_state strip_rr;
#endif

/* Per conv layer: a ring of the last K input columns, each stored twice, its output
   column and the pooled-pair partner; packed back to back, so RAM is exactly the sum. */
static int16_t rings[{ring_total}];
static int16_t columns[{column_total}];
static int16_t pooled[{column_total}];
static int32_t fill[{n_convs}];    /* input columns received, padding included */
static int32_t pos[{n_convs}];     /* ring slot of the newest column */
static int32_t phase[{n_convs}];   /* countdown to the next output (stride) */
static int32_t outputs[{n_convs}]; /* parity of the outputs produced, for pooling pairs */
static int32_t sums[{c_last}];
static int32_t steps;
static int32_t pushed;

static void layer_push(int l, const int16_t *in);

static void stream_step(const int16_t *out);
static int streaming;  /* 1 in continuous mode: steps go to stream_step */

static void emit(int l, const int16_t *out)
{{
    int32_t c;
    if (l + 1 < {n_convs}) {{
        layer_push(l + 1, out);
        return;
    }}
    if (streaming) {{
        stream_step(out);
        return;
    }}
    for (c = 0; c < {c_last}; c++) sums[c] += out[c];
    steps++;
}}

static void layer_push(int l, const int16_t *in)
{{
    const afd_layer *L = &layers[l];
    int16_t *r = rings + L->ring, *col = columns + L->col, *pool = pooled + L->col, *slot;
    int32_t c, o;
    int32_t p = pos[l] + 1;
    if (p == L->k) p = 0;
    pos[l] = p;
    for (c = 0, slot = r + p; c < L->c_in; c++, slot += L->k + L->k) {{
        slot[0] = in[c];
        slot[L->k] = in[c];
    }}
    if (fill[l] < L->k && ++fill[l] < L->k) return;  /* saturates: streams never end */
    if (--phase[l] > 0) return;
    phase[l] = L->stride;
    conv_column(L, r + p + 1, col);  /* r + p + 1: the oldest column of the window */
    outputs[l] ^= 1;  /* parity of the outputs produced: pooling pairs */
    if (outputs[l]) {{
        for (o = 0; o < L->c_out; o++) pool[o] = col[o];
        return;
    }}
    for (o = 0; o < L->c_out; o++)
        if (col[o] > pool[o]) pool[o] = col[o];
    emit(l, pool);
}}

static void push_padding(int l, int32_t n)
{{
    static const int16_t zeros[{max_c}];
    while (n-- > 0) layer_push(l, zeros);
}}

void afd_reset(void)
{{
    int l, c;
    for (l = 0; l < {n_convs}; l++) {{
        pos[l] = layers[l].k - 1;
        fill[l] = 0;
        phase[l] = 1;
        outputs[l] = 0;
    }}
    for (c = 0; c < {c_last}; c++) sums[c] = 0;
    steps = 0;
    pushed = 0;
    streaming = 0;
#if AFD_RR_CODE
    rr_reset(&strip_rr);
#endif
    for (l = 0; l < {n_convs}; l++) push_padding(l, layers[l].pad);
}}

void afd_push(int16_t sample)
{{
    if (pushed < AFD_MIN_SAMPLES) pushed++;
#if AFD_RR_CODE
    rr_push(&strip_rr, sample);
#endif
    layer_push(0, &sample);
}}

int afd_finish(int32_t logits[AFD_N_CLASSES])
{{
    int l, c, best = 0;
    if (pushed < AFD_MIN_SAMPLES) return -1;
    for (l = 0; l < {n_convs}; l++) push_padding(l, layers[l].pad);
#if AFD_RR_CODE
    fc_with_rr(sums, steps, &strip_rr, logits);
#else
    fc_apply(sums, steps, logits);
#endif
    for (c = 1; c < AFD_N_CLASSES; c++)
        if (logits[c] > logits[best]) best = c;
    return best;
}}

int afd_classify(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES])
{{
    int32_t i;
    afd_reset();
    for (i = 0; i < n; i++) afd_push(samples[i]);
    return afd_finish(logits);
}}

static int64_t floor_div(int64_t a, int64_t b)  /* b > 0 */
{{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}}

int afd_quantise_input(const int16_t *adc, int32_t n, int32_t adc_per_mv, int16_t *out)
{{
    /* The float definition: x = adc / gain mV; x -= mean(x); k = round(log2(std(x)));
       q = floor(x * 2^(F - k) + 1/2), clamped; F = AFD_INPUT_FRAC_BITS. Here in
       integers: centred values are (n * adc - sum) / (n * gain), exactly. */
    int64_t sum = 0, mean, rest, dev = 0, var, gain2, num, den;
    int32_t i, k, f;
    const int64_t top = ((int64_t)1 << (AFD_INPUT_BITS - 1)) - 1;
    if (n < 1 || n > AFD_MAX_SAMPLES || adc_per_mv < 1 || adc_per_mv > 65535) return -1;
    for (i = 0; i < n; i++) sum += adc[i];
    /* var = floor((n sum(adc^2) - sum^2) / n^2) counts^2, without the n sum(adc^2) that
       overflows int64 for long full-scale strips: with sum = mean n + rest (0 <= rest <
       n) and dev = sum((adc - mean)^2) = a n + b (0 <= b < n), the numerator is
       n dev - rest^2, so var = a, less 1 when b n < rest^2. */
    mean = floor_div(sum, n);
    rest = sum - mean * n;
    for (i = 0; i < n; i++) dev += (adc[i] - mean) * (adc[i] - mean);
    var = dev / n - (dev % n * n < rest * rest ? 1 : 0);
    gain2 = (int64_t)adc_per_mv * adc_per_mv;
    /* k = round(log2(std / gain)): the k with gain^2 2^(2k-1) <= var < gain^2 2^(2k+1) */
    k = 0;
    while (k < 20 && (gain2 << (2 * k + 1)) <= var) k++;
    /* only when k did not grow (then var >= gain^2 2^(2k-1) already; and the shift
       stays positive) */
    while (k <= 0 && k > -20 && (var << (1 - 2 * k)) < gain2) k--;
    f = AFD_INPUT_FRAC_BITS - k;
    den = (int64_t)n * adc_per_mv;
    if (f < 0) den <<= -f;
    for (i = 0; i < n; i++) {{
        num = (int64_t)n * adc[i] - sum;
        if (f > 0) num = num >= 0 ? num << f : -((-num) << f);
        num = floor_div(2 * num + den, 2 * den);  /* round half up */
        out[i] = (int16_t)(num > top ? top : (num < -top - 1 ? -top - 1 : num));
    }}
    return 0;
}}
"""

_FAST_LAYOUT = """
/* Fast layout. Per layer: index entries grouped by output channel (row[o] .. row[o + 1]
   - 1), each locating `group` consecutive kept weights (1, or a whole kernel of K taps):
   off = input channel * 2K + first tap (ring offset); then the codes of every kept
   weight in the same order, code = sign << 7 | shift. */
{tables}
typedef struct {{
    const uint16_t *row;
    const uint16_t *off;
    const uint8_t *code;
    const int32_t *bias;
    int16_t c_in, c_out, k, group, stride, pad, shift;
    uint16_t ring, col;  /* offsets of the layer's ring and columns in the buffers */
}} afd_layer;

static const afd_layer layers[{n_convs}] = {{
{descriptors}
}};

/* One output column of a conv layer; x: its ring at the oldest column of the window. */
static void conv_column(const afd_layer *L, const int16_t *x, int16_t *col)
{{
    const uint8_t *code = L->code;  /* walks the codes in index order */
    const uint16_t *row = L->row, *off = L->off;
    const int32_t group = L->group, c_out = L->c_out, shift = L->shift;
    int32_t o, t, j = row[0], end;
    for (o = 0; o < c_out; o++) {{
        int32_t acc = L->bias[o];
        for (end = row[o + 1]; j < end; j++) {{
            const int16_t *w = x + off[j];
            for (t = 0; t < group; t++) {{
                int32_t c = *code++, v = shifted(w[t], c & 0x7F);
                acc += (c & 0x80) ? -v : v;
            }}
        }}
        col[o] = requantise(acc, shift);
    }}
}}

/* Classifier: out[c] = bias[c] * times + sum of sign * (in[channel] << shift). */
static void fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES])
{{
    int32_t c, j, v;
    for (c = 0; c < AFD_N_CLASSES; c++) {{
        int32_t acc = times_by_shifts(L{fc}_bias[c], times);
        for (j = L{fc}_row[c]; j < L{fc}_row[c + 1]; j++) {{
            v = in[L{fc}_off[j]] << (L{fc}_code[j] & 0x7F);
            if (L{fc}_code[j] & 0x80) acc -= v; else acc += v;
        }}
        out[c] = acc;
    }}
}}
"""

_PACKED_LAYOUT = """
/* Packed layout: each layer's blocks exactly as the .afq file stores them, decoded on the
   fly at every use: the sparse index (scheme 0 dense, 1 bitmap, 2 relative with r-bit
   gaps and fillers of 2^r - 1, 3 csr with per-row counts and columns; over the (c_out,
   c_in) kernel grid when group = K), the codes ((sign << (bits - 1)) | exponent offset,
   MSB first) and the biases (bias_width-bit two's complement, << bias_shift). */
{tables}
typedef struct {{
    const uint8_t *index, *columns, *codes, *biases;
    int32_t entries;  /* relative: entries incl. fillers; bitmap, dense: positions */
    int16_t scheme, param, bits, bias_width, bias_shift, count_bits, column_bits;
    int16_t c_in, c_out, k, group, stride, pad, shift;
    uint16_t ring, col;  /* offsets of the layer's ring and columns in the buffers */
}} afd_layer;

static const afd_layer layers[{n_convs}] = {{
{descriptors}
}};
static const afd_layer fc_layer = {fc_descriptor};
static int32_t accs[{max_c}];

typedef struct {{
    const uint8_t *p;
    uint32_t acc;
    int32_t n;
}} bits_t;

static uint32_t take(bits_t *b, int32_t w)  /* the next w bits (w <= 24), MSB first */
{{
    while (b->n < w) {{
        b->acc = (b->acc << 8) | *b->p++;
        b->n += 8;
    }}
    b->n -= w;
    return (b->acc >> b->n) & (((uint32_t)1 << w) - 1);
}}

static int32_t take_bias(const afd_layer *L, bits_t *b)
{{
    uint32_t v = take(b, L->bias_width);
    if (v >> (L->bias_width - 1)) v -= (uint32_t)1 << L->bias_width;  /* sign */
    return (int32_t)(v << L->bias_shift);  /* two's complement wrap: no multiply */
}}

/* A cursor over the kept weights (group 1) or kernels (group K) in C order. */
typedef struct {{
    bits_t index, columns;
    int32_t o, c, t, xoff;   /* output and input channel, tap; c * 2K, the ring offset */
    int32_t left, pending;   /* entries or positions (rows for csr) left; step to take */
    int32_t row, row_left, prev;
}} walker;

static void walk_start(const afd_layer *L, walker *w)
{{
    w->index.p = L->index;
    w->index.acc = 0;
    w->index.n = 0;
    w->columns = w->index;
    w->columns.p = L->columns;
    w->o = w->c = w->t = w->xoff = 0;
    w->left = L->scheme == 3 ? L->c_out : L->entries;
    w->pending = 0;
    w->row = -1;
    w->row_left = 0;
    w->prev = 0;
}}

static void advance(const afd_layer *L, walker *w, int32_t g)
{{
    const int32_t per_channel = L->group == 1 ? L->k : 1;  /* grid positions per c */
    while (g-- > 0) {{
        if (++w->t < per_channel) continue;
        w->t = 0;
        w->xoff += 2 * L->k;
        if (++w->c < L->c_in) continue;
        w->c = w->xoff = 0;
        w->o++;
    }}
}}

static int next_kept(const afd_layer *L, walker *w)  /* 0 at the end */
{{
    uint32_t v, escape = ((uint32_t)1 << L->param) - 1;
    advance(L, w, w->pending);
    w->pending = 0;
    if (L->scheme == 3) {{  /* csr */
        while (w->row_left == 0) {{
            if (w->left-- == 0) return 0;
            w->row++;
            w->o = w->row;
            w->c = w->t = w->xoff = w->prev = 0;
            w->row_left = (int32_t)take(&w->index, L->count_bits);
        }}
        w->row_left--;
        v = take(&w->columns, L->column_bits);
        advance(L, w, (int32_t)v - w->prev);
        w->prev = (int32_t)v + 1;
        w->pending = 1;
        return 1;
    }}
    while (w->left > 0) {{
        w->left--;
        if (L->scheme == 0) {{  /* dense */
            w->pending = 1;
            return 1;
        }}
        if (L->scheme == 1) {{  /* bitmap */
            if (take(&w->index, 1)) {{
                w->pending = 1;
                return 1;
            }}
            advance(L, w, 1);
            continue;
        }}
        v = take(&w->index, L->param);  /* relative */
        if (v == escape) {{
            advance(L, w, (int32_t)escape);
            continue;
        }}
        advance(L, w, (int32_t)v);
        w->pending = 1;
        return 1;
    }}
    return 0;
}}

/* One output column of a conv layer; x: its ring at the oldest column of the window. */
static void conv_column(const afd_layer *L, const int16_t *x, int16_t *col)
{{
    walker w;
    bits_t codes = {{L->codes, 0, 0}}, biases = {{L->biases, 0, 0}};
    const int32_t sign = (int32_t)1 << (L->bits - 1);
    int32_t o, t, v, code;
    for (o = 0; o < L->c_out; o++) accs[o] = take_bias(L, &biases);
    walk_start(L, &w);
    while (next_kept(L, &w)) {{
        const int16_t *in = x + w.xoff + w.t;
        for (t = 0; t < L->group; t++) {{
            code = (int32_t)take(&codes, L->bits);
            v = shifted(in[t], code & (sign - 1));
            if (code & sign) accs[w.o] -= v; else accs[w.o] += v;
        }}
    }}
    for (o = 0; o < L->c_out; o++) col[o] = requantise(accs[o], L->shift);
}}

/* Classifier: out[c] = bias[c] * times + sum of sign * (in[channel] << shift). */
static void fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES])
{{
    const afd_layer *L = &fc_layer;
    walker w;
    bits_t codes = {{L->codes, 0, 0}}, biases = {{L->biases, 0, 0}};
    const int32_t sign = (int32_t)1 << (L->bits - 1);
    int32_t c, v, code;
    for (c = 0; c < AFD_N_CLASSES; c++) out[c] = times_by_shifts(take_bias(L, &biases), times);
    walk_start(L, &w);
    while (next_kept(L, &w)) {{
        code = (int32_t)take(&codes, L->bits);
        v = in[w.c] << (code & (sign - 1));
        if (code & sign) out[w.o] -= v; else out[w.o] += v;
    }}
}}
"""

_SOURCE_BATCH = """
/* ---- Batch mode: a whole recording layer by layer (host speed) ----
   The same arithmetic as afd_classify, reordered: each kept weight walks all output times
   at once, so the compiler vectorises the shift-adds. Needs afd_batch_work_bytes(n) bytes
   of caller memory, aligned for int32_t. */

static int32_t conv_length(int32_t n, const afd_layer *L)
{{
    return (n + 2 * L->pad - L->k) / L->stride + 1;
}}

static void batch_sizes(int32_t n, int32_t *most_conv, int32_t *most_act)
{{
    int32_t l, len = n, conv;
    *most_conv = 0;
    *most_act = n;
    for (l = 0; l < {n_convs}; l++) {{
        conv = conv_length(len, &layers[l]);
        if (conv > *most_conv) *most_conv = conv;
        len = conv / 2;
        if ((int32_t)layers[l].c_out * len > *most_act) *most_act = layers[l].c_out * len;
    }}
}}

size_t afd_batch_work_bytes(int32_t n)
{{
    int32_t most_conv, most_act;
    batch_sizes(n, &most_conv, &most_act);
    return sizeof(int32_t) * (size_t)most_conv + 2 * sizeof(int16_t) * (size_t)most_act;
}}

int afd_classify_batch(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES],
                       void *work)
{{
    int32_t l, o, j, t, x, c, len = n, conv, lo, hi, best = 0, most_conv, most_act;
    int32_t batch_sums[{c_last}];
    int32_t *acc = (int32_t *)work;
    int16_t *bufs[2], *out;
    const int16_t *in = samples;
    if (n < AFD_MIN_SAMPLES) return -1;
    batch_sizes(n, &most_conv, &most_act);
    bufs[0] = (int16_t *)(acc + most_conv);
    bufs[1] = bufs[0] + most_act;
    for (l = 0; l < {n_convs}; l++) {{
        const afd_layer *L = &layers[l];
        const uint8_t *code = L->code;
        const int32_t ring = 2 * L->k, half = L->shift > 0 ? 1 << (L->shift - 1) : 0;
        conv = conv_length(len, L);
        out = bufs[l & 1];
        for (o = 0; o < L->c_out; o++) {{
            for (x = 0; x < conv; x++) acc[x] = L->bias[o];
            for (j = L->row[o]; j < L->row[o + 1]; j++) {{
                const int16_t *src = in + (int32_t)(L->off[j] / ring) * len;
                int32_t tap0 = L->off[j] % ring;
                for (t = 0; t < L->group; t++, code++) {{
                    /* output x reads input x * stride + tap - pad, when inside */
                    int32_t tap = tap0 + t - L->pad, s = *code & 0x7F;
                    lo = tap >= 0 ? 0 : (-tap + L->stride - 1) / L->stride;
                    hi = (len - 1 - tap) >= 0 ? (len - 1 - tap) / L->stride + 1 : 0;
                    if (hi > conv) hi = conv;
                    if (L->stride == 1) {{  /* contiguous: the vectorised case */
                        const int16_t *p = src + tap;
                        if (*code & 0x80)
                            for (x = lo; x < hi; x++) acc[x] -= (int32_t)((uint32_t)p[x] << s);
                        else
                            for (x = lo; x < hi; x++) acc[x] += (int32_t)((uint32_t)p[x] << s);
                    }} else if (*code & 0x80) {{
                        for (x = lo; x < hi; x++)
                            acc[x] -= (int32_t)((uint32_t)src[x * L->stride + tap] << s);
                    }} else {{
                        for (x = lo; x < hi; x++)
                            acc[x] += (int32_t)((uint32_t)src[x * L->stride + tap] << s);
                    }}
                }}
            }}
            for (x = 0; x + 1 < conv; x += 2) {{  /* requantise, ReLU, saturate, pool */
                int32_t a = acc[x], b = acc[x + 1];
                a = a <= 0 ? 0 : (L->shift > 0 ? (a + half) >> L->shift : a << -L->shift);
                b = b <= 0 ? 0 : (L->shift > 0 ? (b + half) >> L->shift : b << -L->shift);
                if (a > ACT_TOP) a = ACT_TOP;
                if (b > ACT_TOP) b = ACT_TOP;
                out[o * (conv / 2) + x / 2] = (int16_t)(a > b ? a : b);
            }}
        }}
        in = out;
        len = conv / 2;
    }}
    for (c = 0; c < {c_last}; c++) {{
        const int16_t *row = in + c * len;
        batch_sums[c] = 0;
        for (t = 0; t < len; t++) batch_sums[c] += row[t];
    }}
#if AFD_RR_CODE
    {{
        rr_state rr;
        rr_reset(&rr);
        for (t = 0; t < n; t++) rr_push(&rr, samples[t]);
        fc_with_rr(batch_sums, len, &rr, logits);
    }}
#else
    fc_apply(batch_sums, len, logits);
#endif
    for (c = 1; c < AFD_N_CLASSES; c++)
        if (logits[c] > logits[best]) best = (int)c;
    return best;
}}
"""

_SOURCE_STREAM = """
/* ---- Continuous monitoring: raw ADC counts in, a window decision every hop ----
   The same integer front end as afdetect scan (afdetect.monitor.frontend):
   linear-interpolation resampling on the exact rational grid, a centred moving-average
   baseline over AFD_BLOCK samples, a power-of-two scale per block from the standard
   deviation of the last AFD_SPAN blocks, quantisation to AFD_INPUT_BITS. Every counter
   wraps or saturates, so it runs indefinitely in static RAM. */

static int64_t asr64(int64_t x, int s)  /* floor(x / 2^s) without shifting a negative */
{{
    return x >= 0 ? x >> s : ~((~x) >> s);
}}

static int32_t bit_length(uint64_t x)
{{
    int32_t n = 0;
    while (x) {{ n++; x >>= 1; }}
    return n;
}}

static struct {{
    int32_t p, q;          /* resampling: fs_in / AFD_SAMPLING_RATE_HZ = p / q */
    int32_t ahead;         /* 1 + floor(n p / q) - raw samples seen, for the next output n */
    int32_t r;             /* n p mod q */
    int32_t prev, cur;     /* the last two raw samples */
    int16_t ring[AFD_BLOCK];   /* the last AFD_BLOCK resampled counts */
    int32_t ring_pos, seen;    /* next ring slot; resampled counts seen (saturates) */
    int64_t ring_sum;
    int16_t block[AFD_BLOCK];  /* detrended samples of the block being filled */
    int32_t block_fill;
    int64_t span_sum[AFD_SPAN], span_sq[AFD_SPAN];
    int32_t span_pos, span_fill;
    int32_t scores[AFD_MAX_WINDOW_STEPS][AFD_N_CLASSES];  /* per-step class scores */
    int32_t step_pos, step_fill, window, hop, until_hop;
    int32_t emitted;
    afd_window_fn on_window;
    void *user;
}} S;

static void stream_step(const int16_t *out)
{{
    int32_t c, t, acc, logits[AFD_N_CLASSES], column[{c_last}];
    int best = 0;
    for (c = 0; c < {c_last}; c++) column[c] = out[c];
    fc_apply(column, 1, S.scores[S.step_pos]);  /* one step's terms and bias */
    if (++S.step_pos == S.window) S.step_pos = 0;
    if (S.step_fill < S.window) S.step_fill++;
    if (S.step_fill < S.window || --S.until_hop > 0) return;
    S.until_hop = S.hop;
    for (c = 0; c < AFD_N_CLASSES; c++) {{
        acc = 0;
        for (t = 0; t < S.window; t++) acc += S.scores[t][c];
        logits[c] = acc;
        if (acc > logits[best]) best = (int)c;
    }}
    S.emitted++;
    S.on_window(best, logits, S.user);
}}

static void stream_block(void)
{{
    int64_t total = 0, total_sq = 0, num, den, sum = 0, sq = 0;
    int32_t i, b, k, e, n;
    int16_t q;
    const int32_t top = (1 << (AFD_INPUT_BITS - 1)) - 1;
    for (i = 0; i < AFD_BLOCK; i++) {{
        sum += S.block[i];
        sq += (int64_t)S.block[i] * S.block[i];
    }}
    S.span_sum[S.span_pos] = sum;
    S.span_sq[S.span_pos] = sq;
    if (++S.span_pos == AFD_SPAN) S.span_pos = 0;
    if (S.span_fill < AFD_SPAN) S.span_fill++;
    for (i = 0; i < S.span_fill; i++) {{
        total += S.span_sum[i];
        total_sq += S.span_sq[i];
    }}
    /* k = round(log2(std)) = floor((b + 1) / 2), b = floor(log2(var)), var = num / den */
    n = AFD_BLOCK * S.span_fill;
    num = (int64_t)n * total_sq - total * total;
    den = (int64_t)n * n;
    k = 0;
    if (num > 0) {{
        b = bit_length((uint64_t)num) - bit_length((uint64_t)den);
        if ((b < 0 ? num << -b : num) < (b > 0 ? den << b : den)) b--;
        k = b + 1 >= 0 ? (b + 1) / 2 : -((-(b + 1) + 1) / 2);
    }}
    e = AFD_INPUT_FRAC_BITS - k;
    for (i = 0; i < AFD_BLOCK; i++) {{
        int64_t d = S.block[i];
        int64_t v = e >= 0 ? (d >= 0 ? d << e : -((-d) << e))
                           : asr64(d + ((int64_t)1 << (-e - 1)), -e);
        q = (int16_t)(v > top ? top : (v < -top - 1 ? -top - 1 : v));
        layer_push(0, &q);
    }}
    S.block_fill = 0;
}}

static void stream_resampled(int32_t y)
{{
    int32_t old, n_mid, d;
    if (S.seen == 0) {{  /* the history before the first sample repeats it */
        for (old = 0; old < AFD_BLOCK; old++) S.ring[old] = (int16_t)y;
        S.ring_sum = (int64_t)AFD_BLOCK * y;
    }}
    old = S.ring[S.ring_pos];
    S.ring[S.ring_pos] = (int16_t)y;
    S.ring_sum += y - old;
    if (++S.ring_pos == AFD_BLOCK) S.ring_pos = 0;
    if (S.seen < AFD_BLOCK) S.seen++;
    if (S.seen < AFD_BLOCK / 2) return;  /* no centred window complete yet */
    /* the window's centre sample n = newest - AFD_BLOCK / 2 + 1 */
    n_mid = S.ring_pos - AFD_BLOCK / 2;
    if (n_mid < 0) n_mid += AFD_BLOCK;
    d = S.ring[n_mid] - (int32_t)asr64(S.ring_sum, AFD_BLOCK_LOG2);
    S.block[S.block_fill++] = (int16_t)(d > 32767 ? 32767 : (d < -32768 ? -32768 : d));
    if (S.block_fill == AFD_BLOCK) stream_block();
}}

static int64_t gcd64(int64_t a, int64_t b)
{{
    while (b) {{ int64_t t = a % b; a = b; b = t; }}
    return a;
}}

int afd_stream_init(int32_t fs_in_hz, int32_t window_steps, int32_t hop_steps,
                    afd_window_fn on_window, void *user)
{{
    int64_t g;
    int32_t i;
    if (AFD_RR_CODE) return -1;  /* windows of RR features: not yet */
    if (fs_in_hz < AFD_MIN_FS_IN_HZ || fs_in_hz > AFD_MAX_FS_IN_HZ || window_steps < 1 ||
        window_steps > AFD_MAX_WINDOW_STEPS || hop_steps < 1 || !on_window) return -1;
    afd_reset();
    streaming = 1;
    g = gcd64(fs_in_hz, AFD_SAMPLING_RATE_HZ);
    S.p = (int32_t)(fs_in_hz / g);
    S.q = (int32_t)(AFD_SAMPLING_RATE_HZ / g);
    S.ahead = 2;  /* output 0 needs raw samples 0 and 1 */
    S.r = 0;
    S.ring_pos = 0;
    S.seen = 0;
    S.block_fill = 0;
    S.span_pos = 0;
    S.span_fill = 0;
    for (i = 0; i < AFD_SPAN; i++) S.span_sum[i] = S.span_sq[i] = 0;
    S.step_pos = 0;
    S.step_fill = 0;
    S.window = window_steps;
    S.hop = hop_steps;
    S.until_hop = 1;
    S.on_window = on_window;
    S.user = user;
    return 0;
}}

int afd_stream_push(int32_t adc)
{{
    int64_t y;
    S.emitted = 0;
    adc = adc > 32767 ? 32767 : (adc < -32768 ? -32768 : adc);
    if (S.p == S.q) {{
        stream_resampled(adc);
    }} else {{
        S.prev = S.cur;
        S.cur = adc;
        S.ahead--;
        while (S.ahead <= 0) {{
            /* output n: x[i] = prev, x[i + 1] = cur with i + 1 = the newest raw index */
            y = floor_div((int64_t)S.prev * (S.q - S.r) + (int64_t)S.cur * S.r + S.q / 2, S.q);
            stream_resampled((int32_t)y);
            S.r += S.p;
            while (S.r >= S.q) {{ S.r -= S.q; S.ahead++; }}
        }}
    }}
    return S.emitted;
}}
"""

# Printing a decision, shared by the host demo and the Cortex-M driver (both use stdio).
PRINT_DECISION = """
static void print_decision(int cls, const int32_t logits[AFD_N_CLASSES])
{
    int i;
    printf("%s", afd_class_names[cls]);
    for (i = 0; i < AFD_N_CLASSES; i++) printf(" %ld", (long)logits[i]);
}

static void print_window(int cls, const int32_t logits[AFD_N_CLASSES], void *user)
{
    (void)user;
    print_decision(cls, logits);
    printf("\\n");
}
"""

_DEMO = """\
/* Demo: classify one recording given as integers separated by white space (one per line).
     afd_demo input.txt            quantised samples (afd_push's input)
     afd_demo --adc GAIN raw.txt   raw 16-bit ADC counts at AFD_SAMPLING_RATE_HZ, GAIN
                                   counts/mV (1 to 65535)
     afd_demo --batch input.txt    as the first, with the batch mode (afd_classify_batch)
   Prints the class and the integer logits. The strip is read whole, into a buffer that
   grows as it reads, up to AFD_MAX_SAMPLES samples: the longest strip whose int32
   accumulators are proven (use --stream for longer recordings).
     afd_demo --stream FS WINDOW HOP raw.txt
   Continuous monitoring of raw ADC counts at FS Hz (AFD_MIN_FS_IN_HZ to AFD_MAX_FS_IN_HZ),
   read as they come (any length; FILE "-" reads standard input): one line per window
   decision, "class logits...".
   A file that is longer, holds anything but integers in range, or cannot be read, and a
   bad argument, are refused with one line on stderr: exit status 1 (2 for usage). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "afdetect_model.h"
""" + PRINT_DECISION + """
/* The next integer of fh into *v: 1; 0 at the end of the file; -1, after a message naming
   path and the sample's position, for a read error or a token that is not an integer in
   lo..hi. */
static int next_value(FILE *fh, const char *path, long index, long lo, long hi, long *v)
{
    char token[32], *end;
    if (fscanf(fh, "%31s", token) != 1) {
        if (!ferror(fh)) return 0;
        fprintf(stderr, "%s: read error after %ld samples\\n", path, index);
        return -1;
    }
    errno = 0;
    *v = strtol(token, &end, 10);
    if (end == token || *end != '\\0' || errno == ERANGE || *v < lo || *v > hi) {
        fprintf(stderr, "%s: sample %ld is \\"%s\\", not an integer in %ld..%ld\\n", path,
                index + 1, token, lo, hi);
        return -1;
    }
    return 1;
}

/* A whole argument as an integer in lo..hi into *v: 1, or 0 when it is not one. */
static int parse_arg(const char *text, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(text, &end, 10);
    return end != text && *end == '\\0' && errno != ERANGE && *v >= lo && *v <= hi;
}

/* The whole file as samples in lo..hi, in a buffer grown as needed up to AFD_MAX_SAMPLES:
   their number (the buffer in *out, for the caller to free), or -1 after a message. */
static long read_strip(const char *path, long lo, long hi, int16_t **out)
{
    FILE *fh = fopen(path, "r");
    int16_t *buf = NULL, *grown;
    long n = 0, capacity = 0, v;
    int got;
    if (!fh) {
        fprintf(stderr, "%s: cannot open (%s)\\n", path, strerror(errno));
        return -1;
    }
    while ((got = next_value(fh, path, n, lo, hi, &v)) == 1) {
        if (n == AFD_MAX_SAMPLES) {
            fprintf(stderr, "%s: more than %ld samples (%ld s at %d Hz), the longest strip "
                    "this engine is proven for; use --stream for long recordings\\n", path,
                    (long)AFD_MAX_SAMPLES, (long)AFD_MAX_SAMPLES / AFD_SAMPLING_RATE_HZ,
                    AFD_SAMPLING_RATE_HZ);
            got = -1;
            break;
        }
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            if (capacity > AFD_MAX_SAMPLES) capacity = AFD_MAX_SAMPLES;
            grown = (int16_t *)realloc(buf, sizeof *buf * (size_t)capacity);
            if (!grown) {
                fprintf(stderr, "%s: out of memory at %ld samples\\n", path, n);
                got = -1;
                break;
            }
            buf = grown;
        }
        buf[n++] = (int16_t)v;
    }
    fclose(fh);
    if (got < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return n;
}

static int stream(int argc, char **argv)
{
    long fs, window, hop, v, n = 0;
    int got;
    FILE *fh;
    if (argc != 6 || !parse_arg(argv[2], AFD_MIN_FS_IN_HZ, AFD_MAX_FS_IN_HZ, &fs) ||
        !parse_arg(argv[3], 1, AFD_MAX_WINDOW_STEPS, &window) ||
        !parse_arg(argv[4], 1, INT32_MAX, &hop)) {
        fprintf(stderr, "usage: %s --stream FS WINDOW_STEPS HOP_STEPS FILE (FS %ld to %ld "
                "Hz, WINDOW_STEPS 1 to %d, HOP_STEPS >= 1)\\n", argv[0],
                (long)AFD_MIN_FS_IN_HZ, (long)AFD_MAX_FS_IN_HZ, AFD_MAX_WINDOW_STEPS);
        return 2;
    }
    if (afd_stream_init((int32_t)fs, (int32_t)window, (int32_t)hop, print_window, NULL)) {
        fprintf(stderr, "%s: afd_stream_init refused (a model with RR features?)\\n", argv[0]);
        return 1;
    }
    fh = strcmp(argv[5], "-") == 0 ? stdin : fopen(argv[5], "r");
    if (!fh) {
        fprintf(stderr, "%s: cannot open (%s)\\n", argv[5], strerror(errno));
        return 1;
    }
    /* afd_stream_push clamps to 16 bits; anything int32 holds is a count */
    while ((got = next_value(fh, argv[5], n, INT32_MIN, INT32_MAX, &v)) == 1) {
        afd_stream_push((int32_t)v);
        n++;
    }
    if (fh != stdin) fclose(fh);
    return got < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[argc - 1] : NULL;
    int adc = argc == 4 && strcmp(argv[1], "--adc") == 0;
    int batch = argc == 3 && strcmp(argv[1], "--batch") == 0;
    const long top = (1L << (AFD_INPUT_BITS - 1)) - 1;
    int16_t *raw = NULL, *samples;
    int32_t logits[AFD_N_CLASSES];
    long n, gain = 0;
    int cls;
    if (argc > 1 && strcmp(argv[1], "--stream") == 0) return stream(argc, argv);
    if (!path || (argc != 2 && !adc && !batch) || (adc && !parse_arg(argv[2], 1, 65535, &gain))) {
        fprintf(stderr, "usage: %s [--adc GAIN (1 to 65535 counts/mV) | --batch] FILE\\n",
                argv[0]);
        return 2;
    }
    /* raw counts are 16-bit; quantised samples AFD_INPUT_BITS-bit */
    n = adc ? read_strip(path, -32768, 32767, &raw) : read_strip(path, -top - 1, top, &raw);
    if (n < 0) return 1;
    if (n < AFD_MIN_SAMPLES) {
        fprintf(stderr, "%s: too short (%ld samples, at least %ld)\\n", path, n,
                (long)AFD_MIN_SAMPLES);
        free(raw);
        return 1;
    }
    samples = raw;
    if (adc) {
        samples = (int16_t *)malloc(sizeof *samples * (size_t)n);
        if (!samples || afd_quantise_input(raw, (int32_t)n, (int32_t)gain, samples) != 0) {
            fprintf(stderr, "%s: %s\\n", path, samples ? "afd_quantise_input refused it"
                                                       : "out of memory");
            free(samples);
            free(raw);
            return 1;
        }
        free(raw);
    }
    if (batch) {
#if AFD_HAS_BATCH
        void *work = malloc(afd_batch_work_bytes((int32_t)n));
        if (!work) {
            fprintf(stderr, "%s: out of memory for the batch mode\\n", path);
            free(samples);
            return 1;
        }
        cls = afd_classify_batch(samples, (int32_t)n, logits, work);
        free(work);
#else
        fprintf(stderr, "the %s layout has no batch mode\\n", AFD_LAYOUT);
        free(samples);
        return 2;
#endif
    } else {
        cls = afd_classify(samples, (int32_t)n, logits);
    }
    free(samples);
    if (cls < 0) {
        fprintf(stderr, "%s: the engine refused %ld samples\\n", path, n);
        return 1;
    }
    print_decision(cls, logits);
    printf("\\n");
    return 0;
}
"""

_MAKEFILE = """\
CC ?= cc
CFLAGS ?= -std=c99 -Wall -Wextra -Werror -O3

afd_demo: demo.c afdetect_model.c afdetect_model.h
\t$(CC) $(CFLAGS) -o $@ demo.c afdetect_model.c

afdetect_model.o: afdetect_model.c afdetect_model.h
\t$(CC) $(CFLAGS) -c -o $@ afdetect_model.c

clean:
\trm -f afd_demo afdetect_model.o
"""

_SOURCE_RR = """
/* ---- RR features (afdetect.model.rr): an R-peak detector on the quantised input and
   six rhythm statistics, the classifier's last inputs. Per sample: adds, compares and
   shifts in about 1 KB of state; divisions only once per recording, in rr_features. */
#define RR_FS {rr_fs}
#define RR_INTEGRATE {rr_integrate}
#define RR_SEGMENT {rr_segment}
#define RR_HISTORY {rr_history}
#define RR_REFRACTORY {rr_refractory}
#define RR_WINDOW (2 * RR_REFRACTORY + 1)
#define RR_MEDIAN_OF {rr_median_of}
#define RR_N_FEATURES {rr_n_features}
#define RR_FEATURE_MAX {rr_feature_max}
/* candidates are more than RR_REFRACTORY apart: at most this many per segment */
#define RR_MAX_CANDIDATES (RR_SEGMENT / (RR_REFRACTORY + 1) + 2)

typedef struct {{
    int16_t q[5];                   /* the last five samples, newest last */
    int32_t n_samples;              /* real samples pushed */
    int32_t abs_d[RR_INTEGRATE];    /* |slope| ring of the integration window */
    int32_t d_pos, e_sum;
    int32_t e[RR_WINDOW];           /* energies e[m - 2r .. m], ring; -1 before the start */
    int32_t e_pos, m;               /* ring slot of e[m]; m: energies computed */
    int32_t seg_fill, seg_max;      /* energies and their max in the open segment */
    int32_t maxima[RR_HISTORY], n_maxima, maxima_pos;
    int32_t threshold[2];           /* by segment parity: the last one closed and the one
                                       awaiting its beats may differ at the very end */
    int32_t closed, done;           /* segments closed, and given their beats */
    int32_t decided;                /* candidate positions decided in that segment */
    int32_t cand_pos[RR_MAX_CANDIDATES], cand_e[RR_MAX_CANDIDATES], n_cand;
    int32_t beats, last_beat, n_rr, total, r_min, r_max, r_prev, jumps, outliers;
    int64_t sum_abs_diff;
    int32_t recent[RR_MEDIAN_OF], n_recent, recent_pos;
}} rr_state;

static void rr_reset(rr_state *s)
{{
    int32_t i;
    for (i = 0; i < 5; i++) s->q[i] = 0;
    for (i = 0; i < RR_INTEGRATE; i++) s->abs_d[i] = 0;
    for (i = 0; i < RR_WINDOW; i++) s->e[i] = -1;
    s->n_samples = s->d_pos = s->e_sum = s->e_pos = s->m = 0;
    s->seg_fill = 0;
    s->seg_max = -1;
    s->n_maxima = s->maxima_pos = 0;
    s->threshold[0] = s->threshold[1] = 0;
    s->closed = s->done = 0;
    s->decided = s->n_cand = 0;
    s->beats = s->last_beat = s->n_rr = s->total = s->r_min = s->r_max = s->r_prev = 0;
    s->jumps = s->outliers = 0;
    s->sum_abs_diff = 0;
    s->n_recent = s->recent_pos = 0;
}}

static void rr_interval(rr_state *s, int32_t r)
{{
    int32_t sorted[RR_MEDIAN_OF], i, j, v, median, dev, diff;
    s->n_rr++;
    s->total += r;
    if (s->n_rr == 1 || r < s->r_min) s->r_min = r;
    if (s->n_rr == 1 || r > s->r_max) s->r_max = r;
    if (s->n_rr >= 2) {{
        diff = r > s->r_prev ? r - s->r_prev : s->r_prev - r;
        s->sum_abs_diff += diff;
        if ((diff << 3) > s->r_prev) s->jumps++;
        for (i = 0; i < s->n_recent; i++) {{  /* insertion sort of the recent intervals */
            v = s->recent[i];
            for (j = i; j > 0 && sorted[j - 1] > v; j--) sorted[j] = sorted[j - 1];
            sorted[j] = v;
        }}
        median = sorted[(s->n_recent - 1) >> 1];
        dev = r > median ? r - median : median - r;
        if ((dev << 3) > median) s->outliers++;
    }}
    s->recent[s->recent_pos] = r;
    if (++s->recent_pos == RR_MEDIAN_OF) s->recent_pos = 0;
    if (s->n_recent < RR_MEDIAN_OF) s->n_recent++;
    s->r_prev = r;
}}

static void rr_segment_done(rr_state *s)
{{
    /* the segment's beats: its candidates above half the lower median of the maxima of
       the last RR_HISTORY segments (itself included) */
    int32_t i, threshold = s->threshold[s->done & 1];
    for (i = 0; i < s->n_cand; i++) {{
        if (s->cand_e[i] <= threshold) continue;
        if (s->beats > 0) rr_interval(s, s->cand_pos[i] - s->last_beat);
        s->last_beat = s->cand_pos[i];
        s->beats++;
    }}
    s->n_cand = 0;
    s->decided = 0;
    s->done++;
}}

static void rr_close_segment(rr_state *s)
{{
    int32_t sorted[RR_HISTORY], i, j, v;
    s->maxima[s->maxima_pos] = s->seg_max;
    if (++s->maxima_pos == RR_HISTORY) s->maxima_pos = 0;
    if (s->n_maxima < RR_HISTORY) s->n_maxima++;
    for (i = 0; i < s->n_maxima; i++) {{
        v = s->maxima[i];
        for (j = i; j > 0 && sorted[j - 1] > v; j--) sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }}
    s->threshold[s->closed & 1] = sorted[(s->n_maxima - 1) >> 1] >> 1;
    s->closed++;
    s->seg_fill = 0;
    s->seg_max = -1;
}}

static void rr_decide(rr_state *s)
{{
    /* e[m - r] against its r neighbours each way; the ring's newest slot is e_pos */
    int32_t c = s->e_pos - RR_REFRACTORY, i, k, v, win = 1;
    if (c < 0) c += RR_WINDOW;
    v = s->e[c];
    for (i = 1, k = c; i <= RR_REFRACTORY && win; i++) {{
        if (--k < 0) k = RR_WINDOW - 1;
        if (s->e[k] >= v) win = 0;
    }}
    for (i = 1, k = c; i <= RR_REFRACTORY && win; i++) {{
        if (++k == RR_WINDOW) k = 0;
        if (s->e[k] > v) win = 0;
    }}
    if (win) {{
        s->cand_pos[s->n_cand] = s->m - 1 - RR_REFRACTORY;
        s->cand_e[s->n_cand] = v;
        s->n_cand++;
    }}
    if (++s->decided == RR_SEGMENT) rr_segment_done(s);
}}

static void rr_energy(rr_state *s, int32_t e, int32_t real)
{{
    /* e: the next energy (real), or -1 past the end of the recording */
    if (++s->e_pos == RR_WINDOW) s->e_pos = 0;
    s->e[s->e_pos] = e;
    s->m++;
    if (real) {{
        if (e > s->seg_max) s->seg_max = e;
        if (++s->seg_fill == RR_SEGMENT) rr_close_segment(s);
    }}
    if (s->m > RR_REFRACTORY) rr_decide(s);
}}

static void rr_slope(rr_state *s, int16_t sample)
{{
    int32_t d, i;
    for (i = 0; i < 4; i++) s->q[i] = s->q[i + 1];
    s->q[4] = sample;
    /* d[m] = q[m+2] + q[m+1] - q[m-1] - q[m-2] for the sample q[m+2] just taken */
    d = (int32_t)s->q[4] + s->q[3] - s->q[1] - s->q[0];
    if (d < 0) d = -d;
    s->e_sum += d - s->abs_d[s->d_pos];
    s->abs_d[s->d_pos] = d;
    if (++s->d_pos == RR_INTEGRATE) s->d_pos = 0;
    rr_energy(s, s->e_sum, 1);
}}

static void rr_push(rr_state *s, int16_t sample)
{{
    if (s->n_samples++ < 2) {{  /* d[-2], d[-1] do not exist */
        int32_t i;
        for (i = 0; i < 4; i++) s->q[i] = s->q[i + 1];
        s->q[4] = sample;
        return;
    }}
    rr_slope(s, sample);
}}

static int32_t rr_clamp(int64_t v)
{{
    return (int32_t)(v < 0 ? 0 : (v > RR_FEATURE_MAX ? RR_FEATURE_MAX : v));
}}

static void rr_features(rr_state *s, int32_t f[RR_N_FEATURES])
{{
    int32_t i;
    int64_t n;
    rr_slope(s, 0);  /* the last two energies: the signal is zero past its end */
    rr_slope(s, 0);
    if (s->seg_fill > 0) rr_close_segment(s);  /* the last, shorter segment */
    for (i = 0; i < RR_REFRACTORY; i++) rr_energy(s, -1, 0);
    if (s->decided > 0) rr_segment_done(s);
    n = s->n_rr;
    for (i = 0; i < RR_N_FEATURES; i++) f[i] = 0;
    f[0] = rr_clamp((int64_t)10 * RR_FS * s->beats / (s->n_samples > 0 ? s->n_samples : 1));
    if (n >= 1) {{
        f[1] = rr_clamp(s->total / (4 * n));
        f[4] = rr_clamp(64 * (int64_t)(s->r_max - s->r_min) * n / s->total);
    }}
    if (n >= 2) {{
        f[2] = rr_clamp(64 * s->sum_abs_diff * n / ((n - 1) * s->total));
        f[3] = rr_clamp(64 * (int64_t)s->jumps / (n - 1));
        f[5] = rr_clamp(64 * (int64_t)s->outliers / (n - 1));
    }}
}}
"""

_RR_CLASSIFIER = """
/* The classifier's input: the activation sums and the RR features (times the steps),
   shifted onto its input grid. */
static void fc_with_rr(const int32_t *sums, int32_t steps, rr_state *rr,
                       int32_t logits[AFD_N_CLASSES])
{{
    int32_t in[{c_last} + RR_N_FEATURES], f[RR_N_FEATURES], c;
    rr_features(rr, f);
    for (c = 0; c < {c_last}; c++) in[c] = sums[c] << {rr_shift_sums};
    for (c = 0; c < RR_N_FEATURES; c++)
        in[{c_last} + c] = times_by_shifts(f[c], steps) << {rr_shift_features};
    fc_apply(in, steps, logits);
}}
"""
