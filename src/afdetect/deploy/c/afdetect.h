/* afdetect: an integer-only, streaming atrial fibrillation classifier for single-lead ECG.
   C99; needs only <stdint.h> and <stddef.h>; no floating point, no malloc, no globals.

   The runtime (this header and the afd_*.c files) is the same for every model; the model
   is afd_config.h (its dimensions, generated) and afd_model_tables.c (its weights, const).

   All state lives in structs the caller allocates (statically, on a stack, in a pool):
   afd_strip_t classifies one recording of bounded length, afd_stream_t monitors a signal
   that never ends. Their sizes are compile-time constants (sizeof), fixed by the model;
   any number of instances may run side by side, interleaved in any order, on one core.
   No function keeps state outside its instance, so instances in different threads need
   no locking; one instance must not be used by two threads at once.

   Class indices: 0 N (normal sinus rhythm), 1 A (atrial fibrillation), 2 O (other
   rhythm), 3 ~ (too noisy); afd_class_names[] holds those labels. Logits are integers on
   a fixed-point grid; larger is more likely. */
#ifndef AFDETECT_H
#define AFDETECT_H

#include <stddef.h>
#include <stdint.h>

#include "afd_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Continuous mode input rates, in whole Hz: the resampler's phase (under
   AFD_SAMPLING_RATE_HZ) plus the reduced input rate must fit in int32; 1 MHz leaves a
   wide margin and is far above any ECG front end. */
#define AFD_MIN_FS_IN_HZ 100L
#define AFD_MAX_FS_IN_HZ 1000000L

extern const char *const afd_class_names[AFD_N_CLASSES];

/* ---- The network's streaming state (part of both instances; not used directly) ----
   Per conv layer: an input buffer of its last cap columns (rows of cap per input
   channel; int16 samples for layer 0, activations after it), and its unpaired output
   column waiting for its pooling partner; the last layer's pooled columns, before they
   are summed or scored. Packed back to back. */
#if AFD_ACT_TOP <= 255
typedef uint8_t afd_act_t;   /* an activation, 0..AFD_ACT_TOP */
#else
typedef uint16_t afd_act_t;
#endif
typedef struct {
    int16_t input[AFD_INPUT_TOTAL];
    afd_act_t acts[AFD_ACT_TOTAL];
    afd_act_t half[AFD_COLUMN_TOTAL];
    int32_t fill[AFD_N_CONVS + 1];  /* columns in each buffer; the last: pooled output */
    int32_t parity[AFD_N_CONVS];    /* 1: the layer holds an unpaired output */
} afd_net_t;

/* ---- The integer R-peak detector (part of the instances; not used directly) ----
   afdetect.model.rr.detect_beats, and the scan's streaming afdetect.monitor.beats: slope
   d[m] = q[m+2] + q[m+1] - q[m-1] - q[m-2], energy e[m] the sum of |d| over the
   AFD_BEAT_INTEGRATE samples ending at m; a candidate where e[m] beats every energy within
   AFD_BEAT_REFRACTORY before it and is at least every one within it after; a beat where it
   also exceeds a threshold, AFD_STRIP_THRESHOLD_EIGHTHS / 8 (strips, models with RR
   features) or AFD_SCAN_THRESHOLD_EIGHTHS / 8 (the continuous mode) of the lower median
   of the last AFD_BEAT_HISTORY segment maxima (AFD_BEAT_SEGMENT samples each).
   Candidates are more than AFD_BEAT_REFRACTORY apart. */
#define AFD_BEAT_SLOPES (AFD_BEAT_REFRACTORY + AFD_BEAT_INTEGRATE)
#define AFD_BEAT_MAX_CANDIDATES \
    ((AFD_BEAT_SEGMENT + AFD_BEAT_REFRACTORY) / (AFD_BEAT_REFRACTORY + 1))
