/* kandinsky_plugin.h -- the one contract between the kandinsky host and its variant plugins (ABI 1.5).
 *
 * A plugin is a shared library exporting `kandinsky_plugin_entry`. The host dlopens it, checks `abi.major`, calls
 * `init` once with the host interface, lists its plugins through `plugin_count`/`plugin_descriptor`, and calls
 * `run` once per request. Libraries are never unloaded.
 *
 * Rules (after CLAP):
 *  - Every struct begins with `struct_size` and only ever grows at its end. A reader accepts any struct_size at
 *    least the 1.0 size of that struct (KD_*_SIZE_1_0 below) and reads only the fields that struct_size covers
 *    (KD_STRUCT_HAS); a field it does not cover is absent (its default, or NULL for a function).
 *  - Arrays of versioned structs are walked by their elements' struct_size, not by the reader's sizeof: element i
 *    starts i * array[0].struct_size bytes in (KD_ARRAY_AT), and all elements of one array share that size.
 *  - A writer filling a caller's struct writes at most the caller's struct_size bytes and sets struct_size to
 *    what it wrote.
 *  - Fields have fixed widths: enumerations travel as uint32_t (the enum constants name the values).
 *  - New host services arrive as extensions fetched by string id with host->get_extension; an id ends in "/N" and
 *    a changed table gets a new N.
 *  - Strings are UTF-8 and NUL-terminated.
 *  - Thread tags: [main] = the thread that loaded the library; [run] = the thread that called run(); [any] = any
 *    thread. A plugin may run on several threads at once for different requests; the host serialises nothing.
 *  - Ownership is stated on every pointer: "host-owned" memory is released by the host (never free it),
 *    "plugin-owned" memory must stay valid for as long as the comment says.
 */
#ifndef KANDINSKY_PLUGIN_H
#define KANDINSKY_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KD_EXPORT __attribute__((visibility("default")))
#else
#define KD_EXPORT
#endif

/* ---------------------------------------------------------------------------------------------- versions */
typedef struct kd_version {
    uint32_t major, minor, patch;
} kd_version_t;

#define KD_ABI_MAJOR 1u
#define KD_ABI_MINOR 5u
/* A host loads a plugin whose abi.major equals its own, whatever its abi.minor: a plugin of a newer minor finds
 * the host's older tables shorter (KD_STRUCT_HAS), and a host reads a newer plugin's structs up to its own size. */

/* Whether the struct at `ptr` (of type `type`) is long enough to hold `field`. */
#define KD_STRUCT_HAS(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((const type *)0)->field))
/* Element `index` of an array of versioned structs, walked by the size its first element states. */
#define KD_ARRAY_AT(type, array, index) \
    ((const type *)(const void *)((const char *)(array) + (size_t)(index) * (array)[0].struct_size))
/* The 1.0 size of a struct: the end of its last 1.0 field. */
#define KD_SIZE_THROUGH(type, field) ((uint32_t)(offsetof(type, field) + sizeof(((const type *)0)->field)))

/* ---------------------------------------------------------------------------------------------- status */
typedef int32_t kd_status;
enum {
    KD_OK = 0,
    KD_ERR_FAILED = 1,           /* see kd_run_context.set_error for the message */
    KD_ERR_INVALID_ARGUMENT = 2, /* a parameter or input the plugin cannot use */
    KD_ERR_UNSUPPORTED = 3,      /* e.g. a model without the channels this variant needs */
    KD_ERR_OUT_OF_MEMORY = 4,
    KD_CANCELLED = 5             /* progress() answered stop, or is_cancelled() became true */
};

/* ---------------------------------------------------------------------------------------------- images */
/* 8-bit pixels, rows top to bottom, channels interleaved: 1 grey, 3 RGB, 4 RGBA. Since 1.4 an image may hold 16-bit
 * grey instead (bits_per_sample 16): the host hands one over only to an input declared KD_INPUT_WIDE, and
 * image_resize keeps it 16-bit; every other service reads such an image by the high byte of each sample. */
