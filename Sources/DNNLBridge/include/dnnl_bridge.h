/* The engine's compute backend over oneDNN's C API: convolutions and linear layers as primitives created once per
 * shape, weights reordered once into the layout a primitive asks for. Activations cross this boundary as float32
 * (NCHW or NHWC for convolutions, row-major [rows, features] for linear layers); any blocked layout or bfloat16
 * conversion the primitive wants happens inside. Every function may be called from any thread: a kd_op and a
 * kd_weights are immutable once made, and each run brings its own stream and scratch memory. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Compute data types (int32_t fields, never enum-typed). */
#define KD_DT_F32 0
#define KD_DT_BF16 1

/* One primitive for one shape and data type. Owned by the caller of kd_*_create; free with kd_op_free. */
typedef struct kd_op kd_op;
/* Weights in the layout (and data type) that some kd_op asked for. Owned by the caller; free with kd_weights_free. */
typedef struct kd_weights kd_weights;

/* Sets oneDNN's (OpenMP) thread count. Call before the first primitive runs. */
void kd_dnnl_set_threads(int32_t threads);
/* The instruction set oneDNN dispatches to on this CPU ("avx2", "avx512_core_amx", ...): a static string. */
const char *kd_dnnl_isa(void);
/* 1 when the CPU computes bfloat16 natively (avx512_bf16 or AMX), else 0. */
int32_t kd_dnnl_native_bf16(void);

/* Activation layouts across this boundary (int32_t fields). */
#define KD_LAYOUT_NCHW 0
#define KD_LAYOUT_NHWC 1

/* torch.nn.Conv2d (groups 1, dilation 1) on src [batch, cin, h, w] with weights [cout, cin, kh, kw]; the caller's
 * src and dst are float32 in src_layout / dst_layout. With plain_layout 1 the primitive works on NCHW itself (both
 * layouts must then be KD_LAYOUT_NCHW; oneDNN picks its im2col + GEMM kernels, which sum as a GEMM does); with 0 it
 * reads the input in the layout it likes best (converted inside kd_op_run) and writes dst_layout directly.
 * Returns NULL and writes a message into err (err_size bytes, owned by the caller) when oneDNN has no
 * implementation. */
kd_op *kd_conv_create(int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                      int64_t stride, int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                      int32_t data_type, int32_t plain_layout, int32_t src_layout, int32_t dst_layout,
                      int32_t with_bias, char *err, size_t err_size);

/* torch.nn.Linear: dst [rows, out] = src [rows, in] * weight^T + bias, weight given as [out, in]. */
kd_op *kd_linear_create(int64_t rows, int64_t in_features, int64_t out_features, int32_t data_type,
                        int32_t with_bias, char *err, size_t err_size);

/* C [m, n] (row stride c_stride, float32) = alpha * A [m, k] (row stride a_stride) * B [k, n], A and B bfloat16
 * read in place: B as rows of n values (row stride b_stride) or, with b_transposed 1, as B^T's rows of k values.
 * Attention's two products on one head's columns of q, k and v. Run with kd_matmul_run, not kd_op_run. */
kd_op *kd_matmul_create(int64_t m, int64_t n, int64_t k, int64_t a_stride, int64_t b_stride, int32_t b_transposed,
                        int64_t c_stride, float alpha, char *err, size_t err_size);
void kd_op_free(kd_op *op);

/* Weights for op from plain float32 values (conv: [cout, cin, kh, kw]; linear: [out, in]); plain is only read. */
kd_weights *kd_weights_prepare(const kd_op *op, const float *plain, char *err, size_t err_size);
/* When op takes its weights in the plain layout: weights that point at plain (not copied; plain must outlive the
 * result, which kd_weights_free releases without touching plain). Else NULL. */
kd_weights *kd_weights_wrap(const kd_op *op, const float *plain);
/* 1 when w is already in the layout op wants. */
int32_t kd_weights_fit(const kd_weights *w, const kd_op *op);
/* The same weights in op's layout (w is only read). */
kd_weights *kd_weights_relayout(const kd_weights *w, const kd_op *op, char *err, size_t err_size);
void kd_weights_free(kd_weights *w);

/* Bytes of workspace kd_op_run needs for op (layout conversions and oneDNN scratch); may be 0. */
size_t kd_op_workspace_bytes(const kd_op *op);
/* Runs op: src and dst are float32 in the layouts op was made for (caller-owned, not aliased), bias float32 [out]
 * or NULL, w fits op, workspace caller-owned, 64-byte aligned, kd_op_workspace_bytes(op) bytes, used by this call
 * only (NULL when that is 0). Returns 0, or -1 with a message in err. */
int32_t kd_op_run(const kd_op *op, const float *src, const kd_weights *w, const float *bias, float *dst,
                  void *workspace, char *err, size_t err_size);

/* Runs a kd_matmul_create op on caller-owned operands; workspace as for kd_op_run. Returns 0, or -1 with a
 * message in err. */
int32_t kd_matmul_run(const kd_op *op, const uint16_t *a, const uint16_t *b, float *c, void *workspace,
                      char *err, size_t err_size);
/* C = alpha * op(A) * op(B) + beta * C, row-major, float32 (oneDNN's sgemm). Returns 0, or -1 on bad arguments. */
int32_t kd_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
