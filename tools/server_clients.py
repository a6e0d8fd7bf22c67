"""Client libraries used unchanged against a running `kandinsky serve`: AUTOMATIC1111's `webuiapi` and OpenAI's
`openai` SDK (versions pinned in tools/client-env.sh). Each does text-to-image, image-to-image and inpainting on the
default model; inpainting is checked pixel by pixel (outside the mask unchanged, inside changed), and an A1111
interrupt stops only the request it belongs to.

    python tools/server_clients.py PORT        (Tests/ProductTests/ServerTests.swift runs it)

Prints one line per check; exits 1 at the first miss, naming the case and the size of the miss.
"""

import base64
import io
import sys
import threading
import time
import urllib.request

import openai
import webuiapi
from PIL import Image

SIZE = 64
# The repainted square; pixels further than SEAM from it must keep the picture's bytes (the feathered seam of
# mask_blur lies within it).
BOX = (16, 16, 48, 48)
SEAM = 8
QUICK = {"prior_num_inference_steps": 2}


def check(condition, message, detail=""):
    if not condition:
        print("FAIL " + message + (f" ({detail})" if detail else ""))
        sys.exit(1)
    print("ok   " + message)


def far_from_box(x, y):
    return x < BOX[0] - SEAM or x >= BOX[2] + SEAM or y < BOX[1] - SEAM or y >= BOX[3] + SEAM


def compare_inpaint(case, before, after):
    """Outside the mask (beyond the seam): identical. Inside: changed."""
    before = before.convert("RGB")
    after = after.convert("RGB")
    check(after.size == before.size, f"{case}: result size {after.size} == picture size {before.size}")
    changed_outside = [
        (x, y)
        for y in range(SIZE)
        for x in range(SIZE)
        if far_from_box(x, y) and after.getpixel((x, y)) != before.getpixel((x, y))
    ]
    check(not changed_outside, f"{case}: pixels outside the mask unchanged (changed: {changed_outside[:5]})")
    inside = [(x, y) for y in range(BOX[1], BOX[3]) for x in range(BOX[0], BOX[2])]
    difference = sum(
        abs(a - b) for x, y in inside for a, b in zip(after.getpixel((x, y)), before.getpixel((x, y)))
    ) / (3 * len(inside))
    check(difference > 4, f"{case}: masked square changed (mean |difference| {difference:.1f} levels > 4)")


def a1111(port):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
    check(api.util_get_model_names() == ["kandinsky-2.2-default"], "webuiapi: sd-models lists the default model")
    check(api.util_get_current_model() == "kandinsky-2.2-default", "webuiapi: options name the current model")
    common = dict(width=SIZE, height=SIZE, steps=3, cfg_scale=4, sampler_name="DDIM")
    result = api.txt2img(prompt="a red circle on a blue background", seed=3, batch_size=2, **common)
    check(len(result.images) == 2, f"webuiapi txt2img: 2 images (got {len(result.images)})")
    check(result.images[0].size == (SIZE, SIZE), f"webuiapi txt2img: {SIZE}x{SIZE} (got {result.images[0].size})")
    check(result.info["all_seeds"] == [3, 4], f"webuiapi txt2img: seeds 3, 4 (got {result.info['all_seeds']})")
    check(result.info["kandinsky"]["params"]["scheduler"] == "ddim", "webuiapi txt2img: DDIM ran as ddim")
    metadata = result.images[0].info
    check(metadata.get("kandinsky:seed") == "3", "webuiapi txt2img: PNG metadata seed 3", metadata)
    picture = result.images[0].convert("RGB")

    result = api.img2img(images=[picture], prompt="a green square", denoising_strength=0.6, seed=5, **common)
    check(len(result.images) == 1, "webuiapi img2img: one image")
    check(result.info["kandinsky"]["plugin"] == "img2img", "webuiapi img2img: the img2img plugin ran")
    check(result.info["kandinsky"]["params"]["strength"] == "0.6", "webuiapi img2img: denoising_strength 0.6")

    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, BOX)
    result = api.img2img(images=[picture], mask_image=mask, prompt="a yellow star", seed=6, **common)
    check(result.info["kandinsky"]["plugin"] == "inpaint", "webuiapi inpaint: a mask makes it the inpaint plugin")
    compare_inpaint("webuiapi inpaint", picture, result.images[0])

    # Interrupt: a long request is stopped while it runs; the client gets its (empty) answer, not an error.
    answer = {}
    thread = threading.Thread(
        target=lambda: answer.update(
            result=api.txt2img(prompt="a red circle", seed=1, width=SIZE, height=SIZE, steps=400)
        )
    )
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and api.get_progress()["state"]["sampling_steps"] != 400:
        time.sleep(0.1)
    progress = api.get_progress()
    check(progress["state"]["sampling_steps"] == 400, "webuiapi progress: the running request's steps", progress)
    api.interrupt()
    thread.join(60)
    check(not thread.is_alive(), "webuiapi interrupt: the request returns")
    interrupted = answer["result"]
    check(
        interrupted.images == [] and interrupted.info["kandinsky"]["interrupted"],
        "webuiapi interrupt: no image, info says interrupted",
        interrupted.info.get("kandinsky"),
    )


