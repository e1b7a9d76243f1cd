/* Strips: one recording pushed sample by sample, the classifier applied to the time sum
   of the last layer's activations at the end. */
#include "afd_internal.h"

/* The network's sink: the last layer's pooled column into the time sums */
static void sum_column(void *ctx, const afd_act_t *col, int32_t stride)
{
    afd_strip_t *s = (afd_strip_t *)ctx;
    int32_t c;
    for (c = 0; c < AFD_C_LAST; c++, col += stride) s->sums[c] += *col;
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
    afd_net_push(&s->net, sample, sum_column, s);
}

int afd_strip_finish(afd_strip_t *s, int32_t logits[AFD_N_CLASSES])
{
    if (s->pushed < AFD_MIN_SAMPLES) return -1;
    afd_net_finish(&s->net, sum_column, s);  /* right padding, the last tiles */
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
