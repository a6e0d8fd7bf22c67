#include "dnnl_bridge.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void omp_set_num_threads(int);

/* One primitive with the scratch memory it needs per execution. */
typedef struct {
    dnnl_primitive_t primitive;
    size_t scratch_bytes;
} step_t;

struct kd_op {
    step_t main;
    /* Reorders between the caller's plain float32 and the primitive's layout; primitive NULL when none is needed. */
    step_t src_in, dst_out;
    dnnl_memory_desc_t user_src, user_dst, user_weights, bias_md;
    dnnl_memory_desc_t op_src, op_dst, op_weights;
    int32_t with_bias;
    char impl[128];
};

static dnnl_status_t run_step(const step_t *s, dnnl_stream_t stream, dnnl_exec_arg_t *args, int nargs,
                              void *scratch);

struct kd_weights {
    dnnl_memory_desc_t md;
    void *data;
    size_t bytes;
    int owns_data;
};

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void make_engine(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

static dnnl_engine_t cpu_engine(void) {
    pthread_once(&engine_once, make_engine);
    return engine;
}

#define FAIL(...) do { if (err && err_size) snprintf(err, err_size, __VA_ARGS__); goto fail; } while (0)
#define CHECK(call, what)                                                                   \
    do {                                                                                    \
        dnnl_status_t st_ = (call);                                                         \
        if (st_ != dnnl_success) FAIL("%s failed (oneDNN status %d)", what, (int)st_);      \
    } while (0)

void kd_dnnl_set_threads(int32_t threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

const char *kd_dnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

int32_t kd_dnnl_native_bf16(void) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    unsigned bf16 = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    return (isa & bf16) == bf16;
}

static void *aligned(size_t bytes) {
    return bytes ? aligned_alloc(64, (bytes + 63) & ~(size_t)63) : NULL;
}

/* Attributes every primitive here has: scratch memory brought by the caller, and an output scale (1: none). */
static dnnl_primitive_attr_t user_scratchpad_attr(float output_scale) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (output_scale != 1.0f) dnnl_primitive_attr_set_output_scales(attr, 1, 0, &output_scale);
    return attr;
}

/* Makes the primitive of pd into s, with its scratchpad size; takes ownership of pd. */
static int finish_step(dnnl_primitive_desc_t pd, step_t *s) {
    const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s->scratch_bytes = scratch ? dnnl_memory_desc_get_size(scratch) : 0;
    dnnl_status_t st = dnnl_primitive_create(&s->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    return st == dnnl_success ? 0 : -1;
}

/* A reorder from -> to, or no primitive when the two layouts are equal. */
static int make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, step_t *s) {
    s->primitive = NULL;
    s->scratch_bytes = 0;
    if (dnnl_memory_desc_equal(from, to)) return 0;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(1.0f);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, cpu_engine(), to, cpu_engine(), attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return -1;
    return finish_step(pd, s);
}

/* Completes op from its primitive descriptor: layouts, the main primitive and the activation reorders. */
static kd_op *finish_op(kd_op *op, dnnl_primitive_desc_t pd, char *err, size_t err_size) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(op->impl, sizeof op->impl, "%s", impl ? impl : "?");
    op->op_src = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    op->op_dst = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    op->op_weights = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (finish_step(pd, &op->main) != 0) FAIL("creating the %s primitive failed", op->impl);
    if (make_reorder(&op->user_src, &op->op_src, &op->src_in) != 0) FAIL("no reorder into the %s input", op->impl);
    if (make_reorder(&op->op_dst, &op->user_dst, &op->dst_out) != 0) FAIL("no reorder from the %s output", op->impl);
    return op;
fail:
    kd_op_free(op);
    return NULL;
}

/* The primitive of an operation descriptor with user-managed scratch memory; frees op when none exists. */
static kd_op *create_op(kd_op *op, const_dnnl_op_desc_t desc, float output_scale, const char *what, char *err,
                        size_t err_size) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(output_scale);
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, desc, attr, cpu_engine(), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) FAIL("no %s implementation (oneDNN status %d)", what, (int)st);
    return finish_op(op, pd, err, err_size);
