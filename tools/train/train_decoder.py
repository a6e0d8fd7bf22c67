#!/usr/bin/env python3
"""Decoder UNets for the default model, trained as diffusers' examples/kandinsky2_2 decoder script does (epsilon
MSE on the first 4 of the 8 output channels, DDPM linear 0.00085..0.012; here with gradient clipping, a final
linear learning-rate decay and an EMA of the weights as the shipped UNet), conditioned exactly as the pipelines
condition them: CLIP image embeddings (10% replaced by the zero-image embedding, the pipelines' default negative,
so guidance works), and per kind
  text2img:   4 latent channels;
  inpaint:    + masked image latents + mask (random rectangles/ellipses, the pipeline's nearest resize and
              prepare_mask erosion), 9 channels;
  inpaint-objects: the inpaint UNet again, from the shipped text2img decoder (models/default), on masks that
              cover whole objects (an object's disc or box with a margin, or the half of the picture holding it)
              for 60% of the scenes and the random shapes for the rest: the scene's image embedding names objects
              inside and outside the mask, so the UNet learns to draw the named object that the mask hides;
  controlnet: the depth map as a 3-channel [0, 1] hint (image_hint), 8 channels inside the UNet.
Needs train_movq.py's and train_clip.py's outputs; inpaint and controlnet also need the text2img UNet;
inpaint-objects needs only models/default (its MoVQ, CLIP vision tower and text2img UNet).

    python3 tools/train/train_decoder.py KIND STEPS
"""
import copy
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel, VQModel
from transformers import CLIPVisionModelWithProjection

import common
import scenes

kind = sys.argv[1] if len(sys.argv) > 1 else "text2img"
assert kind in ("text2img", "inpaint", "controlnet", "inpaint-objects"), kind
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
d = common.setup("decoder_" + kind, seed={"text2img": 4, "inpaint": 5, "controlnet": 6, "inpaint-objects": 8}[kind])
SHIPPED = os.path.join(common.ROOT, "models", "default")
from_shipped = kind == "inpaint-objects"
movq_dir = os.path.join(SHIPPED, "decoder", "movq") if from_shipped else os.path.join(common.WORK, "movq", "model")
vision_dir = (os.path.join(SHIPPED, "prior", "image_encoder") if from_shipped
              else os.path.join(common.WORK, "clip", "image_encoder"))
movq = VQModel.from_pretrained(movq_dir, torch_dtype=torch.float32).eval().requires_grad_(False)
vision = CLIPVisionModelWithProjection.from_pretrained(vision_dir, dtype=torch.float32).eval().requires_grad_(False)
unet = UNet2DConditionModel(**common.unet_config("inpaint" if from_shipped else kind))


@torch.no_grad()
def start_from_text2img(unet):
    """The inpaint and ControlNet UNets begin as the trained text2img UNet, as the real ones were fine-tuned from the
    2.2 decoder: every tensor of equal shape is copied; conv_in keeps the 4 latent channels and starts its extra input
    channels (masked latents + mask, or the hint) at zero, so the copy behaves as text2img on its first step."""
    folder = (os.path.join(SHIPPED, "decoder", "unet") if from_shipped
              else os.path.join(common.WORK, "decoder_text2img", "model"))
    source = {k: v.float() for k, v in UNet2DConditionModel.from_pretrained(folder).state_dict().items()}
    target = unet.state_dict()
    for name, value in target.items():
        if name == "conv_in.weight":
            value.zero_()[:, :4] = source[name]
        elif name in source and source[name].shape == value.shape:
            value.copy_(source[name])


sched = DDPMScheduler(**{k: v for k, v in common.DECODER_SCHEDULER.items() if k != "set_alpha_to_one"})
LR = float(os.environ.get("DECODER_LR", 5e-4))
opt = torch.optim.AdamW(unet.parameters(), lr=LR, weight_decay=0.0)
# The shipped UNet is an exponential moving average of the trained one: on short CPU runs it gives much cleaner
# samples than the last step's weights.
ema = copy.deepcopy(unet).requires_grad_(False)
modules = {"unet": unet, "ema": ema}
start = common.resume(d, modules, opt, added={"ema": "unet"})
if start == 0 and kind != "text2img":
    start_from_text2img(unet)
    ema.load_state_dict(unet.state_dict())


def schedule(step):
    """Constant learning rate, decayed linearly to zero over the last 20% of the requested steps."""
    return LR * min(1.0, (steps - step + 1) / (0.2 * steps))


@torch.no_grad()
def ema_update(step):
    decay = min(0.999, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), unet.parameters()):
        e.lerp_(p, 1 - decay)
log = common.LossLog(d)
with torch.no_grad():
    zero_embed = vision(torch.zeros(1, 3, common.SIZE, common.SIZE)).image_embeds


