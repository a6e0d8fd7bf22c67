#include "vector_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Lanes of the partial maxima and sums: one AVX-512 register or two AVX2 registers. */
enum { LANES = 16, DOUBLE_LANES = 8 };

/* Cephes' expf method: x = n ln 2 + r with |r| <= ln 2 / 2, a degree-7 polynomial for e^r, and 2^n written into
 * the exponent bits. Branch-free (the selects become blends), so loops calling it vectorise. */
static inline float exp_inline(float x) {
    const float lowest = -87.33654f;
    const float highest = 88.37626f;
    float clamped = x < lowest ? lowest : x;
    clamped = clamped > highest ? highest : clamped;
    /* 1.5 * 2^23: adding it rounds to an integer (to nearest even) and leaves it in the low mantissa bits. */
    const float rounding_shift = 12582912.0f;
    float shifted = clamped * 1.44269504088896341f + rounding_shift;
    float n = shifted - rounding_shift;
    /* ln 2 in two parts (Cody and Waite), so r = x - n ln 2 loses nothing to cancellation. */
    float r = clamped - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float exp_r = p * (r * r) + r + 1.0f;
    int32_t shifted_bits;
    int32_t shift_bits;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    memcpy(&shift_bits, &rounding_shift, sizeof shift_bits);
    /* n is within [-126, 127] after the clamp, so the biased exponent is a normal one. */
    int32_t power_bits = (shifted_bits - shift_bits + 127) << 23;
    float power_of_two;
    memcpy(&power_of_two, &power_bits, sizeof power_of_two);
    return x < lowest ? 0.0f : exp_r * power_of_two;
}

float vm_exp(float x) { return exp_inline(x); }

static inline float sigmoid_weighted(float v, float slope) { return v / (1.0f + exp_inline(-(slope * v))); }

void vm_sigmoid_weighted(const float *src, float *dst, size_t count, float scale, float shift, float slope) {
    /* Through a local block: dst may be src, and a loop that reads src and writes dst directly is vectorised only
     * behind a run-time overlap check, which sends the in-place calls down the scalar path. */
    size_t whole = count - count % LANES;
    for (size_t i = 0; i < whole; i += LANES) {
        float block[LANES];
        for (int lane = 0; lane < LANES; lane++) block[lane] = src[i + lane] * scale + shift;
        for (int lane = 0; lane < LANES; lane++) dst[i + lane] = sigmoid_weighted(block[lane], slope);
    }
    for (size_t i = whole; i < count; i++) dst[i] = sigmoid_weighted(src[i] * scale + shift, slope);
}

void vm_softmax_row(float *row, size_t count) {
    size_t whole = count - count % LANES;
    float maxima[LANES];
    for (int lane = 0; lane < LANES; lane++) maxima[lane] = -INFINITY;
    for (size_t i = 0; i < whole; i += LANES) {
        for (int lane = 0; lane < LANES; lane++) {
            float v = row[i + lane];
            maxima[lane] = v > maxima[lane] ? v : maxima[lane];
        }
    }
    float row_max = -INFINITY;
    for (int lane = 0; lane < LANES; lane++) row_max = maxima[lane] > row_max ? maxima[lane] : row_max;
    for (size_t i = whole; i < count; i++) row_max = row[i] > row_max ? row[i] : row_max;

    float sums[LANES] = {0};
    for (size_t i = 0; i < whole; i += LANES) {
        for (int lane = 0; lane < LANES; lane++) {
            float e = exp_inline(row[i + lane] - row_max);
            row[i + lane] = e;
            sums[lane] += e;
        }
    }
    float total = 0.0f;
    for (int lane = 0; lane < LANES; lane++) total += sums[lane];
    for (size_t i = whole; i < count; i++) {
        float e = exp_inline(row[i] - row_max);
        row[i] = e;
        total += e;
    }
    float inverse = 1.0f / total;
    for (size_t i = 0; i < count; i++) row[i] *= inverse;
}

/* The sum of x, or with `squared` of (x - centre)^2, in double lanes; `squared` is a constant at each call, so the
 * compiler makes one loop of each. */
static inline double lane_sum(const float *values, size_t count, double centre, int squared) {
    double sums[DOUBLE_LANES] = {0};
    size_t whole = count - count % DOUBLE_LANES;
    for (size_t i = 0; i < whole; i += DOUBLE_LANES) {
        for (int lane = 0; lane < DOUBLE_LANES; lane++) {
            double deviation = (double)values[i + lane] - centre;
            sums[lane] += squared ? deviation * deviation : deviation;
        }
    }
    double total = 0.0;
    for (int lane = 0; lane < DOUBLE_LANES; lane++) total += sums[lane];
    for (size_t i = whole; i < count; i++) {
        double deviation = (double)values[i] - centre;
        total += squared ? deviation * deviation : deviation;
    }
    return total;
}

double vm_sum(const float *values, size_t count) { return lane_sum(values, count, 0.0, 0); }

double vm_sum_squared_deviations(const float *values, size_t count, double centre) {
    return lane_sum(values, count, centre, 1);
}

void vm_accumulate_channels(const float *restrict values, size_t count, const double *restrict centres,
                            double *restrict sums) {
    if (centres == NULL) {
        for (size_t c = 0; c < count; c++) sums[c] += (double)values[c];
        return;
    }
    for (size_t c = 0; c < count; c++) {
        double deviation = (double)values[c] - centres[c];
        sums[c] += deviation * deviation;
    }
}

/* The modulations go through a local block for the same reason as vm_sigmoid_weighted: they run in place. Each
 * handles `lanes` elements from i; called with LANES for the whole blocks (a constant, so the loops vectorise) and
 * with the remainder for the tail. */
static inline void modulate_row_block(const float *src, float *dst, size_t i, size_t lanes, float scale, float shift,
                                      const float *y, const float *b, const int32_t *index) {
    float block[LANES];
    for (size_t lane = 0; lane < lanes; lane++) block[lane] = src[i + lane] * scale + shift;
    for (size_t lane = 0; lane < lanes; lane++) {
        int32_t source = index[i + lane];
        dst[i + lane] = block[lane] * y[source] + b[source];
    }
}

void vm_modulate_row(const float *src, float *dst, size_t count, float scale, float shift, const float *y,
                     const float *b, const int32_t *index) {
    size_t whole = count - count % LANES;
    for (size_t i = 0; i < whole; i += LANES) modulate_row_block(src, dst, i, LANES, scale, shift, y, b, index);
    modulate_row_block(src, dst, whole, count - whole, scale, shift, y, b, index);
}

static inline void modulate_channels_block(const float *src, float *dst, size_t i, size_t lanes, const float *scale,
                                           const float *shift, const float *y, const float *b) {
    float block[LANES];
    for (size_t lane = 0; lane < lanes; lane++) block[lane] = src[i + lane] * scale[i + lane] + shift[i + lane];
    for (size_t lane = 0; lane < lanes; lane++) dst[i + lane] = block[lane] * y[i + lane] + b[i + lane];
}

void vm_modulate_channels(const float *src, float *dst, size_t count, const float *scale, const float *shift,
                          const float *y, const float *b) {
    size_t whole = count - count % LANES;
    for (size_t i = 0; i < whole; i += LANES) modulate_channels_block(src, dst, i, LANES, scale, shift, y, b);
    modulate_channels_block(src, dst, whole, count - whole, scale, shift, y, b);
}
