#!/usr/bin/env python3
"""MoVQ (diffusers VQModel, spatial norm) for the default model: reconstruction of 64x64 scenes through the
unquantised latents, as the Kandinsky 2.2 pipelines use it (encode -> decode(force_not_quantize=True)).

    python3 tools/train/train_movq.py STEPS      # resumable; rerun with more steps to continue
"""
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import VQModel

import common
import scenes

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
d = common.setup("movq", seed=1)
model = VQModel(**common.MOVQ)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
start = common.resume(d, {"movq": model}, opt)
log = common.LossLog(d)
t0 = time.time()
for step in range(start + 1, steps + 1):
    images, _, _, _ = scenes.batch(step * 32, 32, seed=1, size=common.SIZE)
    x = torch.from_numpy(images)
    recon = model.decode(model.encode(x).latents, force_not_quantize=True).sample
    loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x)
    common.update(d, {"movq": model}, opt, loss, log, step, steps)
model.save_pretrained(d + "/model", safe_serialization=True)
common.record(d, steps=steps, seconds_this_run=round(time.time() - t0), parameters=sum(p.numel() for p in model.parameters()))
