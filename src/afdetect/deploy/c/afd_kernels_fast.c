/* Weight decoder of the fast layout (see afd_layer in afd_internal.h): per row a count of
   records, each record an input channel and its codes, read from one bit stream. */
#include "afd_internal.h"

void afd_cursor_start(const afd_layer *L, afd_cursor *c)
{
    c->records.p = L->records;
    c->records.acc = 0;
    c->records.n = 0;
    c->count = L->counts;
    c->bias = L->bias;
    c->row = -1;
    c->left = 0;
    c->held = 0;
}

int32_t afd_cursor_row(const afd_layer *L, afd_cursor *c)
{
    (void)L;
    c->row++;
    c->left = *c->count++;
    c->held = 0;
    return *c->bias++;
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
    int32_t j;
    if (L->whole) {  /* one record: a whole kernel */
        if (c->left == 0) return 0;
        c->left--;
        k->chan = (int32_t)afd_take(&c->records, L->chan_bits);
        k->n = L->k;
        for (j = 0; j < L->k; j++) {
            k->tap[j] = (uint8_t)j;
            k->code[j] = (uint8_t)afd_take(&c->records, L->bits);
        }
        return 1;
    }
    if (!c->held) {
        if (c->left == 0) return 0;
        read_weight(L, c);
    }
    k->chan = c->chan;
    k->n = 0;
    do {  /* the row's consecutive weights of one input channel */
        k->tap[k->n] = (uint8_t)c->tap;
        k->code[k->n++] = (uint8_t)c->code;
        c->held = 0;
        if (c->left == 0) break;
        read_weight(L, c);
    } while (c->chan == k->chan);
    return 1;
}
