#!/usr/bin/env bash
# Real-size benchmark: the published decoder UNet, MoVQ, prior and CLIP towers (random weights, fp16 files, made by
# tools/make_real_size.py DIR ...; DIR pipelines) at 768x768 with guidance 4, as whole processes at the same thread
# count. Seconds per decoder step = (T(3 steps) - T(1 step)) / 2, so loading, the prior and the MoVQ decode cancel.
# Prints each run's time and peak RSS, our peak RSS against the bytes of the weight files, the per-step ratios, and
# (with KANDINSKY_PROFILE) where our time goes per step and in the 1-step run.
#   PYTHON=/path/to/venv/bin/python bench/real_size.sh DIR [THREADS] [RUNS...]
# RUNS (default: all) from torch-fp32 torch-bf16 kandinsky-fp32 kandinsky-auto.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIR=${1:?usage: bench/real_size.sh DIR [THREADS] [RUNS...]}; shift
THREADS=${1:-2}; shift || true
RUNS=${*:-torch-fp32 torch-bf16 kandinsky-fp32 kandinsky-auto}
P=$DIR/pipelines
[ -d "$P/decoder" ] || { echo "no $P/decoder: run tools/make_real_size.py $DIR movq unet_decoder prior text_encoder image_encoder, then $DIR pipelines" >&2; exit 1; }
OUT=bench/out/real_size
mkdir -p $OUT
swift build -c release --product kandinsky >/dev/null
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS KANDINSKY_THREADS=$THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"
.build/release/kandinsky inspect | head -1
common=(--prompt "a red cat, 4k photo" --seed 42 --guidance-scale 4 --prior-num-inference-steps 2 --width 768 --height 768)
for run in $RUNS; do
    for steps in 1 3; do
        name=${run}_$steps
        case $run in
        torch-fp32|torch-bf16)
            flag=$([ $run = torch-bf16 ] && echo --bf16 || true)
            /usr/bin/time -f "%e %M" -o $OUT/$name.time "$PY" bench/torch_text2img.py 768 $OUT/$name.png "$THREADS" --models "$P" \
                --variant fp16 --steps $steps --guidance 4 --prior-steps 2 $flag >$OUT/$name.log 2>&1 ;;
        kandinsky-*)
            KANDINSKY_PROFILE=1 /usr/bin/time -f "%e %M" -o $OUT/$name.time .build/release/kandinsky run text2img --quiet \
                --precision "${run#kandinsky-}" --verbose --model-name "$P/decoder" --prior-model-name "$P/prior" \
                --num-inference-steps $steps "${common[@]}" -o $OUT/$name.png >$OUT/$name.log 2>&1 ;;
        esac || { cat $OUT/$name.log >&2; exit 1; }
        echo "$name: $(cat $OUT/$name.time)"
    done
done
# The weight files the runs load (the generator's reference_io files sit beside them and are not weights).
weights=$(find -L "$P" -name "*.safetensors" ! -name "reference_io.safetensors" -print0 | du -L -b -c --files0-from=- | tail -1 | cut -f1)
"$PY" - "$OUT" "$weights" $RUNS <<'PY'
import re
import sys
out, weights, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
t, rss = {}, {}
for r in runs:
    for s in (1, 3):
        sec, kb = open(f"{out}/{r}_{s}.time").read().split()
        t[r, s], rss[r, s] = float(sec), int(kb) * 1024
step = {r: (t[r, 3] - t[r, 1]) / 2 for r in runs}
print(f"768x768, guidance 4; weight files {weights / 1e9:.2f} GB")
for r in runs:
    print(f"  {r:15s} per step {step[r]:6.1f} s | 1-step process {t[r, 1]:6.1f} s | peak RSS {rss[r, 3] / 1e9:5.2f} GB"
          + (f" = {rss[r, 3] / weights:.2f}x the weight files" if r.startswith("kandinsky") else ""))
for r in [r for r in runs if r.startswith("kandinsky")]:
    print("  " + ", ".join(f"{r} per step {step[r] / step[x]:.2f}x {x}'s" for x in runs if x.startswith("torch")))
    prof = {}
    for s in (1, 3):
        for line in open(f"{out}/{r}_{s}.log"):
            m = re.match(r"profile (\S+)\s+([\d.]+) s", line)
            if m:
                prof[m.group(1), s] = float(m.group(2))
    if prof:
        kinds = sorted({k for k, _ in prof}, key=lambda k: list(dict.fromkeys(k for k, _ in prof)).index(k))
        print(f"  {r} profile: kind, seconds per step (share), seconds in the 1-step process (share)")
        for k in kinds:
            per = (prof[k, 3] - prof[k, 1]) / 2
            print(f"    {k:13s} {per:7.1f} s ({100 * per / step[r]:4.1f}%)   {prof[k, 1]:7.1f} s ({100 * prof[k, 1] / t[r, 1]:4.1f}%)")
PY
