/* outpaint: a plugin in plain C, built against kandinsky_plugin.h alone. It grows the canvas by `border` pixels on
 * every side (edges stretched outward as a starting point), then inpaints the new border with the 9-channel
 * inpainting decoder through the host's model server -- the same algorithm as the inpaint plugin, written here
 * with nothing but the ABI (1.1: the latent mask comes from the server's inpaint_condition, the sampler from
 * sampler_create; 1.2: keep_unmasked's seam from inpaint_composite, so the rules live in one place; 1.5: num_images,
 * image k from seed + k, the images denoised as one batch of denoise_batch_limit at most). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kandinsky_plugin.h"

static const kd_model_server_t *server;

/* The largest output side: every other plugin declares its width and height with this maximum
 * (Plugins/PluginSupport/PluginSupport.swift, `width` and `height`); outpaint sizes its canvas from the input, so
 * it checks the canvas against it. */
#define MAX_CANVAS_SIDE 4096

/* ------------------------------------------------------------------------------------------- descriptor */
static const kd_input_desc_t inputs[] = {
    {sizeof(kd_input_desc_t), "image", KD_INPUT_IMAGE, 0, "the picture to extend"},
};
static const kd_param_desc_t params[] = {
    {sizeof(kd_param_desc_t), "prompt", "what the new border should show", KD_PARAM_STRING, 0, 0, 0, NULL},
    {sizeof(kd_param_desc_t), "negative_prompt", "what to steer away from", KD_PARAM_STRING, KD_PARAM_OPTIONAL, 0, 0,
     NULL},
    {sizeof(kd_param_desc_t), "border", "pixels added on every side", KD_PARAM_INT, 0, 8, 1024, "64"},
    {sizeof(kd_param_desc_t), "prior_num_inference_steps", "prior denoising steps", KD_PARAM_INT, 0, 2, 1000, "25"},
    {sizeof(kd_param_desc_t), "prior_guidance_scale", "prior guidance (on above 1)", KD_PARAM_FLOAT, 0, 0, 100, "4.0"},
    {sizeof(kd_param_desc_t), "num_inference_steps", "decoder denoising steps", KD_PARAM_INT, 0, 1, 1000, "100"},
    {sizeof(kd_param_desc_t), "guidance_scale", "decoder guidance (on above 1)", KD_PARAM_FLOAT, 0, 0, 100, "1.0"},
    {sizeof(kd_param_desc_t), "scheduler", "decoder sampler: ddpm, ddim, dpmsolver++ or unipc", KD_PARAM_STRING, 0,
     0, 0, "ddpm"},
    {sizeof(kd_param_desc_t), "seed", "random seed; -1 picks one", KD_PARAM_SEED, 0, -1, 9007199254740991.0, "-1"},
    {sizeof(kd_param_desc_t), "num_images", "images to make; image k uses seed + k", KD_PARAM_INT, 0, 1, 64, "1"},
    {sizeof(kd_param_desc_t), "keep_unmasked",
     "the picture's own pixels stay byte for byte, with a feathered seam (false = diffusers' output)", KD_PARAM_BOOL,
     0, 0, 1, "true"},
    {sizeof(kd_param_desc_t), "mask_blur", "keep_unmasked: the seam's width in pixels, inside the new border",
     KD_PARAM_INT, 0, 0, 256, "4"},
    {sizeof(kd_param_desc_t), "model_name", "inpainting decoder (folder or hub id)", KD_PARAM_STRING,
     KD_PARAM_OPTIONAL | KD_PARAM_MODEL, 0, 0, NULL},
    {sizeof(kd_param_desc_t), "prior_model_name", "prior (folder or hub id)", KD_PARAM_STRING,
     KD_PARAM_OPTIONAL | KD_PARAM_MODEL, 0, 0, NULL},
};
static const kd_plugin_desc_t descriptor = {
    sizeof(kd_plugin_desc_t), "outpaint", "Outpainting (C)", "1.0.0",
    "Extends a picture beyond its edges: grows the canvas by a border and inpaints the border from the prompt.",
    NULL, 0, inputs, 1, params, sizeof(params) / sizeof(params[0]),
};

