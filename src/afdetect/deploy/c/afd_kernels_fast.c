/* Layer kernels of the fast layout: byte codes and 16-bit ring offsets, read directly.
   Every product is a shift of an activation by a weight's exponent offset, added or
   subtracted by its sign; requantisation is a rounding right shift; ReLU is a compare.
   With AFD_MULTIPLY 1 (cores with a one-cycle multiply-accumulate), the shift and sign
   become one multiply by sign * 2^shift, in unrolled kernels: the same integers. */
#include "afd_internal.h"

#if AFD_MULTIPLY
/* code -> sign * 2^shift, for cores whose multiply-accumulate costs what a shift and an
   add do (Cortex-M3/M4/M7/M33: one cycle); shifts above 30 do not occur in an int32
   accumulator that was proven not to overflow */
#define P(s) ((int32_t)1 << (s))
#define ROW(sign) sign P(0), sign P(1), sign P(2), sign P(3), sign P(4), sign P(5), sign P(6), \
    sign P(7), sign P(8), sign P(9), sign P(10), sign P(11), sign P(12), sign P(13), \
    sign P(14), sign P(15), sign P(16), sign P(17), sign P(18), sign P(19), sign P(20), \
    sign P(21), sign P(22), sign P(23), sign P(24), sign P(25), sign P(26), sign P(27), \
    sign P(28), sign P(29), sign P(30)
static const int32_t multiplier[256] = {ROW(+), [128] = ROW(-)};
#undef ROW
#undef P

/* One index entry's terms: up to 9 taps (a kernel of K <= 9, or one weight) in straight
   line code, jumped into by the number of taps; longer groups loop. */
static int32_t entry_terms(const int16_t *w, const uint8_t *code, int32_t group)
{
    int32_t acc = 0, t;
    switch (group) {
    case 9: acc += w[8] * multiplier[code[8]]; /* fall through */
    case 8: acc += w[7] * multiplier[code[7]]; /* fall through */
    case 7: acc += w[6] * multiplier[code[6]]; /* fall through */
    case 6: acc += w[5] * multiplier[code[5]]; /* fall through */
    case 5: acc += w[4] * multiplier[code[4]]; /* fall through */
    case 4: acc += w[3] * multiplier[code[3]]; /* fall through */
    case 3: acc += w[2] * multiplier[code[2]]; /* fall through */
    case 2: acc += w[1] * multiplier[code[1]]; /* fall through */
    case 1: acc += w[0] * multiplier[code[0]]; break;
    default:
        for (t = 0; t < group; t++) acc += w[t] * multiplier[code[t]];
    }
    return acc;
}
#endif

void afd_conv_column(const afd_layer *L, const int16_t *x, int16_t *col)
{
    const uint8_t *code = L->code;  /* walks the codes in index order */
    const uint16_t *row = L->row, *off = L->off;
    const int32_t group = L->group, c_out = L->c_out, shift = L->shift;
    int32_t o, j = row[0], end;
    for (o = 0; o < c_out; o++) {
        int32_t acc = L->bias[o];
        for (end = row[o + 1]; j < end; j++) {
            const int16_t *w = x + off[j];
#if AFD_MULTIPLY
            acc += entry_terms(w, code, group);
            code += group;
#else
            int32_t t;
            for (t = 0; t < group; t++) {
                int32_t c = *code++, v = afd_shifted(w[t], c & 0x7F);
                acc += (c & 0x80) ? -v : v;
            }
#endif
        }
        col[o] = afd_requantise(acc, shift);
    }
}

void afd_fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES])
{
    const afd_layer *L = &afd_fc_layer;
    int32_t c, j, v;
    for (c = 0; c < AFD_N_CLASSES; c++) {
        int32_t acc = afd_times_by_shifts(L->bias[c], times);
        for (j = L->row[c]; j < L->row[c + 1]; j++) {
            v = in[L->off[j]] << (L->code[j] & 0x7F);
            if (L->code[j] & 0x80) acc -= v; else acc += v;
        }
        out[c] = acc;
    }
}
