"""Pick the detector's recommended score threshold on the held-out frames of the training sets (ro_dashcam
val rides + the hashed val share of openimages), never on openalpr-dev: the threshold with the best F1 at IoU 0.5.

Open Images boxes are not exhaustive, so precision here is a lower bound; F1 still ranks thresholds sensibly.

usage: python pick_det_thr.py --model ../models/plate-detector.onnx"""
import argparse

import cv2
import numpy as np

from eval_det import detect, match
from realdata import load_scenes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../models/plate-detector.onnx")
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(a.model)
    scenes = [(p, b) for p, b, v in load_scenes(a.data) if v]
    thrs = np.round(np.arange(0.1, 0.75, 0.05), 2)
    stats = {t: [0, 0, 0] for t in thrs}  # tp, fp, gt
    for path, gts in scenes:
        img = cv2.imread(path)
        dets = detect(net, img, 640, 384, float(thrs[0]))
        for t in thrs:
            tp, fp = match([d for d in dets if d[1] >= t], gts)
            st = stats[t]
            st[0] += tp; st[1] += fp; st[2] += len(gts)
    best = None
    for t in thrs:
        tp, fp, g = stats[t]
        r, p = tp / max(1, g), tp / max(1, tp + fp)
        f1 = 2 * p * r / max(1e-9, p + r)
        print(f"thr {t:.2f} recall {100 * r:5.1f}% precision {100 * p:5.1f}% F1 {f1:.3f}")
        if best is None or f1 > best[1]:
            best = (t, f1)
    print(f"best F1 threshold on {len(scenes)} held-out frames: {best[0]:.2f}")


if __name__ == "__main__":
    main()