def openai_client(port):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="not-checked-on-loopback")
    quick = dict(size=f"{SIZE}x{SIZE}", response_format="b64_json")
    result = client.images.generate(
        prompt="a red circle on a blue background",
        n=2,
        extra_body={"seed": 7, "num_inference_steps": 3, **QUICK},
        **quick,
    )
    check(len(result.data) == 2, f"openai generate: n=2 gives 2 images (got {len(result.data)})")
    picture = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).convert("RGBA")
    check(picture.size == (SIZE, SIZE), f"openai generate: size {SIZE}x{SIZE} (got {picture.size})")

    # The mask's transparent pixels mark what to repaint.
    mask = picture.copy()
    mask.paste((0, 0, 0, 0), BOX)
    files = {}
    for name, image in (("image", picture), ("mask", mask)):
        data = io.BytesIO()
        image.save(data, "PNG")
        files[name] = (name + ".png", data.getvalue(), "image/png")
    result = client.images.edit(
        image=files["image"], mask=files["mask"], prompt="a yellow square", n=1,
        extra_body={"seed": 8, "num_inference_steps": 3, **QUICK}, **quick
    )
    check(result.model_extra["kandinsky"]["plugin"] == "inpaint", "openai edit with a mask: the inpaint plugin ran")
    compare_inpaint("openai edit", picture, Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))))

    # No mask and an opaque picture: the whole picture is edited (img2img).
    result = client.images.edit(
        image=files["image"], prompt="a green square", extra_body={"seed": 9, "strength": 0.5, **QUICK}, **quick
    )
    check(result.model_extra["kandinsky"]["plugin"] == "img2img", "openai edit without a mask: img2img ran")
    edited = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    check(edited.size == (SIZE, SIZE), f"openai edit without a mask: {SIZE}x{SIZE} (got {edited.size})")

    result = client.images.generate(
        prompt="a red circle", size=f"{SIZE}x{SIZE}", response_format="url", model="dall-e-2", extra_body=QUICK
    )
    fetched = Image.open(io.BytesIO(urllib.request.urlopen(result.data[0].url).read()))
    url = result.data[0].url
    check(fetched.size == (SIZE, SIZE), "openai generate response_format url: the URL serves the PNG", url)
    check(
        any("dall-e-2" in note for note in result.model_extra["kandinsky"]["notes"]),
        "openai generate: the foreign model name is reported, not silently taken",
    )


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(f"webuiapi {webuiapi.__version__ if hasattr(webuiapi, '__version__') else '?'}, openai {openai.__version__}")
    a1111(port)
    openai_client(port)
