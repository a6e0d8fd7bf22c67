/* Element-wise kernels and sums written so the C compiler vectorises them: softmax rows, SiLU, the group norm's
 * statistics. glibc's scalar expf, called once per element from Swift, kept those loops scalar and was the largest
 * single cost outside oneDNN in a 512x512 run (the softmax over the MoVQ's 4096x4096 attention scores, the SiLU
 * after every group norm); a Double sum in Swift is one serial chain (Swift never reorders floating-point adds).
 * Every function works on one contiguous span, allocates nothing, and may be called from any thread on disjoint
 * spans. An element's result depends only on its own input (softmax: on its row), never on where it sits in the
 * span, so a batch of images gets, image by image, the bits each image gets alone. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* e^x, within 2 ulp of float64's exp (VectorMathTests); 0 below -87.34 (so e^-inf is 0), saturating near 2.4e38
 * above 88.38. */
float vm_exp(float x);

/* dst[i] = v / (1 + e^(-slope * v)) with v = src[i] * scale + shift, for count floats. src and dst: the caller's,
 * dst may equal src. slope 1 is SiLU, 1.702 transformers' quick GELU; scale 1, shift 0 apply it alone. */
void vm_sigmoid_weighted(const float *src, float *dst, size_t count, float scale, float shift, float slope);

/* Softmax of one row in place: e^(x - max) / sum, the maximum and the sum taken in 16 lanes and then combined
 * (PyTorch's CPU softmax also sums in vector lanes). row: the caller's, count floats. */
void vm_softmax_row(float *row, size_t count);

/* Sums in double of count floats (with centre: of their squared deviations (x - centre)^2), in 8 lanes combined at
 * the end. Double because a group norm's sums span up to a million values; the order of the adds then changes the
 * float32 result by no more than its last bit. values: the caller's. */
double vm_sum(const float *values, size_t count);
double vm_sum_squared_deviations(const float *values, size_t count, double centre);

/* sums[c] += values[c] (centres NULL) or sums[c] += (values[c] - centres[c])^2 for c < count, in double: one
 * pixel's channels of a channels-last map added into per-channel sums. All three arrays: the caller's. */
void vm_accumulate_channels(const float *values, size_t count, const double *centres, double *sums);

/* One row of a group-normalised map, modulated as MoVQ's SpatialNorm does:
 * dst[i] = (src[i] * scale + shift) * y[index[i]] + b[index[i]] for i < count, rounding after each operation. y and b
 * are a row of the modulation maps at their own (lower) resolution and index the nearest-neighbour source column of
 * each output column, so the upsampled maps are never made. All arrays: the caller's; dst may equal src. */
void vm_modulate_row(const float *src, float *dst, size_t count, float scale, float shift, const float *y,
                     const float *b, const int32_t *index);

/* The same for one channels-last pixel: dst[c] = (src[c] * scale[c] + shift[c]) * y[c] + b[c] for c < count, y and b
 * that pixel's source pixel in the modulation maps. All arrays: the caller's; dst may equal src. */
void vm_modulate_channels(const float *src, float *dst, size_t count, const float *scale, const float *shift,
                          const float *y, const float *b);