typedef struct {
    /* scalars first: small offsets make short loads on Thumb-1 cores */
    int32_t n_samples, n_e;               /* samples pushed, energies computed (saturate) */
    int32_t d_pos, e_sum;                 /* ring slot of the newest |slope|; e of it */
    int32_t leader_e, leader_age;         /* the newest energy above the ones before it,
                                             awaiting those after; age -1: none */
    int32_t seg_fill, seg_max;            /* energies and their max in the open segment */
    int32_t n_maxima, maxima_pos;
    int32_t threshold[2];                 /* by segment parity: the last one closed and the
                                             one awaiting its beats may differ at the end */
    uint32_t closed, done;                /* segments closed, and given their beats (wrap) */
    int32_t decided;                      /* positions decided in the segment being decided */
    int32_t n_cand;
#if AFD_RR
    int32_t eighths;                      /* the threshold: strips' or the continuous mode's */
#endif
    int32_t maxima[AFD_BEAT_HISTORY];
    int32_t cand_e[AFD_BEAT_MAX_CANDIDATES];
    int16_t cand_off[AFD_BEAT_MAX_CANDIDATES];  /* candidates' offsets in their segment */
    int16_t q[5];                         /* the last five samples, newest last */
    int16_t abs_d[AFD_BEAT_SLOPES];       /* |slope| ring: the integration window and the
                                             AFD_BEAT_REFRACTORY before it, to walk back */
} afd_beats_t;

#if AFD_RR
/* The running RR statistics (afdetect.model.rr.rr_features) of a run of beats: a strip's,
   or a monitoring window's */
typedef struct {
    int32_t beats, last_beat, n_rr, total, r_min, r_max, r_prev, jumps, outliers;
    int64_t sum_abs_diff;
    int32_t recent[AFD_RR_MEDIAN_OF], n_recent, recent_pos;
} afd_rr_stats_t;
/* RR statistics of a strip from its beats */
typedef struct {
    afd_beats_t det;
    afd_rr_stats_t stats;
} afd_rr_t;
#endif

/* ---- Strips: one recording of AFD_MIN_SAMPLES to AFD_MAX_SAMPLES samples ---- */
typedef struct {
    afd_net_t net;
    int32_t sums[AFD_C_LAST];  /* the last layer's activations summed over time */
    int32_t steps;             /* time steps summed */
    int32_t pushed;            /* samples pushed, saturating at AFD_MIN_SAMPLES */
#if AFD_RR
    afd_rr_t rr;
#endif
} afd_strip_t;

/* Start a new recording in *s (any contents before; nothing else to free after). */
void afd_strip_init(afd_strip_t *s);
/* Feed one quantised input sample: round_half_up(x * 2^AFD_INPUT_FRAC_BITS) clamped to a
   signed AFD_INPUT_BITS-bit integer, x the normalised signal (afd_quantise_input computes
   it from raw counts). At most AFD_MAX_SAMPLES per recording: int32 accumulators are
   proven not to overflow up to that length. */
void afd_strip_push(afd_strip_t *s, int16_t sample);
/* End the recording: writes the integer logits and returns the class index (0..3), or -1
   (logits untouched) when fewer than AFD_MIN_SAMPLES samples were pushed. *s then needs
   afd_strip_init before its next recording. */
int afd_strip_finish(afd_strip_t *s, int32_t logits[AFD_N_CLASSES]);
/* afd_strip_init, afd_strip_push for each of the n samples, afd_strip_finish. */
int afd_classify(afd_strip_t *s, const int16_t *samples, int32_t n,
                 int32_t logits[AFD_N_CLASSES]);

/* afd_strip_push's input from raw samples at AFD_SAMPLING_RATE_HZ with adc_per_mv counts
   per millivolt, in integers: subtract the mean, scale by the power of two nearest the
   standard deviation, multiply by 2^AFD_INPUT_FRAC_BITS, round half up, clamp. Needs the
   whole recording (two passes); out may not overlap adc. Returns 0, or -1 for n outside
   1..AFD_MAX_SAMPLES or adc_per_mv outside 1..65535 (the ranges its int64 arithmetic is
   safe for). */
int afd_quantise_input(const int16_t *adc, int32_t n, int32_t adc_per_mv, int16_t *out);