typedef struct kd_image {
    uint32_t struct_size;
    int32_t width, height, channels;
    int64_t row_bytes;  /* >= width * channels * (bits_per_sample / 8) */
    uint8_t *data;      /* owner stated where the image is handed over; 16-bit samples are native-endian uint16 */
    /* ABI 1.4 */
    uint32_t bits_per_sample; /* 8, or 16 with channels = 1; 0 or absent = 8 */
} kd_image_t;

/* ---------------------------------------------------------------------------------------------- schema */
typedef uint32_t kd_param_type; /* KD_PARAM_INT ... */
enum {
    KD_PARAM_INT = 1,
    KD_PARAM_FLOAT = 2,
    KD_PARAM_STRING = 3,
    KD_PARAM_BOOL = 4,
    KD_PARAM_FLOAT_LIST = 5, /* e.g. fusion weights */
    KD_PARAM_SEED = 6        /* an integer; -1 asks the host for a random seed, which it records */
};

enum {
    KD_PARAM_OPTIONAL = 1u << 0, /* may be absent: has_value = false reaches the plugin */
    KD_PARAM_MODEL = 1u << 1     /* names a model (path or hub id) */
};

typedef struct kd_param_desc {
    uint32_t struct_size;
    const char *key;           /* machine name, e.g. "guidance_scale"; plugin-owned, valid while loaded */
    const char *help;          /* one line for --help; plugin-owned, valid while loaded */
    kd_param_type type;        /* KD_PARAM_INT ... */
    uint32_t flags;            /* KD_PARAM_OPTIONAL | KD_PARAM_MODEL */
    double min_value;          /* INT/FLOAT/SEED: inclusive bounds; FLOAT_LIST: bounds of each element */
    double max_value;
    const char *default_value; /* as text ("0.3", "[0.3, 0.3, 0.4]", "-1"); NULL = no default; plugin-owned */
} kd_param_desc_t;

typedef uint32_t kd_input_kind; /* KD_INPUT_IMAGE ... */
enum {
    KD_INPUT_IMAGE = 1, /* RGB picture */
    KD_INPUT_MASK = 2,  /* white = repaint; any channel count, binarised by the plugin */
    KD_INPUT_DEPTH = 3  /* near = bright */
};

enum {
    KD_INPUT_OPTIONAL = 1u << 0,
    KD_INPUT_REPEATED = 1u << 1, /* key1, key2, ... (fusion's image1, image2, ...) */
    KD_INPUT_WIDE = 1u << 2      /* 1.4: a 16-bit grey file arrives with its 16 bits (bits_per_sample 16) */
};

typedef struct kd_input_desc {
    uint32_t struct_size;
    const char *key;  /* "image", "mask", "depth"; plugin-owned, valid while loaded */
    kd_input_kind kind; /* KD_INPUT_IMAGE ... */
    uint32_t flags;     /* KD_INPUT_OPTIONAL | KD_INPUT_REPEATED | KD_INPUT_WIDE */
    const char *help; /* plugin-owned, valid while loaded */
} kd_input_desc_t;

typedef struct kd_plugin_desc {
    uint32_t struct_size;
    const char *id;          /* stable forever, e.g. "text2img"; plugin-owned, valid while loaded */
    const char *name;        /* for people */
    const char *version;     /* the plugin's own version, e.g. "1.0.0" */
    const char *description; /* a paragraph for `kandinsky plugins` */
    const char *const *aliases; /* other task names (Ikomia's "infer_kandinsky_2"); alias_count entries */
    uint32_t alias_count;
    const kd_input_desc_t *inputs; /* input_count entries, walked with KD_ARRAY_AT; plugin-owned */
    uint32_t input_count;
    const kd_param_desc_t *params; /* param_count entries, walked with KD_ARRAY_AT; plugin-owned */
    uint32_t param_count;
} kd_plugin_desc_t;

/* ---------------------------------------------------------------------------------------------- values */
typedef struct kd_value {
    uint32_t struct_size;
    const char *key;     /* equals a kd_param_desc.key */
    bool has_value;      /* false only for an absent KD_PARAM_OPTIONAL parameter */
    int64_t int_value;   /* INT, SEED (the seed actually used: never -1), BOOL (0/1) */
    double float_value;  /* FLOAT */
    const char *string_value;   /* STRING */
    const double *list_values;  /* FLOAT_LIST */
    uint32_t list_count;
} kd_value_t;

