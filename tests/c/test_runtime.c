/* Unit tests of the afdetect C runtime, on the hand-made model of test_tables.c: the
   integer helpers at their edges, the streaming network against a plain layer-by-layer
   reference, instances side by side, the batch mode, the continuous mode's argument
   checks, the R-peak detector against a whole-signal reference and the strip
   preprocessing. Prints one line per failed check and a summary;
   exits 1 on any failure. */
#include <stdio.h>
#include <string.h>

#include "test_model.h"

static int checks, failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            printf("%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
        }                                                                            \
    } while (0)

#define N_MAX 2000

/* ---- the reference: whole layers, zero padding, as afdetect's NumPy engine ---- */

static int32_t ref_term(const test_weight *w, int32_t x)
{
    int32_t v = x * (1 << w->shift);
    return w->neg ? -v : v;
}

static int32_t ref_requantise(int32_t acc, int32_t shift)
{
    int32_t v = acc <= 0 ? 0 : (acc + (1 << (shift - 1))) / (1 << shift);
    return v > AFD_ACT_TOP ? AFD_ACT_TOP : v;
}

/* conv (stride, pad), requantise, max-pool pairs: in (c_in, len) to out (c_out, len') */
static int32_t ref_layer(int32_t c_in, int32_t c_out, int32_t k, int32_t stride, int32_t pad,
                         int32_t shift, const test_weight *w, const int32_t *bias,
                         const int32_t *in, int32_t len, int32_t *out)
{
    static int32_t conv[4][N_MAX];
    int32_t n_conv = (len + 2 * pad - k) / stride + 1, o, c, t, j, x;
    for (o = 0; o < c_out; o++)
        for (t = 0; t < n_conv; t++) {
            int32_t acc = bias[o];
            for (c = 0; c < c_in; c++)
                for (j = 0; j < k; j++) {
                    const test_weight *wt = &w[(o * c_in + c) * k + j];
                    x = t * stride + j - pad;
                    if (wt->keep && x >= 0 && x < len) acc += ref_term(wt, in[c * len + x]);
                }
            conv[o][t] = ref_requantise(acc, shift);
        }
    for (o = 0; o < c_out; o++)
        for (t = 0; t < n_conv / 2; t++) {
            int32_t a = conv[o][2 * t], b = conv[o][2 * t + 1];
            out[o * (n_conv / 2) + t] = a > b ? a : b;
        }
    return n_conv / 2;
}

static int ref_classify(const int16_t *x, int32_t n, int32_t logits[AFD_N_CLASSES])
{
    static int32_t a[N_MAX], b[4 * N_MAX];
    int32_t len, i, c, o, sums[4] = {0, 0, 0, 0};
    for (i = 0; i < n; i++) a[i] = x[i];
    len = ref_layer(1, 3, TEST_K0, 2, 7, TEST_SHIFT0, &test_w.w0[0][0][0], test_w.b0, a, n, b);
    len = ref_layer(3, 4, TEST_K1, 1, 4, TEST_SHIFT1, &test_w.w1[0][0][0], test_w.b1, b, len, a);
    for (c = 0; c < 4; c++)
        for (i = 0; i < len; i++) sums[c] += a[c * len + i];
    for (o = 0; o < AFD_N_CLASSES; o++) {
        logits[o] = test_w.bf[o] * len;
        for (c = 0; c < 4; c++)
            if (test_w.wf[o][c].keep) logits[o] += ref_term(&test_w.wf[o][c], sums[c]);
    }
    return afd_argmax(logits);
}

/* ---- tests ---- */

