#!/usr/bin/env python3
"""Builds the benchmark's mid-size text2img model set (random weights, diffusers layout) under bench/out/models.

UNet as issue 3 asks: block_out_channels 128/256/384/512, layers_per_block 2, head dim 64 (about 115M parameters);
MoVQ at the published kandinsky-2-2-decoder config; prior and CLIP towers scaled down (they run once per image).
"""
import os
import sys

import torch
from diffusers import (DDPMScheduler, KandinskyV22Pipeline, KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler,
                       UNet2DConditionModel, VQModel)
from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionConfig,
                          CLIPVisionModelWithProjection)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out", "models")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_fixtures import DECODER_SCHED, PRIOR_SCHED, randomize  # noqa: E402

torch.set_grad_enabled(False)
EMB = 1280

torch.manual_seed(0)
unet = randomize(UNet2DConditionModel(
    in_channels=4, out_channels=8, addition_embed_type="image", encoder_hid_dim_type="image_proj", encoder_hid_dim=EMB,
    cross_attention_dim=768, resnet_time_scale_shift="scale_shift", class_embed_type=None, mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
    block_out_channels=(128, 256, 384, 512), layers_per_block=2, attention_head_dim=64), 1)
movq = randomize(VQModel(
    block_out_channels=[128, 256, 256, 512], down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"], in_channels=3,
    latent_channels=4, layers_per_block=2, norm_num_groups=32, norm_type="spatial", num_vq_embeddings=16384, out_channels=3,
    up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], vq_embed_dim=4), 2)
text = randomize(CLIPTextModelWithProjection(CLIPTextConfig(
    bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=EMB, projection_dim=EMB, intermediate_size=4 * EMB,
    num_attention_heads=20, num_hidden_layers=4, vocab_size=49408, hidden_act="gelu")), 3)
vision = randomize(CLIPVisionModelWithProjection(CLIPVisionConfig(
    hidden_size=256, image_size=224, projection_dim=EMB, intermediate_size=1024, num_attention_heads=4, num_hidden_layers=2,
    patch_size=14, hidden_act="gelu")), 4)
prior = randomize(PriorTransformer(num_attention_heads=16, attention_head_dim=64, embedding_dim=EMB, num_layers=6), 5)
print("unet parameters: %.1fM" % (sum(p.numel() for p in unet.parameters()) / 1e6))

tok = CLIPTokenizer.from_pretrained(os.path.join(ROOT, "Tests", "EngineTests", "Fixtures", "tokenizer"), pad_token="<|endoftext|>")
proc = CLIPImageProcessor(crop_size=224, size=224, resample=3, image_mean=[0.48145466, 0.4578275, 0.40821073],
                          image_std=[0.26862954, 0.26130258, 0.27577711])
KandinskyV22PriorPipeline(prior=prior, image_encoder=vision, text_encoder=text, tokenizer=tok,
                          scheduler=UnCLIPScheduler.from_config(PRIOR_SCHED), image_processor=proc).save_pretrained(
    os.path.join(OUT, "prior"), safe_serialization=True)
KandinskyV22Pipeline(unet=unet, scheduler=DDPMScheduler.from_config(DECODER_SCHED), movq=movq).save_pretrained(
    os.path.join(OUT, "decoder"), safe_serialization=True)
print("saved to", OUT)