/* ---- Continuous monitoring (afdetect scan's integer pipeline) ----
   Raw ADC counts of up to 16 bits at fs_in_hz go in one by one, indefinitely; the
   instance resamples them to AFD_SAMPLING_RATE_HZ, removes the baseline, scales and
   quantises inside. A decision comes every hop_steps model steps (AFD_STEP_SAMPLES samples
   at AFD_SAMPLING_RATE_HZ each) over the last window_steps steps; every int32 sum is
   proven bounded for windows of up to AFD_MAX_WINDOW_STEPS steps, however long it runs
   (counters wrap or saturate). The front end works in blocks of AFD_BLOCK samples, so
   decisions come in bursts at block ends.

   A model with RR features (AFD_RR) reads them per window, as afdetect scan does: from
   the R peaks its detector (afdetect scan's, threshold AFD_SCAN_THRESHOLD_EIGHTHS / 8)
   finds in the window's samples, with the formulas of a strip. A window is reported once
   its beats are final, up to AFD_BEAT_LAG samples after its end: later than its last
   step where the network answers sooner (AFD_STEP_LAG < AFD_BEAT_LAG).

   The atrial check (afdetect.monitor.atrial; AFD_ATRIAL, on unless compiled with
   -DAFD_ATRIAL=0), with or without RR features: an R-peak detector on the quantised
   input (afdetect scan's, threshold AFD_SCAN_THRESHOLD_EIGHTHS / 8; with RR features the
   same instance that finds the windows' R peaks, as in afdetect scan) takes, before
   each R peak, the stretch from AFD_ATRIAL_START to AFD_ATRIAL_END samples before it in
   AFD_ATRIAL_BINS bins of AFD_ATRIAL_BIN samples, mean-free:
   s_k[b] = (AFD_ATRIAL_BINS * bin[b] - sum of the bins) >> AFD_ATRIAL_SHIFT,
   |s_k[b]| < 2^15. A window of n beats (a beat counts in the step of its R peak) gets
   two terms, exactly afdetect scan's, reported with its logits (with RR features, those
   with its RR columns in):
     templ  = sum_b (sum_k s_k[b])^2      (|sum_k s_k|^2, the template's energy)
     spread = n * sum_k sum_b s_k[b]^2    (n times the beats' energy)
   both 0 when n < AFD_ATRIAL_MIN_BEATS; 0 <= templ <= spread < 2^53 for windows of up to
   AFD_MAX_WINDOW_STEPS steps. Their ratio, the coherence, is 1 when the same wave stands
   before every QRS and about 1 / n when the stretches are unrelated. The window is
   organised (P waves or flutter waves before every QRS: not AF) when templ * 256 >
   AFD_ATRIAL_LIMIT * spread (AFD_ATRIAL_LIMIT / 256 = afdetect's max_atrial_coherence). */
typedef struct {
    int64_t templ;      /* |sum_k s_k|^2, in s units squared (only the ratio matters) */
    int64_t spread;     /* n * sum_k |s_k|^2; templ / spread: the coherence, 0..1 */
    int32_t beats;      /* n: R peaks in the window */
    int32_t organised;  /* 1: templ * 256 > AFD_ATRIAL_LIMIT * spread: not AF */
} afd_atrial_t;

/* A window decision: cls the class index after the atrial check (an organised window
   takes the largest of the other logits: never AF), logits the network's integer logits,
   atrial the window's terms, or NULL when no check runs on this instance (compiled out,
   or a window that is not a whole number of hops, or too many hops per window: see
   afd_stream_init). Called from inside afd_stream_push; the pointers are valid during
   the call only. */
typedef void (*afd_window_fn)(int cls, const int32_t logits[AFD_N_CLASSES],
                              const afd_atrial_t *atrial, void *user);

#if AFD_ATRIAL
/* The atrial check's state: the detector (with RR features the RR windows', in
   afd_rr_stream_t: one for both), the last AFD_ATRIAL_RING input samples (the stretch
   before a peak plus the detector's delay), the stretches of the candidates awaiting
   their segment's threshold, and per hop-block sums of the final beats. */
#define AFD_ATRIAL_RING (AFD_ATRIAL_START + AFD_BEAT_INTEGRATE / 2 + 3)
typedef struct {
    int32_t sums[AFD_ATRIAL_BINS];  /* sum_k s_k over the block's beats */
    int32_t count;                  /* its beats */
    int64_t energy;                 /* sum_k |s_k|^2 */
} afd_atrial_block_t;
typedef struct {
    int32_t q_pos, q_fill;   /* ring slot of the next sample; samples held (saturates) */
    int32_t phase, step;     /* where a leader's R peak lies (the detector's delay before
                                the sample pushed): offset in its step, step in its block */
    uint32_t block, low;     /* its block; the oldest block held (both wrap) */
    int32_t base;            /* the slot of block low */
    int32_t per_window;      /* blocks per window; 0: no check on this instance */
    int32_t held;            /* blocks this geometry holds at once */
    afd_atrial_block_t blocks[AFD_ATRIAL_BLOCKS];
#if !AFD_RR
    afd_beats_t det;
#endif
    int16_t q[AFD_ATRIAL_RING];
    int16_t pending[AFD_ATRIAL_BINS + 1];  /* the leader's stretch, then its block's low bits */
    int16_t stretch[AFD_BEAT_MAX_CANDIDATES][AFD_ATRIAL_BINS + 1];  /* per candidate */
} afd_atrial_state_t;
#endif