typedef struct kd_named_image {
    uint32_t struct_size;
    const char *key;         /* "image", "mask", "depth", "image1", ... */
    const kd_image_t *image; /* host-owned, read-only, valid during run() */
} kd_named_image_t;

/* ---------------------------------------------------------------------------------------------- host */
typedef struct kd_host {
    uint32_t struct_size;
    kd_version_t abi;
    const char *name;    /* "kandinsky" */
    const char *version;
    void *host_data;     /* host-owned; plugins pass the host back, never read this */
    /* [any] Returns the extension table for `id`, or NULL if the host has none. The table is host-owned and
     * valid until the process ends. */
    const void *(*get_extension)(const struct kd_host *host, const char *id);
} kd_host_t;

/* One request. Everything here is host-owned and valid during run() only; call the functions on [run] only. */
typedef struct kd_run_context {
    uint32_t struct_size;
    const kd_host_t *host;
    void *host_data;                /* host-owned; passed back in the calls below */
    const kd_value_t *params;       /* one per schema parameter, validated, defaults filled; KD_ARRAY_AT */
    uint32_t param_count;
    const kd_named_image_t *inputs; /* the inputs given, validated against the schema's kinds; KD_ARRAY_AT */
    uint32_t input_count;
    /* Reports progress of a stage ("prior", "decoder", ...). Returns false when the run must stop: the plugin then
     * returns KD_CANCELLED promptly. */
    bool (*progress)(const struct kd_run_context *ctx, const char *stage, uint32_t step, uint32_t total);
    /* True once the user asked to cancel (Ctrl-C). */
    bool (*is_cancelled)(const struct kd_run_context *ctx);
    /* Records a one-line error message (copied) for a non-OK return. */
    void (*set_error)(const struct kd_run_context *ctx, const char *message);
    /* Allocates the output image (the host writes it out). Host-owned: do not free; valid until the host has
     * written it, after run() returns. Call once. Returns NULL when out of memory. */
    kd_image_t *(*allocate_output)(const struct kd_run_context *ctx, int32_t width, int32_t height, int32_t channels);
    /* ---- 1.5: several images per run (docs/plugin-abi.md, "Several images per run") */
    /* How many images this run returns: the plugin's num_images parameter (1 when it declares none). Image k is
     * made with seed + k, so that it equals a run of that seed alone. */
    uint32_t output_count;
    /* Allocates output image `index` (0 .. output_count - 1; index 0 is the image allocate_output gives): host-owned,
     * as allocate_output's. Call once per index. Returns NULL when out of memory or for a bad index. */
    kd_image_t *(*allocate_output_at)(const struct kd_run_context *ctx, uint32_t index, int32_t width, int32_t height,
                                      int32_t channels);
} kd_run_context_t;

/* ---------------------------------------------------------------------------------------------- entry */
typedef struct kd_plugin_entry {
    uint32_t struct_size;
    kd_version_t abi;   /* KD_ABI_MAJOR, KD_ABI_MINOR the library was built against */
    /* [main] Called once after loading. Return false to be skipped (e.g. a missing host extension). The host
     * pointer is host-owned and valid until the process ends. */
    bool (*init)(const kd_host_t *host);
    /* [main] Number of plugins in this library. */
    uint32_t (*plugin_count)(void);
    /* [main] Descriptor of plugin `index`: plugin-owned, valid while the library is loaded (forever). */
    const kd_plugin_desc_t *(*plugin_descriptor)(uint32_t index);
    /* [run] Runs plugin `index` on one request. Returns KD_OK with the output allocated, or an error after
     * set_error. */
    kd_status (*run)(uint32_t index, const kd_run_context_t *ctx);
} kd_plugin_entry_t;

/* The one symbol a plugin library exports. Returns a plugin-owned table valid forever. */
typedef const kd_plugin_entry_t *(*kd_plugin_entry_fn)(void);
#define KD_PLUGIN_ENTRY_SYMBOL "kandinsky_plugin_entry"

/* ====================================================================================== model server extension */
/* All plugins share one model server in the host: weights load once, lazily, and are shared across plugins,
 * runs and workflow tasks. Plugins reach it only through this table. Every function is [any]-thread safe.
 *
 * Tensors are float32, contiguous, row-major (PyTorch's NCHW order). A kd_tensor_t* returned to the plugin is
 * plugin-owned: release it with tensor_release. Tensors passed in are borrowed for the call. */
