/* Layer kernels of the fast layout: byte codes and 16-bit ring offsets, read directly.
   Every product is a shift of an activation by a weight's exponent offset, added or
   subtracted by its sign; requantisation is a rounding right shift; ReLU is a compare. */
#include "afd_internal.h"

void afd_conv_column(const afd_layer *L, const int16_t *x, int16_t *col)
{
    const uint8_t *code = L->code;  /* walks the codes in index order */
    const uint16_t *row = L->row, *off = L->off;
    const int32_t group = L->group, c_out = L->c_out, shift = L->shift;
    int32_t o, t, j = row[0], end;
    for (o = 0; o < c_out; o++) {
        int32_t acc = L->bias[o];
        for (end = row[o + 1]; j < end; j++) {
            const int16_t *w = x + off[j];
            for (t = 0; t < group; t++) {
                int32_t c = *code++, v = afd_shifted(w[t], c & 0x7F);
                acc += (c & 0x80) ? -v : v;
            }
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
