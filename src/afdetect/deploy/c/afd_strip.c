/* Strips: one recording pushed sample by sample, the classifier applied to the time sum
   of the last layer's activations at the end. */
#include "afd_internal.h"

/* Push a column into layer l, summing any last-layer output it completes */
static void push_at(afd_strip_t *s, int32_t l, const int16_t *in)
{
    const int16_t *out = afd_net_push(&s->net, l, in);
    int32_t c;
    if (!out) return;
    for (c = 0; c < AFD_C_LAST; c++) s->sums[c] += out[c];
    s->steps++;
}

void afd_strip_init(afd_strip_t *s)
{
    int32_t c;
    afd_net_reset(&s->net);
    for (c = 0; c < AFD_C_LAST; c++) s->sums[c] = 0;
    s->steps = 0;
    s->pushed = 0;
#if AFD_RR
    afd_rr_reset(&s->rr);
#endif
}

void afd_strip_push(afd_strip_t *s, int16_t sample)
{
    if (s->pushed < AFD_MIN_SAMPLES) s->pushed++;
#if AFD_RR
    afd_rr_push(&s->rr, sample);
#endif
    push_at(s, 0, &sample);
}

int afd_strip_finish(afd_strip_t *s, int32_t logits[AFD_N_CLASSES])
{
    int32_t l, i;
    if (s->pushed < AFD_MIN_SAMPLES) return -1;
    /* right padding, layer by layer: each layer's zeros follow the columns it got */
    for (l = 0; l < AFD_N_CONVS; l++)
        for (i = 0; i < afd_layers[l].pad; i++) push_at(s, l, afd_zeros);
#if AFD_RR
    afd_fc_with_rr(s->sums, s->steps, &s->rr, logits);
#else
    afd_fc_apply(s->sums, s->steps, logits);
#endif
    return afd_argmax(logits);
}

int afd_classify(afd_strip_t *s, const int16_t *samples, int32_t n,
                 int32_t logits[AFD_N_CLASSES])
{
    int32_t i;
    afd_strip_init(s);
    for (i = 0; i < n; i++) afd_strip_push(s, samples[i]);
    return afd_strip_finish(s, logits);
}
