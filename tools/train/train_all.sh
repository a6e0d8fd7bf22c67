#!/usr/bin/env bash
# Trains the whole default model set in dependency order with the step counts of the shipped weights, then exports
# it to models/default. Every script resumes from its checkpoint, so rerunning this after an interruption continues.
# Independent runs go in pairs with one torch thread each (the 2-core development machine); set TRAIN_THREADS to
# change that. Logs: $KANDINSKY_TRAIN_DIR/NAME.log (default tools/out/train).
#   KANDINSKY_TRAIN_DIR=/work/train tools/train/train_all.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
export KANDINSKY_TRAIN_DIR=${KANDINSKY_TRAIN_DIR:-$(cd ../.. && pwd)/tools/out/train} TRAIN_THREADS=${TRAIN_THREADS:-1}
mkdir -p "$KANDINSKY_TRAIN_DIR"
log() { echo "$KANDINSKY_TRAIN_DIR/$1.log"; }
pair() { "$PY" $1 >> "$(log $2)" 2>&1 & a=$!; "$PY" $3 >> "$(log $4)" 2>&1 & b=$!; wait $a; wait $b; }

pair "train_movq.py 700" movq "train_clip.py 1600" clip
pair "train_prior.py 2800" prior "train_decoder.py text2img 7000" decoder_text2img
pair "train_decoder.py inpaint 1500" decoder_inpaint "train_decoder.py controlnet 1500" decoder_controlnet
"$PY" train_depth.py 2400 >> "$(log depth)" 2>&1
"$PY" export.py
