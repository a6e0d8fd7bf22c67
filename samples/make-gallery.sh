#!/usr/bin/env bash
# Remakes docs/gallery.md: runs samples/workflow-default.json with the kandinsky CLI on the embedded default model
# (no model named), then lays its inputs and outputs side by side in a Markdown table. Images are copied, not
# edited: every output picture is the CLI's own.
#   swift build -c release && samples/make-gallery.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/kandinsky
mkdir -p samples/out
"$bin" workflow samples/workflow-default.json
g=docs/gallery
mkdir -p "$g" && rm -f "$g"/default-*.png
# The sections after the first table (the samplers, from bench/samplers.sh) are kept as they are.
rest=$(sed -n '/^## /,$p' docs/gallery.md 2>/dev/null || true)
cp samples/scenes/{inpaint-image,inpaint-mask,inpaint-large-image,inpaint-large-mask,fusion-1,fusion-2,depth-upper-left,depth-lower-right,photo}.png samples/out/default-*.png "$g"/
img() { echo -n "<img src=\"gallery/$1\" width=\"${2:-128}\" alt=\"$1\">"; }
{
  echo "# Gallery: the embedded default model"
  echo
  echo "Made by \`samples/make-gallery.sh\`: \`kandinsky workflow samples/workflow-default.json\` with no model named, so"
  echo "every picture comes from the 64x64 default model in \`models/default\` at the plugins' default settings (25 prior"
  echo "steps, 100 decoder steps); inputs from \`samples/scenes\`. Shown at 2x. Inpainting keeps the unmasked pixels by"
  echo "default (\`keep_unmasked\`, docs/inpainting.md)."
  echo
  echo "| task | inputs | output |"
  echo "|---|---|---|"
  echo "| text2img \"a red circle on a blue background\" | | $(img default-text2img-1.png) |"
  echo "| text2img \"a small yellow star and a green square on a purple background\" | | $(img default-text2img-2.png) |"
  echo "| text2img \"a white triangle on a black background\" | | $(img default-text2img-3.png) |"
  echo "| text2img \"an orange circle and a blue star on a white background\" | | $(img default-text2img-4.png) |"
  echo "| img2img \"a yellow square on a purple background\", strength 0.6 | $(img fusion-1.png) | $(img default-img2img.png) |"
  echo "| inpaint \"a white square and a yellow circle on a green background\" (white = repaint) | $(img inpaint-image.png) $(img inpaint-mask.png) | $(img default-inpaint.png) |"
  echo "| the same with keep_unmasked false (diffusers' output: the unmasked part passes through the MoVQ autoencoder) | $(img inpaint-image.png) $(img inpaint-mask.png) | $(img default-inpaint-diffusers.png) |"
  echo "| inpaint_area masked on a 256x256 picture (the crop around the mask is inpainted at 64x64 and stitched back; shown at 1x) | $(img inpaint-large-image.png 256) $(img inpaint-large-mask.png 256) | $(img default-inpaint-masked-area.png 256) |"
  echo "| fusion, weights [1, 0] / [0.5, 0.5] / [0, 1] | $(img fusion-1.png) $(img fusion-2.png) | $(img default-fusion-0.png) $(img default-fusion-50.png) $(img default-fusion-100.png) |"
  echo "| controlnet-depth \"a red circle on a blue background\" (near = bright) | $(img depth-upper-left.png) | $(img default-controlnet-upper-left.png) |"
  echo "| controlnet-depth, same prompt and seed | $(img depth-lower-right.png) | $(img default-controlnet-lower-right.png) |"
  echo "| controlnet-depth from a picture: depth estimated by the embedded depth model (\`kandinsky run depth\`, middle), then the same prompt and seed | $(img photo.png) $(img default-depth-photo.png) | $(img default-controlnet-photo.png) |"
  echo "| outpaint \"a white square on a green background\", border 16 | $(img inpaint-image.png) | $(img default-outpaint.png) |"
  if [ -n "$rest" ]; then echo; echo "$rest"; fi
} > docs/gallery.md
echo "wrote docs/gallery.md"
