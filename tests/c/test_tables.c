/* The unit tests' model: random weights (a fixed seed) put into the tables of either
   layout at start-up, and kept as plain arrays for the reference implementation. */
#include "test_model.h"

test_weights test_w;

/* w bits of v at bit position *pos of buf, MSB first */
static void put(uint8_t *buf, int32_t *pos, uint32_t v, int32_t w)
{
    int32_t i;
    for (i = w - 1; i >= 0; i--, (*pos)++)
        if ((v >> i) & 1u) buf[*pos >> 3] = (uint8_t)(buf[*pos >> 3] | (0x80u >> (*pos & 7)));
}

/* 12-bit two's complement biases in both layouts */
#define BIAS_BITS 12
static void put_bias(uint8_t *buf, int32_t *pos, int32_t b)
{
    put(buf, pos, (uint32_t)b & ((1u << BIAS_BITS) - 1), BIAS_BITS);
}

#if AFD_LAYOUT_PACKED
/* Bitmap index (scheme 1), 3-bit codes (sign, 2-bit shift), 12-bit biases. */
#define CODE_BITS 3
static uint8_t p0_index[8], p0_codes[24], p0_biases[8];
static uint8_t p1_index[4], p1_codes[48], p1_biases[8];
static uint8_t pf_index[4], pf_codes[8], pf_biases[8];
static const uint8_t no_columns[1] = {0};

const afd_layer afd_layers[AFD_N_CONVS] = {
    {1, 3, TEST_K0, 2, 7, TEST_SHIFT0, 3, TEST_K0 + 5, 0, 0, p0_index, no_columns, p0_codes,
     p0_biases, 3 * TEST_K0,
     1, 0, CODE_BITS, BIAS_BITS, 0, 0, 0, 1},
    {3, 4, TEST_K1, 1, 4, TEST_SHIFT1, 2, TEST_K1 + 1, 0, 3, p1_index, no_columns, p1_codes,
     p1_biases, 12, 1, 0, CODE_BITS, BIAS_BITS, 0, 0, 0, TEST_K1},
};
const afd_layer afd_fc_layer = {4, 4, 1, 1, 0, 0, 0, 0, 0, 0, pf_index, no_columns, pf_codes,
                                pf_biases, 16, 1, 0, CODE_BITS, BIAS_BITS, 0, 0, 0, 1};

static void put_code(uint8_t *buf, int32_t *pos, const test_weight *w)
{
    put(buf, pos, (uint32_t)(w->neg << (CODE_BITS - 1) | w->shift), CODE_BITS);
}


static void fill_tables(void)
{
    int32_t o, c, t, ib = 0, cb = 0, bb = 0;
    for (o = 0; o < 3; o++) {
        put_bias(p0_biases, &bb, test_w.b0[o]);
        for (t = 0; t < TEST_K0; t++) {
            put(p0_index, &ib, (uint32_t)test_w.w0[o][0][t].keep, 1);
            if (test_w.w0[o][0][t].keep) put_code(p0_codes, &cb, &test_w.w0[o][0][t]);
        }
    }
    ib = cb = bb = 0;
    for (o = 0; o < 4; o++) {
        put_bias(p1_biases, &bb, test_w.b1[o]);
        for (c = 0; c < 3; c++) {
            put(p1_index, &ib, (uint32_t)test_w.w1[o][c][0].keep, 1);
            if (test_w.w1[o][c][0].keep)
                for (t = 0; t < TEST_K1; t++) put_code(p1_codes, &cb, &test_w.w1[o][c][t]);
        }
    }
    ib = cb = bb = 0;
    for (o = 0; o < 4; o++) {
        put_bias(pf_biases, &bb, test_w.bf[o]);
        for (c = 0; c < 4; c++) {
            put(pf_index, &ib, (uint32_t)test_w.wf[o][c].keep, 1);
            if (test_w.wf[o][c].keep) put_code(pf_codes, &cb, &test_w.wf[o][c]);
        }
    }
}
#else
/* Fast layout: per-row record counts; records (input channel, then a tap and a code in
   layer 0, the kernel's 9 codes in layer 1, one code in the classifier), 3-bit codes. */
