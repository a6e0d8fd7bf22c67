/* variations: a complete small plugin. It makes variations of a picture: the picture's CLIP image embedding
 * replaces the prompt's, and the text-to-image decoder draws a new image from it.
 *
 *   cc -std=c11 -shared -fPIC -I Sources/KandinskyPluginABI/include samples/plugins/variations.c \
 *      -o ~/.local/share/kandinsky/plugins/libkandinsky_plugin_variations.so
 *   kandinsky run variations --image photo.png --seed 3 -o variation.png
 */
#include <math.h>
#include <string.h>

#include "kandinsky_plugin.h"

static const kd_model_server_t *server; /* host-owned, valid forever; set in init */

static const kd_input_desc_t inputs[] = {
    {sizeof(kd_input_desc_t), "image", KD_INPUT_IMAGE, 0, "the picture to vary"},
};
static const kd_param_desc_t params[] = {
    {sizeof(kd_param_desc_t), "num_inference_steps", "decoder steps", KD_PARAM_INT, 0, 1, 1000, "50"},
    {sizeof(kd_param_desc_t), "guidance_scale", "guidance (on above 1)", KD_PARAM_FLOAT, 0, 0, 100, "4.0"},
    {sizeof(kd_param_desc_t), "scheduler", "ddpm, ddim, dpmsolver++ or unipc", KD_PARAM_STRING, 0, 0, 0, "unipc"},
    {sizeof(kd_param_desc_t), "seed", "random seed; -1 picks one", KD_PARAM_SEED, 0, -1, 9007199254740991.0, "-1"},
    {sizeof(kd_param_desc_t), "model_name", "text-to-image decoder", KD_PARAM_STRING, KD_PARAM_OPTIONAL | KD_PARAM_MODEL, 0, 0, NULL},
    {sizeof(kd_param_desc_t), "prior_model_name", "prior (for the image encoder)", KD_PARAM_STRING, KD_PARAM_OPTIONAL | KD_PARAM_MODEL, 0, 0, NULL},
};
static const kd_plugin_desc_t descriptor = {
    sizeof(kd_plugin_desc_t), "variations", "Image variations", "1.0.0",
    "Draws new images with the content and style of a picture (its CLIP image embedding as the condition).",
    NULL, 0, inputs, 1, params, sizeof(params) / sizeof(params[0]),
};

/* The host's values, walked by their stated size (KD_ARRAY_AT), so a later host may grow kd_value_t. */
static const kd_value_t *param(const kd_run_context_t *ctx, const char *key) {
    for (uint32_t i = 0; i < ctx->param_count; i++) {
        const kd_value_t *v = KD_ARRAY_AT(kd_value_t, ctx->params, i);
        if (strcmp(v->key, key) == 0 && v->has_value) return v;
    }
    return NULL;
}

static kd_status run(uint32_t index, const kd_run_context_t *ctx) {
    (void)index;
    const kd_image_t *image = KD_ARRAY_AT(kd_named_image_t, ctx->inputs, 0)->image; /* the host checked "image" */
    const kd_value_t *model = param(ctx, "model_name"), *prior_model = param(ctx, "prior_model_name");
    /* Held for this run; on failure load_model has already set the error message. */
    kd_model_t *prior = server->load_model(ctx, "prior", prior_model ? prior_model->string_value : NULL);
    kd_model_t *decoder = prior ? server->load_model(ctx, "text2img", model ? model->string_value : NULL) : NULL;
    if (!decoder) return KD_ERR_FAILED;
    kd_decoder_info_t info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    server->decoder_info(decoder, &info);

    kd_generator_t *g = server->generator_create((uint64_t)param(ctx, "seed")->int_value);
    kd_tensor_t *embeds = NULL, *negative = NULL, *unused = NULL, *latents = NULL, *out = NULL, *pixels = NULL;
    kd_status st = server->prior_embed_image(prior, image, &embeds);
    /* The negative: the prior's empty-prompt run gives the zero-image embedding as its second output. */
    if (st == KD_OK) st = server->prior_embed_prompt(ctx, prior, "", NULL, 2, 1.0f, g, &unused, &negative);
    int64_t side = info.default_height / info.scale_factor;
    int64_t shape[4] = {1, info.latent_channels, side, info.default_width / info.scale_factor};
    int64_t ts[1000];
    uint32_t count = 0;
    /* The run's sampler: the scheduler configured from the decoder's config, and its timesteps. */
    kd_sampler_args_t sampler_args = {sizeof sampler_args, param(ctx, "scheduler")->string_value,
                                      (int32_t)param(ctx, "num_inference_steps")->int_value, 1.0};
    char err[512];
    kd_sampler_t *sampler = st == KD_OK ? server->sampler_create(decoder, &sampler_args, err, sizeof err) : NULL;
    if (st == KD_OK && !sampler) {
        ctx->set_error(ctx, err);
        st = KD_ERR_INVALID_ARGUMENT;
    }
    if (st == KD_OK && !(latents = server->tensor_create(shape, 4))) st = KD_ERR_OUT_OF_MEMORY;
    if (st == KD_OK) {
        server->generator_randn(g, latents);
        st = server->sampler_timesteps(sampler, ts, 1000, &count);
    }
    if (st == KD_OK) {
        kd_denoise_args_t args;
        memset(&args, 0, sizeof args);
        args.struct_size = sizeof args;
        args.latents = latents;
        args.timesteps = ts;
        args.timestep_count = count;
        args.image_embeds = embeds;
        args.negative_image_embeds = negative;
        args.guidance_scale = (float)param(ctx, "guidance_scale")->float_value;
        args.generator = g;
        args.sampler = sampler;
        st = server->denoise(ctx, decoder, &args, &out);
    }
    if (st == KD_OK) st = server->movq_decode(decoder, out, &pixels);
    if (st == KD_OK) {
        int64_t h = server->tensor_dim(pixels, 2), w = server->tensor_dim(pixels, 3);
        kd_image_t *img = ctx->allocate_output(ctx, (int32_t)w, (int32_t)h, 3);
        const float *p = server->tensor_data(pixels);
        for (int64_t y = 0; img && y < h; y++)
            for (int64_t x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) img->data[y * img->row_bytes + x * 3 + c] = (uint8_t)nearbyintf(p[(c * h + y) * w + x] * 255.0f);
        if (!img) st = KD_ERR_OUT_OF_MEMORY;
    }
    kd_tensor_t *all[] = {embeds, negative, unused, latents, out, pixels};
    for (int i = 0; i < 6; i++)
        if (all[i]) server->tensor_release(all[i]);
    if (sampler) server->sampler_release(sampler);
    server->generator_release(g);
    return st;
}

static bool init(const kd_host_t *host) {
    server = host->get_extension(host, KD_EXT_MODEL_SERVER);
    /* This plugin calls 1.1 functions: decline a 1.0 host, whose table ends before them. */
    return server != NULL && KD_STRUCT_HAS(server, kd_model_server_t, sampler_release);
}
static uint32_t plugin_count(void) { return 1; }
static const kd_plugin_desc_t *plugin_descriptor(uint32_t i) { return i == 0 ? &descriptor : NULL; }
static const kd_plugin_entry_t entry = {sizeof(kd_plugin_entry_t), {KD_ABI_MAJOR, KD_ABI_MINOR, 0}, init, plugin_count, plugin_descriptor, run};

KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
