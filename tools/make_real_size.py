#!/usr/bin/env python3
"""Real-size check (issue 3, part 8): random-weight checkpoints at the published kandinsky-community configs,
saved as fp16 safetensors in the diffusers layout (several GB; never committed), their state-dict keys and shapes
checked against tools/keys (the published checkpoints' key names and shapes), and one forward pass of each network at a small resolution saved as the
reference for the Swift side (Tests/EngineTests/RealSizeTests.swift, run with KANDINSKY_REAL_SIZE=DIR).

    python3 tools/make_real_size.py DIR [NAME ...]
    python3 tools/make_real_size.py DIR pipelines    # then: DIR/pipelines/{prior,decoder} for the CLI and diffusers

The pipeline folders link the component folders above (load them with variant="fp16" in diffusers), with the
published scheduler and image-processor configs and the fixture tokenizer, for the real-size benchmark
(bench/real_size.sh).
"""
import json
import gc
import os
import re
import sys

import torch
from safetensors.torch import save_file
from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection,
                          DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTConfig,
                          DPTForDepthEstimation)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = os.path.join(ROOT, "tools", "keys")
torch.set_grad_enabled(False)

UNET = dict(act_fn="silu", addition_embed_type="image", addition_embed_type_num_heads=64, attention_head_dim=64,
            block_out_channels=[384, 768, 1152, 1536], center_input_sample=False, class_embed_type=None, cross_attention_dim=768,
            down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
            downsample_padding=1, dual_cross_attention=False, encoder_hid_dim=1280, encoder_hid_dim_type="image_proj", flip_sin_to_cos=True,
            freq_shift=0, in_channels=4, layers_per_block=3, mid_block_type="UNetMidBlock2DSimpleCrossAttn", norm_eps=1e-5, norm_num_groups=32,
            only_cross_attention=False, out_channels=8, resnet_time_scale_shift="scale_shift", sample_size=64, upcast_attention=False,
            up_block_types=["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
            use_linear_projection=False)
MOVQ = dict(act_fn="silu", block_out_channels=[128, 256, 256, 512], down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"],
            in_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32, norm_type="spatial", num_vq_embeddings=16384,
            out_channels=3, sample_size=32, scaling_factor=0.18215,
            up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], vq_embed_dim=4)
PRIOR = dict(added_emb_type="prd", additional_embeddings=4, attention_head_dim=64, clip_embed_dim=None, dropout=0.0, embedding_dim=1280,
             embedding_proj_dim=None, embedding_proj_norm_type=None, encoder_hid_proj_type="linear", norm_in_type=None, num_attention_heads=32,
             num_embeddings=77, num_layers=20, time_embed_act_fn="silu", time_embed_dim=None)
TEXT = dict(attention_dropout=0.0, bos_token_id=0, dropout=0.0, eos_token_id=2, hidden_act="gelu", hidden_size=1280, intermediate_size=5120,
            layer_norm_eps=1e-5, max_position_embeddings=77, num_attention_heads=20, num_hidden_layers=32, pad_token_id=1, projection_dim=1280,
            vocab_size=49408)
VISION = dict(attention_dropout=0.0, dropout=0.0, hidden_act="gelu", hidden_size=1664, image_size=224, intermediate_size=8192, layer_norm_eps=1e-5,
              num_attention_heads=16, num_channels=3, num_hidden_layers=48, patch_size=14, projection_dim=1280)

# Intel/dpt-large (ViT-L/16 at 384) and depth-anything/Depth-Anything-V2-Small-hf (DINOv2 ViT-S/14, stages 3, 6,
# 9, 12), as their config.json files on the Hub state them.
DPT_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                 image_size=384, patch_size=16, backbone_out_indices=[5, 11, 17, 23],
                 neck_hidden_sizes=[256, 512, 1024, 1024], fusion_hidden_size=256, readout_type="project",
                 reassemble_factors=[4, 2, 1, 0.5], layer_norm_eps=1e-12)
DEPTH_ANYTHING_V2_SMALL = dict(reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64,
                               head_hidden_size=32, patch_size=14, reassemble_factors=[4, 2, 1, 0.5],
                               depth_estimation_type="relative", max_depth=1)
