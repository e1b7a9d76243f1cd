/* Continuous monitoring: raw ADC counts in, a window decision every hop. The same
   integer front end as afdetect scan (afdetect.monitor.frontend): linear-interpolation
   resampling on the exact rational grid, a centred moving-average baseline over AFD_BLOCK
   samples, a power-of-two scale per block from the standard deviation of the last
   AFD_SPAN blocks, quantisation to AFD_INPUT_BITS. Every counter wraps or saturates, so
   an instance runs indefinitely in its own fixed memory. */
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

/* One model step: its class scores; a window decision every hop once the window is full */
/* The network's sink: one model step (a pooled last-layer column) */
static void stream_step(void *ctx, const afd_act_t *out, int32_t stride)
{
    afd_stream_t *s = (afd_stream_t *)ctx;
    int32_t c, t, logits[AFD_N_CLASSES], column[AFD_C_LAST];
    for (c = 0; c < AFD_C_LAST; c++, out += stride) column[c] = *out;
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
    s->emitted++;
    s->on_window(afd_argmax(logits), logits, s->user);
}

static void stream_block(afd_stream_t *s)
{
    int64_t total = 0, total_sq = 0, num, den, sum = 0, sq = 0;
    int32_t i, k, e, n;
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
        afd_net_push(&s->net, (int16_t)(v > top ? top : (v < -top - 1 ? -top - 1 : v)),
                     stream_step, s);
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
    if (AFD_RR) return -1;  /* windows of RR features: not yet */
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
