/* The integer R-peak detector (afdetect.model.rr.detect_beats): shared by the strips' RR
   features (threshold 4/8) and the continuous mode's RR features and atrial check
   (afdetect scan's threshold, 3/8). Per sample: adds and compares, in a few hundred
   bytes of state.

   The local-maximum test keeps the "leader", the newest energy above every one within
   the refractory period r before it, while the r after it arrive: a larger one within
   them disqualifies it and, being above everything before it, leads next. While a leader
   stands, a new energy beats the r before it exactly when it beats the leader; without
   one the test walks back over the energies, rebuilt from the |slope| ring. */
#include "afd_internal.h"

#if AFD_RR || AFD_ATRIAL

void afd_beats_reset(afd_beats_t *d)
{
    afd_zero(d, sizeof *d);
    d->leader_age = -1;
    d->seg_max = -1;
#if AFD_RR
    d->eighths = AFD_STRIP_THRESHOLD_EIGHTHS;
#endif
}

#if AFD_RR && AFD_RR_MEDIAN_OF > AFD_BEAT_HISTORY
#define MEDIAN_MAX AFD_RR_MEDIAN_OF
#else
#define MEDIAN_MAX AFD_BEAT_HISTORY
#endif

int32_t afd_lower_median(const int32_t *values, int32_t n)
{
    int32_t sorted[MEDIAN_MAX] = {0}, i;
    for (i = 0; i < n; i++) {
        int32_t j, v = values[i];
        for (j = i; j > 0 && sorted[j - 1] > v; j--) sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }
    return sorted[(n - 1) >> 1];
}

static void segment_done(afd_beats_t *d, afd_beat_fn fn, void *ctx)
{
    /* the segment's beats: its candidates above its threshold; the slots stay valid
       until the next segment's first decision */
    int32_t i, threshold = d->threshold[d->done & 1];
    for (i = 0; i < d->n_cand; i++)
        if (d->cand_e[i] > threshold) fn(ctx, AFD_BEAT_FINAL, i);
    d->decided = 0;
    d->done++;
}

static void close_segment(afd_beats_t *d)
{
    d->maxima[d->maxima_pos] = d->seg_max;
    if (++d->maxima_pos == AFD_BEAT_HISTORY) d->maxima_pos = 0;
    if (d->n_maxima < AFD_BEAT_HISTORY) d->n_maxima++;
    /* the median is >= 0 (a segment's maximum is a real energy); no multiplier */
    d->threshold[d->closed & 1] =
        (afd_lower_median(d->maxima, d->n_maxima) * AFD_BEAT_EIGHTHS(d)) >> 3;
    d->closed++;
    d->seg_fill = 0;
    d->seg_max = -1;
}

/* 1 when e, the newest energy, beats every energy within r before it (none before the
   start: -1 there); e[k - 1] = e[k] - |d[k]| + |d[k - integrate]| */
static int32_t beats_the_ones_before(const afd_beats_t *d, int32_t e)
{
    int32_t t, k = d->d_pos, v = e, before = d->n_e - 1;
    for (t = 0; t < AFD_BEAT_REFRACTORY && t < before; t++) {
        int32_t back = k - AFD_BEAT_INTEGRATE;
        if (back < 0) back += AFD_BEAT_SLOPES;
        v += d->abs_d[back] - d->abs_d[k];
        if (v >= e) return 0;
        if (--k < 0) k = AFD_BEAT_SLOPES - 1;
    }
    return 1;
}

static void next_energy(afd_beats_t *d, int32_t e, int32_t real, afd_beat_fn fn, void *ctx)
{
    /* e: the next energy (real), or -1 past the end of the recording */
    int32_t lead;
    if (d->n_e < INT32_MAX) d->n_e++;
    if (real) {
        if (e > d->seg_max) d->seg_max = e;
        if (++d->seg_fill == AFD_BEAT_SEGMENT) close_segment(d);
    }
    if (d->leader_age >= 0) {
        lead = e > d->leader_e;  /* above the leader: above all the ones before it too */
        if (!lead) d->leader_age++;
    } else {
        lead = real && beats_the_ones_before(d, e);
    }
    if (lead) {
        d->leader_e = e;
        d->leader_age = 0;
        fn(ctx, AFD_BEAT_LEADER, 0);
    }
    if (d->n_e <= AFD_BEAT_REFRACTORY) return;
    /* the position r back is decided: a candidate when it leads still */
    if (d->decided == 0) d->n_cand = 0;
    if (d->leader_age == AFD_BEAT_REFRACTORY) {
        d->cand_off[d->n_cand] = (int16_t)d->decided;
        d->cand_e[d->n_cand] = d->leader_e;
        d->leader_age = -1;
        fn(ctx, AFD_BEAT_CANDIDATE, d->n_cand);
        d->n_cand++;
    }
    if (++d->decided == AFD_BEAT_SEGMENT) segment_done(d, fn, ctx);
}

/* The next sample into the last five, newest last */
static void take(afd_beats_t *d, int16_t sample)
{
    int32_t i;
    for (i = 0; i < 4; i++) d->q[i] = d->q[i + 1];
    d->q[4] = sample;
}

static void next_slope(afd_beats_t *d, afd_beat_fn fn, void *ctx)
{
    int32_t a, old;
    /* d[m] = q[m+2] + q[m+1] - q[m-1] - q[m-2] for the sample q[m+2] just taken; |d| fits
       int16 for inputs of up to 14 bits */
    a = (int32_t)d->q[4] + d->q[3] - d->q[1] - d->q[0];
    if (a < 0) a = -a;
    if (++d->d_pos == AFD_BEAT_SLOPES) d->d_pos = 0;
    old = d->d_pos - AFD_BEAT_INTEGRATE;
    if (old < 0) old += AFD_BEAT_SLOPES;
    d->abs_d[d->d_pos] = (int16_t)a;
    d->e_sum += a - d->abs_d[old];
    next_energy(d, d->e_sum, 1, fn, ctx);
}

void afd_beats_push(afd_beats_t *d, int16_t sample, afd_beat_fn fn, void *ctx)
{
    take(d, sample);
    if (d->n_samples < INT32_MAX) d->n_samples++;
    if (d->n_samples > 2) next_slope(d, fn, ctx);  /* d[-2], d[-1] do not exist */
}

#if AFD_RR
void afd_beats_finish(afd_beats_t *d, afd_beat_fn fn, void *ctx)
{
    int32_t i;
    for (i = 0; i < 2; i++) {  /* the last two energies: the signal is zero past its end */
        take(d, 0);
        next_slope(d, fn, ctx);
    }
    if (d->seg_fill > 0) close_segment(d);  /* the last, shorter segment */
    for (i = 0; i < AFD_BEAT_REFRACTORY; i++) next_energy(d, -1, 0, fn, ctx);
    if (d->decided > 0) segment_done(d, fn, ctx);
}
#endif
#endif
