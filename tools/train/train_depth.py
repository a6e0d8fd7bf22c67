#!/usr/bin/env python3
"""The default set's depth estimator: transformers' DepthAnythingForDepthEstimation (a small DINOv2 backbone
under the DPT neck) trained on the rendered scenes against their true depth maps, so that `controlnet-depth
--image` and the `depth` plugin work offline. It learns relative depth: the background far (0), objects nearer,
later-drawn objects nearer still, as scenes.render draws them.

    python3 tools/train/train_depth.py STEPS     # resumable; rerun with more steps to continue
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

import common
import scenes

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
d = common.setup("depth", seed=7)
backbone = Dinov2Config(**common.DEPTH_BACKBONE)
model = DepthAnythingForDepthEstimation(DepthAnythingConfig(backbone_config=backbone, **common.DEPTH))
# transformers initialises every convolution and linear layer with std 0.02 (initializer_range), under which this
# deep a stack passes on almost nothing: the output starts constant and barely learns. PyTorch's own (fan-in)
# initialisation trains. The head ends in a ReLU; a positive last bias keeps every pixel alive at the start.
for module in model.modules():
    if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
        module.reset_parameters()
with torch.no_grad():
    model.head.conv3.bias.fill_(0.2)
LR = 5e-4
opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
start = common.resume(d, {"depth": model}, opt)
log = common.LossLog(d)
mean = torch.tensor(common.DEPTH_PROCESSOR["image_mean"])[:, None, None]
std = torch.tensor(common.DEPTH_PROCESSOR["image_std"])[:, None, None]
rng = np.random.default_rng(7)
t0 = time.time()
for step in range(start + 1, steps + 1):
    images, depth, _, _ = scenes.batch(step * 16, 16, seed=3, size=common.SIZE)
    x = ((torch.from_numpy(images) + 1) / 2 - mean) / std
    # Relative depth: the pipeline rescales its output by min and max, so only the order matters. The background
    # is taught as 0.25, not 0: a target of 0 over most pixels drives the final ReLU dead within ten steps.
    target = 0.25 + 0.75 * torch.from_numpy(depth)[:, 0]
    if rng.random() < 0.5:  # mirrored scenes are scenes too
        x, target = x.flip(-1), target.flip(-1)
    predicted = model(pixel_values=x).predicted_depth
    loss = F.l1_loss(predicted, target) + F.mse_loss(predicted, target)
    lr = LR * min(1.0, (steps - step) / (0.2 * steps) + 0.05)
    for group in opt.param_groups:
        group["lr"] = lr
    common.update(d, {"depth": model}, opt, loss, log, step, steps, clip=1.0)

model.save_pretrained(d + "/model", safe_serialization=True)
common.record(d, steps=steps, seconds_this_run=round(time.time() - t0),
              parameters=sum(p.numel() for p in model.parameters()))