fail:
    kd_op_free(op);
    return NULL;
}

static dnnl_data_type_t compute_type(int32_t data_type) { return data_type == KD_DT_BF16 ? dnnl_bf16 : dnnl_f32; }

kd_op *kd_conv_create(int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                      int64_t stride, int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                      int32_t data_type, int32_t plain_layout, int32_t src_layout, int32_t dst_layout,
                      int32_t with_bias, char *err, size_t err_size) {
    kd_op *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    if (!cpu_engine()) FAIL("oneDNN has no CPU engine");
    dnnl_format_tag_t user_src_tag = src_layout == KD_LAYOUT_NHWC ? dnnl_nhwc : dnnl_nchw;
    dnnl_format_tag_t user_dst_tag = dst_layout == KD_LAYOUT_NHWC ? dnnl_nhwc : dnnl_nchw;
    /* The output is written where the caller wants it; the input may be converted into the primitive's layout. */
    dnnl_format_tag_t src_tag = plain_layout ? dnnl_nchw : dnnl_format_tag_any;
    dnnl_format_tag_t dst_tag = plain_layout ? dnnl_nchw : user_dst_tag;
    int64_t ho = (h + pad_top + pad_bottom - kh) / stride + 1, wo = (w + pad_left + pad_right - kw) / stride + 1;
    dnnl_dims_t src_dims = {batch, cin, h, w}, dst_dims = {batch, cout, ho, wo}, wei_dims = {cout, cin, kh, kw};
    dnnl_dims_t bias_dims = {cout}, strides = {stride, stride};
    dnnl_dims_t pad_l = {pad_top, pad_left}, pad_r = {pad_bottom, pad_right};
    dnnl_data_type_t dt = compute_type(data_type);
    dnnl_memory_desc_t src_any, wei_any, dst_any;
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_src, 4, src_dims, dnnl_f32, user_src_tag), "source layout");
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_dst, 4, dst_dims, dnnl_f32, user_dst_tag), "output layout");
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_weights, 4, wei_dims, dnnl_f32, dnnl_oihw), "weight layout");
    CHECK(dnnl_memory_desc_init_by_tag(&op->bias_md, 1, bias_dims, dnnl_f32, dnnl_a), "bias layout");
    CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dt, src_tag), "source layout");
    CHECK(dnnl_memory_desc_init_by_tag(&wei_any, 4, wei_dims, dt, dnnl_format_tag_any), "weight layout");
    CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dst_tag), "output layout");
    op->with_bias = with_bias;
    dnnl_convolution_desc_t desc;
    CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src_any,
                                             &wei_any, with_bias ? &op->bias_md : NULL, &dst_any, strides, pad_l,
                                             pad_r), "convolution descriptor");
    return create_op(op, &desc, 1.0f, "convolution", err, err_size);
fail:
    kd_op_free(op);
    return NULL;
}

kd_op *kd_linear_create(int64_t rows, int64_t in_features, int64_t out_features, int32_t data_type,
                        int32_t with_bias, char *err, size_t err_size) {
    kd_op *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    if (!cpu_engine()) FAIL("oneDNN has no CPU engine");
    dnnl_dims_t src_dims = {rows, in_features}, wei_dims = {in_features, out_features};
    dnnl_dims_t dst_dims = {rows, out_features}, bias_dims = {1, out_features};
    dnnl_data_type_t dt = compute_type(data_type);
    dnnl_memory_desc_t src_op, wei_any;
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_src, 2, src_dims, dnnl_f32, dnnl_ab), "source layout");
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_dst, 2, dst_dims, dnnl_f32, dnnl_ab), "output layout");
    /* torch keeps the weight as [out, in]: the [in, out] matrix in column-major order. */
    CHECK(dnnl_memory_desc_init_by_tag(&op->user_weights, 2, wei_dims, dnnl_f32, dnnl_ba), "weight layout");
    CHECK(dnnl_memory_desc_init_by_tag(&op->bias_md, 2, bias_dims, dnnl_f32, dnnl_ab), "bias layout");
    CHECK(dnnl_memory_desc_init_by_tag(&src_op, 2, src_dims, dt, dnnl_ab), "source layout");
    CHECK(dnnl_memory_desc_init_by_tag(&wei_any, 2, wei_dims, dt, dnnl_format_tag_any), "weight layout");
    op->with_bias = with_bias;
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &src_op, &wei_any, with_bias ? &op->bias_md : NULL, &op->user_dst),
          "matmul descriptor");
    return create_op(op, &desc, 1.0f, "matmul", err, err_size);
