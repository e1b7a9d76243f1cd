/* The streaming network: every conv layer keeps an input buffer of its last cap columns,
   so RAM does not grow with the recording and samples can be pushed as the ADC delivers
   them. When a layer's buffer is full (or at a flush), it computes every output whose
   window is complete, a tile at a time; outputs are max-pooled in pairs and written on
   into the next layer's buffer, which computes in turn when it has no room left. */
#include "afd_internal.h"

/* Layer l's input buffer, from column `at` */
static const void *input_of(const afd_net_t *net, int32_t l, int32_t at)
{
    const afd_layer *L = &afd_layers[l];
    if (l == 0) return net->input + L->buf + at;
    return net->acts + L->buf + at;
}

/* Columns at .. fill - 1 of layer l's buffer moved to its front, in every row */
static void compact(afd_net_t *net, int32_t l, int32_t at)
{
    const afd_layer *L = &afd_layers[l];
    const int32_t keep = net->fill[l] - at;
    int32_t c, j;
    if (l == 0) {
        int16_t *row = net->input + L->buf;
        for (c = 0; c < L->c_in; c++, row += L->cap)
            for (j = 0; j < keep; j++) row[j] = row[at + j];
    } else {
        afd_act_t *row = net->acts + L->buf;
        for (c = 0; c < L->c_in; c++, row += L->cap)
            for (j = 0; j < keep; j++) row[j] = row[at + j];
    }
    net->fill[l] = keep;
}

/* Every output of layer l whose window is in its buffer, a tile at a time */
static void drain(afd_net_t *net, int32_t l, afd_sink_fn sink, void *ctx)
{
    const afd_layer *L = &afd_layers[l];
    const int32_t last = l + 1 == AFD_N_CONVS;
    const int32_t cap = last ? AFD_OUT_CAP : afd_layers[l + 1].cap;
    afd_act_t *dst = net->acts + (last ? AFD_OUT_AT : afd_layers[l + 1].buf);
    int32_t at = 0, j;
    for (;;) {
        int32_t m = 0, end = at + L->k, pairs, most = L->tile;
        if (end > net->fill[l]) break;  /* no window complete */
        if ((net->parity[l] + most) >> 1 > cap - net->fill[l + 1] && !last)
            drain(net, l + 1, sink, ctx);  /* the next layer makes room */
        if ((net->parity[l] + most) >> 1 > cap - net->fill[l + 1])  /* a smaller tile */
            most = 2 * (cap - net->fill[l + 1]) - net->parity[l];
        for (; end <= net->fill[l] && m < most; m++) end += L->stride;
        pairs = afd_conv_tile(l, input_of(net, l, at), m, net->half + L->half,
                              &net->parity[l], dst + net->fill[l + 1], cap);
        net->fill[l + 1] += pairs;
        at = end - L->k;  /* the next tile's first window */
        if (last) {
            for (j = 0; j < net->fill[l + 1]; j++) sink(ctx, dst + j, cap);
            net->fill[l + 1] = 0;
        }
    }
    if (at > 0) compact(net, l, at);
}

/* Append a column of `value` in every input channel of layer l (a sample, or padding) */
static void put_column(afd_net_t *net, int32_t l, int16_t value, afd_sink_fn sink,
                       void *ctx)
{
    const afd_layer *L = &afd_layers[l];
    int32_t c;
    if (net->fill[l] == L->cap) drain(net, l, sink, ctx);  /* full: make room */
    if (l == 0) {
        int16_t *p = net->input + L->buf + net->fill[l];
        for (c = 0; c < L->c_in; c++, p += L->cap) *p = value;
    } else {
        afd_act_t *p = net->acts + L->buf + net->fill[l];
        for (c = 0; c < L->c_in; c++, p += L->cap) *p = (afd_act_t)value;
    }
    net->fill[l]++;
}

void afd_net_push(afd_net_t *net, int16_t sample, afd_sink_fn sink, void *ctx)
{
    put_column(net, 0, sample, sink, ctx);
}

void afd_net_flush(afd_net_t *net, afd_sink_fn sink, void *ctx)
{
    int32_t l;
    for (l = 0; l < AFD_N_CONVS; l++) drain(net, l, sink, ctx);
}

void afd_net_finish(afd_net_t *net, afd_sink_fn sink, void *ctx)
{
    int32_t l, i;
    for (l = 0; l < AFD_N_CONVS; l++) {  /* each layer's zeros follow the columns it got */
        for (i = 0; i < afd_layers[l].pad; i++) put_column(net, l, 0, sink, ctx);
        drain(net, l, sink, ctx);
    }
}

void afd_net_reset(afd_net_t *net)
{
    int32_t l, i;
    for (l = 0; l <= AFD_N_CONVS; l++) net->fill[l] = 0;
    for (l = 0; l < AFD_N_CONVS; l++) {
        net->parity[l] = 0;
        /* left padding: pad < K <= cap, so no layer computes from it alone */
        for (i = 0; i < afd_layers[l].pad; i++) put_column(net, l, 0, NULL, NULL);
    }
}

int afd_argmax(const int32_t logits[AFD_N_CLASSES])
{
    int c, best = 0;
    for (c = 1; c < AFD_N_CLASSES; c++)
        if (logits[c] > logits[best]) best = c;
    return best;
}
