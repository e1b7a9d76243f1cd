/* A small hand-made model configuration for the runtime's unit tests (tests/c): two conv
   layers (15 taps pruned weight by weight, then whole kernels of 9 taps) and the
   classifier, independent of any trained model. AFD_TEST_PACKED selects the packed layout's kernels. */
#ifndef AFD_CONFIG_H
#define AFD_CONFIG_H

#define AFD_N_CLASSES 4
#define AFD_SAMPLING_RATE_HZ 300
#define AFD_INPUT_FRAC_BITS 8
#define AFD_INPUT_BITS 12
#define AFD_MIN_SAMPLES 64
#define AFD_MAX_SAMPLES 100000L
#define AFD_STEP_SAMPLES 8
#define AFD_MAX_WINDOW_STEPS 16
#define AFD_BLOCK 64
#define AFD_BLOCK_LOG2 6
#define AFD_SPAN 4
#ifdef AFD_TEST_PACKED
#define AFD_LAYOUT "packed"
#define AFD_LAYOUT_PACKED 1
#define AFD_HAS_BATCH 1
#else
#define AFD_LAYOUT "fast"
#define AFD_LAYOUT_PACKED 0
#define AFD_HAS_BATCH 1
#endif
#define AFD_N_CONVS 2
#define AFD_C_LAST 4
#define AFD_ACT_TOP 15
#define AFD_MAX_K 15
#define AFD_MAX_BITS 3
#define AFD_MAX_SHIFT 3
/* tiles of 3 and 2 output times (small, so that tiles and buffers often fill part way):
   buffers of 14 + 3 x 2 and 8 + 2 x 1 columns; the pooled output, 2 columns */
#define AFD_MAX_TILE 3
#define AFD_INPUT_TOTAL 20  /* 1 x 20 */
#define AFD_ACT_TOTAL 38    /* 3 x 10, then 4 x 2 */
#define AFD_OUT_AT 30
#define AFD_OUT_CAP 2
#define AFD_COLUMN_TOTAL 7  /* 3 + 4 */
#ifdef AFD_TEST_RR  /* compiles afd_rr.c (checked against Python in tests/test_rr.py) */
#define AFD_RR 1
#define AFD_RR_FS 100
#define AFD_RR_MEDIAN_OF 9
#define AFD_RR_N_FEATURES 6
#define AFD_RR_FEATURE_MAX 255
#define AFD_RR_SHIFT_SUMS 2
#define AFD_RR_SHIFT_FEATURES 1
#define AFD_RR_PEAKS 17    /* codegen.rr_stream_bounds of this geometry */
#define AFD_RR_PENDING 29
#else
#define AFD_RR 0
#endif
/* the R-peak detector; this net answers 5 samples after a step, too soon for the atrial
   check (compiled here all the same: AFD_TEST_ATRIAL turns it on) */
#define AFD_BEAT_INTEGRATE 15
#define AFD_BEAT_SEGMENT 200
#define AFD_BEAT_HISTORY 8
#define AFD_BEAT_REFRACTORY 20
#define AFD_STRIP_THRESHOLD_EIGHTHS 4
#define AFD_SCAN_THRESHOLD_EIGHTHS 3
#define AFD_STEP_LAG 5
#ifdef AFD_TEST_ATRIAL
#define AFD_ATRIAL 1
#else
#define AFD_ATRIAL 0
#endif
#define AFD_ATRIAL_START 30
#define AFD_ATRIAL_END 8
#define AFD_ATRIAL_BIN 2
#define AFD_ATRIAL_BINS 11
#define AFD_ATRIAL_SHIFT 4
#define AFD_ATRIAL_MIN_BEATS 4
#define AFD_ATRIAL_LIMIT 144
#define AFD_AF_CLASS 1
#define AFD_ATRIAL_BLOCKS 4
#define AFD_ATRIAL_AHEAD_STEPS 0

#endif