/* ------------------------------------------------------------------------------------------- helpers */
static const kd_value_t *param(const kd_run_context_t *ctx, const char *key) {
    for (uint32_t i = 0; i < ctx->param_count; i++) {
        const kd_value_t *v = KD_ARRAY_AT(kd_value_t, ctx->params, i);
        if (strcmp(v->key, key) == 0 && v->has_value) return v;
    }
    return NULL;
}
/* Every numeric parameter is declared with a default, which the host fills in: no fallback values here. */
static int64_t int_param(const kd_run_context_t *ctx, const char *key) {
    const kd_value_t *v = param(ctx, key);
    return v ? v->int_value : 0;
}
static double float_param(const kd_run_context_t *ctx, const char *key) {
    const kd_value_t *v = param(ctx, key);
    return v ? v->float_value : 0;
}
static const char *string_param(const kd_run_context_t *ctx, const char *key) {
    const kd_value_t *v = param(ctx, key);
    return v ? v->string_value : NULL;
}

static kd_status fail(const kd_run_context_t *ctx, kd_status status, const char *message) {
    if (status != KD_CANCELLED && message) ctx->set_error(ctx, message);
    return status;
}

static kd_tensor_t *tensor4(int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    return server->tensor_create(shape, 4);
}

/* State the step hook needs: keep the known region of every image of the batch on the noisy trajectory of the
 * original latents, with that image's own noise. */
struct hook_state {
    const kd_sampler_t *sampler;
    const kd_tensor_t *image_latents; /* [1, C, h, w] */
    const kd_tensor_t *noise;         /* [images, C, h, w] */
    kd_tensor_t *row;                 /* [1, C, h, w] scratch */
    const int64_t *timesteps;
    uint32_t count, images;
    const float *mask; /* [h * w], 1 = keep */
    int64_t channels, plane;
};

static void blend(float *lat, const float *known, const float *mask, int64_t channels, int64_t plane) {
    for (int64_t c = 0; c < channels; c++)
        for (int64_t i = 0; i < plane; i++)
            lat[c * plane + i] = mask[i] * known[c * plane + i] + (1 - mask[i]) * lat[c * plane + i];
}

static kd_status step_hook(void *user, uint32_t i, kd_tensor_t *latents) {
    struct hook_state *s = user;
    int64_t slab = s->channels * s->plane;
    for (uint32_t k = 0; k < s->images; k++) {
        kd_tensor_t *proper = NULL;
        if (i + 1 < s->count) {
            memcpy(server->tensor_data(s->row), server->tensor_data(s->noise) + k * slab, sizeof(float) * slab);
            kd_status st =
                server->sampler_add_noise(s->sampler, s->image_latents, s->row, s->timesteps[i + 1], &proper);
            if (st != KD_OK) return st;
        }
        blend(server->tensor_data(latents) + k * slab, server->tensor_data(proper ? proper : s->image_latents), s->mask,
              s->channels, s->plane);
        if (proper) server->tensor_release(proper);
    }
    return KD_OK;
}

/* What every image of a run shares: the models and the starting canvas (all owned by run()). */
struct canvas_state {
    kd_model_t *prior, *decoder;
    kd_tensor_t *pixels;   /* [1, 3, H, W] in [-1, 1] */
    const float *keep;     /* [H * W], 1 = the picture's own pixel */
    uint8_t *canvas;       /* H * W * 3 bytes: what keep_unmasked restores */
    int64_t width, height, latent_channels, scale_factor;
};

