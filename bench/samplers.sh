#!/usr/bin/env bash
# Samplers on the embedded default model: text2img with ddpm at 100 steps (the seed's default) against fewer-step
# samplers, whole processes, one run each, two prompts, seed 7. Prints seconds per run and writes the pictures to
# docs/gallery/samplers-*.png (docs/gallery.md shows them side by side).
#   bench/samplers.sh [PRECISION]
set -euo pipefail
cd "$(dirname "$0")/.."
PRECISION=${1:-fp32}
swift build -c release --product kandinsky >/dev/null
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); precision $PRECISION"
.build/release/kandinsky inspect | head -1
runs="ddpm:100 ddpm:25 ddim:25 dpmsolver++:20 dpmsolver++:30 unipc:20 unipc:30"
prompts=("a red circle on a blue background" "a small yellow star and a green square on a purple background")
mkdir -p bench/out docs/gallery
for p in 0 1; do
    for run in $runs; do
        scheduler=${run%%:*} steps=${run##*:}
        name="samplers-$p-${scheduler/++/pp}-$steps"
        start=$(date +%s.%N)
        .build/release/kandinsky run text2img --quiet --precision "$PRECISION" --prompt "${prompts[$p]}" --seed 7 \
            --scheduler "$scheduler" --num-inference-steps "$steps" -o "docs/gallery/$name.png" >/dev/null
        echo "$name $(echo "$(date +%s.%N) - $start" | bc)" >> bench/out/samplers.times
    done
done
sort bench/out/samplers.times
rm bench/out/samplers.times
