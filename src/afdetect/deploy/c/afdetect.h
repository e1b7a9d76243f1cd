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

#if AFD_RR
/* The integer R-peak detector and RR statistics of a strip (afdetect.model.rr). */
#define AFD_RR_WINDOW (2 * AFD_RR_REFRACTORY + 1)
/* candidates are more than AFD_RR_REFRACTORY apart: at most this many per segment */
#define AFD_RR_MAX_CANDIDATES (AFD_RR_SEGMENT / (AFD_RR_REFRACTORY + 1) + 2)
typedef struct {
    int16_t q[5];                      /* the last five samples, newest last */
    int32_t n_samples;                 /* real samples pushed */
    int32_t abs_d[AFD_RR_INTEGRATE];   /* |slope| ring of the integration window */
    int32_t d_pos, e_sum;
    int32_t e[AFD_RR_WINDOW];          /* energies e[m - 2r .. m], ring; -1 before start */
    int32_t e_pos, m;                  /* ring slot of e[m]; m: energies computed */
    int32_t seg_fill, seg_max;         /* energies and their max in the open segment */
    int32_t maxima[AFD_RR_HISTORY], n_maxima, maxima_pos;
    int32_t threshold[2];              /* by segment parity: the last one closed and the
                                          one awaiting its beats may differ at the end */
    int32_t closed, done;              /* segments closed, and given their beats */
    int32_t decided;                   /* candidate positions decided in that segment */
    int32_t cand_pos[AFD_RR_MAX_CANDIDATES], cand_e[AFD_RR_MAX_CANDIDATES], n_cand;
    int32_t beats, last_beat, n_rr, total, r_min, r_max, r_prev, jumps, outliers;
    int64_t sum_abs_diff;
    int32_t recent[AFD_RR_MEDIAN_OF], n_recent, recent_pos;
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
   decisions come in bursts at block ends. */
typedef void (*afd_window_fn)(int cls, const int32_t logits[AFD_N_CLASSES], void *user);

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
} afd_stream_t;

/* Start monitoring in *s: input at fs_in_hz (AFD_MIN_FS_IN_HZ to AFD_MAX_FS_IN_HZ), a
   decision every hop_steps >= 1 steps over the last window_steps (1 to
   AFD_MAX_WINDOW_STEPS), reported through on_window(class index, integer logits, user)
   from inside afd_stream_push. Returns 0, or -1 for a rate or window outside those
   ranges, no on_window, or a model with RR features (AFD_RR); on -1 *s is unchanged. */
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
