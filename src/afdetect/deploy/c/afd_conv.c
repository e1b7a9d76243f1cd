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

/* A kernel's weights as the inner loops take them: w[j] = sign * 2^shift (AFD_MULTIPLY),
   else w[j] = shift and neg[j] = all ones for a negative sign */
typedef struct {
    int32_t w[AFD_MAX_K];
#if !AFD_MULTIPLY
    uint32_t neg[AFD_MAX_K];
#endif
} weights_t;

static void weights_of(const afd_kernel *k, int32_t bits, weights_t *ws)
{
    const int32_t sign = (int32_t)1 << (bits - 1);
    int32_t j;
    for (j = 0; j < k->n; j++) {
        const int32_t e = k->code[j] & (sign - 1);
#if AFD_MULTIPLY
        ws->w[j] = k->code[j] & sign ? -((int32_t)1 << e) : (int32_t)1 << e;
#else
        ws->w[j] = e;
        ws->neg[j] = k->code[j] & sign ? ~(uint32_t)0 : 0;
#endif
    }
}

#if AFD_MULTIPLY
#define TERM(ws, j, v) ((ws)->w[j] * (int32_t)(v))
#else
#define TERM(ws, j, v) \
    ((int32_t)((((uint32_t)(int32_t)(v) << (ws)->w[j]) ^ (ws)->neg[j]) - (ws)->neg[j]))
#endif

/* acc[t] += sum over the kernel's taps of w_j x[t * stride + tap_j], t < m, for input
   of type TYPE (int16 samples for layer 0, activations after it) */
#define APPLY_TAPS(NAME, TYPE)                                                          \
    static void NAME(int32_t *acc, const TYPE *x, int32_t stride, int32_t m,           \
                     const afd_kernel *k, const weights_t *ws)                          \
    {                                                                                   \
        int32_t j;                                                                      \
        for (; m > 0; m--, x += stride) {                                               \
            int32_t a = *acc;                                                           \
            for (j = 0; j < k->n; j++) a += TERM(ws, j, x[k->tap[j]]);                  \
            *acc++ = a;                                                                 \
        }                                                                               \
    }
APPLY_TAPS(apply_samples, int16_t)
APPLY_TAPS(apply_acts, afd_act_t)

#if AFD_MULTIPLY
/* A whole kernel of 9 taps: its weights held in registers over the tile */
static void apply9(int32_t *acc, const afd_act_t *x, int32_t stride, int32_t m,
                   const weights_t *ws)
{
    const int32_t w0 = ws->w[0], w1 = ws->w[1], w2 = ws->w[2], w3 = ws->w[3],
                  w4 = ws->w[4], w5 = ws->w[5], w6 = ws->w[6], w7 = ws->w[7],
                  w8 = ws->w[8];
    for (; m > 0; m--, x += stride)
        *acc++ += w0 * x[0] + w1 * x[1] + w2 * x[2] + w3 * x[3] + w4 * x[4] + w5 * x[5] +
                  w6 * x[6] + w7 * x[7] + w8 * x[8];
}
#endif

int32_t afd_conv_tile(int32_t l, const void *x, int32_t m, afd_act_t *half, int32_t *parity,
                      afd_act_t *dst, int32_t dst_cap)
{
    const afd_layer *L = &afd_layers[l];
    const int32_t p0 = *parity;
    afd_cursor cur;
    afd_kernel k;
    weights_t ws;
    int32_t acc[AFD_MAX_TILE], o, t;
    afd_cursor_start(L, &cur);
    for (o = 0; o < L->c_out; o++, half++, dst += dst_cap) {
        const int32_t bias = afd_cursor_row(L, &cur);
        afd_act_t *out = dst;
        int32_t p = p0;
        for (t = 0; t < m; t++) acc[t] = bias;
        while (afd_cursor_kernel(L, &cur, &k)) {
            const int32_t row = row_offset(k.chan, L->cap);
            weights_of(&k, L->bits, &ws);
            if (l == 0)
                apply_samples(acc, (const int16_t *)x + row, L->stride, m, &k, &ws);
#if AFD_MULTIPLY
            else if (k.n == 9 && L->k == 9)
                apply9(acc, (const afd_act_t *)x + row, L->stride, m, &ws);
#endif
            else
                apply_acts(acc, (const afd_act_t *)x + row, L->stride, m, &k, &ws);
        }
        for (t = 0; t < m; t++, p ^= 1) {  /* requantise, ReLU, saturate, pool pairs */
            const afd_act_t v = (afd_act_t)afd_requantise(acc[t], L->shift);
            if (p)
                *out++ = v > *half ? v : *half;
            else
                *half = v;
        }
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
    int32_t c;
    afd_cursor_start(L, &cur);
    for (c = 0; c < AFD_N_CLASSES; c++) {
        int32_t acc = afd_times_by_shifts(afd_cursor_row(L, &cur), times);
        while (afd_cursor_kernel(L, &cur, &k)) {
            const int32_t v = afd_shifted(in[k.chan], k.code[0] & (sign - 1));
            acc += k.code[0] & sign ? -v : v;
        }
        out[c] = acc;
    }
}
