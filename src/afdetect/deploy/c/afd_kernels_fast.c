/* Weight decoder of the fast layout (see afd_layer in afd_internal.h): per row a count of
   records, each record an input channel and its codes, read from one bit stream. */
#include "afd_internal.h"

void afd_cursor_start(const afd_layer *L, afd_cursor *c, const int32_t *table)
{
    int32_t t, w;
    c->table = table;
    for (t = 0; t < L->k && t < AFD_MAX_K; t++) c->all_taps[t] = (uint8_t)t;
    /* a whole kernel's record in takes of up to 24 bits: the channel and the first codes */
    for (t = 0, w = L->chan_bits; t < L->k && w + L->bits <= 24; t++) w += L->bits;
    c->first = t;
    c->first_bits = w;
    c->records.p = L->records;
    c->records.acc = 0;
    c->records.n = 0;
    c->count = L->counts;
    c->biases.p = L->biases;
    c->biases.acc = 0;
    c->biases.n = 0;
    c->row = -1;
    c->left = 0;
    c->held = 0;
}

int32_t afd_cursor_row(const afd_layer *L, afd_cursor *c)
{
    c->row++;
    c->left = *c->count++;
    c->held = 0;
    return afd_take_signed(&c->biases, L->bias_bits, 0);
}

/* One group-1 record (input channel, tap, code) into c's read-ahead */
static void read_weight(const afd_layer *L, afd_cursor *c)
{
    c->left--;
    c->chan = (int32_t)afd_take(&c->records, L->chan_bits);
    c->tap = (int32_t)afd_take(&c->records, L->tap_bits);
    c->code = (int32_t)afd_take(&c->records, L->bits);
    c->held = 1;
}

int afd_cursor_kernel(const afd_layer *L, afd_cursor *c, afd_kernel *k)
{
    const int32_t bits = L->bits, n = L->k, *table = c->table;
    const uint32_t mask = ((uint32_t)1 << bits) - 1;
    if (L->tap_bits == 0) {  /* one record: a whole kernel */
        int32_t j, i, w, count;
        uint32_t v;
        if (c->left == 0) return 0;
        c->left--;
        v = afd_take(&c->records, c->first_bits);
        k->n = n;
        k->tap = c->all_taps;
        for (i = c->first - 1; i >= 0; i--, v >>= bits) k->w[i] = table[v & mask];
        k->chan = (int32_t)v;
        for (j = c->first; j < n; j += count) {  /* the rest, 24 bits at a time */
            for (count = 0, w = 0; j + count < n && w + bits <= 24; count++) w += bits;
            v = afd_take(&c->records, w);
            for (i = j + count - 1; i >= j; i--, v >>= bits) k->w[i] = table[v & mask];
        }
        return 1;
    }
    if (!c->held) {
        if (c->left == 0) return 0;
        read_weight(L, c);
    }
    k->chan = c->chan;
    k->n = 0;
    k->tap = k->taps;
    do {  /* the row's consecutive weights of one input channel */
        k->taps[k->n] = (uint8_t)c->tap;
        k->w[k->n++] = table[c->code];
        c->held = 0;
        if (c->left == 0) break;
        read_weight(L, c);
    } while (c->chan == k->chan);
    return 1;
}
