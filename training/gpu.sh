#!/usr/bin/env bash
# The OCR recipe of `make train-ocr-ctx`, scaled for a lent GPU machine (the `device` tool: one GPU, 16 cores):
# 14 generator processes instead of 2, 8x the synthetic samples, batch 512 on CUDA. Run from the repository
# root there with the data folder as $1; results land in $OUT (or training/out/gpu) to bring back:
#   training/gpu.sh ../shared/data
# It needs python3 with torch (CUDA), numpy, pillow, opencv-python-headless 4.6 and onnx on that machine
# (training/requirements.txt), and the fonts of `make train-deps`; it stops with a clear message otherwise.
# Nothing here is used on a machine without a GPU.
set -euo pipefail
DATA=${1:?usage: training/gpu.sh <folder of labelled plate sets>}
DATA=$(cd "$DATA" && pwd)
DEST=${OUT:-$PWD/training/out/gpu}
PY=${PY:-python3}
cd "$(dirname "$0")"
$PY - <<'PYEOF' || { echo "gpu.sh: python3 with CUDA torch, numpy, pillow, cv2 4.6 and onnx is needed" >&2; exit 2; }
import torch, numpy, PIL, cv2, onnx
assert torch.cuda.is_available(), "no CUDA device"
print("torch", torch.__version__, "cuda", torch.cuda.get_device_name(0), "cv2", cv2.__version__)
PYEOF
mkdir -p "$DEST/data" "$DEST/run"
GEN="--box-jitter 0.11 --issued-letters 0.8"
OMP_NUM_THREADS=1 $PY gen_ocr.py --data "$DATA" --out "$DEST/data" --shard 10 --count 12000 --real-copies 30 \
  --hand-labels labels/openimages_gplates.tsv --real-jitter 0.11 --p-stroke 0.3 --p-emblem 0.1 $GEN &
for k in $(seq 20 32); do
  OMP_NUM_THREADS=1 $PY gen_ocr.py --data "$DATA" --out "$DEST/data" --shard "$k" --count 24000 \
    --p-stroke 0.$(( k % 5 + 1 )) --p-emblem 0.2 $GEN > "$DEST/gen_$k.log" 2>&1 &
done
wait
$PY train_ocr.py --data-dir "$DEST/data" --out "$DEST/run" --steps 30000 --batch 512 --lr 3e-3 --real-frac 0.35 \
  --hard-frac 0.15 --seed 21 --eval-every 1000 --context --widths 24,48,96,128,160 --threads 8 --device cuda \
  | tee "$DEST/train.log"
$PY export_ocr.py --ckpt "$DEST/run/best.pt" --out "$DEST/plate-ocr.onnx" --data "$DATA"