#define KD_EXT_MODEL_SERVER "kandinsky.model-server/1"

typedef struct kd_tensor kd_tensor_t;       /* opaque */
typedef struct kd_generator kd_generator_t; /* opaque: torch.Generator("cpu") equivalent */
typedef struct kd_model kd_model_t;         /* opaque: a loaded prior or decoder; host-owned, valid until the run
                                               that obtained it returns, even if another task trims memory meanwhile
                                               (the host may unload it once no run is in progress) */

typedef uint32_t kd_resample; /* KD_RESAMPLE_NEAREST ... */
enum { KD_RESAMPLE_NEAREST = 0, KD_RESAMPLE_LANCZOS = 1, KD_RESAMPLE_BILINEAR = 2, KD_RESAMPLE_BICUBIC = 3 };
typedef struct kd_sampler kd_sampler_t;     /* opaque (1.1): one run's sampler, see sampler_create */

typedef struct kd_decoder_info {
    uint32_t struct_size;
    int32_t latent_channels;  /* MoVQ latent channels (4) */
    int32_t unet_in_channels; /* 4 text2img, 9 inpaint, 8 with a hint */
    int32_t scale_factor;     /* pixels per latent (8) */
    bool has_hint;            /* addition_embed_type image_hint (ControlNet-depth) */
    int32_t default_width, default_height; /* the model's natural size */
    int32_t default_steps;                 /* 0 = none suggested */
} kd_decoder_info_t;

/* Called after every scheduler step with the latents it produced; may change them in place. Return KD_OK to go on. */
typedef kd_status (*kd_step_hook)(void *user, uint32_t step_index, kd_tensor_t *latents);

typedef struct kd_denoise_args {
    uint32_t struct_size;
    const kd_tensor_t *latents;        /* [1, C, h, w] starting latents (borrowed) */
    const int64_t *timesteps;          /* from set_timesteps (possibly cut by strength); borrowed */
    uint32_t timestep_count;
    const kd_tensor_t *image_embeds;   /* [1, D] */
    const kd_tensor_t *negative_image_embeds; /* [1, D] */
    float guidance_scale;              /* classifier-free guidance when > 1 */
    const kd_tensor_t *hint;           /* [1, 3, H, W] in [0, 1] for image_hint UNets, else NULL */
    const kd_tensor_t *extra_channels; /* concatenated after the (CFG-doubled) latents every step, e.g. inpaint's
                                          masked image + mask, already doubled for CFG by the caller; or NULL */
    kd_step_hook step_hook;            /* or NULL */
    void *step_hook_user;
    kd_generator_t *generator;
    /* ---- 1.1 */
    const kd_sampler_t *sampler;       /* the run's sampler (sampler_create), borrowed; then `timesteps` must be
                                          its timesteps. NULL: the model's own scheduler, as in 1.0. */
    /* ---- 1.5: a batch of images. latents may be [N, C, h, w] with image_embeds and negative_image_embeds [N, D];
     * hint [1, ...] is shared by every image (or [N, ...], one each); extra_channels [copies, ...] is shared (or
     * [copies * N, ...], every negative copy first). N is at most denoise_batch_limit. */
    kd_generator_t *const *generators; /* one per image, borrowed: image i's scheduler noise comes from
                                          generators[i], as in a run of image i alone; NULL: `generator` draws
                                          the whole batch's noise (torch's randn of the batch shape) */
    uint32_t generator_count;          /* N when generators is set */
} kd_denoise_args_t;

/* 1.1: what sampler_create builds a run's sampler from. */
typedef struct kd_sampler_args {
    uint32_t struct_size;
    const char *scheduler; /* "ddpm", "ddim", "dpmsolver++" or "unipc"; NULL or "" = the model's own; caller-owned */
    int32_t steps;         /* num_inference_steps: the length of the whole schedule */
    double strength;       /* img2img: the last `strength` fraction of the schedule runs (diffusers'
                              get_timesteps); 1 = all of it */
} kd_sampler_args_t;