static void test_helpers(void)
{
    CHECK(afd_shifted(-3, 2) == -12 && afd_shifted(5, 3) == 40 && afd_shifted(0, 7) == 0);
    CHECK(afd_times_by_shifts(-7, 13) == -91 && afd_times_by_shifts(9, 0) == 0);
    CHECK(afd_times_by_shifts(INT32_MAX / 3, 3) == INT32_MAX / 3 * 3);
    CHECK(afd_requantise(0, 2) == 0 && afd_requantise(-100, 2) == 0);  /* ReLU */
    CHECK(afd_requantise(6, 2) == 2 && afd_requantise(5, 2) == 1);     /* half rounds up */
    CHECK(afd_requantise(3, -2) == 12 && afd_requantise(1 << 20, 1) == AFD_ACT_TOP);
    CHECK(afd_floor_div(-7, 2) == -4 && afd_floor_div(7, 2) == 3 && afd_floor_div(-8, 2) == -4);
    CHECK(afd_asr64(-5, 1) == -3 && afd_asr64(5, 1) == 2 && afd_asr64(INT64_MIN, 62) == -2);
}

static void fill_signal(int16_t *x, int32_t n, int32_t amplitude)
{
    int32_t i;
    for (i = 0; i < n; i++)
        x[i] = (int16_t)(test_random(-amplitude, amplitude) + ((i / 37) % 2 ? 300 : -300));
}

static void test_strip_equals_reference(void)
{
    static int16_t x[N_MAX];
    static const int32_t lengths[] = {64, 65, 66, 67, 100, 333, 1000, N_MAX};
    afd_strip_t s;
    int32_t expected[AFD_N_CLASSES], logits[AFD_N_CLASSES];
    unsigned i;
    for (i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        int32_t n = lengths[i];
        int cls;
        fill_signal(x, n, 1500);
        cls = afd_classify(&s, x, n, logits);
        CHECK(cls == ref_classify(x, n, expected));
        CHECK(memcmp(logits, expected, sizeof logits) == 0);
    }
}

static void test_short_strip_is_refused(void)
{
    static int16_t x[AFD_MIN_SAMPLES];
    afd_strip_t s;
    int32_t logits[AFD_N_CLASSES] = {7, 7, 7, 7};
    fill_signal(x, AFD_MIN_SAMPLES, 100);
    CHECK(afd_classify(&s, x, AFD_MIN_SAMPLES - 1, logits) == -1);
    CHECK(logits[0] == 7 && logits[3] == 7);  /* untouched */
    CHECK(afd_classify(&s, x, AFD_MIN_SAMPLES, logits) >= 0);
}

static void test_strips_side_by_side(void)
{
    static int16_t x[N_MAX], y[N_MAX];
    afd_strip_t a, b;
    int32_t la[AFD_N_CLASSES], lb[AFD_N_CLASSES], ea[AFD_N_CLASSES], eb[AFD_N_CLASSES];
    int32_t i;
    fill_signal(x, N_MAX, 1500);
    fill_signal(y, N_MAX / 2, 300);
    afd_strip_init(&a);
    afd_strip_init(&b);
    for (i = 0; i < N_MAX; i++) {  /* interleaved; b ends half way */
        afd_strip_push(&a, x[i]);
        if (i < N_MAX / 2) afd_strip_push(&b, y[i]);
    }
    CHECK(afd_strip_finish(&b, lb) == ref_classify(y, N_MAX / 2, eb));
    CHECK(afd_strip_finish(&a, la) == ref_classify(x, N_MAX, ea));
    CHECK(memcmp(la, ea, sizeof la) == 0 && memcmp(lb, eb, sizeof lb) == 0);
}

#if AFD_HAS_BATCH
static void test_batch_equals_strip(void)
{
    static int16_t x[N_MAX];
    static int32_t work[8 * N_MAX];
    afd_strip_t s;
    int32_t logits[AFD_N_CLASSES], batch[AFD_N_CLASSES];
    fill_signal(x, N_MAX, 1500);
    CHECK(afd_batch_work_bytes(N_MAX) <= sizeof work);
    CHECK(afd_classify_batch(x, N_MAX, batch, work) == afd_classify(&s, x, N_MAX, logits));
    CHECK(memcmp(logits, batch, sizeof logits) == 0);
    CHECK(afd_classify_batch(x, AFD_MIN_SAMPLES - 1, batch, work) == -1);
}
#endif

