"""Hard negatives for the detector (issue 13): the shipped detector's confident boxes on the TRAINING frames
of the training sets that overlap no labelled plate (signs, text on cars, stickers, grilles, headlights).
train_det.py --hard centres a share of its crops on them, so those places are seen as background far more
often than random crops would show them. Held-out frames are never mined (they pick the threshold).

Open Images boxes are not exhaustive: a mined box can be an unlabelled plate. Boxes that touch a labelled plate
(IoU >= 0.1) are skipped, and the score floor keeps the list to where the detector is wrong with confidence.

usage: python mine_det_negatives.py --model ../models/plate-detector.onnx --data ../../shared/data --out out/det_hard.json"""
import argparse
import json
import os

import cv2

from eval_det import detect, iou
from realdata import load_scenes

SETS = ("openimages_gplates", "ro_dashcam_mit", "us_virginia_mit")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../models/plate-detector.onnx")
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-score", type=float, default=0.3)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(a.model)
    out, n, scenes = {}, 0, 0
    for path, gts, is_val in load_scenes(a.data, SETS):
        if is_val:
            continue
        scenes += 1
        img = cv2.imread(path)
        hard = [b for b, _ in detect(net, img, 640, 384, a.min_score) if all(iou(b, g) < 0.1 for g in gts)]
        if hard:
            out[os.path.realpath(path)] = hard  # train_det.py looks frames up by real path
            n += len(hard)
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"{n} hard negatives on {len(out)} of {scenes} training frames (score >= {a.min_score}) -> {a.out}")


if __name__ == "__main__":
    main()