typedef struct kd_model_server {
    uint32_t struct_size;
    /* Tensors */
    kd_tensor_t *(*tensor_create)(const int64_t *shape, uint32_t rank); /* zero-filled; NULL when out of memory */
    void (*tensor_release)(kd_tensor_t *tensor);
    uint32_t (*tensor_rank)(const kd_tensor_t *tensor);
    int64_t (*tensor_dim)(const kd_tensor_t *tensor, uint32_t axis);
    float *(*tensor_data)(const kd_tensor_t *tensor); /* valid while the tensor lives */
    /* Random numbers: one generator per run, shared by prior and decoder in diffusers' order. */
    kd_generator_t *(*generator_create)(uint64_t seed);
    void (*generator_release)(kd_generator_t *generator);
    void (*generator_randn)(kd_generator_t *generator, kd_tensor_t *fill); /* torch.randn into the tensor */
    /* Models, resolved from a folder path or a hub id in the local Hugging Face cache; NULL or "" = the default
     * model set (for a decoder, the default of `kind`: "text2img", "inpaint" or "controlnet"). Loaded once, lazily.
     * These 1.0 functions take no host, so they reach the model server of the process's host; 1.1's load_model
     * reaches the server of ctx->host (through its host_data) and reports errors through ctx.
     * On failure returns NULL and writes a message into err (err_size bytes, caller-owned). */
    kd_model_t *(*prior)(const char *reference, char *err, size_t err_size);
    kd_model_t *(*decoder)(const char *reference, const char *kind, char *err, size_t err_size);
    kd_status (*decoder_info)(kd_model_t *decoder, kd_decoder_info_t *info);
    /* Prior: prompt -> (image_embeds, negative_image_embeds), KandinskyV22PriorPipeline semantics: a non-NULL
     * negative prompt (even "") runs through the prior; NULL gives the zero-image embedding. */
    kd_status (*prior_embed_prompt)(const kd_run_context_t *ctx, kd_model_t *prior, const char *prompt,
                                    const char *negative_prompt, int32_t steps, float guidance_scale,
                                    kd_generator_t *generator, kd_tensor_t **image_embeds,
                                    kd_tensor_t **negative_image_embeds);
    /* CLIP image embedding of a picture [1, D]. */
    kd_status (*prior_embed_image)(kd_model_t *prior, const kd_image_t *image, kd_tensor_t **embeds);
    /* Decoder */
    kd_status (*set_timesteps)(kd_model_t *decoder, int32_t steps, int64_t *timesteps, uint32_t capacity,
                               uint32_t *count);
    kd_status (*add_noise)(kd_model_t *decoder, const kd_tensor_t *original, const kd_tensor_t *noise, int64_t timestep,
                           kd_tensor_t **noisy);
    /* [-1, 1] pixels -> latents */
    kd_status (*movq_encode)(kd_model_t *decoder, const kd_tensor_t *pixels, kd_tensor_t **latents);
    kd_status (*movq_decode)(kd_model_t *decoder, const kd_tensor_t *latents, kd_tensor_t **pixels);  /* -> [0,1] */
    kd_status (*denoise)(const kd_run_context_t *ctx, kd_model_t *decoder, const kd_denoise_args_t *args,
                         kd_tensor_t **latents);
    /* Pillow's Image.resize (bit-exact); a 16-bit image is resized as Pillow resizes mode I;16 and stays 16-bit
     * (reducing_gap must then be 0). NULL on bad arguments. The result is plugin-owned: free it with
     * image_release. */
    kd_image_t *(*image_resize)(const kd_image_t *image, int32_t width, int32_t height, kd_resample filter,
                                double reducing_gap);
    void (*image_release)(kd_image_t *image);

    /* ---- 1.1: check KD_STRUCT_HAS(server, kd_model_server_t, <function>) before calling any of these. */
    /* Models for one run: the same models as prior()/decoder() (kind "prior", "text2img", "inpaint" or
     * "controlnet"; a 1.3 host also "depth", see depth_estimate), reached through ctx->host->host_data, and held
     * for the run: the handle stays valid until run() returns even if another task trims memory. On failure
     * returns NULL after ctx->set_error. */
    kd_model_t *(*load_model)(const kd_run_context_t *ctx, const char *kind, const char *reference);
    /* One run's sampler on `decoder`: the scheduler of args->scheduler configured from the decoder's scheduler
     * config as diffusers' from_config does, and the run's timesteps (cut by args->strength). Immutable: pass it to
     * denoise, add_noise through sampler_add_noise; state carried between steps lives inside each denoise call.
     * Plugin-owned: release with sampler_release. On failure returns NULL and writes a message into err. */
    kd_sampler_t *(*sampler_create)(kd_model_t *decoder, const kd_sampler_args_t *args, char *err, size_t err_size);
    void (*sampler_release)(kd_sampler_t *sampler);
    /* The run's timesteps, first step first: copies min(count, capacity) into `timesteps` (caller-owned) and
     * stores how many there are in *count. Zero means the strength cut left no step. */
    kd_status (*sampler_timesteps)(const kd_sampler_t *sampler, int64_t *timesteps, uint32_t capacity, uint32_t *count);
    /* add_noise(original, noise, t) as this sampler's scheduler computes it. */
    kd_status (*sampler_add_noise)(const kd_sampler_t *sampler, const kd_tensor_t *original, const kd_tensor_t *noise,
                                   int64_t timestep, kd_tensor_t **noisy);
    /* Inpainting's conditioning, diffusers' prepare_mask: `keep` [1, 1, H, W] at the output size (1 = keep,
     * 0 = repaint) -> *latent_mask [1, 1, h, w] (nearest downscale, the repaint region grown by one latent pixel)
     * and *extra_channels [copies, C + 1, h, w] = (image_latents * latent_mask, latent_mask) per copy, the
     * denoise extra_channels of the inpainting UNet (copies = 2 under classifier-free guidance). */
    kd_status (*inpaint_condition)(kd_model_t *decoder, const kd_tensor_t *keep, const kd_tensor_t *image_latents,
                                   uint32_t copies, kd_tensor_t **latent_mask, kd_tensor_t **extra_channels);

    /* ---- 1.2: the inpainting mask rules, one copy for every plugin (docs/inpainting.md gives their order).
     * Check KD_STRUCT_HAS(server, kd_model_server_t, <function>) before calling any of these. */
    /* A mask picture (any size, 1, 3 or 4 channels; borrowed) -> *keep [1, 1, height, width] (1 = keep, 0 = repaint;
     * plugin-owned): LANCZOS resize in the mask's own mode, Pillow's convert("L"), >= 50% grey = repaint (swapped
     * when `invert`), then the repaint region grown by `grow` pixels (a Euclidean disc; shrunk when negative;
     * |grow| <= 4096). */
    kd_status (*inpaint_mask)(const kd_image_t *mask, int32_t width, int32_t height, bool invert, int32_t grow,
                              kd_tensor_t **keep);
    /* inpaint_area "masked": the bounding box of keep's repaint region (keep borrowed) plus `padding` pixels on
     * every side, widened to aspect_width : aspect_height and kept inside the picture; writes x, y, width, height
     * into box[0..3] (caller-owned, 4 entries). KD_ERR_INVALID_ARGUMENT when nothing is repainted. */
    kd_status (*inpaint_crop_box)(const kd_tensor_t *keep, int32_t padding, int32_t aspect_width,
                                  int32_t aspect_height, int32_t *box);
    /* keep_unmasked: blends `picture` (RGB; plugin-owned, changed in place) over `original` (its size, 1, 3 or 4
     * channels; borrowed) under keep [1, 1, H, W] (borrowed): every kept pixel gets the original's bytes, and the
     * generated picture's weight rises over `blur` pixels (0 to 4096) into the repaint region to 1. */
    kd_status (*inpaint_composite)(kd_image_t *picture, const kd_image_t *original, const kd_tensor_t *keep,
                                   int32_t blur);

    /* ---- 1.3: depth estimation (docs/depth.md). Check KD_STRUCT_HAS(server, kd_model_server_t, depth_estimate).
     * The estimator comes from load_model(ctx, "depth", reference): a transformers DPTForDepthEstimation or
     * DepthAnythingForDepthEstimation folder or hub id; NULL or "" = the default set's. */
    /* transformers' depth-estimation pipeline on `image` (any size, 1, 3 or 4 channels, converted as Pillow's
     * convert("RGB"); borrowed): *depth [1, 1, H, W] the post-processed predicted depth at the image's size (larger
     * = nearer; plugin-owned: tensor_release) and *picture the pipeline's 8-bit one-channel depth picture, 0 at
     * the farthest point and 255 at the nearest (plugin-owned: image_release). Either output pointer may be NULL
     * when the caller does not want it. Reports progress through ctx as stage "depth". [run] */
    kd_status (*depth_estimate)(const kd_run_context_t *ctx, kd_model_t *estimator, const kd_image_t *image,
                                kd_tensor_t **depth, kd_image_t **picture);

    /* ---- 1.5: batches. Check KD_STRUCT_HAS(server, kd_model_server_t, denoise_batch_limit). */
    /* How many images one denoise call on `decoder` may take at latent_height x latent_width (guidance on when
     * guidance_scale > 1) within the memory the host allows: at least 1, at most `wanted`. [any] */
    uint32_t (*denoise_batch_limit)(kd_model_t *decoder, int32_t latent_height, int32_t latent_width,
                                    float guidance_scale, uint32_t wanted);
} kd_model_server_t;

