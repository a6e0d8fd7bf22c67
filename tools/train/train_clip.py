#!/usr/bin/env python3
"""CLIP text and vision towers with projection for the default model, trained contrastively (InfoNCE with a learned
temperature) on scene captions tokenised with the real CLIP vocabulary.

    python3 tools/train/train_clip.py STEPS
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection

import common
import scenes

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
d = common.setup("clip", seed=2)
text = CLIPTextModelWithProjection(CLIPTextConfig(**common.TEXT))
vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**common.VISION))
scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
tok = CLIPTokenizer.from_pretrained(common.TOKENIZER, pad_token="<|endoftext|>")
params = list(text.parameters()) + list(vision.parameters()) + [scale]
opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
holder = torch.nn.ParameterDict({"scale": scale})
start = common.resume(d, {"text": text, "vision": vision, "scale": holder}, opt)
log = common.LossLog(d)
t0 = time.time()
for step in range(start + 1, steps + 1):
    images, _, captions, _ = scenes.batch(step * 64, 64, seed=2, size=common.SIZE)
    # The pipeline's CLIPImageProcessor at size 64: [0, 1] pixels normalised with the CLIP mean and std.
    pix = common.clip_pixels(images)
    ids = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    t = F.normalize(text(ids).text_embeds, dim=-1)
    v = F.normalize(vision(pix).image_embeds, dim=-1)
    logits = scale.exp().clamp(max=100) * v @ t.T
    target = torch.arange(len(captions))
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    common.update(d, {"text": text, "vision": vision, "scale": holder}, opt, loss, log, step, steps)
text.save_pretrained(d + "/text_encoder", safe_serialization=True)
vision.save_pretrained(d + "/image_encoder", safe_serialization=True)
common.record(d, steps=steps, seconds_this_run=round(time.time() - t0),
              parameters=sum(p.numel() for p in text.parameters()) + sum(p.numel() for p in vision.parameters()))
