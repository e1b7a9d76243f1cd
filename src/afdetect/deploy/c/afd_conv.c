/* The layer arithmetic both weight layouts share: a conv layer's tile of output times,
   each kept kernel decoded once (afd_cursor_kernel) and then applied to every output
   time of the tile, and the classifier. Every product is an activation times
   sign * 2^shift: one multiply (AFD_MULTIPLY 1) or a shift and a conditional negation
   (AFD_MULTIPLY 0, no multiplier); the same integers either way. */
#include "afd_internal.h"

/* row * cap without a multiply instruction when AFD_MULTIPLY is 0 */
static int32_t row_offset(int32_t row, int32_t cap)
{
#if AFD_MULTIPLY
    return row * cap;
#else
    return afd_times_by_shifts(row, cap);
#endif
}

void afd_code_table(int32_t bits, int32_t table[1 << AFD_MAX_BITS])
{
    int32_t code;
    for (code = 0; code < (int32_t)1 << bits; code++) table[code] = code;
}

/* The layer's weight of each code, the per-layer table a tile's kernels are decoded
   with: sign * 2^shift, or (no multiplier) the shift with a negative sign in bit 8.
   Shifts above 30 do not occur: the export proves the int32 accumulators bounded. */
static void weight_table(int32_t bits, int32_t table[1 << AFD_MAX_BITS])
{
    const int32_t sign = (int32_t)1 << (bits - 1);
    int32_t code;
    for (code = 0; code < sign + sign; code++) {
        const int32_t e = code & (sign - 1);
#if AFD_MULTIPLY
        const int32_t v = e > 30 ? 0 : (int32_t)1 << e;
        table[code] = (code & sign) ? -v : v;
#else
        table[code] = (code & sign) ? e | 0x100 : e;
#endif
    }
}

/* The kernels' loops stay functions of their own: inlined, their weights and pointers
   would not all get registers */
#if defined(__GNUC__)
#define AFD_NOINLINE __attribute__((noinline))
#else
#define AFD_NOINLINE
#endif

#if AFD_MULTIPLY
#define TERM(w, v) ((w) * (int32_t)(v))
#else
/* v << shift, negated for a negative sign, in wrapping unsigned arithmetic */
static int32_t shifted_term(int32_t w, int32_t v)
{
    const uint32_t neg = (uint32_t)0 - (uint32_t)(w >> 8);
    return (int32_t)((((uint32_t)v << (w & 0xFF)) ^ neg) + (neg & 1u));
}
#define TERM(w, v) shifted_term(w, (int32_t)(v))
#endif

/* acc[t] += sum over the kernel's taps of w_j x[t * stride + tap_j], t < m, for input
   of type TYPE (int16 samples for layer 0, activations after it); two output times at
   a time, so each weight and tap is loaded once for both */
#define APPLY_TAPS(NAME, TYPE)                                                          \
    static AFD_NOINLINE void NAME(int32_t *acc, const TYPE *x, int32_t stride,         \
                                  int32_t m, const afd_kernel *k)                       \
    {                                                                                   \
        const int32_t n = k->n;                                                         \
        int32_t j;                                                                      \
        if (m & 1) { /* an odd one first: the pairs then run to the end */              \
            for (j = 0; j < n; j++) acc[0] += TERM(k->w[j], x[k->tap[j]]);              \
            acc++;                                                                      \
            x += stride;                                                                \
            m--;                                                                        \
        }                                                                               \
        for (; m > 0; m -= 2, acc += 2, x += stride + stride) {                         \
            const TYPE *y = x + stride;                                                 \
            int32_t a = acc[0], b = acc[1];                                             \
            for (j = 0; j < n; j++) {                                                   \
                const int32_t w = k->w[j], tap = k->tap[j];                             \
                a += TERM(w, x[tap]);                                                   \
                b += TERM(w, y[tap]);                                                   \
            }                                                                           \
            acc[0] = a;                                                                 \
            acc[1] = b;                                                                 \
        }                                                                               \
    }
APPLY_TAPS(apply_samples, int16_t)
APPLY_TAPS(apply_acts, afd_act_t)

#if !AFD_MULTIPLY
/* A whole kernel of 9 taps, m >= 1 output times, with shifts: a negative weight's term
   -(x << e) is ((x ^ ~0) << e) + 2^e, so each tap is an exclusive or, a shift and an add,
   and the negative weights' 2^e are added once per output time */
static AFD_NOINLINE void apply9(int32_t *acc, const afd_act_t *x, int32_t stride, int32_t m,
                                const int32_t *w)
{
    uint32_t e[9], neg[9], fix = 0;
    int32_t j;
    for (j = 0; j < 9; j++) {
        e[j] = (uint32_t)w[j] & 0xFFu;
        neg[j] = (uint32_t)0 - ((uint32_t)w[j] >> 8);
        fix += neg[j] & ((uint32_t)1 << e[j]);
    }
    do {
        *acc = (int32_t)((uint32_t)*acc + fix + ((x[0] ^ neg[0]) << e[0]) +
                         ((x[1] ^ neg[1]) << e[1]) + ((x[2] ^ neg[2]) << e[2]) +
                         ((x[3] ^ neg[3]) << e[3]) + ((x[4] ^ neg[4]) << e[4]) +
                         ((x[5] ^ neg[5]) << e[5]) + ((x[6] ^ neg[6]) << e[6]) +
                         ((x[7] ^ neg[7]) << e[7]) + ((x[8] ^ neg[8]) << e[8]));
        acc++;
        x += stride;
    } while (--m != 0);
}
#elif !AFD_DSP
/* A whole kernel of 9 taps, m >= 1 output times: its weights held in registers */
static AFD_NOINLINE void apply9(int32_t *acc, const afd_act_t *x, int32_t stride, int32_t m,
                                const int32_t *w)
{
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5],
                  w6 = w[6], w7 = w[7], w8 = w[8];
    do {
        *acc++ += w0 * x[0] + w1 * x[1] + w2 * x[2] + w3 * x[3] + w4 * x[4] + w5 * x[5] +
                  w6 * x[6] + w7 * x[7] + w8 * x[8];
        x += stride;
    } while (--m != 0);
}
#elif AFD_DSP
/* Two weights in one word, for a dual 16-bit multiply-accumulate */
static uint32_t pair(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi & 0xFFFFu) << 16;
}

