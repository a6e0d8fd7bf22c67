#!/usr/bin/env bash
# Benchmark: text2img (prior 5 steps + decoder 10 steps, guidance 4 on both) on the mid-size model set, PyTorch
# (diffusers) and kandinsky in one run, same thread count, whole processes timed. Prints times, peak RSS, ratios,
# and how far apart the two images are.
#   PYTHON=/path/to/venv/bin/python bench/run.sh [THREADS] [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
THREADS=${1:-2}; shift || true
SIZES=${*:-256 512}
mkdir -p bench/out
[ -d bench/out/models/decoder ] || "$PY" bench/make_bench_models.py
swift build -c release --product kandinsky-bench >/dev/null
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS KANDINSKY_THREADS=$THREADS
for size in $SIZES; do
    /usr/bin/time -f "%e %M" -o bench/out/torch.time "$PY" bench/torch_text2img.py "$size" "bench/out/torch_$size.png" "$THREADS" 2>/dev/null
    /usr/bin/time -f "%e %M" -o bench/out/swift.time .build/release/kandinsky-bench "$size" "bench/out/swift_$size.png"
    read -r tt tm < bench/out/torch.time
    read -r st sm < bench/out/swift.time
    "$PY" - "$size" "$tt" "$tm" "$st" "$sm" <<'PY'
import sys
import numpy as np
from PIL import Image
size, tt, tm, st, sm = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
a = np.asarray(Image.open(f"bench/out/torch_{size}.png")).astype(int)
b = np.asarray(Image.open(f"bench/out/swift_{size}.png")).astype(int)
d = np.abs(a - b)
print(f"{size}x{size}: torch {tt:.2f}s {tm/1024:.0f} MB | kandinsky {st:.2f}s {sm/1024:.0f} MB | time ratio {st/tt:.2f}x, "
      f"RSS ratio {sm/tm:.2f}x | images: {np.mean(d <= 2)*100:.2f}% of values within 2 levels, max diff {d.max()}")
PY
done