fail:
    kd_op_free(op);
    return NULL;
}

kd_op *kd_matmul_create(int64_t m, int64_t n, int64_t k, int64_t a_stride, int64_t b_stride, int32_t b_transposed,
                        int64_t c_stride, float alpha, char *err, size_t err_size) {
    kd_op *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    if (!cpu_engine()) FAIL("oneDNN has no CPU engine");
    dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
    dnnl_dims_t a_strides = {a_stride, 1}, c_strides = {c_stride, 1};
    /* B^T given as rows of k values: element (kk, j) of B sits at j * b_stride + kk. */
    dnnl_dims_t b_strides = {b_transposed ? 1 : b_stride, b_transposed ? b_stride : 1};
    CHECK(dnnl_memory_desc_init_by_strides(&op->user_src, 2, a_dims, dnnl_bf16, a_strides), "A layout");
    CHECK(dnnl_memory_desc_init_by_strides(&op->user_weights, 2, b_dims, dnnl_bf16, b_strides), "B layout");
    CHECK(dnnl_memory_desc_init_by_strides(&op->user_dst, 2, c_dims, dnnl_f32, c_strides), "C layout");
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &op->user_src, &op->user_weights, NULL, &op->user_dst), "matmul descriptor");
    op = create_op(op, &desc, alpha, "matmul", err, err_size);
    if (op && !dnnl_memory_desc_equal(&op->user_weights, &op->op_weights)) {
        kd_op_free(op);
        op = NULL;
        if (err && err_size) snprintf(err, err_size, "the bf16 matmul wants its B operand in another layout");
    }
    return op;
fail:
    kd_op_free(op);
    return NULL;
}

int32_t kd_matmul_run(const kd_op *op, const uint16_t *a, const uint16_t *b, float *c, void *workspace,
                      char *err, size_t err_size) {
    dnnl_stream_t stream = NULL;
    dnnl_memory_t a_mem = NULL, b_mem = NULL, c_mem = NULL;
    int32_t rc = -1;
    if (!workspace && kd_op_workspace_bytes(op)) FAIL("the %s run has no workspace", op->impl);
    CHECK(dnnl_stream_create(&stream, cpu_engine(), dnnl_stream_default_flags), "stream");
    CHECK(dnnl_memory_create(&a_mem, &op->op_src, cpu_engine(), (void *)a), "A memory");
    CHECK(dnnl_memory_create(&b_mem, &op->op_weights, cpu_engine(), (void *)b), "B memory");
    CHECK(dnnl_memory_create(&c_mem, &op->op_dst, cpu_engine(), c), "C memory");
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
    CHECK(run_step(&op->main, stream, args, 3, workspace), op->impl);
    rc = 0;
fail:
    if (a_mem) dnnl_memory_destroy(a_mem);
    if (b_mem) dnnl_memory_destroy(b_mem);
    if (c_mem) dnnl_memory_destroy(c_mem);
    if (stream) dnnl_stream_destroy(stream);
    return rc;
}

void kd_op_free(kd_op *op) {
    if (!op) return;
    if (op->main.primitive) dnnl_primitive_destroy(op->main.primitive);
    if (op->src_in.primitive) dnnl_primitive_destroy(op->src_in.primitive);
    if (op->dst_out.primitive) dnnl_primitive_destroy(op->dst_out.primitive);
    free(op);
}


