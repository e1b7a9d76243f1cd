/* Batch mode: a whole recording layer by layer, at host speed.
   The same arithmetic as afd_classify, reordered: each kept weight walks all output times
   at once, so the compiler vectorises the shift-adds. Needs afd_batch_work_bytes(n) bytes
   of caller memory, aligned for int32_t. */
#include "afd_internal.h"

static int32_t conv_length(int32_t n, const afd_layer *L)
{
    return (n + 2 * L->pad - L->k) / L->stride + 1;
}

static void batch_sizes(int32_t n, int32_t *most_conv, int32_t *most_act)
{
    int32_t l, len = n;
    *most_conv = 0;
    *most_act = n;
    for (l = 0; l < AFD_N_CONVS; l++) {
        int32_t conv = conv_length(len, &afd_layers[l]);
        if (conv > *most_conv) *most_conv = conv;
        len = conv / 2;
        if ((int32_t)afd_layers[l].c_out * len > *most_act)
            *most_act = afd_layers[l].c_out * len;
    }
}

size_t afd_batch_work_bytes(int32_t n)
{
    int32_t most_conv, most_act;
    batch_sizes(n, &most_conv, &most_act);
    return sizeof(int32_t) * (size_t)most_conv + 2 * sizeof(int16_t) * (size_t)most_act;
}

int afd_classify_batch(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES],
                       void *work)
{
    int32_t l, o, j, t, x, c, len = n, conv, lo, hi, most_conv, most_act;
    int32_t batch_sums[AFD_C_LAST];
    int32_t *acc = (int32_t *)work;
    int16_t *bufs[2], *out;
    const int16_t *in = samples;
    if (n < AFD_MIN_SAMPLES) return -1;
    batch_sizes(n, &most_conv, &most_act);
    bufs[0] = (int16_t *)(acc + most_conv);
    bufs[1] = bufs[0] + most_act;
    for (l = 0; l < AFD_N_CONVS; l++) {
        const afd_layer *L = &afd_layers[l];
        const int32_t half = L->shift > 0 ? 1 << (L->shift - 1) : 0;
        const int32_t sign = (int32_t)1 << (L->bits - 1);
        afd_cursor cur;
        afd_kernel k;
        int32_t codes[1 << AFD_MAX_BITS];
        conv = conv_length(len, L);
        out = bufs[l & 1];
        afd_code_table(L->bits, codes);
        afd_cursor_start(L, &cur, codes);
        for (o = 0; o < L->c_out; o++) {
            const int32_t bias = afd_cursor_row(L, &cur);
            for (x = 0; x < conv; x++) acc[x] = bias;
            while (afd_cursor_kernel(L, &cur, &k)) {
                const int16_t *src = in + k.chan * len;
                for (j = 0; j < k.n; j++) {
                    /* output x reads input x * stride + tap - pad, when inside */
                    int32_t tap = k.tap[j] - L->pad, s = k.w[j] & (sign - 1);
                    lo = tap >= 0 ? 0 : (-tap + L->stride - 1) / L->stride;
                    hi = (len - 1 - tap) >= 0 ? (len - 1 - tap) / L->stride + 1 : 0;
                    if (hi > conv) hi = conv;
                    if (L->stride == 1) {  /* contiguous: the vectorised case */
                        const int16_t *p = src + tap;
                        if (k.w[j] & sign)
                            for (x = lo; x < hi; x++) acc[x] -= (int32_t)((uint32_t)p[x] << s);
                        else
                            for (x = lo; x < hi; x++) acc[x] += (int32_t)((uint32_t)p[x] << s);
                    } else if (k.w[j] & sign) {
                        for (x = lo; x < hi; x++)
                            acc[x] -= (int32_t)((uint32_t)src[x * L->stride + tap] << s);
                    } else {
                        for (x = lo; x < hi; x++)
                            acc[x] += (int32_t)((uint32_t)src[x * L->stride + tap] << s);
                    }
                }
            }
            for (x = 0; x + 1 < conv; x += 2) {  /* requantise, ReLU, saturate, pool */
                int32_t a = acc[x], b = acc[x + 1];
                a = a <= 0 ? 0 : (L->shift > 0 ? (a + half) >> L->shift : a << -L->shift);
                b = b <= 0 ? 0 : (L->shift > 0 ? (b + half) >> L->shift : b << -L->shift);
                if (a > AFD_ACT_TOP) a = AFD_ACT_TOP;
                if (b > AFD_ACT_TOP) b = AFD_ACT_TOP;
                out[o * (conv / 2) + x / 2] = (int16_t)(a > b ? a : b);
            }
        }
        in = out;
        len = conv / 2;
    }
    for (c = 0; c < AFD_C_LAST; c++) {
        const int16_t *row = in + c * len;
        batch_sums[c] = 0;
        for (t = 0; t < len; t++) batch_sums[c] += row[t];
    }
#if AFD_RR
    {
        afd_rr_t rr;
        afd_rr_reset(&rr);
        for (t = 0; t < n; t++) afd_rr_push(&rr, samples[t]);
        afd_fc_with_rr(batch_sums, len, &rr, logits);
    }
#else
    afd_fc_apply(batch_sums, len, logits);
#endif
    return afd_argmax(logits);
}
