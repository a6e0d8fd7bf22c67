#!/usr/bin/env python3
"""Assembles the trained networks into the shipped default model set, in the kandinsky-community layouts, as fp16
safetensors that diffusers loads: models/default/{prior, decoder, decoder-inpaint, controlnet-depth}.

    python3 tools/train/export.py [OUT]      # default OUT: models/default in the repository
"""
import json
import os
import shutil
import sys

import torch
from diffusers import (DDPMScheduler, KandinskyV22ControlnetPipeline, KandinskyV22InpaintPipeline, KandinskyV22Pipeline,
                       KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, VQModel)
from transformers import CLIPImageProcessor, CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection

import common

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(common.ROOT, "models", "default")
W = common.WORK
prior = KandinskyV22PriorPipeline(
    prior=PriorTransformer.from_pretrained(W + "/prior/model"),
    image_encoder=CLIPVisionModelWithProjection.from_pretrained(W + "/clip/image_encoder"),
    text_encoder=CLIPTextModelWithProjection.from_pretrained(W + "/clip/text_encoder"),
    tokenizer=CLIPTokenizer.from_pretrained(common.TOKENIZER, pad_token="<|endoftext|>"),
    scheduler=UnCLIPScheduler(**common.PRIOR_SCHEDULER),
    image_processor=CLIPImageProcessor(crop_size=common.SIZE, size=common.SIZE, resample=3, image_mean=common.CLIP_MEAN,
                                       image_std=common.CLIP_STD, do_center_crop=True, do_normalize=True, do_resize=True))
movq = VQModel.from_pretrained(W + "/movq/model")
sched = DDPMScheduler.from_config(common.DECODER_SCHEDULER)
pipes = {"prior": prior}
for name, cls, kind in (("decoder", KandinskyV22Pipeline, "text2img"), ("decoder-inpaint", KandinskyV22InpaintPipeline, "inpaint"),
                        ("controlnet-depth", KandinskyV22ControlnetPipeline, "controlnet")):
    unet_dir = f"{W}/decoder_{kind}/model"
    if os.path.isdir(unet_dir):
        pipes[name] = cls(unet=UNet2DConditionModel.from_pretrained(unet_dir), scheduler=sched, movq=movq)
for name, pipe in pipes.items():
    path = os.path.join(out, name)
    shutil.rmtree(path, ignore_errors=True)
    pipe.to(torch.float16).save_pretrained(path, safe_serialization=True)
    if name != "prior":
        with open(os.path.join(path, "kandinsky_defaults.json"), "w") as f:
            json.dump({"width": common.SIZE, "height": common.SIZE, "comment": "trained on 64x64 scenes (tools/train)"}, f, indent=1)
    print("exported", path)
