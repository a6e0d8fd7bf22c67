#!/usr/bin/env python3
"""Assembles the trained networks into the shipped default model set, in the kandinsky-community layouts, as fp16
safetensors that diffusers and transformers load: models/default/{prior, decoder, decoder-inpaint,
controlnet-depth} and the depth estimator models/default/depth (a transformers DepthAnythingForDepthEstimation
folder with its DPTImageProcessor config).

    python3 tools/train/export.py [OUT [PART ...]]   # default OUT: models/default; default PARTs: all of them
"""
import json
import os
import shutil
import sys

import torch
from diffusers import (DDPMScheduler, KandinskyV22ControlnetPipeline, KandinskyV22InpaintPipeline, KandinskyV22Pipeline,
                       KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, VQModel)
from transformers import (CLIPImageProcessor, CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection,
                          DepthAnythingForDepthEstimation)
from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

import common

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(common.ROOT, "models", "default")
wanted = sys.argv[2:] or ["prior", "decoder", "decoder-inpaint", "controlnet-depth", "depth"]
W = common.WORK
pipes = {}
if "prior" in wanted:
    pipes["prior"] = KandinskyV22PriorPipeline(
        prior=PriorTransformer.from_pretrained(W + "/prior/model"),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(W + "/clip/image_encoder"),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(W + "/clip/text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(common.TOKENIZER, pad_token="<|endoftext|>"),
        scheduler=UnCLIPScheduler(**common.PRIOR_SCHEDULER),
        image_processor=CLIPImageProcessor(crop_size=common.SIZE, size=common.SIZE, resample=3, image_mean=common.CLIP_MEAN,
                                           image_std=common.CLIP_STD, do_center_crop=True, do_normalize=True, do_resize=True))
decoders = [(name, cls, kind) for name, cls, kind in (("decoder", KandinskyV22Pipeline, "text2img"),
                                                      ("decoder-inpaint", KandinskyV22InpaintPipeline, "inpaint"),
                                                      ("controlnet-depth", KandinskyV22ControlnetPipeline, "controlnet"))
            if name in wanted]
if decoders:
    # The MoVQ of this training run, or (when only a UNet was retrained here) the shipped one.
    movq_dir = W + "/movq/model" if os.path.isdir(W + "/movq/model") else os.path.join(out, "decoder", "movq")
    movq = VQModel.from_pretrained(movq_dir, torch_dtype=torch.float32)
    sched = DDPMScheduler.from_config(common.DECODER_SCHEDULER)
    for name, cls, kind in decoders:
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
if "depth" in wanted:
    path = os.path.join(out, "depth")
    shutil.rmtree(path, ignore_errors=True)
    DepthAnythingForDepthEstimation.from_pretrained(W + "/depth/model").to(torch.float16).save_pretrained(path)
    DPTImageProcessorPil(**common.DEPTH_PROCESSOR).save_pretrained(path)
    print("exported", path)