DINOV2_SMALL = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518,
                    patch_size=14, out_indices=[3, 6, 9, 12], reshape_hidden_states=False, apply_layernorm=True,
                    layerscale_value=1.0)


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def build(name):
    if name.startswith("unet"):
        extra = {"unet_decoder": {}, "unet_inpaint": {"in_channels": 9},
                 "unet_controlnet": {"in_channels": 8, "addition_embed_type": "image_hint"}}[name]
        return UNet2DConditionModel(**dict(UNET, **extra)), {"unet_decoder": "keys_dec", "unet_inpaint": "keys_inpaint",
                                                              "unet_controlnet": "keys_cn"}[name]
    if name == "movq":
        return VQModel(**MOVQ), "keys_movq"
    if name == "dpt_large":
        return DPTForDepthEstimation(DPTConfig(**DPT_LARGE)), None
    if name == "depth_anything_v2_small":
        config = DepthAnythingConfig(backbone_config=Dinov2Config(**DINOV2_SMALL), **DEPTH_ANYTHING_V2_SMALL)
        return DepthAnythingForDepthEstimation(config), None
    if name == "prior":
        return PriorTransformer(**PRIOR), "keys_prior"
    if name == "text_encoder":
        return CLIPTextModelWithProjection(CLIPTextConfig(**TEXT)), "keys_clip_text"
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION)), "keys_clip_vision"


def check_keys(model, keyfile):
    if keyfile is None:  # no published key dump for the depth models: their layout is transformers' own
        return len(model.state_dict())
    want = {}
    for line in open(os.path.join(KEYS, keyfile + ".txt")):
        m = re.match(r"^(\S+) \(([\d, ]*)\)", line)
        if m:
            want[m.group(1)] = tuple(int(x) for x in m.group(2).split(",") if x.strip())
    have = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    assert have == want, f"{keyfile}: {len(set(have) ^ set(want))} keys differ, e.g. {sorted(set(have) ^ set(want))[:3]}"
    return len(have)


def run(name, model):
    if name.startswith("unet"):
        io = {"sample": randn((2, 4, 8, 8), 1), "image_embeds": randn((2, 1280), 2)}
        kw = {"image_embeds": io["image_embeds"]}
        if name == "unet_inpaint":
            io["sample"] = randn((2, 9, 8, 8), 1)
        if name == "unet_controlnet":
            io["hint"] = kw["hint"] = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(3))
        io["out_t500"] = model(io["sample"], torch.tensor(500), encoder_hidden_states=None, added_cond_kwargs=kw).sample
    elif name == "dpt_large":
        io = {"pixel_values": randn((1, 3, 384, 384), 13)}
        io["predicted_depth"] = model(pixel_values=io["pixel_values"]).predicted_depth
    elif name == "depth_anything_v2_small":
        io = {"pixel_values": randn((1, 3, 266, 350), 14)}  # off the trained grid: bicubic position embeddings
        io["predicted_depth"] = model(pixel_values=io["pixel_values"]).predicted_depth
    elif name == "movq":
        io = {"image": torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(6)) * 2 - 1, "z": randn((1, 4, 8, 8), 7)}
        io["latents"] = model.encode(io["image"]).latents
        io["decoded"] = model.decode(io["z"], force_not_quantize=True).sample
    elif name == "prior":
        io = {"hidden_states": randn((2, 1280), 8), "proj_embedding": randn((2, 1280), 9), "encoder_hidden_states": randn((2, 77, 1280), 10)}
        mask = torch.zeros((2, 77), dtype=torch.bool)
        mask[0, :7] = True
        mask[1, :] = True
        io["text_mask"] = mask.float()
        io["out_t500"] = model(io["hidden_states"], timestep=500, proj_embedding=io["proj_embedding"],
                               encoder_hidden_states=io["encoder_hidden_states"], attention_mask=mask).predicted_image_embedding
    elif name == "text_encoder":
        ids = torch.randint(3, 49000, (2, 77), generator=torch.Generator().manual_seed(11))
        ids[0, 9] = 49407
        ids[0, 10:] = 49407
        ids[1, 76] = 49407
        out = model(ids)
        io = {"input_ids": ids.float(), "text_embeds": out.text_embeds, "last_hidden_state": out.last_hidden_state}
    else:
        io = {"pixel_values": randn((1, 3, 224, 224), 12)}
        io["image_embeds"] = model(io["pixel_values"]).image_embeds
    return io


