/* afdetect runtime internals: the layer descriptors the generated tables fill in, the
   integer arithmetic every part shares, and the parts' entry points into each other.
   Not part of the API. */
#ifndef AFD_INTERNAL_H
#define AFD_INTERNAL_H

#include "afdetect.h"


/* 1: weights are applied by multiplying with sign * 2^shift (cores whose multiply costs
   what a shift does: Cortex-M0+ with the single-cycle multiplier, M3/M4/M7/M33); 0:
   shifts and adds only, no multiplier (Cortex-M0+ with the small multiplier, ASIC
   estimates). Same results either way. -DAFD_MULTIPLY=1 to choose. */
#ifndef AFD_MULTIPLY
#define AFD_MULTIPLY 0
#endif

/* 1: whole kernels of 9 taps use dual 16-bit multiply-accumulates (SMLAD), for cores
   with the DSP extension (Cortex-M4/M7/M33); the default there when AFD_MULTIPLY is 1.
   Needs 8-bit activations and weights within 16 bits. Elsewhere -DAFD_DSP=1 builds the
   same code on portable C versions of the instructions (for testing). */
#ifndef AFD_DSP
#if defined(__ARM_FEATURE_DSP) && AFD_MULTIPLY && AFD_ACT_TOP <= 255 && AFD_MAX_SHIFT <= 14
#define AFD_DSP 1
#else
#define AFD_DSP 0
#endif
#endif