/* the window decisions an instance reported */
typedef struct {
    int32_t n, checked;
    int32_t logits[400][AFD_N_CLASSES];
    int cls[400];
} windows_t;

static void on_window(int cls, const int32_t logits[AFD_N_CLASSES], const afd_atrial_t *atrial,
                      void *user)
{
    windows_t *w = (windows_t *)user;
    if (w->n < 400) {
        memcpy(w->logits[w->n], logits, sizeof w->logits[0]);
        w->cls[w->n] = cls;
    }
    w->n++;
    if (atrial) w->checked++;
}

static int32_t raw_count(int32_t i, int32_t channel)
{
    return ((i / (50 + channel)) % 2 ? 800 : -800) + (i * 7919 + channel * 31) % 201 - 100;
}

static void test_streams_side_by_side(void)
{
    static windows_t apart[2], together[2];
    static afd_stream_t s[2];
    static const int32_t rates[2] = {250, 360};
    int32_t i, c, emitted = 0;
    memset(apart, 0, sizeof apart);
    memset(together, 0, sizeof together);
    for (c = 0; c < 2; c++) {  /* each channel alone */
        CHECK(afd_stream_init(&s[c], rates[c], 8, 2, on_window, &apart[c]) == 0);
        for (i = 0; i < 10 * rates[c]; i++) afd_stream_push(&s[c], raw_count(i, c));
    }
    for (c = 0; c < 2; c++)
        CHECK(afd_stream_init(&s[c], rates[c], 8, 2, on_window, &together[c]) == 0);
    for (i = 0; i < 10 * rates[1]; i++) {  /* both, interleaved at their own rates */
        if (i < 10 * rates[0]) emitted += afd_stream_push(&s[0], raw_count(i, 0));
        emitted += afd_stream_push(&s[1], raw_count(i, 1));
    }
    CHECK(apart[0].n > 10 && apart[1].n > 10 && apart[0].n <= 400 && apart[1].n <= 400);
    /* this net answers before a window's beats are final: no atrial check, even built in */
    CHECK(apart[0].checked == 0 && apart[1].checked == 0);
    CHECK(emitted == together[0].n + together[1].n);
    for (c = 0; c < 2; c++) {
        CHECK(together[c].n == apart[c].n);
        CHECK(memcmp(together[c].logits, apart[c].logits, sizeof apart[c].logits) == 0);
        CHECK(memcmp(together[c].cls, apart[c].cls, sizeof apart[c].cls) == 0);
    }
}

static void test_stream_init_checks_its_arguments(void)
{
    static afd_stream_t s, before;
    windows_t w;
    memset(&s, 0x5A, sizeof s);
    before = s;
    CHECK(afd_stream_init(&s, AFD_MIN_FS_IN_HZ - 1, 8, 2, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, AFD_MAX_FS_IN_HZ + 1, 8, 2, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, INT32_MIN, 8, 2, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, 300, 0, 2, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, 300, AFD_MAX_WINDOW_STEPS + 1, 2, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, 300, 8, 0, on_window, &w) == -1);
    CHECK(afd_stream_init(&s, 300, 8, 2, NULL, &w) == -1);
    CHECK(memcmp(&s, &before, sizeof s) == 0);  /* unchanged on -1 */
    CHECK(afd_stream_init(&s, AFD_MIN_FS_IN_HZ, AFD_MAX_WINDOW_STEPS, 1, on_window, &w) == 0);
    CHECK(afd_stream_init(&s, AFD_MAX_FS_IN_HZ, 1, INT32_MAX, on_window, &w) == 0);
}

