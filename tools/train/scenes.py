#!/usr/bin/env python3
"""Synthetic scenes for the embedded default model (issue 5): one to three objects (circle, square, triangle, star)
in eight colours on a background of another colour, with a caption and a depth map (objects nearer than the
background, with their true silhouettes). Scene `i` of seed `s` is always the same picture.

    python3 tools/train/scenes.py OUT_DIR [COUNT]     # writes a contact sheet and a few samples to look at
"""
import math
import sys

import numpy as np
from PIL import Image, ImageDraw

COLORS = {
    "red": (230, 25, 25), "green": (30, 170, 60), "blue": (30, 80, 220), "yellow": (245, 210, 30),
    "purple": (140, 50, 180), "orange": (245, 130, 20), "white": (245, 245, 245), "black": (20, 20, 20),
}
COLOR_NAMES = list(COLORS)
SHAPES = ["circle", "square", "triangle", "star"]
SUPERSAMPLE = 4


def _polygon(shape, cx, cy, r):
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return pts
    raise ValueError(shape)


def _draw(draw, shape, cx, cy, r, fill):
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)


def scene(index, seed=0, size=64):
    """Returns dict(image=RGB PIL, depth=L PIL, caption=str, background=name, objects=[dict(shape, color, small, x, y, r)])."""
    rng = np.random.default_rng([seed, index])
    background = COLOR_NAMES[rng.integers(len(COLOR_NAMES))]
    count = int(rng.integers(1, 4))
    objects = []
    for _ in range(count):
        color = COLOR_NAMES[rng.integers(len(COLOR_NAMES))]
        while color == background:
            color = COLOR_NAMES[rng.integers(len(COLOR_NAMES))]
        small = bool(rng.random() < 0.5)
        r = float(rng.uniform(0.09, 0.13) if small else rng.uniform(0.17, 0.26)) * size
        # Objects may touch but not hide each other: resample a place that overlaps too much.
        for _ in range(30):
            x, y = float(rng.uniform(r, size - r)), float(rng.uniform(r, size - r))
            if all(math.hypot(x - o["x"], y - o["y"]) > 0.85 * (r + o["r"]) for o in objects):
                break
        objects.append(dict(shape=SHAPES[rng.integers(len(SHAPES))], color=color, small=small, x=x, y=y, r=r))
    img, depth = render(objects, background, size)
    return dict(image=img, depth=depth, caption=caption(objects, background), background=background, objects=objects)


def render(objects, background, size=64):
    """The picture and depth map of `objects` (dicts with shape, color, x, y, r in pixels) on `background`."""
    big = size * SUPERSAMPLE
    img = Image.new("RGB", (big, big), COLORS[background])
    depth = Image.new("L", (big, big), 0)
    di, dd = ImageDraw.Draw(img), ImageDraw.Draw(depth)
    for k, o in enumerate(objects):  # later objects are drawn on top and are nearer
        s = SUPERSAMPLE
        _draw(di, o["shape"], o["x"] * s, o["y"] * s, o["r"] * s, COLORS[o["color"]])
        _draw(dd, o["shape"], o["x"] * s, o["y"] * s, o["r"] * s, 150 + 50 * k)
    return img.resize((size, size), Image.LANCZOS), depth.resize((size, size), Image.LANCZOS)


def caption(objects, background):
    def article(word):
        return "an " + word if word[0] in "aeiou" else "a " + word
    parts = [article(("small " if o["small"] else "") + o["color"] + " " + o["shape"]) for o in objects]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text} on {article(background)} background"


def batch(start, count, seed=0, size=64):
    """Arrays for training: images [N,3,H,W] in [-1,1], depth [N,1,H,W] in [0,1], captions [N]."""
    scenes = [scene(start + i, seed, size) for i in range(count)]
    images = np.stack([np.asarray(s["image"], np.float32).transpose(2, 0, 1) / 127.5 - 1 for s in scenes])
    depth = np.stack([np.asarray(s["depth"], np.float32)[None] / 255 for s in scenes])
    return images, depth, [s["caption"] for s in scenes], scenes


if __name__ == "__main__":
    import os
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    os.makedirs(out, exist_ok=True)
    sheet = Image.new("RGB", (64 * n, 128))
    for i in range(n):
        s = scene(i)
        sheet.paste(s["image"], (64 * i, 0))
        sheet.paste(s["depth"].convert("RGB"), (64 * i, 64))
        print(i, s["caption"])
    sheet.save(os.path.join(out, "scenes.png"))
