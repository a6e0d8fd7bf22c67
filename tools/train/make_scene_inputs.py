#!/usr/bin/env python3
"""Scene-domain inputs for the default model (samples/scenes): the gallery's inputs and those of the quality tests
(Tests/ProductTests/DefaultModelTests.swift), rendered by scenes.py. They are inputs with their true labels only
(quality.json): what the model makes of them is judged by the Swift tests.

    python3 tools/train/make_scene_inputs.py
"""
import json
import os

from PIL import Image

import common
import scenes

OUT = os.path.join(common.ROOT, "samples", "scenes")
HELDOUT_SEED = 777   # never used by a training script
S = common.SIZE


def main():
    os.makedirs(OUT, exist_ok=True)
    # Held-out single-object scenes for CLIP's colour zero-shot, as one 8x8 contact sheet.
    picked, index = [], 0
    while len(picked) < 64:
        s = scenes.scene(index, seed=HELDOUT_SEED, size=S)
        index += 1
        if len(s["objects"]) == 1:
            picked.append(s)
    sheet = Image.new("RGB", (8 * S, 8 * S))
    for k, s in enumerate(picked):
        sheet.paste(s["image"], ((k % 8) * S, (k // 8) * S))
    sheet.save(os.path.join(OUT, "heldout.png"))
    labels = [dict(shape=s["objects"][0]["shape"], color=s["objects"][0]["color"], background=s["background"],
                   small=s["objects"][0]["small"]) for s in picked]

    def obj(shape, color, x, y, r):
        return dict(shape=shape, color=color, x=x, y=y, r=r)

    # Inpainting: a green picture with a white square at the left; the mask's white square (repaint) is on the right.
    img, _ = scenes.render([obj("square", "white", 16, 32, 10)], "green", S)
    img.save(os.path.join(OUT, "inpaint-image.png"))
    mask = Image.new("L", (S, S), 0)
    mask.paste(255, (32, 16, 56, 48))
    mask.save(os.path.join(OUT, "inpaint-mask.png"))
    # Fusion: two pictures with no colour in common.
    scenes.render([obj("circle", "red", 32, 32, 14)], "blue", S)[0].save(os.path.join(OUT, "fusion-1.png"))
    scenes.render([obj("square", "yellow", 32, 32, 14)], "purple", S)[0].save(os.path.join(OUT, "fusion-2.png"))
    # ControlNet: one near disc in the upper left quarter and one in the lower right, as two depth maps.
    for name, (x, y) in (("depth-upper-left.png", (18, 18)), ("depth-lower-right.png", (46, 46))):
        scenes.render([obj("circle", "white", x, y, 13)], "black", S)[1].save(os.path.join(OUT, name))
    # Two-object inpainting: one object on the left half, the right half masked, and a prompt naming it and a
    # second object that the model must draw in the mask.
    right_half = Image.new("L", (S, S), 0)
    right_half.paste(255, (S // 2, 0, S, S))
    right_half.save(os.path.join(OUT, "inpaint-right-half.png"))
    two_objects = []
    for k, (kept, asked, background) in enumerate([
            (("circle", "red"), ("square", "yellow"), "blue"), (("square", "green"), ("circle", "red"), "white"),
            (("star", "yellow"), ("triangle", "blue"), "purple"), (("triangle", "white"), ("circle", "orange"), "black"),
            (("circle", "blue"), ("square", "green"), "yellow"), (("square", "orange"), ("star", "white"), "green")]):
        name = f"inpaint-two-{k}.png"
        scenes.render([obj(kept[0], kept[1], 16, 32, 11)], background, S)[0].save(os.path.join(OUT, name))
        prompt = scenes.caption([dict(shape=kept[0], color=kept[1], small=False),
                                 dict(shape=asked[0], color=asked[1], small=False)], background)
        two_objects.append(dict(image=name, prompt=prompt, kept=kept[1], asked=asked[1], background=background))
    # Depth estimation: eight held-out scenes with one to three objects, side by side, and their true depth maps;
    # the first is the gallery's photo for ControlNet from a picture.
    depth_scenes = [scenes.scene(index, seed=HELDOUT_SEED + 1, size=S) for index in range(8)]
    photos, truths = Image.new("RGB", (8 * S, S)), Image.new("L", (8 * S, S))
    for k, s in enumerate(depth_scenes):
        photos.paste(s["image"], (k * S, 0))
        truths.paste(s["depth"], (k * S, 0))
    photos.save(os.path.join(OUT, "depth-heldout.png"))
    truths.save(os.path.join(OUT, "depth-heldout-truth.png"))
    depth_scenes[0]["image"].save(os.path.join(OUT, "photo.png"))
    facts = dict(
        heldout=dict(file="heldout.png", grid=8, size=S, seed=HELDOUT_SEED, labels=labels),
        inpaint=dict(image="inpaint-image.png", mask="inpaint-mask.png", mask_box=[32, 16, 56, 48], background="green", kept="white"),
        fusion=dict(image1="fusion-1.png", colors1=["red", "blue"], image2="fusion-2.png", colors2=["yellow", "purple"]),
        controlnet=[dict(depth="depth-upper-left.png", center=[18, 18], radius=13),
                    dict(depth="depth-lower-right.png", center=[46, 46], radius=13)],
        inpaint_two_objects=dict(mask="inpaint-right-half.png", mask_box=[S // 2, 0, S, S], cases=two_objects),
        depth=dict(photos="depth-heldout.png", truth="depth-heldout-truth.png", count=8, size=S, seed=HELDOUT_SEED + 1,
                   captions=[s["caption"] for s in depth_scenes], photo="photo.png"),
        colors={k: list(v) for k, v in scenes.COLORS.items()})
    with open(os.path.join(OUT, "quality.json"), "w") as f:
        json.dump(facts, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
