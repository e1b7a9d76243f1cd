/* afdetect runtime internals: the layer descriptors the generated tables fill in, the
   integer arithmetic every part shares, and the parts' entry points into each other.
   Not part of the API. */
#ifndef AFD_INTERNAL_H
#define AFD_INTERNAL_H

#include "afdetect.h"

/* 1: the fast layout's kernels multiply by sign * 2^shift (faster where a multiply costs
   what a shift does, as on Cortex-M3/M4/M7/M33); 0: shifts and adds only, no multiplier
   (Cortex-M0/M0+, ASIC estimates). Same results either way. -DAFD_MULTIPLY=1 to choose. */
#ifndef AFD_MULTIPLY
#define AFD_MULTIPLY 0
#endif

#if AFD_LAYOUT_PACKED
/* Packed layout: each layer's blocks exactly as the .afq file stores them, decoded on the
   fly at every use: the sparse index (scheme 0 dense, 1 bitmap, 2 relative with r-bit
   gaps and fillers of 2^r - 1, 3 csr with per-row counts and columns; over the (c_out,
   c_in) kernel grid when group = K), the codes ((sign << (bits - 1)) | exponent offset,
   MSB first) and the biases (bias_width-bit two's complement, << bias_shift). */
typedef struct {
    const uint8_t *index, *columns, *codes, *biases;
    int32_t entries;  /* relative: entries incl. fillers; bitmap, dense: positions */
    int16_t scheme, param, bits, bias_width, bias_shift, count_bits, column_bits;
    int16_t c_in, c_out, k, group, stride, pad, shift;
    uint16_t ring, col;  /* offsets of the layer's ring and columns in afd_net_t */
} afd_layer;
#else
/* Fast layout. Per layer: index entries grouped by output channel (row[o] .. row[o + 1]
   - 1), each locating `group` consecutive kept weights (1, or a whole kernel of K taps):
   off = input channel * 2K + first tap (ring offset; the input channel for the
   classifier); then the codes of every kept weight in the same order,
   code = sign << 7 | shift. */
typedef struct {
    const uint16_t *row;
    const uint16_t *off;
    const uint8_t *code;
    const int32_t *bias;
    int16_t c_in, c_out, k, group, stride, pad, shift;
    uint16_t ring, col;  /* offsets of the layer's ring and columns in afd_net_t */
} afd_layer;
#endif

/* The model (afd_model_tables.c): conv layers in order, then the classifier. */
extern const afd_layer afd_layers[AFD_N_CONVS];
extern const afd_layer afd_fc_layer;

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

/* ---- Layer kernels (afd_kernels_fast.c or afd_kernels_packed.c) ---- */

/* One output column of conv layer L; x: its ring at the oldest column of the window. */
void afd_conv_column(const afd_layer *L, const int16_t *x, int16_t *col);
/* The classifier: out[c] = bias[c] * times + sum of sign * (in[channel] << shift). */
void afd_fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES]);

/* ---- The streaming network (afd_net.c) ---- */

/* Empty rings, then each layer's left padding. */
void afd_net_reset(afd_net_t *net);
/* Push one input column (layer l's c_in values) into layer l; returns the last layer's
   pooled output column (AFD_C_LAST values) when this push completes one, else NULL. */
const int16_t *afd_net_push(afd_net_t *net, int32_t l, const int16_t *in);
/* Zeros: layer l's padding column */
extern const int16_t afd_zeros[AFD_MAX_C];
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
   only (its continuous mode refuses to start), one without in the continuous mode only */
#if AFD_RR
#define AFD_BEAT_THRESHOLD_EIGHTHS AFD_STRIP_THRESHOLD_EIGHTHS
#else
#define AFD_BEAT_THRESHOLD_EIGHTHS AFD_SCAN_THRESHOLD_EIGHTHS
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
void afd_rr_reset(afd_rr_t *s);
void afd_rr_push(afd_rr_t *s, int16_t sample);
/* Ends the recording in *s: its AFD_RR_N_FEATURES features, 0..AFD_RR_FEATURE_MAX. */
void afd_rr_features(afd_rr_t *s, int32_t f[AFD_RR_N_FEATURES]);
/* The classifier on the activation sums and the RR features of *rr, both times steps. */
void afd_fc_with_rr(const int32_t *sums, int32_t steps, afd_rr_t *rr,
                    int32_t logits[AFD_N_CLASSES]);
#endif

#endif
