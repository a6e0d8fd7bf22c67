#!/usr/bin/env python3
"""PyTorch's seconds per guided decoder step at 768x768 as bare UNet calls (batch 2: the conditional and the
unconditional half, 96x96 latents), fp32 and bf16 autocast, on a UNet folder made by tools/make_real_size.py.
Used where a whole-process bf16 run would take too long (a CPU without native bf16, where torch emulates it); the
pipeline's own per-step work besides the UNet (the scheduler, the guidance mix) is under 1% of a step.

usage: torch_unet_step.py UNET_FOLDER [THREADS] [--modes fp32 bf16]
"""
import argparse
import time

import torch
from diffusers import UNet2DConditionModel

ap = argparse.ArgumentParser()
ap.add_argument("unet")
ap.add_argument("threads", type=int, nargs="?", default=2)
ap.add_argument("--modes", nargs="+", default=["fp32", "bf16"])
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)
unet = UNet2DConditionModel.from_pretrained(a.unet, torch_dtype=torch.float32, variant="fp16").eval()
g = torch.Generator().manual_seed(0)
latents = torch.randn(2, 4, 96, 96, generator=g)
embeds = torch.randn(2, unet.config.encoder_hid_dim, generator=g)
t = torch.tensor(999)
for mode in a.modes:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
        unet(latents, t, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds})  # first call: set-up
        start = time.time()
        unet(latents, t, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds})
        print(f"torch {mode} UNet call (one guided step), 768x768: {time.time() - start:.1f} s", flush=True)
