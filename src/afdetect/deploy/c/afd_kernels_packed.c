/* Layer kernels of the packed layout: the .afq file's bit-packed blocks (see afd_layer in
   afd_internal.h), decoded on the fly at every use, for the least flash. */
#include "afd_internal.h"

typedef struct {
    const uint8_t *p;
    uint32_t acc;
    int32_t n;
} bits_t;

static uint32_t take(bits_t *b, int32_t w)  /* the next w bits (w <= 24), MSB first */
{
    while (b->n < w) {
        b->acc = (b->acc << 8) | *b->p++;
        b->n += 8;
    }
    b->n -= w;
    return (b->acc >> b->n) & (((uint32_t)1 << w) - 1);
}

static int32_t take_bias(const afd_layer *L, bits_t *b)
{
    uint32_t v = take(b, L->bias_width);
    if (v >> (L->bias_width - 1)) v -= (uint32_t)1 << L->bias_width;  /* sign */
    return (int32_t)(v << L->bias_shift);  /* two's complement wrap: no multiply */
}

/* A cursor over the kept weights (group 1) or kernels (group K) in C order. */
typedef struct {
    bits_t index, columns;
    int32_t o, c, t, xoff;   /* output and input channel, tap; c * 2K, the ring offset */
    int32_t left, pending;   /* entries or positions (rows for csr) left; step to take */
    int32_t row, row_left, prev;
} walker;

static void walk_start(const afd_layer *L, walker *w)
{
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
}

static void advance(const afd_layer *L, walker *w, int32_t g)
{
    const int32_t per_channel = L->group == 1 ? L->k : 1;  /* grid positions per c */
    while (g-- > 0) {
        if (++w->t < per_channel) continue;
        w->t = 0;
        w->xoff += 2 * L->k;
        if (++w->c < L->c_in) continue;
        w->c = w->xoff = 0;
        w->o++;
    }
}

static int next_kept(const afd_layer *L, walker *w)  /* 0 at the end */
{
    uint32_t v, escape = ((uint32_t)1 << L->param) - 1;
    advance(L, w, w->pending);
    w->pending = 0;
    if (L->scheme == 3) {  /* csr */
        while (w->row_left == 0) {
            if (w->left-- == 0) return 0;
            w->row++;
            w->o = w->row;
            w->c = w->t = w->xoff = w->prev = 0;
            w->row_left = (int32_t)take(&w->index, L->count_bits);
        }
        w->row_left--;
        v = take(&w->columns, L->column_bits);
        advance(L, w, (int32_t)v - w->prev);
        w->prev = (int32_t)v + 1;
        w->pending = 1;
        return 1;
    }
    while (w->left > 0) {
        w->left--;
        if (L->scheme == 0) {  /* dense */
            w->pending = 1;
            return 1;
        }
        if (L->scheme == 1) {  /* bitmap */
            if (take(&w->index, 1)) {
                w->pending = 1;
                return 1;
            }
            advance(L, w, 1);
            continue;
        }
        v = take(&w->index, L->param);  /* relative */
        if (v == escape) {
            advance(L, w, (int32_t)escape);
            continue;
        }
        advance(L, w, (int32_t)v);
        w->pending = 1;
        return 1;
    }
    return 0;
}

void afd_conv_column(const afd_layer *L, const int16_t *x, int16_t *col)
{
    walker w;
    bits_t codes = {NULL, 0, 0}, biases = {NULL, 0, 0};
    const int32_t sign = (int32_t)1 << (L->bits - 1);
    int32_t accs[AFD_MAX_C], o, t, v, code;
    codes.p = L->codes;
    biases.p = L->biases;
    for (o = 0; o < L->c_out; o++) accs[o] = take_bias(L, &biases);
    walk_start(L, &w);
    while (next_kept(L, &w)) {
        const int16_t *in = x + w.xoff + w.t;
        for (t = 0; t < L->group; t++) {
            code = (int32_t)take(&codes, L->bits);
            v = afd_shifted(in[t], code & (sign - 1));
            if (code & sign) accs[w.o] -= v; else accs[w.o] += v;
        }
    }
    for (o = 0; o < L->c_out; o++) col[o] = afd_requantise(accs[o], L->shift);
}

void afd_fc_apply(const int32_t *in, int32_t times, int32_t out[AFD_N_CLASSES])
{
    const afd_layer *L = &afd_fc_layer;
    walker w;
    bits_t codes = {NULL, 0, 0}, biases = {NULL, 0, 0};
    const int32_t sign = (int32_t)1 << (L->bits - 1);
    int32_t c;
    codes.p = L->codes;
    biases.p = L->biases;
    for (c = 0; c < AFD_N_CLASSES; c++)
        out[c] = afd_times_by_shifts(take_bias(L, &biases), times);
    walk_start(L, &w);
    while (next_kept(L, &w)) {
        int32_t code = (int32_t)take(&codes, L->bits), v = in[w.c] << (code & (sign - 1));
        if (code & sign) out[w.o] -= v; else out[w.o] += v;
    }
}
