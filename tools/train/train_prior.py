#!/usr/bin/env python3
"""PriorTransformer for the default model: text (CLIP text tower, frozen) -> CLIP image embedding (vision tower,
frozen), trained as diffusers' examples/kandinsky2_2 train_text_to_image_prior.py does: DDPM squaredcos_cap_v2,
prediction_type "sample", target (image_embeds - clip_mean) / clip_std, 10% of the prompts emptied so guidance works.
Needs train_clip.py's output. (The shipped prior ran its first 2000 steps without the empty prompts and 800 with.)

    python3 tools/train/train_prior.py STEPS
"""
import os
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, PriorTransformer
from transformers import CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection

import common
import scenes

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
d = common.setup("prior", seed=3)
clip_dir = os.path.join(common.WORK, "clip")
text = CLIPTextModelWithProjection.from_pretrained(clip_dir + "/text_encoder").eval().requires_grad_(False)
vision = CLIPVisionModelWithProjection.from_pretrained(clip_dir + "/image_encoder").eval().requires_grad_(False)
tok = CLIPTokenizer.from_pretrained(common.TOKENIZER, pad_token="<|endoftext|>")
prior = PriorTransformer(**common.PRIOR)
noise_sched = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="sample")

# clip_mean / clip_std: statistics of the image embeddings, stored in the prior as the real checkpoints do.
with torch.no_grad():
    if not os.path.exists(os.path.join(d, "checkpoint.pt")):
        images, _, _, _ = scenes.batch(10_000_000, 1024, seed=3, size=common.SIZE)
        emb = vision(common.clip_pixels(images)).image_embeds
        prior.clip_mean.copy_(emb.mean(0, keepdim=True))
        prior.clip_std.copy_(emb.std(0, keepdim=True))
opt = torch.optim.AdamW([p for n, p in prior.named_parameters() if n not in ("clip_mean", "clip_std")], lr=3e-4, weight_decay=0.0)
start = common.resume(d, {"prior": prior}, opt)
log = common.LossLog(d)
t0 = time.time()
for step in range(start + 1, steps + 1):
    images, _, captions, _ = scenes.batch(step * 64, 64, seed=3, size=common.SIZE)
    # 10% empty prompts: the unconditional prediction that prior guidance (the pipelines' default 4.0) subtracts.
    captions = ["" if drop else c for c, drop in zip(captions, (torch.rand(len(captions)) < 0.1).tolist())]
    with torch.no_grad():
        enc = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        out = text(enc.input_ids)
        target = (vision(common.clip_pixels(images)).image_embeds - prior.clip_mean) / prior.clip_std
    noise = torch.randn_like(target)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(captions),))
    noisy = noise_sched.add_noise(target, noise, t)
    pred = prior(noisy, timestep=t, proj_embedding=out.text_embeds, encoder_hidden_states=out.last_hidden_state,
                 attention_mask=enc.attention_mask.bool()).predicted_image_embedding
    loss = F.mse_loss(pred, target)
    common.update(d, {"prior": prior}, opt, loss, log, step, steps)
prior.save_pretrained(d + "/model", safe_serialization=True)
common.record(d, steps=steps, seconds_this_run=round(time.time() - t0), parameters=sum(p.numel() for p in prior.parameters()))
