/* The unit tests' model (test_tables.c): its weights as plain arrays. */
#ifndef TEST_MODEL_H
#define TEST_MODEL_H

#include "afd_internal.h"

#define TEST_SHIFT0 3
#define TEST_K0 15  /* layer 0's kernel, pruned weight by weight (the shipped models' length) */
#define TEST_SHIFT1 2
#define TEST_K1 9  /* layer 1's kernel: the length the cores' unrolled kernels take */

typedef struct {
    int32_t keep, neg, shift;  /* kept; negative; the power of two */
} test_weight;

typedef struct {
    test_weight w0[3][1][TEST_K0], w1[4][3][TEST_K1], wf[4][4];
    int32_t b0[3], b1[4], bf[4];
} test_weights;

extern test_weights test_w;
/* Random weights into test_w and the layout's tables. */
void test_model_init(void);
/* A pseudo-random integer in lo..hi (a fixed sequence). */
int32_t test_random(int32_t lo, int32_t hi);

#endif
