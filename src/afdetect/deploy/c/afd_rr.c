/* RR features (afdetect.model.rr): six rhythm statistics of the beats the R-peak
   detector (afd_beats.c) finds in the quantised input, the classifier's last inputs: of a
   strip here, of each monitoring window in afd_stream.c, through the same statistics.
   Per beat: adds, compares and shifts in a few hundred bytes of state; divisions only
   once per strip or window, in afd_rr_stats_features. */
#include "afd_internal.h"

#if AFD_RR
void afd_rr_stats_reset(afd_rr_stats_t *s)
{
    afd_zero(s, sizeof *s);
}

static void rr_interval(afd_rr_stats_t *s, int32_t r)
{
    s->n_rr++;
    s->total += r;
    if (s->n_rr == 1 || r < s->r_min) s->r_min = r;
    if (s->n_rr == 1 || r > s->r_max) s->r_max = r;
    if (s->n_rr >= 2) {  /* then n_recent >= 1 */
        int32_t diff = r > s->r_prev ? r - s->r_prev : s->r_prev - r;
        int32_t median = afd_lower_median(s->recent, s->n_recent);
        int32_t dev = r > median ? r - median : median - r;
        s->sum_abs_diff += diff;
        if ((diff << 3) > s->r_prev) s->jumps++;
        if ((dev << 3) > median) s->outliers++;
    }
    s->recent[s->recent_pos] = r;
    if (++s->recent_pos == AFD_RR_MEDIAN_OF) s->recent_pos = 0;
    if (s->n_recent < AFD_RR_MEDIAN_OF) s->n_recent++;
    s->r_prev = r;
}

/* Each beat, in order, extends the intervals */
void afd_rr_stats_beat(afd_rr_stats_t *s, int32_t pos)
{
    if (s->beats > 0) rr_interval(s, pos - s->last_beat);
    s->last_beat = pos;
    s->beats++;
}

static int32_t rr_clamp(int64_t v)
{
    return (int32_t)(v < 0 ? 0 : (v > AFD_RR_FEATURE_MAX ? AFD_RR_FEATURE_MAX : v));
}

void afd_rr_stats_features(const afd_rr_stats_t *s, int32_t n_samples,
                           int32_t f[AFD_RR_N_FEATURES])
{
    int32_t i;
    int64_t n = s->n_rr;
    for (i = 0; i < AFD_RR_N_FEATURES; i++) f[i] = 0;
    f[0] = rr_clamp((int64_t)10 * AFD_RR_FS * s->beats / (n_samples > 0 ? n_samples : 1));
    if (n >= 1) {
        f[1] = rr_clamp(s->total / (4 * n));
        f[4] = rr_clamp(64 * (int64_t)(s->r_max - s->r_min) * n / s->total);
    }
    if (n >= 2) {
        f[2] = rr_clamp(64 * s->sum_abs_diff * n / ((n - 1) * s->total));
        f[3] = rr_clamp(64 * (int64_t)s->jumps / (n - 1));
        f[5] = rr_clamp(64 * (int64_t)s->outliers / (n - 1));
    }
}

void afd_rr_inputs(const int32_t f[AFD_RR_N_FEATURES], int32_t steps,
                   int32_t in[AFD_RR_N_FEATURES])
{
    int32_t c;
    for (c = 0; c < AFD_RR_N_FEATURES; c++)
        in[c] = afd_times_by_shifts(f[c], steps) << AFD_RR_SHIFT_FEATURES;
}

void afd_rr_reset(afd_rr_t *s)
{
    afd_beats_reset(&s->det);
    afd_rr_stats_reset(&s->stats);
}

/* The detector's report: the beats, in order */
static void rr_beat(void *ctx, int32_t event, int32_t slot)
{
    afd_rr_t *s = (afd_rr_t *)ctx;
    if (event != AFD_BEAT_FINAL) return;
    /* a strip is at most AFD_MAX_SAMPLES long: done * AFD_BEAT_SEGMENT fits */
    afd_rr_stats_beat(&s->stats, (int32_t)s->det.done * AFD_BEAT_SEGMENT +
                                     s->det.cand_off[slot]);
}

void afd_rr_push(afd_rr_t *s, int16_t sample)
{
    afd_beats_push(&s->det, sample, rr_beat, s);
}

void afd_rr_features(afd_rr_t *s, int32_t f[AFD_RR_N_FEATURES])
{
    afd_beats_finish(&s->det, rr_beat, s);
    afd_rr_stats_features(&s->stats, s->det.n_samples, f);
}

void afd_fc_with_rr(const int32_t *sums, int32_t steps, afd_rr_t *rr,
                    int32_t logits[AFD_N_CLASSES])
{
    /* the classifier's input: the activation sums and the RR features (times the
       steps), shifted onto its input grid */
    int32_t in[AFD_C_LAST + AFD_RR_N_FEATURES], f[AFD_RR_N_FEATURES], c;
    afd_rr_features(rr, f);
    for (c = 0; c < AFD_C_LAST; c++) in[c] = sums[c] << AFD_RR_SHIFT_SUMS;
    afd_rr_inputs(f, steps, in + AFD_C_LAST);
    afd_fc_apply(in, steps, logits);
}
#endif
