/* A plugin from a later minor version (1.9) whose descriptor structs grew fields this host does not know: the host
 * must read the 1.0/1.1 fields it knows and step over the rest, walking the arrays by the elements' struct_size. */
#include <string.h>

#include "kandinsky_plugin.h"

struct param_desc_1_9 {
    kd_param_desc_t known;
    uint64_t added_later; /* a field of the future; the host must skip it */
};
struct input_desc_1_9 {
    kd_input_desc_t known;
    const char *added_later;
};
struct plugin_desc_1_9 {
    kd_plugin_desc_t known;
    uint64_t added_later;
};

#define PARAM(key, type, def) \
    {{sizeof(struct param_desc_1_9), key, "help", type, 0, 0, 100, def}, 0xABABABABABABABABull}
static const struct param_desc_1_9 params[] = {
    PARAM("alpha", KD_PARAM_INT, "7"),
    PARAM("beta", KD_PARAM_FLOAT, "0.5"),
    PARAM("gamma", KD_PARAM_STRING, "word"),
};
static const struct input_desc_1_9 inputs[] = {
    {{sizeof(struct input_desc_1_9), "image", KD_INPUT_IMAGE, KD_INPUT_OPTIONAL, "optional"}, "future"},
    {{sizeof(struct input_desc_1_9), "depth", KD_INPUT_DEPTH, KD_INPUT_OPTIONAL, "optional"}, "future"},
};
static const struct plugin_desc_1_9 descriptor = {
    {sizeof(struct plugin_desc_1_9), "future-minor", "Future minor", "1.9.0", "a plugin from ABI 1.9", NULL, 0,
     &inputs[0].known, 2, &params[0].known, 3},
    0xCDCDCDCDCDCDCDCDull,
};

/* The host's values, walked by their stated size: writes "alpha beta gamma" into a 1x1 grey output's value. */
static kd_status run(uint32_t index, const kd_run_context_t *ctx) {
    (void)index;
    int64_t alpha = -1;
    for (uint32_t i = 0; i < ctx->param_count; i++) {
        const kd_value_t *v = KD_ARRAY_AT(kd_value_t, ctx->params, i);
        if (strcmp(v->key, "alpha") == 0) alpha = v->int_value;
    }
    kd_image_t *out = ctx->allocate_output(ctx, 1, 1, 1);
    if (!out) return KD_ERR_OUT_OF_MEMORY;
    out->data[0] = (uint8_t)alpha;
    return KD_OK;
}

static bool init(const kd_host_t *host) { return host->struct_size >= KD_HOST_SIZE_1_0; }
static uint32_t count(void) { return 1; }
static const kd_plugin_desc_t *desc(uint32_t i) { return i == 0 ? &descriptor.known : NULL; }

struct entry_1_9 {
    kd_plugin_entry_t known;
    void *added_later;
};
static const struct entry_1_9 entry = {{sizeof(struct entry_1_9), {1, 9, 0}, init, count, desc, run}, NULL};
KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry.known; }
