/* Weight decoder of the packed layout: the .afq file's bit-packed blocks (see afd_layer
   in afd_internal.h), read in order, for the least flash. */
#include "afd_internal.h"

/* A cursor over the kept weights (group 1) or kernels (group K) in C order. */
static void walk_start(const afd_layer *L, afd_walker *w)
{
    w->index.p = L->index;
    w->index.acc = 0;
    w->index.n = 0;
    w->columns = w->index;
    w->columns.p = L->columns;
    w->o = w->c = w->t = 0;
    w->left = L->scheme == 3 ? L->c_out : L->entries;
    w->pending = 0;
    w->row = -1;
    w->row_left = 0;
    w->prev = 0;
}

static void advance(const afd_layer *L, afd_walker *w, int32_t g)
{
    const int32_t per_channel = L->group == 1 ? L->k : 1;  /* grid positions per c */
    while (g-- > 0) {
        if (++w->t < per_channel) continue;
        w->t = 0;
        if (++w->c < L->c_in) continue;
        w->c = 0;
        w->o++;
    }
}

static int next_kept(const afd_layer *L, afd_walker *w)  /* 0 at the end */
{
    uint32_t v, escape = ((uint32_t)1 << L->param) - 1;
    advance(L, w, w->pending);
    w->pending = 0;
    if (L->scheme == 3) {  /* csr */
        while (w->row_left == 0) {
            if (w->left-- == 0) return 0;
            w->row++;
            w->o = w->row;
            w->c = w->t = w->prev = 0;
            w->row_left = (int32_t)afd_take(&w->index, L->count_bits);
        }
        w->row_left--;
        v = afd_take(&w->columns, L->column_bits);
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
            if (afd_take(&w->index, 1)) {
                w->pending = 1;
                return 1;
            }
            advance(L, w, 1);
            continue;
        }
        v = afd_take(&w->index, L->param);  /* relative */
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

void afd_cursor_start(const afd_layer *L, afd_cursor *c, const int32_t *table)
{
    c->table = table;
    walk_start(L, &c->w);
    c->codes.p = L->codes;
    c->biases.p = L->biases;
    c->codes.acc = c->biases.acc = 0;
    c->codes.n = c->biases.n = 0;
    c->row = -1;
    c->more = next_kept(L, &c->w);
}

int32_t afd_cursor_row(const afd_layer *L, afd_cursor *c)
{
    c->row++;
    return afd_take_signed(&c->biases, L->bias_width, L->bias_shift);
}

int afd_cursor_kernel(const afd_layer *L, afd_cursor *c, afd_kernel *k)
{
    int32_t t;
    if (!c->more || c->w.o != c->row) return 0;
    k->chan = c->w.c;
    k->n = 0;
    k->tap = k->taps;
    do {  /* a kernel (group K), or the row's consecutive weights of one input channel */
        for (t = 0; t < L->group; t++) {
            k->taps[k->n] = (uint8_t)(c->w.t + t);
            k->w[k->n++] = c->table[afd_take(&c->codes, L->bits)];
        }
        c->more = next_kept(L, &c->w);
    } while (L->group == 1 && c->more && c->w.o == c->row && c->w.c == k->chan);
    return 1;
}