/* A whole kernel of 9 taps, m >= 1 output times, with dual multiply-accumulates: 4
   activation bytes in one load, spread into halfwords (bytes 0 and 2, 1 and 3), each
   pair against a pair of weights; the ninth tap alone */
static AFD_NOINLINE void apply9(int32_t *acc, const afd_act_t *x, int32_t stride, int32_t m,
                                const int32_t *w)
{
    const uint32_t w02 = pair(w[0], w[2]), w13 = pair(w[1], w[3]), w46 = pair(w[4], w[6]),
                   w57 = pair(w[5], w[7]);
    const int32_t w8 = w[8];
    do {
        const uint32_t a = afd_load4(x), b = afd_load4(x + 4);
        int32_t sum = *acc + w8 * x[8];
        sum = afd_smlad(afd_uxtb16(a), w02, sum);
        sum = afd_smlad(afd_uxtb16_odd(a), w13, sum);
        sum = afd_smlad(afd_uxtb16(b), w46, sum);
        *acc++ = afd_smlad(afd_uxtb16_odd(b), w57, sum);
        x += stride;
    } while (--m != 0);
}
#endif

/* acc[0..m-1] max-pooled in pairs (with *half first when parity is 1) and requantised
   (afd_requantise; it is monotonic, so pooling comes first and the pair needs one);
   completed pairs to out, an unpaired last one to *half */
static void requantise_pool(const int32_t *acc, int32_t m, int32_t shift, int32_t parity,
                            afd_act_t *half, afd_act_t *out)
{
    const int32_t *end = acc + m;
    int32_t v;
    if (parity) {
        v = afd_requantise(*acc++, shift);
        *out++ = (afd_act_t)(v > *half ? v : *half);
    }
    if (shift > 0) {  /* the usual case, without afd_requantise's branches on shift */
        const int32_t round = (int32_t)1 << (shift - 1);
        for (; acc + 1 < end; acc += 2) {
            v = acc[0] > acc[1] ? acc[0] : acc[1];
            v = v > 0 ? (v + round) >> shift : 0;
            *out++ = (afd_act_t)(v > AFD_ACT_TOP ? AFD_ACT_TOP : v);
        }
    } else {
        for (; acc + 1 < end; acc += 2)
            *out++ = (afd_act_t)afd_requantise(acc[0] > acc[1] ? acc[0] : acc[1], shift);
    }
    if (acc < end) *half = (afd_act_t)afd_requantise(*acc, shift);
}

int32_t afd_conv_tile(int32_t l, const void *x, int32_t m, afd_act_t *half, int32_t *parity,
                      afd_act_t *dst, int32_t dst_cap)
{
    const afd_layer *L = &afd_layers[l];
    /* the layer's fields in locals: stores of activations may alias anything */
    const int32_t p0 = *parity, c_out = L->c_out, cap = L->cap, stride = L->stride;
    const int32_t shift = L->shift;
    afd_cursor cur;
    afd_kernel k;
    int32_t acc[AFD_MAX_TILE], table[1 << AFD_MAX_BITS], o, t;
    weight_table(L->bits, table);
    afd_cursor_start(L, &cur, table);
    for (o = 0; o < c_out; o++, half++, dst += dst_cap) {
        const int32_t bias = afd_cursor_row(L, &cur);
        for (t = 0; t < m; t++) acc[t] = bias;
        while (afd_cursor_kernel(L, &cur, &k)) {
            const int32_t row = row_offset(k.chan, cap);
            if (l == 0)
                apply_samples(acc, (const int16_t *)x + row, stride, m, &k);
            else if (k.n == 9 && L->k == 9)
                apply9(acc, (const afd_act_t *)x + row, stride, m, k.w);
            else
                apply_acts(acc, (const afd_act_t *)x + row, stride, m, &k);
        }
        requantise_pool(acc, m, shift, p0, half, dst);
    }
    *parity = (p0 + m) & 1;
    return (p0 + m) >> 1;
}

void afd_fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES])
{
    const afd_layer *L = &afd_fc_layer;
    const int32_t sign = (int32_t)1 << (L->bits - 1);
    afd_cursor cur;
    afd_kernel k;
    int32_t c, codes[1 << AFD_MAX_BITS];
    afd_code_table(L->bits, codes);
    afd_cursor_start(L, &cur, codes);
    for (c = 0; c < AFD_N_CLASSES; c++) {
        int32_t acc = afd_times_by_shifts(afd_cursor_row(L, &cur), times);
        while (afd_cursor_kernel(L, &cur, &k)) {
            const int32_t v = afd_shifted(in[k.chan], k.w[0] & (sign - 1));
            acc += (k.w[0] & sign) ? -v : v;
        }
        out[c] = acc;
    }
}
