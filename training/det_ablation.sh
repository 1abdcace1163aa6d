#!/usr/bin/env bash
# The detector's lever of issue 13 (hard negatives), as a pair of runs that differ only in it: both continue the
# shipped detector (seeded from its ONNX file, BatchNorms frozen as its folds) with the same seed, steps and
# schedule; "hard" centres 30 % of its crops on the shipped detector's confident boxes on training frames that
# overlap no labelled plate (mine_det_negatives.py), "base" does not. Each is exported and its threshold picked on
# the held-out frames (pick_det_thr.py); openalpr-dev is measured afterwards with `polewatch bench accuracy`.
#   training/det_ablation.sh ../shared/data       (STEPS=600 NICE=5 by default; done runs skip)
set -euo pipefail
DATA=${1:?usage: training/det_ablation.sh <folder of labelled plate sets>}
DATA=$(cd "$DATA" && pwd)
STEPS=${STEPS:-600}
NICE=${NICE:-5}
cd "$(dirname "$0")"
PY=${PY:-.venv/bin/python}
A=out/det_ablation
mkdir -p "$A"
export OMP_NUM_THREADS=1
test -s "$A/init.pt" || $PY init_from_onnx.py --det --onnx ../models/plate-detector.onnx --out "$A/init.pt"
test -s "$A/hard.json" || $PY mine_det_negatives.py --model ../models/plate-detector.onnx --data "$DATA" --out "$A/hard.json"
run() {
  local name=$1; shift
  test -s "$A/$name/thr.txt" && return 0
  echo "== $name $(date -u +%H:%M)"
  nice -n "$NICE" $PY train_det.py --data "$DATA" --out "$A/$name" --steps "$STEPS" --lr 5e-4 --p-focus 0.45 --seed 5 \
    --eval-every $((STEPS / 4)) --init "$A/init.pt" --freeze-bn --hard "$A/hard.json" "$@" > "$A/$name.log" 2>&1
  $PY export_det.py --ckpt "$A/$name/best.pt" --out "$A/$name/plate-detector.onnx" --data "$DATA" >> "$A/$name.log" 2>&1
  $PY pick_det_thr.py --model "$A/$name/plate-detector.onnx" --data "$DATA" > "$A/$name/thr.txt"
  tail -1 "$A/$name/thr.txt"
}
run base --p-hard 0 &
run hard --p-hard 0.3 &
wait
# The shipped detector's own threshold table on the same held-out frames, for the table's first row.
test -s "$A/shipped_thr.txt" || $PY pick_det_thr.py --model ../models/plate-detector.onnx --data "$DATA" > "$A/shipped_thr.txt"
echo "det ablation: done"