def random_keep_masks(n, rng):
    """1 = keep, 0 = repaint, at pixel resolution: a rectangle or an ellipse per image."""
    yy, xx = np.mgrid[0:common.SIZE, 0:common.SIZE]
    masks = np.ones((n, 1, common.SIZE, common.SIZE), np.float32)
    for i in range(n):
        cx, cy = rng.uniform(8, 56, 2)
        rx, ry = rng.uniform(6, 24, 2)
        hole = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1 if rng.random() < 0.5 else (abs(xx - cx) < rx) & (abs(yy - cy) < ry)
        masks[i, 0][hole] = 0
    return torch.from_numpy(masks)


def object_keep_masks(scene_list, rng):
    """1 = keep, 0 = repaint: per scene, one of its objects hidden by its disc or box grown by a margin, or by the
    half of the picture its centre lies in; a scene draws the random shapes instead 40% of the time."""
    yy, xx = np.mgrid[0:common.SIZE, 0:common.SIZE]
    masks = random_keep_masks(len(scene_list), rng).numpy()
    for i, s in enumerate(scene_list):
        if rng.random() < 0.4:
            continue
        o = s["objects"][rng.integers(len(s["objects"]))]
        margin = o["r"] * rng.uniform(0.25, 0.6) + 2
        style = rng.integers(3)
        if style == 0:
            hole = np.hypot(xx - o["x"], yy - o["y"]) < o["r"] + margin
        elif style == 1:
            hole = (abs(xx - o["x"]) < o["r"] + margin) & (abs(yy - o["y"]) < o["r"] + margin)
        elif rng.random() < 0.5:
            hole = xx >= common.SIZE // 2 if o["x"] >= common.SIZE / 2 else xx < common.SIZE // 2
        else:
            hole = yy >= common.SIZE // 2 if o["y"] >= common.SIZE / 2 else yy < common.SIZE // 2
        masks[i, 0] = 1
        masks[i, 0][hole] = 0
    return torch.from_numpy(masks)


def erode(mask):
    """diffusers' prepare_mask: each repaint pixel also clears (i-1,j), (i,j-1), (i-1,j-1), (i+1,j), (i,j+1), (i+1,j+1)."""
    repaint = 1 - mask
    grown = repaint.clone()
    for dy, dx in ((-1, 0), (0, -1), (-1, -1), (1, 0), (0, 1), (1, 1)):
        # the neighbour (i+dy, j+dx) of a repaint pixel (i, j) becomes repaint
        shifted = torch.roll(repaint, shifts=(dy, dx), dims=(2, 3))
        if dy == -1: shifted[:, :, -1, :] = 0
        if dy == 1: shifted[:, :, 0, :] = 0
        if dx == -1: shifted[:, :, :, -1] = 0
        if dx == 1: shifted[:, :, :, 0] = 0
        grown = torch.maximum(grown, shifted)
    return 1 - grown


rng = np.random.default_rng(int(start) + 7)
t0 = time.time()
for step in range(start + 1, steps + 1):
    images, depth, _, scene_list = scenes.batch(step * 32, 32, seed=10 + len(kind), size=common.SIZE)
    x = torch.from_numpy(images)
    with torch.no_grad():
        latents = movq.encode(x).latents
        embeds = vision(common.clip_pixels(images)).image_embeds
        drop = torch.rand(len(x)) < 0.1
        embeds[drop] = zero_embed
    noise = torch.randn_like(latents)
    t = torch.randint(0, sched.config.num_train_timesteps, (len(x),))
    model_in = sched.add_noise(latents, noise, t)
    cond = {"image_embeds": embeds}
    if kind in ("inpaint", "inpaint-objects"):
        pixel_keep = object_keep_masks(scene_list, rng) if from_shipped else random_keep_masks(len(x), rng)
        keep = erode(F.interpolate(pixel_keep, size=latents.shape[-2:], mode="nearest"))
        model_in = torch.cat([model_in, latents * keep, keep], dim=1)
    if kind == "controlnet":
        cond["hint"] = torch.from_numpy(depth).repeat(1, 3, 1, 1)
    pred = unet(model_in, t, encoder_hidden_states=None, added_cond_kwargs=cond).sample[:, :4]
    loss = F.mse_loss(pred, noise)
    for g in opt.param_groups:
        g["lr"] = schedule(step)
    common.update(d, modules, opt, loss, log, step, steps, clip=1.0, after_step=lambda: ema_update(step))
ema.save_pretrained(d + "/model", safe_serialization=True)
common.record(d, steps=steps, seconds_this_run=round(time.time() - t0), parameters=sum(p.numel() for p in unet.parameters()))
