"""Shared by the training scripts: seeding, resumable checkpoints, loss logs, the model configs of the default set."""
import csv
import json
import os
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ.get("KANDINSKY_TRAIN_DIR", os.path.join(ROOT, "tools", "out", "train"))
TOKENIZER = os.path.join(ROOT, "Tests", "EngineTests", "Fixtures", "tokenizer")
SIZE = 64          # image side the default model is trained at (its natural size)
EMBED = 64         # CLIP projection = prior embedding = UNet encoder_hid_dim (text hidden must equal it)

# 8x MoVQ (4 levels), as the real model and as ControlNet's hint encoder (three stride-2 convs) requires:
# 64x64 images <-> 8x8x4 latents, the real model's 48x compression.
MOVQ = dict(block_out_channels=[32, 64, 64, 64], down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"],
            up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], in_channels=3, out_channels=3,
            latent_channels=4, layers_per_block=1, norm_num_groups=32, norm_type="spatial", num_vq_embeddings=256, vq_embed_dim=4)
TEXT = dict(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=EMBED, projection_dim=EMBED, intermediate_size=4 * EMBED,
            num_attention_heads=4, num_hidden_layers=3, vocab_size=49408, hidden_act="gelu", max_position_embeddings=77)
PRIOR = dict(num_attention_heads=4, attention_head_dim=32, embedding_dim=EMBED, num_layers=4, num_embeddings=77, additional_embeddings=4)


def unet_config(kind):
    """The decoder UNets: 2 levels on 8x8 latents; `kind` text2img (4 ch), inpaint (9 ch) or controlnet (8 ch, hint)."""
    return dict(in_channels={"text2img": 4, "inpaint": 9, "controlnet": 8}[kind], out_channels=8,
                addition_embed_type="image_hint" if kind == "controlnet" else "image", encoder_hid_dim_type="image_proj",
                encoder_hid_dim=EMBED, cross_attention_dim=128, resnet_time_scale_shift="scale_shift", class_embed_type=None,
                down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
                mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(64, 128), layers_per_block=2, attention_head_dim=32)


DECODER_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon", thresholding=False)
PRIOR_SCHEDULER = dict(clip_sample=True, clip_sample_range=10.0, num_train_timesteps=1000, prediction_type="sample",
                       variance_type="fixed_small_log")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_pixels(images):
    """[-1, 1] images -> CLIP pixel values (the image processor at size 64 is an identity resize)."""
    mean = torch.tensor(CLIP_MEAN)[:, None, None]
    std = torch.tensor(CLIP_STD)[:, None, None]
    return ((torch.as_tensor(images) + 1) / 2 - mean) / std


VISION = dict(hidden_size=128, image_size=SIZE, projection_dim=EMBED, intermediate_size=512, num_attention_heads=4, num_hidden_layers=3,
              patch_size=8, hidden_act="gelu")


# Checkpoint interval in steps: often enough that a session ending mid-run loses little.
SAVE_EVERY = int(os.environ.get("TRAIN_SAVE_EVERY", 200))


def setup(name, seed):
    torch.manual_seed(seed)
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", os.cpu_count() or 1)))
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return d


def resume(d, modules, optimizer, added=None):
    """Loads d/checkpoint.pt if present; returns the step to continue from. A module named in `added` ({name:
    source}) may be missing from a checkpoint written before it existed; it then starts as a copy of `source`."""
    added = added or {}
    path = os.path.join(d, "checkpoint.pt")
    if not os.path.exists(path):
        return 0
    ck = torch.load(path, weights_only=False)
    for k, m in modules.items():
        if k in added and k not in ck["modules"]:
            print(f"{path} has no {k}; starting it as a copy of {added[k]}", flush=True)
            m.load_state_dict(ck["modules"][added[k]])
            continue
        m.load_state_dict(ck["modules"][k])
    optimizer.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["rng"])
    print(f"resumed {d} at step {ck['step']}", flush=True)
    return ck["step"]


def save(d, modules, optimizer, step):
    tmp = os.path.join(d, "checkpoint.pt.tmp")
    torch.save({"modules": {k: m.state_dict() for k, m in modules.items()}, "optimizer": optimizer.state_dict(), "step": step,
                "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, os.path.join(d, "checkpoint.pt"))


def update(d, modules, optimizer, loss, log, step, steps, clip=None, after_step=None):
    """One optimiser step (gradient norm clipped to `clip` if given, then `after_step()`), its loss logged, and a
    checkpoint every SAVE_EVERY steps and at the end."""
    optimizer.zero_grad()
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
    optimizer.step()
    if after_step is not None:
        after_step()
    log.add(step, loss.item())
    if step % SAVE_EVERY == 0 or step == steps:
        save(d, modules, optimizer, step)


class LossLog:
    """Appends step, loss, seconds to d/losses.csv and prints every `every` steps."""
    def __init__(self, d, every=50):
        self.path, self.every, self.t0 = os.path.join(d, "losses.csv"), every, time.time()
        self.acc, self.n = 0.0, 0

    def add(self, step, loss):
        self.acc += loss
        self.n += 1
        if step % self.every == 0:
            mean = self.acc / self.n
            with open(self.path, "a", newline="") as f:
                csv.writer(f).writerow([step, f"{mean:.6f}", f"{time.time() - self.t0:.1f}"])
            print(f"step {step} loss {mean:.5f} ({time.time() - self.t0:.0f}s)", flush=True)
            self.acc, self.n = 0.0, 0


def record(d, **facts):
    """Facts for docs/models.md (steps, CPU time, sizes) in d/record.json."""
    with open(os.path.join(d, "record.json"), "w") as f:
        json.dump(facts, f, indent=1)


# The depth estimator (train_depth.py): Depth Anything's layout at a small size, 8-pixel patches on 64x64 scenes.
DEPTH_BACKBONE = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, mlp_ratio=4, image_size=SIZE,
                      patch_size=8, out_indices=[1, 2, 3, 4], reshape_hidden_states=False, apply_layernorm=True)
DEPTH = dict(patch_size=8, reassemble_hidden_size=64, neck_hidden_sizes=[16, 32, 48, 64], fusion_hidden_size=32,
             head_hidden_size=16, depth_estimation_type="relative", max_depth=1)
# Depth-Anything-V2's processor settings at the default set's size: keep the aspect ratio, multiples of the patch.
DEPTH_PROCESSOR = dict(size={"height": SIZE, "width": SIZE}, keep_aspect_ratio=True, ensure_multiple_of=8,
                       resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False)
