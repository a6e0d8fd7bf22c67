#!/usr/bin/env bash
# Benchmark: text2img (prior 5 steps + decoder 10 steps, guidance 4 on both) on the mid-size model set, as whole
# processes at the same thread count, one run each, interleaved per size: PyTorch (diffusers) fp32, PyTorch bf16
# autocast, and `kandinsky run text2img` at --precision fp32 and auto. Prints times, peak RSS, the ratios, how far
# each image is from PyTorch fp32's, and the CPU and oneDNN instruction set measured on.
#   PYTHON=/path/to/venv/bin/python bench/run.sh [THREADS] [SIZES...]
# TORCH_BF16=0 leaves PyTorch's bf16 autocast out (on a CPU without avx512_bf16/AMX torch emulates it: 6x its fp32
# time at 256x256 here, and over 20 minutes at 512x512).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
THREADS=${1:-2}; shift || true
SIZES=${*:-256 512}
M=bench/out/models
mkdir -p bench/out
[ -d $M/decoder ] || "$PY" bench/make_bench_models.py
swift build -c release --product kandinsky >/dev/null
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS KANDINSKY_THREADS=$THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"
.build/release/kandinsky inspect | head -1
timed() {  # NAME COMMAND...: runs COMMAND, leaves "seconds peak-KB" in bench/out/NAME.time
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "bench/out/$name.time" "$@" >/dev/null 2>"bench/out/$name.log" \
        || { cat "bench/out/$name.log" >&2; exit 1; }
}
for size in $SIZES; do
    timed torch_fp32_$size "$PY" bench/torch_text2img.py "$size" "bench/out/torch_fp32_$size.png" "$THREADS"
    [ "${TORCH_BF16:-1}" = 0 ] || timed torch_bf16_$size "$PY" bench/torch_text2img.py "$size" "bench/out/torch_bf16_$size.png" "$THREADS" --bf16
    for precision in fp32 auto; do
        timed kandinsky_${precision}_$size .build/release/kandinsky run text2img --quiet --precision $precision \
            --model-name $M/decoder --prior-model-name $M/prior --prompt "a red cat, 4k photo" --seed 42 \
            --num-inference-steps 10 --guidance-scale 4 --prior-num-inference-steps 5 --prior-guidance-scale 4 \
            --width "$size" --height "$size" -o "bench/out/kandinsky_${precision}_$size.png"
    done
    "$PY" - "$size" "${TORCH_BF16:-1}" <<'PY'
import sys
import numpy as np
from PIL import Image
size = sys.argv[1]
runs = ["torch_fp32"] + (["torch_bf16"] if sys.argv[2] != "0" else []) + ["kandinsky_fp32", "kandinsky_auto"]
t, rss, img = {}, {}, {}
for r in runs:
    s, kb = open(f"bench/out/{r}_{size}.time").read().split()
    t[r], rss[r] = float(s), int(kb) / 1024
    img[r] = np.asarray(Image.open(f"bench/out/{r}_{size}.png").convert("RGB")).astype(int)
print(f"{size}x{size}:")
for r in runs:
    d = np.abs(img[r] - img["torch_fp32"])
    print(f"  {r:15s} {t[r]:7.2f} s  {rss[r]:6.0f} MB peak | vs torch fp32: mean {d.mean():.2f} levels, "
          f"{np.mean(d <= 2) * 100:.2f}% within 2, max {d.max()}")
for ours in ["kandinsky_fp32", "kandinsky_auto"]:
    bf16 = f"{t[ours] / t['torch_bf16']:.2f}x torch bf16's, " if "torch_bf16" in t else ""
    print(f"  {ours}: {t[ours] / t['torch_fp32']:.2f}x torch fp32's time, {bf16}{rss[ours] / rss['torch_fp32']:.2f}x torch fp32's peak RSS")
PY
done
