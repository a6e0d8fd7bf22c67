/* kandinsky_plugin.h -- the one contract between the kandinsky host and its variant plugins (ABI 1.0).
 *
 * A plugin is a shared library exporting `kandinsky_plugin_entry`. The host dlopens it, checks `abi.major`, calls
 * `init` once with the host interface, lists its plugins through `plugin_count`/`plugin_descriptor`, and calls
 * `run` once per request. Libraries are never unloaded.
 *
 * Rules (after CLAP):
 *  - Every struct begins with `struct_size` and only ever grows at its end. Readers check struct_size before
 *    touching a field added in a later minor version.
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
#define KD_ABI_MINOR 0u
/* A host loads a plugin whose abi.major equals its own and whose abi.minor is at most its own. */

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
/* 8-bit pixels, rows top to bottom, channels interleaved: 1 grey, 3 RGB, 4 RGBA. */
typedef struct kd_image {
    uint32_t struct_size;
    int32_t width, height, channels;
    int64_t row_bytes;  /* >= width * channels */
    uint8_t *data;      /* owner stated where the image is handed over */
} kd_image_t;

/* ---------------------------------------------------------------------------------------------- schema */
typedef enum kd_param_type {
    KD_PARAM_INT = 1,
    KD_PARAM_FLOAT = 2,
    KD_PARAM_STRING = 3,
    KD_PARAM_BOOL = 4,
    KD_PARAM_FLOAT_LIST = 5, /* e.g. fusion weights */
    KD_PARAM_SEED = 6        /* an integer; -1 asks the host for a random seed, which it records */
} kd_param_type;

enum {
    KD_PARAM_OPTIONAL = 1u << 0, /* may be absent: has_value = false reaches the plugin */
    KD_PARAM_MODEL = 1u << 1     /* names a model (path or hub id) */
};

typedef struct kd_param_desc {
    uint32_t struct_size;
    const char *key;           /* machine name, e.g. "guidance_scale"; plugin-owned, valid while loaded */
    const char *help;          /* one line for --help; plugin-owned, valid while loaded */
    kd_param_type type;
    uint32_t flags;            /* KD_PARAM_* */
    double min_value;          /* INT/FLOAT/SEED: inclusive bounds; FLOAT_LIST: bounds of each element */
    double max_value;
    const char *default_value; /* as text ("0.3", "[0.3, 0.3, 0.4]", "-1"); NULL = no default; plugin-owned */
} kd_param_desc_t;

typedef enum kd_input_kind {
    KD_INPUT_IMAGE = 1, /* RGB picture */
    KD_INPUT_MASK = 2,  /* white = repaint; any channel count, binarised by the plugin */
    KD_INPUT_DEPTH = 3  /* near = bright */
} kd_input_kind;

enum {
    KD_INPUT_OPTIONAL = 1u << 0,
    KD_INPUT_REPEATED = 1u << 1 /* key1, key2, ... (fusion's image1, image2, ...) */
};

typedef struct kd_input_desc {
    uint32_t struct_size;
    const char *key;  /* "image", "mask", "depth"; plugin-owned, valid while loaded */
    kd_input_kind kind;
    uint32_t flags;   /* KD_INPUT_* */
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
    const kd_input_desc_t *inputs;
    uint32_t input_count;
    const kd_param_desc_t *params;
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
    const kd_value_t *params;       /* one per schema parameter, validated, defaults filled */
    uint32_t param_count;
    const kd_named_image_t *inputs; /* the inputs given, validated against the schema's kinds */
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
typedef struct kd_model kd_model_t;         /* opaque: a loaded prior or decoder; host-owned, valid at least until
                                               the run that obtained it returns (the host may unload between runs) */

typedef enum kd_resample { KD_RESAMPLE_NEAREST = 0, KD_RESAMPLE_LANCZOS = 1, KD_RESAMPLE_BILINEAR = 2, KD_RESAMPLE_BICUBIC = 3 } kd_resample;

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
} kd_denoise_args_t;

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
     * On failure returns NULL and writes a message into err (err_size bytes, caller-owned). */
    kd_model_t *(*prior)(const char *reference, char *err, size_t err_size);
    kd_model_t *(*decoder)(const char *reference, const char *kind, char *err, size_t err_size);
    kd_status (*decoder_info)(kd_model_t *decoder, kd_decoder_info_t *info);
    /* Prior: prompt -> (image_embeds, negative_image_embeds), KandinskyV22PriorPipeline semantics: a non-NULL
     * negative prompt (even "") runs through the prior; NULL gives the zero-image embedding. */
    kd_status (*prior_embed_prompt)(const kd_run_context_t *ctx, kd_model_t *prior, const char *prompt, const char *negative_prompt,
                                    int32_t steps, float guidance_scale, kd_generator_t *generator, kd_tensor_t **image_embeds,
                                    kd_tensor_t **negative_image_embeds);
    /* CLIP image embedding of a picture [1, D]. */
    kd_status (*prior_embed_image)(kd_model_t *prior, const kd_image_t *image, kd_tensor_t **embeds);
    /* Decoder */
    kd_status (*set_timesteps)(kd_model_t *decoder, int32_t steps, int64_t *timesteps, uint32_t capacity, uint32_t *count);
    kd_status (*add_noise)(kd_model_t *decoder, const kd_tensor_t *original, const kd_tensor_t *noise, int64_t timestep,
                           kd_tensor_t **noisy);
    kd_status (*movq_encode)(kd_model_t *decoder, const kd_tensor_t *pixels, kd_tensor_t **latents); /* [-1,1] -> latents */
    kd_status (*movq_decode)(kd_model_t *decoder, const kd_tensor_t *latents, kd_tensor_t **pixels);  /* -> [0,1] */
    kd_status (*denoise)(const kd_run_context_t *ctx, kd_model_t *decoder, const kd_denoise_args_t *args, kd_tensor_t **latents);
    /* Pillow's Image.resize (bit-exact); the result is plugin-owned: free it with image_release. */
    kd_image_t *(*image_resize)(const kd_image_t *image, int32_t width, int32_t height, kd_resample filter, double reducing_gap);
    void (*image_release)(kd_image_t *image);
} kd_model_server_t;

#ifdef __cplusplus
}
#endif
#endif