static void test_stream_hop(void)
{
    /* hop 1 reports every step once the window is full; hop 3 every third of those */
    static afd_stream_t s;
    static windows_t one, three;
    int32_t i, t;
    memset(&one, 0, sizeof one);
    memset(&three, 0, sizeof three);
    CHECK(afd_stream_init(&s, 300, 4, 1, on_window, &one) == 0);
    for (i = 0; i < 10 * 300; i++) afd_stream_push(&s, raw_count(i, 0));
    CHECK(afd_stream_init(&s, 300, 4, 3, on_window, &three) == 0);
    for (i = 0; i < 10 * 300; i++) afd_stream_push(&s, raw_count(i, 0));
    CHECK(one.n > 30 && three.n == (one.n + 2) / 3);
    for (t = 0; t < three.n; t++)
        CHECK(memcmp(three.logits[t], one.logits[3 * t], sizeof one.logits[0]) == 0);
}

#if AFD_ATRIAL
/* ---- the R-peak detector against a whole-signal reference (afdetect.model.rr) ---- */

static int32_t ref_q(const int16_t *q, int32_t n, int32_t i)
{
    return i >= 0 && i < n ? q[i] : 0;
}

/* the beats (energy indices) of q[0..n-1], n >= 2, before position `before` */
static int32_t ref_beats(const int16_t *q, int32_t n, int32_t before, int32_t *beats)
{
    static int32_t d[N_MAX], e[N_MAX], maxima[N_MAX / AFD_BEAT_SEGMENT + 1];
    int32_t m, k, s, found = 0;
    for (m = 0; m < n; m++) {
        d[m] = ref_q(q, n, m + 2) + ref_q(q, n, m + 1) - ref_q(q, n, m - 1) - ref_q(q, n, m - 2);
        if (d[m] < 0) d[m] = -d[m];
        for (e[m] = 0, k = m - AFD_BEAT_INTEGRATE + 1; k <= m; k++) e[m] += k >= 0 ? d[k] : 0;
    }
    for (s = 0; s * AFD_BEAT_SEGMENT < n; s++)
        for (maxima[s] = -1, m = s * AFD_BEAT_SEGMENT; m < n && m < (s + 1) * AFD_BEAT_SEGMENT; m++)
            if (e[m] > maxima[s]) maxima[s] = e[m];
    for (m = 0; m < before; m++) {
        int32_t first, win = 1, threshold;
        s = m / AFD_BEAT_SEGMENT;
        first = s - AFD_BEAT_HISTORY + 1 > 0 ? s - AFD_BEAT_HISTORY + 1 : 0;
        threshold = afd_lower_median(maxima + first, s - first + 1) *
                    AFD_SCAN_THRESHOLD_EIGHTHS >> 3;
        for (k = m - AFD_BEAT_REFRACTORY; k <= m + AFD_BEAT_REFRACTORY; k++)
            if (k >= 0 && k < n && ((k < m && e[k] >= e[m]) || (k > m && e[k] > e[m]))) win = 0;
        if (win && e[m] > threshold) beats[found++] = m;
    }
    return found;
}

typedef struct {
    const afd_beats_t *det;
    int32_t n, pos[N_MAX], leaders, candidates;
} found_t;

static void on_beat(void *ctx, int32_t event, int32_t slot)
{
    found_t *f = (found_t *)ctx;
    if (event == AFD_BEAT_LEADER) f->leaders++;
    else if (event == AFD_BEAT_CANDIDATE) f->candidates++;
    else f->pos[f->n++] = (int32_t)f->det->done * AFD_BEAT_SEGMENT + f->det->cand_off[slot];
}

/* The streaming detector's beats, as they become final (every segment decided so far),
   are the whole-signal reference's (the strips' end is checked against Python in
   tests/test_rr.py) */