/* Executes one step with scratch memory the caller owns (at least s->scratch_bytes), so concurrent runs of one op
 * never share it. */
static dnnl_status_t run_step(const step_t *s, dnnl_stream_t stream, dnnl_exec_arg_t *args, int nargs,
                              void *scratch) {
    dnnl_memory_t scratch_mem = NULL;
    dnnl_status_t st = dnnl_success;
    if (s->scratch_bytes) {
        dnnl_memory_desc_t smd;
        dnnl_dims_t dims = {(int64_t)s->scratch_bytes};
        st = dnnl_memory_desc_init_by_tag(&smd, 1, dims, dnnl_u8, dnnl_a);
        if (st == dnnl_success) st = dnnl_memory_create(&scratch_mem, &smd, cpu_engine(), scratch);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = scratch_mem;
        nargs++;
    }
    if (st == dnnl_success) st = dnnl_primitive_execute(s->primitive, stream, nargs, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    if (scratch_mem) dnnl_memory_destroy(scratch_mem);
    return st;
}

static dnnl_status_t reorder(const step_t *s, dnnl_stream_t stream, const dnnl_memory_desc_t *from_md,
                             const void *from, const dnnl_memory_desc_t *to_md, void *to, void *scratch) {
    dnnl_memory_t a = NULL, b = NULL;
    dnnl_status_t st = dnnl_memory_create(&a, from_md, cpu_engine(), (void *)from);
    if (st == dnnl_success) st = dnnl_memory_create(&b, to_md, cpu_engine(), to);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
        st = run_step(s, stream, args, 2, scratch);
    }
    if (a) dnnl_memory_destroy(a);
    if (b) dnnl_memory_destroy(b);
    return st;
}

/* Reorders weights from one layout to another with a one-off reorder primitive. */
static kd_weights *make_weights(const dnnl_memory_desc_t *from_md, const void *from, const dnnl_memory_desc_t *to_md,
                                char *err, size_t err_size) {
    kd_weights *w = calloc(1, sizeof *w);
    dnnl_stream_t stream = NULL;
    step_t s = {0};
    void *scratch = NULL;
    if (!w) return NULL;
    w->md = *to_md;
    w->bytes = dnnl_memory_desc_get_size(to_md);
    w->owns_data = 1;
    w->data = aligned(w->bytes);
    if (!w->data) FAIL("no memory for %zu bytes of weights", w->bytes);
    if (dnnl_memory_desc_equal(from_md, to_md)) {
        memcpy(w->data, from, w->bytes);
        return w;
    }
    if (make_reorder(from_md, to_md, &s) != 0) FAIL("no weight reorder");
    scratch = aligned(s.scratch_bytes);
    if (s.scratch_bytes && !scratch) FAIL("no memory for %zu bytes of reorder scratch", s.scratch_bytes);
    CHECK(dnnl_stream_create(&stream, cpu_engine(), dnnl_stream_default_flags), "stream");
    CHECK(reorder(&s, stream, from_md, from, to_md, w->data, scratch), "weight reorder");
    free(scratch);
    dnnl_stream_destroy(stream);
    dnnl_primitive_destroy(s.primitive);
    return w;
fail:
    free(scratch);
    if (stream) dnnl_stream_destroy(stream);
    if (s.primitive) dnnl_primitive_destroy(s.primitive);
    kd_weights_free(w);
    return NULL;
}

kd_weights *kd_weights_prepare(const kd_op *op, const float *plain, char *err, size_t err_size) {
    return make_weights(&op->user_weights, plain, &op->op_weights, err, err_size);
}

kd_weights *kd_weights_wrap(const kd_op *op, const float *plain) {
    if (!dnnl_memory_desc_equal(&op->user_weights, &op->op_weights)) return NULL;
    kd_weights *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->md = op->op_weights;
    w->bytes = dnnl_memory_desc_get_size(&op->op_weights);
    w->data = (void *)plain;
    return w;
}

