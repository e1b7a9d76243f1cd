/* Strip preprocessing in integers: raw ADC counts to afd_strip_push's input. */
#include "afd_internal.h"

int afd_quantise_input(const int16_t *adc, int32_t n, int32_t adc_per_mv, int16_t *out)
{
    /* The float definition: x = adc / gain mV; x -= mean(x); k = round(log2(std(x)));
       q = floor(x * 2^(F - k) + 1/2), clamped; F = AFD_INPUT_FRAC_BITS. Here in
       integers: centred values are (n * adc - sum) / (n * gain), exactly. */
    int64_t sum = 0, mean, rest, dev = 0, var, gain2, den;
    int32_t i, k, f;
    const int64_t top = ((int64_t)1 << (AFD_INPUT_BITS - 1)) - 1;
    if (n < 1 || n > AFD_MAX_SAMPLES || adc_per_mv < 1 || adc_per_mv > 65535) return -1;
    for (i = 0; i < n; i++) sum += adc[i];
    /* var = floor((n sum(adc^2) - sum^2) / n^2) counts^2, without the n sum(adc^2) that
       overflows int64 for long full-scale strips: with sum = mean n + rest (0 <= rest <
       n) and dev = sum((adc - mean)^2) = a n + b (0 <= b < n), the numerator is
       n dev - rest^2, so var = a, less 1 when b n < rest^2. */
    mean = afd_floor_div(sum, n);
    rest = sum - mean * n;
    for (i = 0; i < n; i++) dev += (adc[i] - mean) * (adc[i] - mean);
    var = dev / n - (dev % n * n < rest * rest ? 1 : 0);
    gain2 = (int64_t)adc_per_mv * adc_per_mv;
    /* k = round(log2(std / gain)): the k with gain^2 2^(2k-1) <= var < gain^2 2^(2k+1) */
    k = 0;
    while (k < 20 && (gain2 << (2 * k + 1)) <= var) k++;
    /* only when k did not grow (then var >= gain^2 2^(2k-1) already; and the shift
       stays positive) */
    while (k <= 0 && k > -20 && (var << (1 - 2 * k)) < gain2) k--;
    f = AFD_INPUT_FRAC_BITS - k;
    den = (int64_t)n * adc_per_mv;
    if (f < 0) den <<= -f;
    for (i = 0; i < n; i++) {
        int64_t num = (int64_t)n * adc[i] - sum;
        if (f > 0) num = num >= 0 ? num << f : -((-num) << f);
        num = afd_floor_div(2 * num + den, 2 * den);  /* round half up */
        out[i] = (int16_t)(num > top ? top : (num < -top - 1 ? -top - 1 : num));
    }
    return 0;
}
