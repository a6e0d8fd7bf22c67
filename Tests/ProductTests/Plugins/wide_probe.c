/* Echoes the bytes of the one input it is given, so a test sees what the host handed over: "wide" is declared
 * KD_INPUT_WIDE (16-bit grey arrives as 16 bits), "narrow" is not. The output is one grey row per input row holding
 * that row's bytes, so a 16-bit input comes back twice as wide. */
#include <string.h>

#include "kandinsky_plugin.h"

static const kd_input_desc_t inputs[] = {
    {sizeof(kd_input_desc_t), "wide", KD_INPUT_DEPTH, KD_INPUT_OPTIONAL | KD_INPUT_WIDE,
     "16 bits if the file has them"},
    {sizeof(kd_input_desc_t), "narrow", KD_INPUT_DEPTH, KD_INPUT_OPTIONAL, "always 8 bits"},
};
static const kd_plugin_desc_t descriptor = {
    sizeof(kd_plugin_desc_t), "wide-probe", "Wide probe", "1.4.0", "echoes the input bytes it was handed", NULL, 0,
    inputs, 2, NULL, 0,
};

static kd_status run(uint32_t index, const kd_run_context_t *ctx) {
    (void)index;
    if (ctx->input_count != 1) return KD_ERR_INVALID_ARGUMENT;
    const kd_image_t *in = KD_ARRAY_AT(kd_named_image_t, ctx->inputs, 0)->image;
    int32_t bytes_per_sample = KD_STRUCT_HAS(in, kd_image_t, bits_per_sample) && in->bits_per_sample == 16 ? 2 : 1;
    int32_t row = in->width * in->channels * bytes_per_sample;
    kd_image_t *out = ctx->allocate_output(ctx, row, in->height, 1);
    if (!out) return KD_ERR_OUT_OF_MEMORY;
    for (int32_t y = 0; y < in->height; y++) memcpy(out->data + y * out->row_bytes, in->data + y * in->row_bytes, row);
    return KD_OK;
}

static bool init(const kd_host_t *host) { return host->struct_size >= KD_HOST_SIZE_1_0; }
static uint32_t count(void) { return 1; }
static const kd_plugin_desc_t *desc(uint32_t i) { return i == 0 ? &descriptor : NULL; }

static const kd_plugin_entry_t entry = {sizeof(kd_plugin_entry_t), {KD_ABI_MAJOR, KD_ABI_MINOR, 0}, init, count, desc,
                                        run};
KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