#if AFD_DSP
#if defined(__ARM_FEATURE_DSP) && !defined(__ARM_BIG_ENDIAN)
/* 4 bytes from any address (Cortex-M4 loads unaligned words), little-endian: one LDR */
static inline uint32_t afd_load4(const uint8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
/* bytes 0 and 2 of x, zero-extended to halfwords; bytes 1 and 3 */
static inline uint32_t afd_uxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t afd_uxtb16_odd(uint32_t x)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* acc + lo(x) lo(y) + hi(x) hi(y), signed halfwords */
static inline int32_t afd_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
#else
static inline uint32_t afd_load4(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint32_t afd_uxtb16(uint32_t x)
{
    return x & 0x00FF00FFu;
}
static inline uint32_t afd_uxtb16_odd(uint32_t x)
{
    return x >> 8 & 0x00FF00FFu;
}
static inline int32_t afd_half(uint32_t v)  /* a signed halfword */
{
    return (int32_t)(v & 0xFFFFu) - (int32_t)((v & 0x8000u) << 1);
}
static inline int32_t afd_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return acc + afd_half(x) * afd_half(y) + afd_half(x >> 16) * afd_half(y >> 16);
}
#endif
#endif

/* Every conv layer computes a tile of up to `tile` output times at once: its input buffer
   holds the last cap = K - 1 + tile * stride input columns, one row of cap per input
   channel (int16 for layer 0, afd_act_t after it), and each kept kernel is decoded once
   per tile, then applied to every output time of the tile. */
typedef struct {
    uint16_t c_in, c_out;
    uint8_t k, stride, pad;
    int8_t shift;   /* requantisation: a rounding right shift (left when negative) */
    uint8_t tile;   /* most output times computed at once */
    uint16_t cap;   /* input buffer columns per channel */
    uint16_t buf;   /* its input buffer in afd_net_t: input (layer 0) or acts */
    uint16_t half;  /* its unpaired output column (c_out) in afd_net_t's half */
#if AFD_LAYOUT_PACKED
    /* Packed layout: each layer's blocks exactly as the .afq file stores them: the sparse
       index (scheme 0 dense, 1 bitmap, 2 relative with r-bit gaps and fillers of 2^r - 1,
       3 csr with per-row counts and columns; over the (c_out, c_in) kernel grid when
       group = K), the codes ((sign << (bits - 1)) | exponent offset, MSB first) and the
       biases (bias_width-bit two's complement, << bias_shift). */
    const uint8_t *index, *columns, *codes, *biases;
    int32_t entries;  /* relative: entries incl. fillers; bitmap, dense: positions */
    int16_t scheme, param, bits, bias_width, bias_shift, count_bits, column_bits, group;
#else
    /* Fast layout: per output channel a count of records (counts[o]), then the records of
       every row back to back in one MSB-first bit stream: the input channel (chan_bits),
       then, for whole kernels (tap_bits = 0), the K codes of the kernel, else the tap
       (tap_bits) and the code of one kept weight; code = (sign << (bits - 1)) | exponent
       offset, as in the .afq file. The biases: bias_bits-bit two's complement, MSB first. */
    const uint8_t *records, *counts, *biases;
    uint8_t bits, chan_bits, tap_bits, bias_bits;
#endif
} afd_layer;

/* The model (afd_model_tables.c): conv layers in order, then the classifier. */
extern const afd_layer afd_layers[AFD_N_CONVS];
extern const afd_layer afd_fc_layer;

/* ---- Bit streams: w bits at a time, MSB first (w <= 24) ---- */
typedef struct {
    const uint8_t *p;
    uint32_t acc;
    int32_t n;
} afd_bits;

static inline uint32_t afd_take(afd_bits *b, int32_t w)
{
    while (b->n < w) {
        b->acc = (b->acc << 8) | *b->p++;
        b->n += 8;
    }
    b->n -= w;
    return (b->acc >> b->n) & (((uint32_t)1 << w) - 1);
}

/* The next w-bit two's complement value (2 <= w <= 24), times 2^shift */
static inline int32_t afd_take_signed(afd_bits *b, int32_t w, int32_t shift)
{
    uint32_t v = afd_take(b, w);
    if (v >> (w - 1)) v -= (uint32_t)1 << w;  /* the sign */
    return (int32_t)(v << shift);  /* two's complement wrap: no multiply */
}

/* ---- Kernels: what each layout's decoder yields, in C order of (output, input channel) ---- */
typedef struct {
    int32_t chan, n;            /* input channel; kept taps */
    const uint8_t *tap;         /* their positions in the kernel, increasing */
    int32_t w[AFD_MAX_K];       /* their weights: table[code] (see afd_cursor_start) */
    uint8_t taps[AFD_MAX_K];    /* tap's storage when not all K taps are kept */
} afd_kernel;

/* table[q] = q, q < 2^bits: the table that yields the codes themselves (afd_conv.c) */
void afd_code_table(int32_t bits, int32_t table[1 << AFD_MAX_BITS]);

#if AFD_LAYOUT_PACKED
typedef struct {
    afd_bits index, columns;
    int32_t o, c, t, xoff;   /* output and input channel, tap; c * K */
    int32_t left, pending;   /* entries or positions (rows for csr) left; step to take */
    int32_t row, row_left, prev;
} afd_walker;

typedef struct {
    afd_walker w;
    afd_bits codes, biases;
    int32_t row, more;  /* the row being read; whether w holds an unread kept item */
    const int32_t *table;
} afd_cursor;
#else
typedef struct {
    afd_bits records, biases;
    int32_t row, left;  /* the row being read; its records not yet read */
    const uint8_t *count;
    int32_t chan, tap, code, held;  /* a record read ahead (group 1), when held */
    const int32_t *table;
    int32_t first, first_bits;      /* codes and bits of a record's first take */
    uint8_t all_taps[AFD_MAX_K];    /* 0 .. K - 1: a whole kernel's */
} afd_cursor;
#endif

/* Start reading layer L's weights; a kernel's weight of code q = (sign << (bits - 1)) |
   exponent offset will be table[q] (2^bits entries). */
void afd_cursor_start(const afd_layer *L, afd_cursor *c, const int32_t *table);
/* Move to the next output channel (rows in order, each once); returns its bias. */
int32_t afd_cursor_row(const afd_layer *L, afd_cursor *c);
/* The next kept kernel of the current row into *k (taps of one input channel); 0 at the
   row's end. */
int afd_cursor_kernel(const afd_layer *L, afd_cursor *c, afd_kernel *k);

/* ---- Shared integer arithmetic ---- */

/* x << s without shifting a negative value (undefined in C99); s >= 0 */
static inline int32_t afd_shifted(int32_t x, int32_t s)
{
    return x >= 0 ? (int32_t)(x << s) : -(int32_t)((-x) << s);
}

/* b * times (times >= 0) by shifts and adds, one per bit of times, wrapping as uint32 */
static inline int32_t afd_times_by_shifts(int32_t b, int32_t times)
{
    uint32_t acc = 0, u = (uint32_t)b;
    for (; times > 0; times >>= 1, u <<= 1)
        if (times & 1) acc += u;
    return (int32_t)acc;
}

/* ReLU, rounding right shift (left for shift < 0), saturation at AFD_ACT_TOP */
static inline int16_t afd_requantise(int32_t acc, int32_t shift)
{
    int32_t v;
    if (acc <= 0) v = 0;  /* a non-positive accumulator rounds to <= 0 */
    else if (shift > 0) v = (acc + ((int32_t)1 << (shift - 1))) >> shift;
    else v = acc << -shift;
    return (int16_t)(v > AFD_ACT_TOP ? AFD_ACT_TOP : v);
}

/* n zero bytes from p (no library calls: the runtime needs none) */
static inline void afd_zero(void *p, size_t n)
{
    unsigned char *b = (unsigned char *)p;
    while (n--) *b++ = 0;
}

/* floor(a / b) for b > 0 */
static inline int64_t afd_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* floor(x / 2^s) without shifting a negative value */
static inline int64_t afd_asr64(int64_t x, int32_t s)
{
    return x >= 0 ? x >> s : ~((~x) >> s);
}

/* ---- Layer arithmetic (afd_conv.c) ---- */

/* Where the last layer's pooled columns go: col[c * stride], c < AFD_C_LAST. */
typedef void (*afd_sink_fn)(void *ctx, const afd_act_t *col, int32_t stride);

/* Layer l's outputs first .. first + m - 1 (m <= tile) from its input buffer x (the
   column of output `first` at x[0]), requantised, and max-pooled in pairs with the
   layer's unpaired half column (*parity: 1 when it holds one): completed pairs go to dst
   (rows of dst_cap, from column 0). Returns the pairs written. */
int32_t afd_conv_tile(int32_t l, const void *x, int32_t m, afd_act_t *half, int32_t *parity,
                      afd_act_t *dst, int32_t dst_cap);
/* The classifier: out[c] = bias[c] * times + sum of sign * (in[channel] << shift). */
void afd_fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES]);

