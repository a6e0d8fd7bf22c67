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


@torch.no_grad()
def normalise_latents(model):
    """Rescales the latents to zero mean and unit variance per channel, exactly, by folding the affine map into the
    1x1 convs that produce them (quant_conv) and those that read them (post_quant_conv, every SpatialNorm's conv_y and
    conv_b). Kandinsky's pipelines apply no latent scaling factor, and the decoder's noise schedule expects latents of
    about unit variance; unconstrained reconstruction training leaves them far smaller."""
    images, _, _, _ = scenes.batch(50_000_000, 512, seed=1, size=common.SIZE)
    z = model.encode(torch.from_numpy(images)).latents
    mu, sigma = z.mean((0, 2, 3)), z.std((0, 2, 3))
    q = model.quant_conv
    q.weight.div_(sigma[:, None, None, None])
    q.bias.sub_(mu).div_(sigma)
    readers = [model.post_quant_conv] + [m for n, m in model.named_modules() if n.endswith(("conv_y", "conv_b"))]
    for conv in readers:
        assert conv.kernel_size == (1, 1), conv
        conv.bias.add_((conv.weight[:, :, 0, 0] * mu).sum(1))
        conv.weight.mul_(sigma[None, :, None, None])
    return mu.tolist(), sigma.tolist()


latent_mean, latent_std = normalise_latents(model)
model.save_pretrained(d + "/model", safe_serialization=True)
common.record(d, steps=steps, latent_mean_before=latent_mean, latent_std_before=latent_std, seconds_this_run=round(time.time() - t0), parameters=sum(p.numel() for p in model.parameters()))
