/* The streaming network: every conv layer keeps a ring of its last K input columns, so
   RAM does not grow with the recording and samples can be pushed as the ADC delivers
   them. Each pushed column may complete one output of a layer (every `stride` columns);
   outputs are max-pooled in pairs and pushed on into the next layer. */
#include "afd_internal.h"

const int16_t afd_zeros[AFD_MAX_C] = {0};

/* Push one column into layer l; the pooled output column when one completes, else NULL */
static const int16_t *layer_push(afd_net_t *net, int32_t l, const int16_t *in)
{
    const afd_layer *L = &afd_layers[l];
    int16_t *r = net->rings + L->ring, *col = net->columns + L->col;
    int16_t *pool = net->pooled + L->col, *slot;
    int32_t c, o, p = net->pos[l] + 1;
    if (p == L->k) p = 0;
    net->pos[l] = p;
    for (c = 0, slot = r + p; c < L->c_in; c++, slot += L->k + L->k) {
        slot[0] = in[c];
        slot[L->k] = in[c];
    }
    if (net->fill[l] < L->k && ++net->fill[l] < L->k) return NULL;  /* saturates */
    if (--net->phase[l] > 0) return NULL;
    net->phase[l] = L->stride;
    afd_conv_column(L, r + p + 1, col);  /* r + p + 1: the oldest column of the window */
    net->outputs[l] ^= 1;
    if (net->outputs[l]) {
        for (o = 0; o < L->c_out; o++) pool[o] = col[o];
        return NULL;
    }
    for (o = 0; o < L->c_out; o++)
        if (col[o] > pool[o]) pool[o] = col[o];
    return pool;
}

const int16_t *afd_net_push(afd_net_t *net, int32_t l, const int16_t *in)
{
    for (; l < AFD_N_CONVS && in; l++) in = layer_push(net, l, in);
    return in;
}

void afd_net_reset(afd_net_t *net)
{
    int32_t l, i;
    for (l = 0; l < AFD_N_CONVS; l++) {
        net->pos[l] = afd_layers[l].k - 1;
        net->fill[l] = 0;
        net->phase[l] = 1;
        net->outputs[l] = 0;
    }
    /* left padding: pad < K, so no layer completes an output from it */
    for (l = 0; l < AFD_N_CONVS; l++)
        for (i = 0; i < afd_layers[l].pad; i++) (void)afd_net_push(net, l, afd_zeros);
}

int afd_argmax(const int32_t logits[AFD_N_CLASSES])
{
    int c, best = 0;
    for (c = 1; c < AFD_N_CLASSES; c++)
        if (logits[c] > logits[best]) best = c;
    return best;
}
