#!/usr/bin/env bash
# The per-lever table of issue 13: one short OCR run per lever of the recipe, each the full recipe with that
# one lever taken out, all from the same starting point (run 11's conv weights, read back from its ONNX), the
# same seed, the same step count and the same synthetic budget (SYN plates each), so a row's difference from
# "all" is that lever's own effect at this budget. Checkpoints are picked on the training sets' held-out
# crops (real_val), never on an evaluation set. Each variant is exported to out/ablation/<name>/plate-ocr.onnx
# and measured afterwards with `polewatch bench accuracy` (see training/README.md).
#   training/ablation.sh ../shared/data     (STEPS=400 SYN=4000 THREADS=1 NICE=5 by default; done rows skip)
# The defaults are what fitted beside the other work of a shared 2-core machine: short continuations whose
# differences below about a point are noise; raise STEPS and SYN where there is time.
# Levers: context (the whole-plate block), real (every real set, replayed at 35 % with hard replay), glyphs
# (stroke-drawn plate glyphs and issued-letter series statistics in the synthetic plates).
set -euo pipefail
DATA=${1:?usage: training/ablation.sh <folder of labelled plate sets>}
DATA=$(cd "$DATA" && pwd)
STEPS=${STEPS:-400}
SYN=${SYN:-4000}
THREADS=${THREADS:-1}
NICE=${NICE:-5}
cd "$(dirname "$0")"
PY=${PY:-.venv/bin/python}
A=out/ablation
mkdir -p "$A"
export OMP_NUM_THREADS=$THREADS
test -s out/ocr_ctx/real_train.npz && test -s out/ocr_ctx/syn_10.npz || {
  echo "ablation: out/ocr_ctx (make ocr-ctx-data) is needed first" >&2; exit 2; }
test -s out/plate-ocr-run11.onnx || git show 649f594:models/plate-ocr.onnx > out/plate-ocr-run11.onnx
test -s "$A/init_ctx.pt" || $PY init_from_onnx.py --onnx out/plate-ocr-run11.onnx --out "$A/init_ctx.pt" --context
test -s "$A/init_conv.pt" || $PY init_from_onnx.py --onnx out/plate-ocr-run11.onnx --out "$A/init_conv.pt"

# SYN synthetic plates with the glyph levers on (the first SYN of shard 10 of `make ocr-ctx-data`) and, for the
# glyphs row, SYN from the same generator arguments with them off.
mkdir -p "$A/data_on" "$A/data_off"
for f in real_train.npz real_val.npz; do
  ln -sf "$PWD/out/ocr_ctx/$f" "$A/data_on/$f"; ln -sf "$PWD/out/ocr_ctx/$f" "$A/data_off/$f"
done
test -s "$A/data_on/syn_10.npz" || $PY - "$SYN" "$A/data_on/syn_10.npz" <<'PYEOF'
import sys, numpy as np
n, out = int(sys.argv[1]), sys.argv[2]
d = np.load("out/ocr_ctx/syn_10.npz")
np.savez(out, **{k: d[k][:n] for k in d.files})
PYEOF
if ! test -s "$A/data_off/syn_40.npz"; then
  nice -n "$NICE" $PY gen_ocr.py --data "$DATA" --out "$A/data_off" --shard 40 --count "$SYN" --box-jitter 0.11 \
    --p-stroke 0 --issued-letters 0 --p-emblem 0.1 > "$A/gen_off.log" 2>&1 &
  GEN=$!
fi

COMMON="--steps $STEPS --lr 1e-3 --seed 21 --eval-every $((STEPS / 2)) --widths 16,32,64,96,128 --threads $THREADS --freeze-bn"
run() {
  local name=$1; shift
  test -s "$A/$name/plate-ocr.onnx" && return 0
  echo "== $name $(date -u +%H:%M)"
  nice -n "$NICE" $PY train_ocr.py $COMMON --out "$A/$name" "$@" > "$A/$name.log" 2>&1
  $PY export_ocr.py --ckpt "$A/$name/best.pt" --out "$A/$name/plate-ocr.onnx" --data "$DATA" >> "$A/$name.log" 2>&1
  tail -1 "$A/$name.log"
}
# The rows run side by side (one thread each): on a machine shared with builds each process gets its own share.
run all        --data-dir "$A/data_on" --real-frac 0.35 --hard-frac 0.15 --context --init "$A/init_ctx.pt" &
run no-context --data-dir "$A/data_on" --real-frac 0.35 --hard-frac 0.15 --init "$A/init_conv.pt" &
run no-real    --data-dir "$A/data_on" --real-frac 0 --hard-frac 0.15 --context --init "$A/init_ctx.pt" &
if [ -n "${GEN:-}" ]; then wait "$GEN"; fi
run no-glyphs  --data-dir "$A/data_off" --real-frac 0.35 --hard-frac 0.15 --context --init "$A/init_ctx.pt"
wait
echo "ablation: done; measure each out/ablation/*/plate-ocr.onnx with polewatch bench accuracy"