#define CODE_BITS 3
static uint8_t l0_count[3], l1_count[4], lf_count[4];
static uint8_t l0_records[48], l1_records[48], lf_records[16];
static uint8_t l0_bias[8], l1_bias[8], lf_bias[8];

const afd_layer afd_layers[AFD_N_CONVS] = {
    {1, 3, TEST_K0, 2, 7, TEST_SHIFT0, 3, TEST_K0 + 5, 0, 0, l0_records, l0_count, l0_bias,
     CODE_BITS, 0, 4, BIAS_BITS},
    {3, 4, TEST_K1, 1, 4, TEST_SHIFT1, 2, TEST_K1 + 1, 0, 3, l1_records, l1_count, l1_bias,
     CODE_BITS, 2, 0, BIAS_BITS},
};
const afd_layer afd_fc_layer = {4, 4, 1, 1, 0, 0, 0, 0, 0, 0, lf_records, lf_count, lf_bias,
                                CODE_BITS, 2, 0, BIAS_BITS};

static void put_code(uint8_t *buf, int32_t *pos, const test_weight *w)
{
    put(buf, pos, (uint32_t)(w->neg << (CODE_BITS - 1) | w->shift), CODE_BITS);
}

static void fill_tables(void)
{
    int32_t o, c, t, pos = 0, bb = 0;
    for (o = 0; o < 3; o++) {
        put_bias(l0_bias, &bb, test_w.b0[o]);
        for (t = 0; t < TEST_K0; t++)
            if (test_w.w0[o][0][t].keep) {
                l0_count[o]++;
                put(l0_records, &pos, (uint32_t)t, 4);
                put_code(l0_records, &pos, &test_w.w0[o][0][t]);
            }
    }
    for (o = 0, pos = bb = 0; o < 4; o++) {
        put_bias(l1_bias, &bb, test_w.b1[o]);
        for (c = 0; c < 3; c++)
            if (test_w.w1[o][c][0].keep) {
                l1_count[o]++;
                put(l1_records, &pos, (uint32_t)c, 2);
                for (t = 0; t < TEST_K1; t++) put_code(l1_records, &pos, &test_w.w1[o][c][t]);
            }
    }
    for (o = 0, pos = bb = 0; o < 4; o++) {
        put_bias(lf_bias, &bb, test_w.bf[o]);
        for (c = 0; c < 4; c++)
            if (test_w.wf[o][c].keep) {
                lf_count[o]++;
                put(lf_records, &pos, (uint32_t)c, 2);
                put_code(lf_records, &pos, &test_w.wf[o][c]);
            }
    }
}
#endif

const char *const afd_class_names[AFD_N_CLASSES] = {"N", "A", "O", "~"};

static uint32_t seed = 12345u;

int32_t test_random(int32_t lo, int32_t hi)
{
    seed = seed * 1103515245u + 12345u;
    return lo + (int32_t)((seed >> 8) % (uint32_t)(hi - lo + 1));
}

static void random_weight(test_weight *w, int32_t keep)
{
    w->keep = keep;
    w->neg = test_random(0, 1);
    w->shift = test_random(0, 3);
}

void test_model_init(void)
{
    int32_t o, c, t, keep;
    for (o = 0; o < 3; o++) {
        test_w.b0[o] = test_random(-200, 200);
        for (t = 0; t < TEST_K0; t++) random_weight(&test_w.w0[o][0][t], test_random(0, 3) > 0);
    }
    for (o = 0; o < 4; o++) {
        test_w.b1[o] = test_random(-60, 60);
        for (c = 0; c < 3; c++) {
            keep = c == o % 3 || test_random(0, 2) > 0;  /* every row keeps a kernel */
            for (t = 0; t < TEST_K1; t++) random_weight(&test_w.w1[o][c][t], keep);
        }
        test_w.bf[o] = test_random(-50, 50);
        for (c = 0; c < 4; c++) random_weight(&test_w.wf[o][c], test_random(0, 3) > 0);
    }
    fill_tables();
}