/* ---------------------------------------------------------------------------------------------- 1.0 sizes */
/* The struct_size of each struct as ABI 1.0 defined it: the least any 1.x reader accepts. */
#define KD_VERSION_SIZE_1_0 ((uint32_t)sizeof(kd_version_t))
#define KD_IMAGE_SIZE_1_0 KD_SIZE_THROUGH(kd_image_t, data)
#define KD_PARAM_DESC_SIZE_1_0 KD_SIZE_THROUGH(kd_param_desc_t, default_value)
#define KD_INPUT_DESC_SIZE_1_0 KD_SIZE_THROUGH(kd_input_desc_t, help)
#define KD_PLUGIN_DESC_SIZE_1_0 KD_SIZE_THROUGH(kd_plugin_desc_t, param_count)
#define KD_VALUE_SIZE_1_0 KD_SIZE_THROUGH(kd_value_t, list_count)
#define KD_NAMED_IMAGE_SIZE_1_0 KD_SIZE_THROUGH(kd_named_image_t, image)
#define KD_HOST_SIZE_1_0 KD_SIZE_THROUGH(kd_host_t, get_extension)
#define KD_RUN_CONTEXT_SIZE_1_0 KD_SIZE_THROUGH(kd_run_context_t, allocate_output)
#define KD_PLUGIN_ENTRY_SIZE_1_0 KD_SIZE_THROUGH(kd_plugin_entry_t, run)
#define KD_DECODER_INFO_SIZE_1_0 KD_SIZE_THROUGH(kd_decoder_info_t, default_steps)
#define KD_DENOISE_ARGS_SIZE_1_0 KD_SIZE_THROUGH(kd_denoise_args_t, generator)
#define KD_MODEL_SERVER_SIZE_1_0 KD_SIZE_THROUGH(kd_model_server_t, image_release)
/* Structs new in 1.1 */
#define KD_SAMPLER_ARGS_SIZE_1_1 KD_SIZE_THROUGH(kd_sampler_args_t, strength)
/* The model server table as a 1.1 host states it (1.2 grew it by the mask functions). */
#define KD_MODEL_SERVER_SIZE_1_1 KD_SIZE_THROUGH(kd_model_server_t, inpaint_condition)
/* ... and as a 1.2 host states it (1.3 grew it by depth_estimate). */
#define KD_MODEL_SERVER_SIZE_1_2 KD_SIZE_THROUGH(kd_model_server_t, inpaint_composite)
/* ... and as a 1.3 or 1.4 host states it (1.5 grew it by denoise_batch_limit). */
#define KD_MODEL_SERVER_SIZE_1_4 KD_SIZE_THROUGH(kd_model_server_t, depth_estimate)
/* The run context and denoise arguments before 1.5 grew them. */
#define KD_RUN_CONTEXT_SIZE_1_4 KD_RUN_CONTEXT_SIZE_1_0
#define KD_DENOISE_ARGS_SIZE_1_4 KD_SIZE_THROUGH(kd_denoise_args_t, sampler)

#ifdef __cplusplus
}
#endif
#endif
