#!/usr/bin/env python3
"""PyTorch/diffusers side of the benchmarks: the whole text2img process on a prior + decoder folder pair, timed from
start. Defaults are bench/run.sh's (mid-size models, "a red cat, 4k photo", 5 + 10 steps, guidance 4 on both, seed
42); bench/default_model.sh passes the embedded default model and the plugins' default settings.

usage: torch_text2img.py SIZE OUT.png [THREADS] [--models DIR] [--prompt P] [--steps N] [--guidance G]
                         [--prior-steps N] [--prior-guidance G] [--seed S] [--bf16] [--variant fp16]

--bf16 runs the pipeline under torch.autocast("cpu", dtype=torch.bfloat16), the reduced precision a PyTorch user
would pick; weights stay float32 as loaded.
"""
import argparse
import time

T0 = time.time()
import torch  # noqa: E402
from diffusers import KandinskyV22CombinedPipeline, KandinskyV22Pipeline, KandinskyV22PriorPipeline  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("size", type=int)
ap.add_argument("out")
ap.add_argument("threads", type=int, nargs="?", default=2)
ap.add_argument("--models", default="bench/out/models", help="folder holding prior/ and decoder/")
ap.add_argument("--prompt", default="a red cat, 4k photo")
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--guidance", type=float, default=4.0)
ap.add_argument("--prior-steps", type=int, default=5)
ap.add_argument("--prior-guidance", type=float, default=4.0)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
ap.add_argument("--variant", default=None, help='weight file variant, e.g. "fp16" for tools/make_real_size.py folders')
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)
prior = KandinskyV22PriorPipeline.from_pretrained(f"{a.models}/prior", torch_dtype=torch.float32, variant=a.variant)
dec = KandinskyV22Pipeline.from_pretrained(f"{a.models}/decoder", torch_dtype=torch.float32, variant=a.variant)
pipe = KandinskyV22CombinedPipeline(unet=dec.unet, scheduler=dec.scheduler, movq=dec.movq, prior_prior=prior.prior,
                                    prior_image_encoder=prior.image_encoder, prior_text_encoder=prior.text_encoder,
                                    prior_tokenizer=prior.tokenizer, prior_scheduler=prior.scheduler,
                                    prior_image_processor=prior.image_processor)
pipe.set_progress_bar_config(disable=True)
T1 = time.time()
with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
    image = pipe(a.prompt, num_inference_steps=a.steps, guidance_scale=a.guidance, prior_num_inference_steps=a.prior_steps,
                 prior_guidance_scale=a.prior_guidance, height=a.size, width=a.size,
                 generator=torch.Generator().manual_seed(a.seed)).images[0]
T2 = time.time()
image.save(a.out)
print(f"torch: load {T1 - T0:.2f}s, generate {T2 - T1:.2f}s, total {time.time() - T0:.2f}s")
