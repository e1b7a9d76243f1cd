/* Continuous monitoring: raw ADC counts in, a window decision every hop. The same
   integer front end as afdetect scan (afdetect.monitor.frontend): linear-interpolation
   resampling on the exact rational grid, a centred moving-average baseline over AFD_BLOCK
   samples, a power-of-two scale per block from the standard deviation of the last
   AFD_SPAN blocks, quantisation to AFD_INPUT_BITS; then the network and, beside it, the
   atrial check. Every counter wraps or saturates, so an instance runs indefinitely in its
   own fixed memory. */
#include "afd_internal.h"

static int32_t bit_length(uint64_t x)
{
    int32_t n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

#if AFD_ATRIAL
/* ---- The atrial check (afdetect.monitor.atrial.AtrialStream), per hop-block ----
   Each sample enters the ring, then the detector. A leader's stretch is taken at once
   (the ring holds it only that long) with the block of its R peak, kept with its
   candidate, and added to that block's sums once its segment makes it a beat; a window's
   terms are its blocks' sums. Beats are final long before the network's step that holds
   them comes out (AFD_BEAT_LAG <= AFD_STEP_LAG, checked at init), and at most
   AFD_ATRIAL_AHEAD_STEPS steps after the window reported last. With RR features the
   detector is the RR windows' (rr_stream_push): one instance reports to both, and a
   window's terms are taken when its RR features are, its beats final by then. */
#if AFD_RR
static void rr_stream_push(afd_stream_t *s, int16_t q);
#endif
#define PEAK_BACK (AFD_BEAT_INTEGRATE / 2 + 2)  /* the newest sample to a leader's R peak */
#define BLOCK_MASK 0x7FFFu  /* a candidate keeps its block's low bits (int16, >= 0) */

static void atrial_leader(afd_atrial_state_t *a)
{
    int32_t b, i, k = a->q_pos, total = 0, bins[AFD_ATRIAL_BINS];
    /* the counters are the R peak's; a stretch that starts before the signal goes before
       the blocks held */
    uint32_t block = a->q_fill < AFD_ATRIAL_RING ? a->low - 1 : a->block;
    /* the stretch: from AFD_ATRIAL_START to AFD_ATRIAL_END before the R peak, the ring's
       oldest samples on */
    for (b = 0; b < AFD_ATRIAL_BINS; b++) {
        bins[b] = 0;
        for (i = 0; i < AFD_ATRIAL_BIN; i++) {
            bins[b] += a->q[k];
            if (++k == AFD_ATRIAL_RING) k = 0;
        }
        total += bins[b];
    }
    for (b = 0; b < AFD_ATRIAL_BINS; b++) {  /* |v| < 2^19: int32; floor(v / 2^SHIFT) */
        int32_t v = AFD_ATRIAL_BINS * bins[b] - total;
        a->pending[b] = (int16_t)(v >= 0 ? v >> AFD_ATRIAL_SHIFT : ~(~v >> AFD_ATRIAL_SHIFT));
    }
    a->pending[AFD_ATRIAL_BINS] = (int16_t)(block & BLOCK_MASK);
}

static void atrial_add(afd_atrial_state_t *a, const int16_t *row)
{
    afd_atrial_block_t *blk;
    int32_t b, ahead = (int32_t)(((uint32_t)row[AFD_ATRIAL_BINS] - a->low) & BLOCK_MASK);
    int64_t energy = 0;
    if (ahead >= a->held) {
        if (ahead <= (int32_t)(BLOCK_MASK / 2)) a->per_window = 0;  /* past them: never */
        return;  /* else before them: a stretch that starts before the signal */
    }
    ahead += a->base;
    blk = &a->blocks[ahead >= AFD_ATRIAL_BLOCKS ? ahead - AFD_ATRIAL_BLOCKS : ahead];
    for (b = 0; b < AFD_ATRIAL_BINS; b++) {
        blk->sums[b] += row[b];
        energy += (int32_t)row[b] * row[b];
    }
    blk->energy += energy;
    blk->count++;
}

/* The detector's report (ctx: the atrial state) */
static void atrial_beat(void *ctx, int32_t event, int32_t slot)
{
    afd_atrial_state_t *a = (afd_atrial_state_t *)ctx;
    int32_t b;
    if (event == AFD_BEAT_LEADER) {
        atrial_leader(a);
    } else if (event == AFD_BEAT_CANDIDATE) {
        for (b = 0; b <= AFD_ATRIAL_BINS; b++) a->stretch[slot][b] = a->pending[b];
    } else {
        atrial_add(a, a->stretch[slot]);
    }
}

static void atrial_push(afd_stream_t *s, int16_t q)
{
    afd_atrial_state_t *a = &s->atrial;
    a->q[a->q_pos] = q;
    if (++a->q_pos == AFD_ATRIAL_RING) a->q_pos = 0;
    if (a->q_fill < AFD_ATRIAL_RING) a->q_fill++;
#if AFD_RR
    rr_stream_push(s, q);  /* the one detector, the RR windows': its events reach both */
#else
    afd_beats_push(&a->det, q, atrial_beat, a);
#endif
    if (++a->phase < AFD_STEP_SAMPLES) return;
    a->phase = 0;
    if (++a->step < s->hop) return;
    a->step = 0;
    a->block++;
}

/* The terms of the window of blocks low .. low + per_window - 1; then block low is free */
static void atrial_window(afd_atrial_state_t *a, afd_atrial_t *out)
{
    int32_t i, b, slot, sum[AFD_ATRIAL_BINS] = {0};
    int64_t energy = 0;
    out->beats = 0;
    out->templ = out->spread = 0;
    for (i = 0, slot = a->base; i < a->per_window; i++) {
        const afd_atrial_block_t *blk = &a->blocks[slot];
        out->beats += blk->count;
        energy += blk->energy;
        for (b = 0; b < AFD_ATRIAL_BINS; b++) sum[b] += blk->sums[b];
        if (++slot == AFD_ATRIAL_BLOCKS) slot = 0;
    }
    if (out->beats >= AFD_ATRIAL_MIN_BEATS) {
        for (b = 0; b < AFD_ATRIAL_BINS; b++) out->templ += (int64_t)sum[b] * sum[b];
        out->spread = out->beats * energy;
    }
    out->organised = out->templ * 256 > AFD_ATRIAL_LIMIT * out->spread;
    afd_zero(&a->blocks[a->base], sizeof a->blocks[0]);
    if (++a->base == AFD_ATRIAL_BLOCKS) a->base = 0;
    a->low++;
}

/* The atrial check on this geometry, or 0 (see afd_stream_init) */
static void atrial_init(afd_stream_t *s)
{
    afd_atrial_state_t *a = &s->atrial;
    int32_t held = s->window / s->hop + AFD_ATRIAL_AHEAD_STEPS / s->hop + 1;
    afd_zero(a, sizeof *a);
#if !AFD_RR  /* with RR features the detector is the RR stream's (rr_stream_init) */
    afd_beats_reset(&a->det);
#endif
    a->phase = -PEAK_BACK;  /* the counters follow the R peak of the newest sample */
    a->held = held;
    a->per_window = AFD_BEAT_LAG <= AFD_STEP_LAG && s->window % s->hop == 0 &&
                    held <= AFD_ATRIAL_BLOCKS ? s->window / s->hop : 0;
}
#endif

/* A window's decision from its logits, reported */
static void stream_report(afd_stream_t *s, int32_t logits[AFD_N_CLASSES])
{
    const afd_atrial_t *checked = NULL;
    int cls = afd_argmax(logits);
#if AFD_ATRIAL
    afd_atrial_t atrial;
    if (s->atrial.per_window) {
        atrial_window(&s->atrial, &atrial);
        checked = &atrial;
        if (atrial.organised && cls == AFD_AF_CLASS) {  /* not AF: the best of the others */
            int32_t af = logits[AFD_AF_CLASS];
            logits[AFD_AF_CLASS] = INT32_MIN;
            cls = afd_argmax(logits);
            logits[AFD_AF_CLASS] = af;
        }
    }
#endif
    s->emitted++;
    s->on_window(cls, logits, checked, s->user);
}

#if AFD_RR
/* ---- RR features per window (afdetect.monitor.rr_windows.window_rr_features) ----
   The detector reports each beat once final; its R peak joins the ring unless it lies
   before the next window to report. A window's logits wait in the pending ring until
   the detector has decided every sample up to the window's end; then its features come
   from the peaks in its samples, and the peaks before the next window go. */
/* from an energy index to its R peak */
#define PEAK_BACK_RR ((uint32_t)(AFD_BEAT_INTEGRATE / 2))

static void rr_stream_beat(void *ctx, int32_t event, int32_t slot)
{
    afd_rr_stream_t *r = (afd_rr_stream_t *)ctx;
    uint32_t peak;
    int32_t k;
    if (event != AFD_BEAT_FINAL) return;
    peak = r->det.done * (uint32_t)AFD_BEAT_SEGMENT - PEAK_BACK_RR;
    peak += (uint16_t)r->det.cand_off[slot];  /* an offset in its segment, >= 0 */
    /* the ring holds every peak of the windows not yet reported (AFD_RR_PEAKS is sized
       for them); the test only keeps a broken bound from writing past it */
    if ((int32_t)(peak - r->next_start) < 0 || r->n_peaks == AFD_RR_PEAKS) return;
    k = r->first_peak + r->n_peaks;
    r->peaks[k >= AFD_RR_PEAKS ? k - AFD_RR_PEAKS : k] = peak;
    r->n_peaks++;
}

/* Report the pending windows whose beats are all final, oldest first */
static void rr_stream_report(afd_stream_t *s)
{
    afd_rr_stream_t *r = &s->rr;
    const uint32_t length = (uint32_t)s->window * AFD_STEP_SAMPLES;
    /* every R peak before this is final: the peaks of the segments given their beats */
    const uint32_t final = r->det.done * (uint32_t)AFD_BEAT_SEGMENT - PEAK_BACK_RR;
    while (r->n_pending > 0 && (int32_t)(final - (r->next_start + length)) >= 0) {
        int32_t i, c, k, *logits = r->pending[r->first_pending];
        int32_t f[AFD_RR_N_FEATURES], terms[AFD_N_CLASSES];
        int32_t in[AFD_C_LAST + AFD_RR_N_FEATURES];
        afd_rr_stats_t stats;
        afd_rr_stats_reset(&stats);
        for (i = 0, k = r->first_peak; i < r->n_peaks; i++) {
            int32_t pos = (int32_t)(r->peaks[k] - r->next_start);
            if (pos >= (int32_t)length) break;
            afd_rr_stats_beat(&stats, pos);
            if (++k == AFD_RR_PEAKS) k = 0;
        }
        afd_rr_stats_features(&stats, (int32_t)length, f);
        /* the RR columns alone: W_rr (f * steps << shift), no bias (the steps' scores
           hold it) */
        for (c = 0; c < AFD_C_LAST; c++) in[c] = 0;
        afd_rr_inputs(f, s->window, in + AFD_C_LAST);
        afd_fc_apply(in, 0, terms);
        for (c = 0; c < AFD_N_CLASSES; c++) logits[c] += terms[c];
        if (++r->first_pending == AFD_RR_PENDING) r->first_pending = 0;
        r->n_pending--;
        r->next_start += (uint32_t)s->hop * AFD_STEP_SAMPLES;
        while (r->n_peaks > 0 && (int32_t)(r->peaks[r->first_peak] - r->next_start) < 0) {
            if (++r->first_peak == AFD_RR_PEAKS) r->first_peak = 0;
            r->n_peaks--;
        }
        stream_report(s, logits);
    }
}

/* A window's logits before its RR columns: pending until its beats are final */
static void rr_stream_window(afd_stream_t *s, const int32_t logits[AFD_N_CLASSES])
{
    afd_rr_stream_t *r = &s->rr;
    int32_t c, k = r->first_pending + r->n_pending;
    /* AFD_RR_PENDING windows cover the detector's lag past the network's */
    int32_t *slot = r->pending[k >= AFD_RR_PENDING ? k - AFD_RR_PENDING : k];
    for (c = 0; c < AFD_N_CLASSES; c++) slot[c] = logits[c];
    r->n_pending++;
    rr_stream_report(s);
}

#if AFD_ATRIAL
/* The one detector's report to both users (ctx: the stream) */
static void stream_beat(void *ctx, int32_t event, int32_t slot)
{
    afd_stream_t *s = (afd_stream_t *)ctx;
    atrial_beat(&s->atrial, event, slot);
    rr_stream_beat(&s->rr, event, slot);
}
#endif

/* The detector on sample q (after the atrial ring took it), then the windows it decides */
static void rr_stream_push(afd_stream_t *s, int16_t q)
{
#if AFD_ATRIAL
    afd_beats_push(&s->rr.det, q, stream_beat, s);
#else
    afd_beats_push(&s->rr.det, q, rr_stream_beat, &s->rr);
#endif
    rr_stream_report(s);
}

static void rr_stream_init(afd_stream_t *s)
{
    afd_rr_stream_t *r = &s->rr;
    afd_zero(r, sizeof *r);
    afd_beats_reset(&r->det);
    r->det.eighths = AFD_SCAN_THRESHOLD_EIGHTHS;
}
#endif

/* The network's sink: one model step (a pooled last-layer column): its class scores; a
   window's logits every hop once the window is full */
static void stream_step(void *ctx, const afd_act_t *out, int32_t stride)
{
    afd_stream_t *s = (afd_stream_t *)ctx;
    int32_t c, t, logits[AFD_N_CLASSES];
#if AFD_RR
    /* the classifier's input grid; the RR columns 0 here, added per window */
    int32_t column[AFD_C_LAST + AFD_RR_N_FEATURES] = {0};
    for (c = 0; c < AFD_C_LAST; c++, out += stride)
        column[c] = (int32_t)*out << AFD_RR_SHIFT_SUMS;
#else
    int32_t column[AFD_C_LAST];
    for (c = 0; c < AFD_C_LAST; c++, out += stride) column[c] = *out;
#endif
    afd_fc_apply(column, 1, s->scores[s->step_pos]);  /* one step's terms and bias */
    if (++s->step_pos == s->window) s->step_pos = 0;
    if (s->step_fill < s->window) s->step_fill++;
    if (s->step_fill < s->window || --s->until_hop > 0) return;
    s->until_hop = s->hop;
    for (c = 0; c < AFD_N_CLASSES; c++) {
        int32_t acc = 0;
        for (t = 0; t < s->window; t++) acc += s->scores[t][c];
        logits[c] = acc;
    }
#if AFD_RR
    rr_stream_window(s, logits);
#else
    stream_report(s, logits);
#endif
}

static void stream_block(afd_stream_t *s)
{
    int64_t total = 0, total_sq = 0, num, den, sum = 0, sq = 0;
    int32_t i, k, e, n;
    int16_t q;
    const int32_t top = (1 << (AFD_INPUT_BITS - 1)) - 1;
    for (i = 0; i < AFD_BLOCK; i++) {
        sum += s->block[i];
        sq += (int64_t)s->block[i] * s->block[i];
    }
    s->span_sum[s->span_pos] = sum;
    s->span_sq[s->span_pos] = sq;
    if (++s->span_pos == AFD_SPAN) s->span_pos = 0;
    if (s->span_fill < AFD_SPAN) s->span_fill++;
    for (i = 0; i < s->span_fill; i++) {
        total += s->span_sum[i];
        total_sq += s->span_sq[i];
    }
    /* k = round(log2(std)) = floor((b + 1) / 2), b = floor(log2(var)), var = num / den */
    n = AFD_BLOCK * s->span_fill;
    num = (int64_t)n * total_sq - total * total;
    den = (int64_t)n * n;
    k = 0;
    if (num > 0) {
        int32_t b = bit_length((uint64_t)num) - bit_length((uint64_t)den);
        if ((b < 0 ? num << -b : num) < (b > 0 ? den << b : den)) b--;
        k = b + 1 >= 0 ? (b + 1) / 2 : -((-(b + 1) + 1) / 2);
    }
    e = AFD_INPUT_FRAC_BITS - k;
    for (i = 0; i < AFD_BLOCK; i++) {
        int64_t d = s->block[i];
        int64_t v = e >= 0 ? (d >= 0 ? d << e : -((-d) << e))
                           : afd_asr64(d + ((int64_t)1 << (-e - 1)), -e);
        q = (int16_t)(v > top ? top : (v < -top - 1 ? -top - 1 : v));
#if AFD_ATRIAL
        atrial_push(s, q);  /* and the RR windows' detector (rr_stream_push) with RR */
#elif AFD_RR
        rr_stream_push(s, q);
#endif
        afd_net_push(&s->net, q, stream_step, s);
    }
    afd_net_flush(&s->net, stream_step, s);  /* this block's steps, decided now */
    s->block_fill = 0;
}

static void stream_resampled(afd_stream_t *s, int32_t y)
{
    int32_t old, n_mid, d;
    if (s->seen == 0) {  /* the history before the first sample repeats it */
        for (old = 0; old < AFD_BLOCK; old++) s->ring[old] = (int16_t)y;
        s->ring_sum = (int64_t)AFD_BLOCK * y;
    }
    old = s->ring[s->ring_pos];
    s->ring[s->ring_pos] = (int16_t)y;
    s->ring_sum += y - old;
    if (++s->ring_pos == AFD_BLOCK) s->ring_pos = 0;
    if (s->seen < AFD_BLOCK) s->seen++;
    if (s->seen < AFD_BLOCK / 2) return;  /* no centred window complete yet */
    /* the window's centre sample n = newest - AFD_BLOCK / 2 + 1 */
    n_mid = s->ring_pos - AFD_BLOCK / 2;
    if (n_mid < 0) n_mid += AFD_BLOCK;
    d = s->ring[n_mid] - (int32_t)afd_asr64(s->ring_sum, AFD_BLOCK_LOG2);
    s->block[s->block_fill++] = (int16_t)(d > 32767 ? 32767 : (d < -32768 ? -32768 : d));
    if (s->block_fill == AFD_BLOCK) stream_block(s);
}

static int32_t gcd32(int32_t a, int32_t b)  /* a, b > 0 */
{
    while (b) {
        int32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int afd_stream_init(afd_stream_t *s, int32_t fs_in_hz, int32_t window_steps,
                    int32_t hop_steps, afd_window_fn on_window, void *user)
{
    int32_t g, i;
    if (fs_in_hz < AFD_MIN_FS_IN_HZ || fs_in_hz > AFD_MAX_FS_IN_HZ || window_steps < 1 ||
        window_steps > AFD_MAX_WINDOW_STEPS || hop_steps < 1 || !on_window) return -1;
    afd_net_reset(&s->net);
    g = gcd32(fs_in_hz, AFD_SAMPLING_RATE_HZ);
    s->p = fs_in_hz / g;
    s->q = AFD_SAMPLING_RATE_HZ / g;
    s->ahead = 2;  /* output 0 needs raw samples 0 and 1 */
    s->r = 0;
    s->prev = s->cur = 0;
    s->ring_pos = 0;
    s->seen = 0;
    s->ring_sum = 0;
    s->block_fill = 0;
    s->span_pos = 0;
    s->span_fill = 0;
    for (i = 0; i < AFD_SPAN; i++) s->span_sum[i] = s->span_sq[i] = 0;
    s->step_pos = 0;
    s->step_fill = 0;
    s->window = window_steps;
    s->hop = hop_steps;
    s->until_hop = 1;
    s->emitted = 0;
    s->on_window = on_window;
    s->user = user;
#if AFD_ATRIAL
    atrial_init(s);
#endif
#if AFD_RR
    rr_stream_init(s);
#endif
    return 0;
}

int afd_stream_push(afd_stream_t *s, int32_t adc)
{
    s->emitted = 0;
    adc = adc > 32767 ? 32767 : (adc < -32768 ? -32768 : adc);
    if (s->p == s->q) {
        stream_resampled(s, adc);
    } else {
        s->prev = s->cur;
        s->cur = adc;
        s->ahead--;
        while (s->ahead <= 0) {
            /* output n: x[i] = prev, x[i + 1] = cur with i + 1 = the newest raw index */
            int64_t y = afd_floor_div((int64_t)s->prev * (s->q - s->r) + (int64_t)s->cur * s->r
                              + s->q / 2, s->q);
            stream_resampled(s, (int32_t)y);
            s->r += s->p;
            while (s->r >= s->q) {
                s->r -= s->q;
                s->ahead++;
            }
        }
    }
    return s->emitted;
}
