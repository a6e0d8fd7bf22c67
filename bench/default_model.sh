#!/usr/bin/env bash
# Benchmark on the embedded default model: the README's first command (text2img, default settings, 64x64) as whole
# processes, PyTorch (diffusers) and `kandinsky run` in one run at the same thread count, best of RUNS each.
#   PYTHON=/path/to/venv/bin/python bench/default_model.sh [THREADS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
THREADS=${1:-2}; RUNS=${2:-3}
mkdir -p bench/out
swift build -c release --product kandinsky >/dev/null
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS KANDINSKY_THREADS=$THREADS
best() { sort -n | head -1; }
PROMPT="a red circle and a yellow square on a blue background"
tt=$(for _ in $(seq "$RUNS"); do /usr/bin/time -f "%e" "$PY" bench/torch_text2img.py 64 bench/out/torch_default.png "$THREADS" --models models/default \
        --prompt "$PROMPT" --steps 100 --guidance 1 --prior-steps 25 --prior-guidance 4 --seed 1 2>&1 >/dev/null | tail -1; done | best)
st=$(for _ in $(seq "$RUNS"); do /usr/bin/time -f "%e" .build/release/kandinsky run text2img --prompt "$PROMPT" \
        --seed 1 --quiet -o bench/out/swift_default.png 2>&1 >/dev/null | tail -1; done | best)
"$PY" - "$tt" "$st" <<'PY'
import sys
import numpy as np
from PIL import Image
tt, st = float(sys.argv[1]), float(sys.argv[2])
a = np.asarray(Image.open("bench/out/torch_default.png").convert("RGB")).astype(int)
b = np.asarray(Image.open("bench/out/swift_default.png").convert("RGB")).astype(int)
d = np.abs(a - b)
print(f"default model 64x64, 25+100 steps: torch {tt:.2f}s | kandinsky {st:.2f}s | time ratio {st/tt:.2f}x | "
      f"images: {np.mean(d <= 2)*100:.2f}% of values within 2 levels, max diff {d.max()}")
PY
