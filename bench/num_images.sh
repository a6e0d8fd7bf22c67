#!/usr/bin/env bash
# Several images per request: `kandinsky run text2img --num-images N` (one batch through the decoder) against the
# same N images one at a time (a workflow file of N tasks with seeds S .. S+N-1: one process, models loaded once),
# whole processes, best of RUNS each, at each SIZE. Checks that the two give the same pixels.
#   bench/num_images.sh [THREADS] [N] [RUNS] [SIZE ...]        (defaults: 2 4 3 64 256; the embedded default model)
# KANDINSKY=path times another build of the CLI (it must sit beside the plugins it loads).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}; N=${2:-4}; RUNS=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(64 256)
swift build -c release --product kandinsky >/dev/null
export OMP_NUM_THREADS=$THREADS KANDINSKY_THREADS=$THREADS
K=${KANDINSKY:-.build/release/kandinsky}
OUT=bench/out/num_images; rm -rf "$OUT"; mkdir -p "$OUT"
PROMPT="a red circle and a yellow square on a blue background"
SEED=100
best() { sort -n | head -1; }
grep -m1 'model name' /proc/cpuinfo
for SIZE in "${SIZES[@]}"; do
    COMMON=(--prompt "$PROMPT" --width "$SIZE" --height "$SIZE" --guidance-scale 4 --num-inference-steps 50 --quiet)
    python3 - "$OUT/wf-$SIZE.json" "$N" "$SEED" "$SIZE" "$PROMPT" <<'PY'
import json, sys
path, n, seed, size, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tasks = [{"task": "text2img", "output": f"one-{size}-{k}.png",
          "parameters": {"prompt": prompt, "width": size, "height": size, "guidance_scale": "4",
                         "num_inference_steps": "50", "seed": str(seed + k)}} for k in range(n)]
json.dump({"tasks": tasks}, open(path, "w"))
PY
    batched=$(for _ in $(seq "$RUNS"); do /usr/bin/time -f "%e" $K run text2img "${COMMON[@]}" --seed $SEED \
        --num-images "$N" -o "$OUT/batch-$SIZE.png" 2>&1 >/dev/null | tail -1; done | best)
    single=$(for _ in $(seq "$RUNS"); do /usr/bin/time -f "%e" $K workflow "$OUT/wf-$SIZE.json" --quiet 2>&1 \
        >/dev/null | tail -1; done | best)
    python3 - "$OUT" "$SIZE" "$N" "$batched" "$single" <<'PY'
import struct, sys, zlib
out, size, n, batched, single = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
def pixels(path):
    data, at, idat = open(path, "rb").read(), 8, b""
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        if data[at + 4:at + 8] == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    return zlib.decompress(idat)
same = all(pixels(f"{out}/batch-{size}-{k}.png") == pixels(f"{out}/one-{size}-{k}.png") for k in range(n))
print(f"{size}x{size}, {n} images, guidance 4, 50 steps: one batch {batched:.2f} s, one at a time {single:.2f} s, "
      f"throughput gain {single / batched:.2f}x; same pixels: {same}")
PY
done