/* ---- The streaming network (afd_net.c) ---- */

/* Empty buffers, then each layer's left padding. */
void afd_net_reset(afd_net_t *net);
/* Push one input sample into layer 0; last-layer columns it completes go to sink. */
void afd_net_push(afd_net_t *net, int16_t sample, afd_sink_fn sink, void *ctx);
/* Compute every output whose window is complete, layer by layer (a stream's block end). */
void afd_net_flush(afd_net_t *net, afd_sink_fn sink, void *ctx);
/* End of a strip: each layer's right padding after the columns it got, then flush. */
void afd_net_finish(afd_net_t *net, afd_sink_fn sink, void *ctx);
/* The index of the largest logit, the first of equals */
int afd_argmax(const int32_t logits[AFD_N_CLASSES]);

/* ---- The R-peak detector (afd_beats.c) ----
   It reports what it finds through fn(ctx, event, slot), from inside the calls below:
   AFD_BEAT_LEADER: the newest energy (index n - 3 after n samples; its R peak
     AFD_BEAT_INTEGRATE / 2 earlier) beats every one within AFD_BEAT_REFRACTORY before it:
     it becomes a candidate unless one within that distance after it is larger;
   AFD_BEAT_CANDIDATE: the last leader is a candidate, held in slot `slot`;
   AFD_BEAT_FINAL: its segment's threshold is known and the candidate in `slot` exceeds
     it: a beat, at position det->done * AFD_BEAT_SEGMENT + det->cand_off[slot] (energy
     index; the R peak AFD_BEAT_INTEGRATE / 2 earlier). Beats come in order. */
enum { AFD_BEAT_LEADER, AFD_BEAT_CANDIDATE, AFD_BEAT_FINAL };
typedef void (*afd_beat_fn)(void *ctx, int32_t event, int32_t slot);
/* Its threshold, in eighths of the median: a model with RR features runs it on strips
   (AFD_STRIP_THRESHOLD_EIGHTHS, what afd_beats_reset sets) and in the continuous mode
   (AFD_SCAN_THRESHOLD_EIGHTHS), so each detector holds its own; one without, in the
   continuous mode only, at a constant */
#if AFD_RR
#define AFD_BEAT_EIGHTHS(d) ((d)->eighths)
#else
#define AFD_BEAT_EIGHTHS(d) AFD_SCAN_THRESHOLD_EIGHTHS
#endif
/* A beat is final at most this many samples after its R peak */
#define AFD_BEAT_LAG (AFD_BEAT_INTEGRATE / 2 + AFD_BEAT_SEGMENT + AFD_BEAT_REFRACTORY + 1)

void afd_beats_reset(afd_beats_t *d);
void afd_beats_push(afd_beats_t *d, int16_t sample, afd_beat_fn fn, void *ctx);
#if AFD_RR
/* The end of the recording: the signal is zero after it; the last beats (strips) */
void afd_beats_finish(afd_beats_t *d, afd_beat_fn fn, void *ctx);
#endif
/* The lower median of values[0..n-1] by insertion sort; 1 <= n <= AFD_BEAT_HISTORY (and
   AFD_RR_MEDIAN_OF with RR features) */
int32_t afd_lower_median(const int32_t *values, int32_t n);

#if AFD_RR
/* ---- RR features (afd_rr.c) ---- */
/* The statistics of a run of beats: reset, then each beat's position in order, then the
   AFD_RR_N_FEATURES features (0..AFD_RR_FEATURE_MAX) of a run n_samples long. Strips and
   the continuous mode's windows share them. */
void afd_rr_stats_reset(afd_rr_stats_t *s);
void afd_rr_stats_beat(afd_rr_stats_t *s, int32_t pos);
void afd_rr_stats_features(const afd_rr_stats_t *s, int32_t n_samples,
                           int32_t f[AFD_RR_N_FEATURES]);
/* The classifier's RR inputs: the features times steps, on its input grid */
void afd_rr_inputs(const int32_t f[AFD_RR_N_FEATURES], int32_t steps,
                   int32_t in[AFD_RR_N_FEATURES]);
void afd_rr_reset(afd_rr_t *s);
void afd_rr_push(afd_rr_t *s, int16_t sample);
/* Ends the recording in *s: its AFD_RR_N_FEATURES features, 0..AFD_RR_FEATURE_MAX. */
void afd_rr_features(afd_rr_t *s, int32_t f[AFD_RR_N_FEATURES]);
/* The classifier on the activation sums and the RR features of *rr, both times steps. */
void afd_fc_with_rr(const int32_t *sums, int32_t steps, afd_rr_t *rr,
                    int32_t logits[AFD_N_CLASSES]);
#endif

#endif