static void test_beats_equal_reference(void)
{
    static int16_t x[N_MAX];
    static int32_t expected[N_MAX];
    static found_t found;
    static const int32_t lengths[] = {2, 7, AFD_BEAT_SEGMENT + AFD_BEAT_REFRACTORY,
                                      AFD_BEAT_SEGMENT + AFD_BEAT_REFRACTORY + 1,
                                      2 * AFD_BEAT_SEGMENT + 19, 1500, N_MAX};
    afd_beats_t det;
    unsigned i;
    int32_t kind, j, n_expected;
    for (kind = 0; kind < 3; kind++)
        for (i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            int32_t n = lengths[i];
            for (j = 0; j < n; j++)  /* beats and noise, noise alone, flat (ties) */
                x[j] = (int16_t)(kind == 0 ? (j % 53 < 3 ? 1800 : 0) + test_random(-90, 90)
                                           : kind == 1 ? test_random(-2048, 2047) : 0);
            memset(&found, 0, sizeof found);
            found.det = &det;
            afd_beats_reset(&det);
            for (j = 0; j < n; j++) afd_beats_push(&det, x[j], on_beat, &found);
            /* segments are decided r energies (r + 2 samples) after their end */
            CHECK((int32_t)det.done == (n - 2 - AFD_BEAT_REFRACTORY > 0 ?
                                        (n - 2 - AFD_BEAT_REFRACTORY) / AFD_BEAT_SEGMENT : 0));
            n_expected = ref_beats(x, n, (int32_t)det.done * AFD_BEAT_SEGMENT, expected);
            CHECK(found.n == n_expected);
            CHECK(memcmp(found.pos, expected, sizeof expected[0] * (size_t)n_expected) == 0);
            CHECK(found.candidates >= found.n && found.leaders >= found.candidates);
            if (kind == 0 && n == N_MAX) CHECK(found.n > 30);  /* the spikes */
        }
}
#endif

static void test_quantise_input(void)
{
    static int16_t adc[AFD_MIN_SAMPLES], q[AFD_MIN_SAMPLES];
    int32_t i;
    for (i = 0; i < AFD_MIN_SAMPLES; i++) adc[i] = (int16_t)(i % 2 ? 1000 : -1000);
    CHECK(afd_quantise_input(adc, 0, 1000, q) == -1);
    CHECK(afd_quantise_input(adc, (int32_t)AFD_MAX_SAMPLES + 1, 1000, q) == -1);
    CHECK(afd_quantise_input(adc, AFD_MIN_SAMPLES, 0, q) == -1);
    CHECK(afd_quantise_input(adc, AFD_MIN_SAMPLES, 65536, q) == -1);
    /* +-1 mV: standard deviation 1 mV, scale 2^0, so +-2^AFD_INPUT_FRAC_BITS */
    CHECK(afd_quantise_input(adc, AFD_MIN_SAMPLES, 1000, q) == 0);
    CHECK(q[0] == -(1 << AFD_INPUT_FRAC_BITS) && q[1] == (1 << AFD_INPUT_FRAC_BITS));
    /* +-4 mV: scaled by 2^-2 to the same */
    CHECK(afd_quantise_input(adc, AFD_MIN_SAMPLES, 250, q) == 0);
    CHECK(q[0] == -(1 << AFD_INPUT_FRAC_BITS) && q[1] == (1 << AFD_INPUT_FRAC_BITS));
    for (i = 0; i < AFD_MIN_SAMPLES; i++) adc[i] = 1234;  /* flat: all zero */
    CHECK(afd_quantise_input(adc, AFD_MIN_SAMPLES, 1000, q) == 0);
    for (i = 0; i < AFD_MIN_SAMPLES; i++) CHECK(q[i] == 0);
}

int main(void)
{
    test_model_init();
    test_helpers();
    test_strip_equals_reference();
    test_short_strip_is_refused();
    test_strips_side_by_side();
#if AFD_HAS_BATCH
    test_batch_equals_strip();
#endif
    test_streams_side_by_side();
    test_stream_init_checks_its_arguments();
    test_stream_hop();
#if AFD_ATRIAL
    test_beats_equal_reference();
#endif
    test_quantise_input();
    printf("%s layout: %d checks, %d failed; sizeof afd_strip_t %u, afd_stream_t %u\n",
           AFD_LAYOUT, checks, failures, (unsigned)sizeof(afd_strip_t),
           (unsigned)sizeof(afd_stream_t));
    return failures ? 1 : 0;
}
