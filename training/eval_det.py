"""Detector evaluation on an evaluation set (groups us/eu/br, passed with --data) through cv2.dnn:
recall/precision at IoU 0.5 after the runtime's post-processing (score threshold, NMS 0.45), and end-to-end
exact reads with an OCR model behind it.

The score threshold is a CLI argument fixed before looking at the evaluation set (MODELS.md says where it comes
from). Works for any detector with the [1,5,N] contract (pass --size WxH for other input sizes).

usage: python eval_det.py --model ../models/plate-detector.onnx --data <labelled set> --ocr ../models/plate-ocr.onnx [--ocr-kind ours]"""
import argparse
import json
import os
import time

import cv2
import numpy as np

from common import letterbox, read_set
from eval_ocr import Reader


def detect(net, img, w, h, thr, nms=0.45):
    canvas, s, px, py = letterbox(img, w, h)
    blob = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    net.setInput(blob)
    out = net.forward()[0]  # [5, N]
    keep = out[4] >= thr
    cx, cy, bw, bh, sc = out[:, keep]
    boxes = [[float((x - ww / 2 - px) / s), float((y - hh / 2 - py) / s), float(ww / s), float(hh / s)]
             for x, y, ww, hh in zip(cx, cy, bw, bh)]
    idx = cv2.dnn.NMSBoxes(boxes, sc.tolist(), thr, nms) if boxes else []
    return [(boxes[i], float(sc[i])) for i in np.array(idx).reshape(-1)]


def iou(a, b):
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(1e-9, a[2] * a[3] + b[2] * b[3] - inter)


def match(dets, gts, min_iou=0.5):
    """(true, false positives): detections, strongest first, each matched to the unused labelled box it
    overlaps most, when that reaches `min_iou`."""
    used, tp, fp = set(), 0, 0
    for b, _ in sorted(dets, key=lambda d: -d[1]):
        best, bi = 0.0, -1
        for i, g in enumerate(gts):
            v = iou(b, g)
            if i not in used and v > best:
                best, bi = v, i
        if best >= min_iou:
            used.add(bi); tp += 1
        else:
            fp += 1
    return tp, fp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../models/plate-detector.onnx")
    ap.add_argument("--size", default="640x384", help="WxH of the model input")
    ap.add_argument("--thr", type=float, default=0.3)
    ap.add_argument("--ocr", default="")
    ap.add_argument("--ocr-kind", default="ours", choices=["ours", "cct"])
    ap.add_argument("--data", required=True, help="the labelled evaluation set (us/eu/br groups)")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    W, H = (int(v) for v in a.size.split("x"))
    net = cv2.dnn.readNetFromONNX(a.model)
    reader = Reader(a.ocr, a.ocr_kind) if a.ocr else None
    res, times = {}, []
    for g in ("us", "eu", "br"):
        tp = fp = ngt = e2e = 0
        for img_path, gts in read_set(os.path.join(a.data, g)):
            img = cv2.imread(img_path)
            t0 = time.perf_counter()
            dets = detect(net, img, W, H, a.thr)
            times.append(time.perf_counter() - t0)
            t, f = match(dets, [gt[:4] for gt in gts])
            tp += t; fp += f
            ngt += len(gts)
            if reader:  # a plate is read end to end when any detection's best reading equals it
                reads = {reader.read(img, [int(round(v)) for v in b]) for b, _ in dets}
                e2e += sum(gt[4] in reads for gt in gts)
        res[g] = {"gt": ngt, "tp": tp, "fp": fp, "e2e": e2e}
    tot = {k: sum(res[g][k] for g in res) for k in ("gt", "tp", "fp", "e2e")}
    res["overall"] = tot
    for g in ("us", "eu", "br", "overall"):
        r = res[g]
        r["recall"] = r["tp"] / r["gt"]
        r["precision"] = r["tp"] / max(1, r["tp"] + r["fp"])
        r["e2e_exact"] = r["e2e"] / r["gt"] if reader else None
        line = f"{g:8s} n={r['gt']:4d} recall {100 * r['recall']:5.1f}%  precision {100 * r['precision']:5.1f}%"
        if reader:
            line += f"  e2e exact {100 * r['e2e_exact']:5.1f}%"
        print(line)
    res["ms_per_frame_median"] = 1000 * float(np.median(times))
    print(f"median {res['ms_per_frame_median']:.1f} ms per image (letterbox+forward+NMS, cv2 {cv2.__version__}, 1 thread)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
