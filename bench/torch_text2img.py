#!/usr/bin/env python3
"""PyTorch/diffusers side of the benchmark: the whole text2img process on bench/out/models, timed from start.

usage: torch_text2img.py SIZE OUT.png [THREADS]
"""
import sys
import time

T0 = time.time()
import torch  # noqa: E402
from diffusers import KandinskyV22CombinedPipeline, KandinskyV22Pipeline, KandinskyV22PriorPipeline  # noqa: E402

size, out = int(sys.argv[1]), sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.set_grad_enabled(False)
root = "bench/out/models"
prior = KandinskyV22PriorPipeline.from_pretrained(f"{root}/prior")
dec = KandinskyV22Pipeline.from_pretrained(f"{root}/decoder")
pipe = KandinskyV22CombinedPipeline(unet=dec.unet, scheduler=dec.scheduler, movq=dec.movq, prior_prior=prior.prior,
                                    prior_image_encoder=prior.image_encoder, prior_text_encoder=prior.text_encoder,
                                    prior_tokenizer=prior.tokenizer, prior_scheduler=prior.scheduler,
                                    prior_image_processor=prior.image_processor)
pipe.set_progress_bar_config(disable=True)
T1 = time.time()
image = pipe("a red cat, 4k photo", num_inference_steps=10, guidance_scale=4.0, prior_num_inference_steps=5, prior_guidance_scale=4.0,
             height=size, width=size, generator=torch.Generator().manual_seed(42)).images[0]
T2 = time.time()
image.save(out)
print(f"torch: load {T1 - T0:.2f}s, generate {T2 - T1:.2f}s, total {time.time() - T0:.2f}s")