/* Output image `index`: the final latents [1, C, h, w] through MoVQ, then keep_unmasked's seam. */
static kd_status write_image(const kd_run_context_t *ctx, const struct canvas_state *cs, const kd_tensor_t *latents,
                             const kd_tensor_t *keep_tensor, uint32_t index) {
    int64_t W = cs->width, H = cs->height, plane_px = W * H;
    kd_tensor_t *decoded = NULL;
    kd_status st = server->movq_decode(cs->decoder, latents, &decoded);
    if (st != KD_OK) return st;
    kd_image_t *img = index == 0 ? ctx->allocate_output(ctx, (int32_t)W, (int32_t)H, 3)
                                 : ctx->allocate_output_at(ctx, index, (int32_t)W, (int32_t)H, 3);
    if (!img) {
        server->tensor_release(decoded);
        return fail(ctx, KD_ERR_OUT_OF_MEMORY, "cannot allocate the output");
    }
    const float *d = server->tensor_data(decoded);
    for (int64_t i = 0; i < 3 * plane_px; i++) {
        /* The byte conversion below is undefined outside [0, 1]: broken weights give NaN here. */
        if (!(d[i] >= 0 && d[i] <= 1)) {
            server->tensor_release(decoded);
            return fail(ctx, KD_ERR_FAILED, "the decoded picture holds NaN or infinity: the MoVQ decoder produced it "
                                            "(broken weights?)");
        }
    }
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                img->data[y * img->row_bytes + x * 3 + c] = (uint8_t)nearbyintf(d[c * plane_px + y * W + x] * 255.0f);
    server->tensor_release(decoded);
    if (!int_param(ctx, "keep_unmasked")) return KD_OK;
    if (!KD_STRUCT_HAS(server, kd_model_server_t, inpaint_composite))
        return fail(ctx, KD_ERR_UNSUPPORTED, "keep_unmasked needs a host whose model server speaks ABI 1.2");
    kd_image_t original = {sizeof(kd_image_t), (int32_t)W, (int32_t)H, 3, W * 3, cs->canvas, 8};
    st = server->inpaint_composite(img, &original, keep_tensor, (int32_t)int_param(ctx, "mask_blur"));
    if (st != KD_OK) fail(ctx, st, "inpaint_composite refused the canvas");
    return st;
}

/* The largest num_images (the parameter's declared maximum). */
#define MAX_IMAGES 64

