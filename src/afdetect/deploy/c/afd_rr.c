/* RR features (afdetect.model.rr): an R-peak detector on the quantised input and six
   rhythm statistics, the classifier's last inputs. Per sample: adds, compares and shifts
   in about 1 KB of state; divisions only once per recording, in afd_rr_features. */
#include "afd_internal.h"

#if AFD_RR
void afd_rr_reset(afd_rr_t *s)
{
    int32_t i;
    for (i = 0; i < 5; i++) s->q[i] = 0;
    for (i = 0; i < AFD_RR_INTEGRATE; i++) s->abs_d[i] = 0;
    for (i = 0; i < AFD_RR_WINDOW; i++) s->e[i] = -1;
    s->n_samples = s->d_pos = s->e_sum = s->e_pos = s->m = 0;
    s->seg_fill = 0;
    s->seg_max = -1;
    s->n_maxima = s->maxima_pos = 0;
    s->threshold[0] = s->threshold[1] = 0;
    s->closed = s->done = 0;
    s->decided = s->n_cand = 0;
    s->beats = s->last_beat = s->n_rr = s->total = s->r_min = s->r_max = s->r_prev = 0;
    s->jumps = s->outliers = 0;
    s->sum_abs_diff = 0;
    s->n_recent = s->recent_pos = 0;
}

#define RR_SORT_MAX (AFD_RR_MEDIAN_OF > AFD_RR_HISTORY ? AFD_RR_MEDIAN_OF : AFD_RR_HISTORY)

/* The lower median of values[0..n-1], 1 <= n <= RR_SORT_MAX, by insertion sort */
static int32_t lower_median(const int32_t *values, int32_t n)
{
    int32_t sorted[RR_SORT_MAX] = {0}, i;
    for (i = 0; i < n; i++) {
        int32_t j, v = values[i];
        for (j = i; j > 0 && sorted[j - 1] > v; j--) sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }
    return sorted[(n - 1) >> 1];
}