#if AFD_RR
/* The continuous mode's RR features (afdetect.monitor.rr_windows.window_rr_features): the
   detector at afdetect scan's threshold (the atrial check's too: one for both); the
   model-rate R peaks of the windows not yet reported, oldest first (at most AFD_RR_PEAKS:
   the longest window, plus how far the final beats run ahead of it, over the refractory
   period); and the logits of windows whose steps are in but whose beats are not all
   final yet (at most AFD_RR_PENDING: models that answer before the detector does).
   Sample indices wrap as uint32. */
typedef struct {
    afd_beats_t det;
    uint32_t next_start;           /* first model sample of the next window to report */
    int32_t n_peaks, first_peak;   /* peaks held; the oldest one's slot */
    int32_t n_pending, first_pending;
    uint32_t peaks[AFD_RR_PEAKS];
    int32_t pending[AFD_RR_PENDING][AFD_N_CLASSES];  /* logits before the RR columns */
} afd_rr_stream_t;
#endif

typedef struct {
    afd_net_t net;
    int32_t p, q;          /* resampling: fs_in / AFD_SAMPLING_RATE_HZ = p / q */
    int32_t ahead;         /* 1 + floor(n p / q) - raw samples seen, for the next output n */
    int32_t r;             /* n p mod q */
    int32_t prev, cur;     /* the last two raw samples */
    int16_t ring[AFD_BLOCK];   /* the last AFD_BLOCK resampled counts */
    int32_t ring_pos, seen;    /* next ring slot; resampled counts seen (saturates) */
    int64_t ring_sum;
    int16_t block[AFD_BLOCK];  /* detrended samples of the block being filled */
    int32_t block_fill;
    int64_t span_sum[AFD_SPAN], span_sq[AFD_SPAN];
    int32_t span_pos, span_fill;
    int32_t scores[AFD_MAX_WINDOW_STEPS][AFD_N_CLASSES];  /* per-step class scores */
    int32_t step_pos, step_fill, window, hop, until_hop;
    int32_t emitted;
    afd_window_fn on_window;
    void *user;
#if AFD_ATRIAL
    afd_atrial_state_t atrial;
#endif
#if AFD_RR
    afd_rr_stream_t rr;
#endif
} afd_stream_t;

/* Start monitoring in *s: input at fs_in_hz (AFD_MIN_FS_IN_HZ to AFD_MAX_FS_IN_HZ), a
   decision every hop_steps >= 1 steps over the last window_steps (1 to
   AFD_MAX_WINDOW_STEPS), reported through on_window(class index, integer logits, atrial
   terms, user) from inside afd_stream_push. Returns 0, or -1 for a rate or window outside
   those ranges or no on_window; on -1 *s is unchanged.
   The atrial check runs when window_steps is a multiple of hop_steps and at most
   AFD_ATRIAL_BLOCKS - 1 - AFD_ATRIAL_AHEAD_STEPS / hop_steps hops long (the default 18 / 6
   is 3 of 3 at most), and the network answers after a window's beats are final
   (AFD_STEP_LAG >= AFD_BEAT_LAG; export builds it only then); otherwise the windows come
   with atrial NULL. */
int afd_stream_init(afd_stream_t *s, int32_t fs_in_hz, int32_t window_steps,
                    int32_t hop_steps, afd_window_fn on_window, void *user);
/* Push one raw count (clamped to -32768..32767). Every window it completes is reported,
   in order, through on_window; returns how many (0 for most pushes, several at a block's
   end). */
int afd_stream_push(afd_stream_t *s, int32_t adc_count);

#if AFD_HAS_BATCH
/* ---- Batch mode (fast layout), for hosts with memory to spare ----
   The same logits as afd_classify, computed layer by layer over the whole recording
   (vectorised), in work memory of afd_batch_work_bytes(n) bytes, aligned for int32_t,
   that the caller provides. Returns as afd_classify. */
size_t afd_batch_work_bytes(int32_t n);
int afd_classify_batch(const int16_t *samples, int32_t n, int32_t logits[AFD_N_CLASSES],
                       void *work);
#endif

#ifdef __cplusplus
}
#endif

#endif