/* Output images first .. first + count - 1 of the run, image k made from seed + k, denoised in one call. */
static kd_status outpaint_batch(const kd_run_context_t *ctx, const struct canvas_state *cs, uint64_t seed,
                                uint32_t first, uint32_t count) {
    kd_status st = KD_OK;
    kd_model_t *prior = cs->prior, *decoder = cs->decoder;
    int64_t W = cs->width, H = cs->height, lc = cs->latent_channels, f = cs->scale_factor, plane_px = W * H;
    int64_t h = H / f, w = W / f, plane = h * w, slab = lc * plane;
    kd_generator_t *g[MAX_IMAGES] = {0};
    kd_tensor_t *embeds = NULL, *negative = NULL, *image_latents = NULL, *keep_tensor = NULL, *latent_mask = NULL,
                *extra = NULL, *latents = NULL, *noise = NULL, *row = NULL, *out = NULL;
    kd_sampler_t *sampler = NULL;
    int64_t *ts = NULL;
    for (uint32_t k = 0; k < count; k++) g[k] = server->generator_create(seed + first + k);

    /* The prompt through the prior on each image's generator, in the order a run of one image draws: [count, D]. */
    for (uint32_t k = 0; k < count; k++) {
        kd_tensor_t *e = NULL, *n = NULL;
        st = server->prior_embed_prompt(ctx, prior, string_param(ctx, "prompt"), string_param(ctx, "negative_prompt"),
                                        (int32_t)int_param(ctx, "prior_num_inference_steps"),
                                        (float)float_param(ctx, "prior_guidance_scale"), g[k], &e, &n);
        if (st != KD_OK) goto done;
        int64_t d = server->tensor_dim(e, 1), shape[2] = {count, d};
        if (k == 0) {
            embeds = server->tensor_create(shape, 2);
            negative = server->tensor_create(shape, 2);
        }
        if (embeds && negative) {
            memcpy(server->tensor_data(embeds) + k * d, server->tensor_data(e), sizeof(float) * d);
            memcpy(server->tensor_data(negative) + k * d, server->tensor_data(n), sizeof(float) * d);
        }
        server->tensor_release(e);
        server->tensor_release(n);
        if (!embeds || !negative) { st = fail(ctx, KD_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
    }
    if ((st = server->movq_encode(decoder, cs->pixels, &image_latents)) != KD_OK) goto done;

    /* The latent mask and the UNet's extra channels: the server's inpaint_condition, as the inpaint plugin gets
     * them, shared by every image. */
    uint32_t copies = float_param(ctx, "guidance_scale") > 1 ? 2 : 1;
    keep_tensor = tensor4(1, 1, H, W);
    latents = tensor4(count, lc, h, w);
    noise = tensor4(count, lc, h, w);
    row = tensor4(1, lc, h, w);
    if (!keep_tensor || !latents || !noise || !row) {
        st = fail(ctx, KD_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    memcpy(server->tensor_data(keep_tensor), cs->keep, sizeof(float) * plane_px);
    if ((st = server->inpaint_condition(decoder, keep_tensor, image_latents, copies, &latent_mask, &extra)) != KD_OK) {
        fail(ctx, st, "inpaint_condition refused the canvas mask");
        goto done;
    }
    const float *il = server->tensor_data(image_latents);
    const float *mask = server->tensor_data(latent_mask);
    for (uint32_t k = 0; k < count; k++) {
        server->generator_randn(g[k], row);
        memcpy(server->tensor_data(latents) + k * slab, server->tensor_data(row), sizeof(float) * slab);
    }
    memcpy(server->tensor_data(noise), server->tensor_data(latents), sizeof(float) * count * slab);

    int32_t steps = (int32_t)int_param(ctx, "num_inference_steps");
    kd_sampler_args_t sargs = {sizeof(kd_sampler_args_t), string_param(ctx, "scheduler"), steps, 1.0};
    char err[1024] = {0};
    if (!(sampler = server->sampler_create(decoder, &sargs, err, sizeof err))) {
        st = fail(ctx, KD_ERR_INVALID_ARGUMENT, err);
        goto done;
    }
    ts = malloc(sizeof(int64_t) * (size_t)steps);
    uint32_t step_count = 0;
    if (!ts) { st = fail(ctx, KD_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
    if ((st = server->sampler_timesteps(sampler, ts, (uint32_t)steps, &step_count)) != KD_OK) goto done;
    struct hook_state hs = {sampler, image_latents, noise, row, ts, step_count, count, mask, lc, plane};
    kd_denoise_args_t args;
    memset(&args, 0, sizeof args);
    args.struct_size = sizeof args;
    args.latents = latents;
    args.timesteps = ts;
    args.timestep_count = step_count;
    args.image_embeds = embeds;
    args.negative_image_embeds = negative;
    args.guidance_scale = (float)float_param(ctx, "guidance_scale");
    args.extra_channels = extra;
    args.step_hook = step_hook;
    args.step_hook_user = &hs;
    args.generator = g[0];
    if (count > 1) {
        args.generators = g;
        args.generator_count = count;
    }
    args.sampler = sampler;
    if ((st = server->denoise(ctx, decoder, &args, &out)) != KD_OK) goto done;

    for (uint32_t k = 0; k < count && st == KD_OK; k++) {
        float *image_out = server->tensor_data(out) + k * slab;
        blend(image_out, il, mask, lc, plane);
        memcpy(server->tensor_data(row), image_out, sizeof(float) * slab);
        st = write_image(ctx, cs, row, keep_tensor, first + k);
    }

done:
    free(ts);
    if (sampler) server->sampler_release(sampler);
    kd_tensor_t *all[] = {embeds, negative, image_latents, keep_tensor, latent_mask, extra, latents, noise, row, out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) server->tensor_release(all[i]);
    for (uint32_t k = 0; k < count; k++)
        if (g[k]) server->generator_release(g[k]);
    return st;
}

/* ------------------------------------------------------------------------------------------- run */
static kd_status run(uint32_t index, const kd_run_context_t *ctx) {
    (void)index;
    const kd_image_t *image = NULL;
    for (uint32_t i = 0; i < ctx->input_count; i++) {
        const kd_named_image_t *named = KD_ARRAY_AT(kd_named_image_t, ctx->inputs, i);
        if (strcmp(named->key, "image") == 0) image = named->image;
    }
    if (!image) return fail(ctx, KD_ERR_INVALID_ARGUMENT, "outpaint needs an image");
    /* load_model reports its own errors through ctx. */
    kd_model_t *prior = server->load_model(ctx, "prior", string_param(ctx, "prior_model_name"));
    if (!prior) return KD_ERR_FAILED;
    kd_model_t *decoder = server->load_model(ctx, "inpaint", string_param(ctx, "model_name"));
    if (!decoder) return KD_ERR_FAILED;
    kd_decoder_info_t info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    server->decoder_info(decoder, &info);
    int64_t lc = info.latent_channels, f = info.scale_factor, q = f * f;
    if (info.has_hint || info.unet_in_channels != 2 * lc + 1)
        return fail(ctx, KD_ERR_UNSUPPORTED, "model_name is not an inpainting decoder");

    /* Canvas: the picture centred, the border filled by stretching the nearest edge pixel; sized up to a multiple of
     * q. */
    int64_t border = int_param(ctx, "border");
    int64_t W = ((image->width + 2 * border + q - 1) / q) * q, H = ((image->height + 2 * border + q - 1) / q) * q;
    if (W > MAX_CANVAS_SIDE || H > MAX_CANVAS_SIDE) {
        char message[160];
        snprintf(message, sizeof message,
                 "the canvas (%lldx%lld: the image plus the border) is larger than %d on a side", (long long)W,
                 (long long)H, MAX_CANVAS_SIDE);
        return fail(ctx, KD_ERR_INVALID_ARGUMENT, message);
    }
    int64_t ox = (W - image->width) / 2, oy = (H - image->height) / 2, plane_px = W * H;
    float *keep = malloc(sizeof(float) * plane_px);
    uint8_t *canvas = malloc((size_t)plane_px * 3); /* the starting canvas as bytes: what keep_unmasked restores */
    kd_tensor_t *pixels = tensor4(1, 3, H, W);
    if (!keep || !canvas || !pixels) {
        free(keep);
        free(canvas);
        if (pixels) server->tensor_release(pixels);
        return fail(ctx, KD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    float *px = server->tensor_data(pixels);
    for (int64_t y = 0; y < H; y++) {
        for (int64_t x = 0; x < W; x++) {
            int64_t sx = x - ox, sy = y - oy;
            int inside = sx >= 0 && sy >= 0 && sx < image->width && sy < image->height;
            keep[y * W + x] = inside ? 1.0f : 0.0f;
            sx = sx < 0 ? 0 : sx >= image->width ? image->width - 1 : sx;
            sy = sy < 0 ? 0 : sy >= image->height ? image->height - 1 : sy;
            const uint8_t *p = image->data + sy * image->row_bytes + sx * image->channels;
            for (int c = 0; c < 3; c++) {
                uint8_t v = p[image->channels < 3 ? 0 : c];
                canvas[(y * W + x) * 3 + c] = v;
                px[c * plane_px + y * W + x] = v / 127.5f - 1.0f;
            }
        }
    }
    /* Image k of num_images is made with seed + k: the output of a run of that seed alone. */
    uint32_t images = KD_STRUCT_HAS(ctx, kd_run_context_t, output_count) ? ctx->output_count : 1;
    if ((int64_t)images != int_param(ctx, "num_images")) {
        free(keep);
        free(canvas);
        server->tensor_release(pixels);
        return fail(ctx, KD_ERR_UNSUPPORTED, "num_images above 1 needs a host that speaks plugin ABI 1.5");
    }
    struct canvas_state canvas_state = {prior, decoder, pixels, keep, canvas, W, H, lc, f};
    uint32_t limit = 1;
    if (images > 1 && KD_STRUCT_HAS(server, kd_model_server_t, denoise_batch_limit))
        limit = server->denoise_batch_limit(decoder, (int32_t)(H / f), (int32_t)(W / f),
                                            (float)float_param(ctx, "guidance_scale"), images);
    if (limit < 1) limit = 1;
    kd_status st = KD_OK;
    for (uint32_t first = 0; first < images && st == KD_OK; first += limit)
        st = outpaint_batch(ctx, &canvas_state, (uint64_t)int_param(ctx, "seed"), first,
                            images - first < limit ? images - first : limit);
    free(keep);
    free(canvas);
    server->tensor_release(pixels);
    return st;
}

/* ------------------------------------------------------------------------------------------- entry */
static bool init(const kd_host_t *host) {
    server = host->get_extension(host, KD_EXT_MODEL_SERVER);
    /* Needs the 1.1 table: inpaint_condition is its last function. */
    return server && KD_STRUCT_HAS(server, kd_model_server_t, inpaint_condition);
}
static uint32_t plugin_count(void) { return 1; }
static const kd_plugin_desc_t *plugin_descriptor(uint32_t index) { return index == 0 ? &descriptor : NULL; }

static const kd_plugin_entry_t entry = {
    sizeof(kd_plugin_entry_t), {KD_ABI_MAJOR, KD_ABI_MINOR, 0}, init, plugin_count, plugin_descriptor, run,
};

KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