def assemble_pipelines(out):
    """kandinsky-2-2-prior and kandinsky-2-2-decoder layouts over the generated components (symlinks, no copies)."""
    import shutil
    from diffusers import DDPMScheduler, UnCLIPScheduler
    from transformers import CLIPImageProcessor
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from make_fixtures import DECODER_SCHED, PRIOR_SCHED  # noqa: E402
    layouts = {
        "decoder": ("KandinskyV22Pipeline", {"unet": ("unet_decoder", "diffusers", "UNet2DConditionModel"),
                                                  "movq": ("movq", "diffusers", "VQModel")}),
        "prior": ("KandinskyV22PriorPipeline", {"prior": ("prior", "diffusers", "PriorTransformer"),
                                                     "text_encoder": ("text_encoder", "transformers", "CLIPTextModelWithProjection"),
                                                     "image_encoder": ("image_encoder", "transformers", "CLIPVisionModelWithProjection")}),
    }
    for name, (cls, parts) in layouts.items():
        pipe = os.path.join(out, "pipelines", name)
        shutil.rmtree(pipe, ignore_errors=True)
        os.makedirs(pipe)
        index = {"_class_name": cls, "_diffusers_version": "0.42.1"}
        for part, (folder, library, part_cls) in parts.items():
            os.symlink(os.path.join("..", "..", folder), os.path.join(pipe, part))
            index[part] = [library, part_cls]
        if name == "decoder":
            DDPMScheduler.from_config(DECODER_SCHED).save_config(os.path.join(pipe, "scheduler"))
            index["scheduler"] = ["diffusers", "DDPMScheduler"]
        else:
            UnCLIPScheduler.from_config(PRIOR_SCHED).save_config(os.path.join(pipe, "scheduler"))
            shutil.copytree(os.path.join(ROOT, "Tests", "EngineTests", "Fixtures", "tokenizer"), os.path.join(pipe, "tokenizer"))
            CLIPImageProcessor(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True, resample=3, size=224,
                               image_mean=[0.48145466, 0.4578275, 0.40821073],
                               image_std=[0.26862954, 0.26130258, 0.27577711]).save_pretrained(os.path.join(pipe, "image_processor"))
            index.update(scheduler=["diffusers", "UnCLIPScheduler"], tokenizer=["transformers", "CLIPTokenizer"],
                         image_processor=["transformers", "CLIPImageProcessor"])
        with open(os.path.join(pipe, "model_index.json"), "w") as f:
            json.dump(index, f, indent=2)
        print(f"{pipe}: {', '.join(sorted(index)[2:])}")


def main():
    out = sys.argv[1]
    if sys.argv[2:] == ["pipelines"]:
        return assemble_pipelines(out)
    names = sys.argv[2:] or ["movq", "unet_decoder", "unet_inpaint", "unet_controlnet", "prior", "text_encoder", "image_encoder",
                             "dpt_large", "depth_anything_v2_small"]
    for name in names:
        torch.manual_seed(0)
        model, keyfile = build(name)
        model.eval()
        n = check_keys(model, keyfile)
        # Weights rounded to fp16, stored as fp16; the reference runs in float32 on those values.
        for p in model.parameters():
            p.copy_(p.half().float())
        path = os.path.join(out, name)
        model.to(torch.float16).save_pretrained(path, safe_serialization=True, variant="fp16")
        model.float()
        io = run(name, model)
        save_file({k: v.contiguous().float() for k, v in io.items()}, os.path.join(path, "reference_io.safetensors"))
        params = sum(p.numel() for p in model.parameters())
        checked = f"match tools/keys/{keyfile}.txt" if keyfile else "(transformers' own layout)"
        print(f"{name}: {n} tensors {checked}, {params / 1e6:.1f}M parameters, saved fp16 to {path}", flush=True)
        del model
        gc.collect()


if __name__ == "__main__":
    main()