static void rr_interval(afd_rr_t *s, int32_t r)
{
    s->n_rr++;
    s->total += r;
    if (s->n_rr == 1 || r < s->r_min) s->r_min = r;
    if (s->n_rr == 1 || r > s->r_max) s->r_max = r;
    if (s->n_rr >= 2) {  /* then n_recent >= 1 */
        int32_t diff = r > s->r_prev ? r - s->r_prev : s->r_prev - r;
        int32_t median = lower_median(s->recent, s->n_recent);
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

static void rr_segment_done(afd_rr_t *s)
{
    /* the segment's beats: its candidates above half the lower median of the maxima of
       the last AFD_RR_HISTORY segments (itself included) */
    int32_t i, threshold = s->threshold[s->done & 1];
    for (i = 0; i < s->n_cand; i++) {
        if (s->cand_e[i] <= threshold) continue;
        if (s->beats > 0) rr_interval(s, s->cand_pos[i] - s->last_beat);
        s->last_beat = s->cand_pos[i];
        s->beats++;
    }
    s->n_cand = 0;
    s->decided = 0;
    s->done++;
}

static void rr_close_segment(afd_rr_t *s)
{
    s->maxima[s->maxima_pos] = s->seg_max;
    if (++s->maxima_pos == AFD_RR_HISTORY) s->maxima_pos = 0;
    if (s->n_maxima < AFD_RR_HISTORY) s->n_maxima++;
    s->threshold[s->closed & 1] = lower_median(s->maxima, s->n_maxima) >> 1;
    s->closed++;
    s->seg_fill = 0;
    s->seg_max = -1;
}

static void rr_decide(afd_rr_t *s)
{
    /* e[m - r] against its r neighbours each way; the ring's newest slot is e_pos */
    int32_t c = s->e_pos - AFD_RR_REFRACTORY, i, k, v, win = 1;
    if (c < 0) c += AFD_RR_WINDOW;
    v = s->e[c];
    for (i = 1, k = c; i <= AFD_RR_REFRACTORY && win; i++) {
        if (--k < 0) k = AFD_RR_WINDOW - 1;
        if (s->e[k] >= v) win = 0;
    }
    for (i = 1, k = c; i <= AFD_RR_REFRACTORY && win; i++) {
        if (++k == AFD_RR_WINDOW) k = 0;
        if (s->e[k] > v) win = 0;
    }
    if (win) {
        s->cand_pos[s->n_cand] = s->m - 1 - AFD_RR_REFRACTORY;
        s->cand_e[s->n_cand] = v;
        s->n_cand++;
    }
    if (++s->decided == AFD_RR_SEGMENT) rr_segment_done(s);
}

static void rr_energy(afd_rr_t *s, int32_t e, int32_t real)
{
    /* e: the next energy (real), or -1 past the end of the recording */
    if (++s->e_pos == AFD_RR_WINDOW) s->e_pos = 0;
    s->e[s->e_pos] = e;
    s->m++;
    if (real) {
        if (e > s->seg_max) s->seg_max = e;
        if (++s->seg_fill == AFD_RR_SEGMENT) rr_close_segment(s);
    }
    if (s->m > AFD_RR_REFRACTORY) rr_decide(s);
}

static void rr_slope(afd_rr_t *s, int16_t sample)
{
    int32_t d, i;
    for (i = 0; i < 4; i++) s->q[i] = s->q[i + 1];
    s->q[4] = sample;
    /* d[m] = q[m+2] + q[m+1] - q[m-1] - q[m-2] for the sample q[m+2] just taken */
    d = (int32_t)s->q[4] + s->q[3] - s->q[1] - s->q[0];
    if (d < 0) d = -d;
    s->e_sum += d - s->abs_d[s->d_pos];
    s->abs_d[s->d_pos] = d;
    if (++s->d_pos == AFD_RR_INTEGRATE) s->d_pos = 0;
    rr_energy(s, s->e_sum, 1);
}

void afd_rr_push(afd_rr_t *s, int16_t sample)
{
    if (s->n_samples++ < 2) {  /* d[-2], d[-1] do not exist */
        int32_t i;
        for (i = 0; i < 4; i++) s->q[i] = s->q[i + 1];
        s->q[4] = sample;
        return;
    }
    rr_slope(s, sample);
}

static int32_t rr_clamp(int64_t v)
{
    return (int32_t)(v < 0 ? 0 : (v > AFD_RR_FEATURE_MAX ? AFD_RR_FEATURE_MAX : v));
}

void afd_rr_features(afd_rr_t *s, int32_t f[AFD_RR_N_FEATURES])
{
    int32_t i;
    int64_t n;
    rr_slope(s, 0);  /* the last two energies: the signal is zero past its end */
    rr_slope(s, 0);
    if (s->seg_fill > 0) rr_close_segment(s);  /* the last, shorter segment */
    for (i = 0; i < AFD_RR_REFRACTORY; i++) rr_energy(s, -1, 0);
    if (s->decided > 0) rr_segment_done(s);
    n = s->n_rr;
    for (i = 0; i < AFD_RR_N_FEATURES; i++) f[i] = 0;
    f[0] = rr_clamp((int64_t)10 * AFD_RR_FS * s->beats /
                    (s->n_samples > 0 ? s->n_samples : 1));
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

void afd_fc_with_rr(const int32_t *sums, int32_t steps, afd_rr_t *rr,
                    int32_t logits[AFD_N_CLASSES])
{
    /* the classifier's input: the activation sums and the RR features (times the
       steps), shifted onto its input grid */
    int32_t in[AFD_C_LAST + AFD_RR_N_FEATURES], f[AFD_RR_N_FEATURES], c;
    afd_rr_features(rr, f);
    for (c = 0; c < AFD_C_LAST; c++) in[c] = sums[c] << AFD_RR_SHIFT_SUMS;
    for (c = 0; c < AFD_RR_N_FEATURES; c++)
        in[AFD_C_LAST + c] = afd_times_by_shifts(f[c], steps) << AFD_RR_SHIFT_FEATURES;
    afd_fc_apply(in, steps, logits);
}
#endif