int32_t kd_weights_fit(const kd_weights *w, const kd_op *op) { return dnnl_memory_desc_equal(&w->md, &op->op_weights); }

kd_weights *kd_weights_relayout(const kd_weights *w, const kd_op *op, char *err, size_t err_size) {
    return make_weights(&w->md, w->data, &op->op_weights, err, err_size);
}


void kd_weights_free(kd_weights *w) {
    if (!w) return;
    if (w->owns_data) free(w->data);
    free(w);
}

static size_t round64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

/* The workspace of kd_op_run: [input in the op's layout | output in the op's layout | scratch of the largest step]. */
static size_t src_tmp_bytes(const kd_op *op) {
    return op->src_in.primitive ? round64(dnnl_memory_desc_get_size(&op->op_src)) : 0;
}

static size_t dst_tmp_bytes(const kd_op *op) {
    return op->dst_out.primitive ? round64(dnnl_memory_desc_get_size(&op->op_dst)) : 0;
}

size_t kd_op_workspace_bytes(const kd_op *op) {
    size_t scratch = larger(op->main.scratch_bytes, larger(op->src_in.scratch_bytes, op->dst_out.scratch_bytes));
    return src_tmp_bytes(op) + dst_tmp_bytes(op) + round64(scratch);
}

int32_t kd_op_run(const kd_op *op, const float *src, const kd_weights *w, const float *bias, float *dst,
                  void *workspace, char *err, size_t err_size) {
    dnnl_stream_t stream = NULL;
    dnnl_memory_t src_mem = NULL, wei_mem = NULL, bias_mem = NULL, dst_mem = NULL;
    char *src_tmp = workspace;
    char *dst_tmp = src_tmp + src_tmp_bytes(op);
    char *scratch = dst_tmp + dst_tmp_bytes(op);
    int32_t rc = -1;
    if (!workspace && kd_op_workspace_bytes(op)) FAIL("the %s run has no workspace", op->impl);
    CHECK(dnnl_stream_create(&stream, cpu_engine(), dnnl_stream_default_flags), "stream");
    const void *op_src = src;
    if (op->src_in.primitive) {
        CHECK(reorder(&op->src_in, stream, &op->user_src, src, &op->op_src, src_tmp, scratch), "input reorder");
        op_src = src_tmp;
    }
    void *op_dst = op->dst_out.primitive ? (void *)dst_tmp : (void *)dst;
    CHECK(dnnl_memory_create(&src_mem, &op->op_src, cpu_engine(), (void *)op_src), "input memory");
    CHECK(dnnl_memory_create(&wei_mem, &w->md, cpu_engine(), w->data), "weight memory");
    CHECK(dnnl_memory_create(&dst_mem, &op->op_dst, cpu_engine(), op_dst), "output memory");
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, wei_mem}, {DNNL_ARG_DST, dst_mem}};
    int nargs = 3;
    if (op->with_bias) {
        CHECK(dnnl_memory_create(&bias_mem, &op->bias_md, cpu_engine(), (void *)bias), "bias memory");
        args[nargs].arg = DNNL_ARG_BIAS;
        args[nargs].memory = bias_mem;
        nargs++;
    }
    CHECK(run_step(&op->main, stream, args, nargs, scratch), op->impl);
    if (op->dst_out.primitive) CHECK(reorder(&op->dst_out, stream, &op->op_dst, dst_tmp, &op->user_dst, dst,
                                             scratch), "output reorder");
    rc = 0;
fail:
    if (src_mem) dnnl_memory_destroy(src_mem);
    if (wei_mem) dnnl_memory_destroy(wei_mem);
    if (bias_mem) dnnl_memory_destroy(bias_mem);
    if (dst_mem) dnnl_memory_destroy(dst_mem);
    if (stream) dnnl_stream_destroy(stream);
    return rc;
}

int32_t kd_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        == dnnl_success ? 0 : -1;
}
