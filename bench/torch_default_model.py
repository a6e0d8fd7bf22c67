#!/usr/bin/env python3
"""PyTorch/diffusers side of the default-model benchmark: the whole text2img process on models/default at the
plugins' default settings (25 prior steps at guidance 4, 100 decoder steps at guidance 1, 64x64), timed from start.

usage: torch_default_model.py OUT.png [THREADS]
"""
import sys
import time

T0 = time.time()
import torch  # noqa: E402
from diffusers import KandinskyV22CombinedPipeline, KandinskyV22Pipeline, KandinskyV22PriorPipeline  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
torch.set_grad_enabled(False)
prior = KandinskyV22PriorPipeline.from_pretrained("models/default/prior", torch_dtype=torch.float32)
dec = KandinskyV22Pipeline.from_pretrained("models/default/decoder", torch_dtype=torch.float32)
pipe = KandinskyV22CombinedPipeline(unet=dec.unet, scheduler=dec.scheduler, movq=dec.movq, prior_prior=prior.prior,
                                    prior_image_encoder=prior.image_encoder, prior_text_encoder=prior.text_encoder,
                                    prior_tokenizer=prior.tokenizer, prior_scheduler=prior.scheduler,
                                    prior_image_processor=prior.image_processor)
pipe.set_progress_bar_config(disable=True)
T1 = time.time()
image = pipe("a red circle and a yellow square on a blue background", num_inference_steps=100, guidance_scale=1.0,
             prior_num_inference_steps=25, prior_guidance_scale=4.0, height=64, width=64,
             generator=torch.Generator().manual_seed(1)).images[0]
T2 = time.time()
image.save(out)
print(f"torch: load {T1 - T0:.2f}s, generate {T2 - T1:.2f}s, total {time.time() - T0:.2f}s")
