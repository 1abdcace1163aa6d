"""OCR-only evaluation on the labelled boxes of an evaluation set (groups us/eu/br, passed with --data) through
OpenCV's DNN module, with the exact crop preparation of each model's runtime contract. `--kind cct` runs a
CCT-style fixed-slot model (a peer model passed by path) the same way, to check its published figures.

Evaluation only: nothing here feeds back into training or thresholds.

usage: python eval_ocr.py --model ../models/plate-ocr.onnx --data <labelled set> [--kind ours|cct] [--json out/eval_ocr.json]"""
import argparse
import json
import os
import time

import cv2
import numpy as np

from common import ALPHABET, ctc_greedy, expand_box, ocr_input_from_box, read_set

CCT_ALPHABET = ALPHABET + "_"


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[len(b)]


def cct_input(img_bgr, box):
    """Reference CCT contract: 5 %/10 % margins, BGR->RGB, letterbox to 128x64 on grey 114, NHWC 0..255."""
    x0, y0, x1, y1 = expand_box(*box[:4], img_bgr.shape[1], img_bgr.shape[0], 0.05, 0.10)
    crop = cv2.cvtColor(img_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
    ch, cw = crop.shape[:2]
    s = min(128 / cw, 64 / ch)
    nw, nh = max(1, int(round(cw * s))), max(1, int(round(ch * s)))
    canvas = np.full((64, 128, 3), 114, np.uint8)
    px, py = (128 - nw) // 2, (64 - nh) // 2
    canvas[py:py + nh, px:px + nw] = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas.astype(np.float32)[None]


class Reader:
    """One OCR model behind cv2.dnn with its own crop preparation and decoding."""

    def __init__(self, path, kind):
        self.net = cv2.dnn.readNetFromONNX(path)
        self.kind = kind

    def read(self, img_bgr, box):
        if self.kind == "cct":
            self.net.setInput(cct_input(img_bgr, box))
            out = self.net.forward()[0]
            return "".join(CCT_ALPHABET[k] for k in out.argmax(1)).replace("_", "")
        self.net.setInput(ocr_input_from_box(img_bgr, box).astype(np.float32)[None, None])
        return ctc_greedy(self.net.forward()[0])[0]


def evaluate(reader, data_root, groups=("us", "eu", "br")):
    rows, times = {}, []
    for g in groups:
        for img_path, boxes in read_set(os.path.join(data_root, g)):
            img = cv2.imread(img_path)
            for b in boxes:
                if b[4] == "?":
                    continue
                t0 = time.perf_counter()
                pred = reader.read(img, b)
                times.append(time.perf_counter() - t0)
                rows.setdefault(g, []).append((b[4], pred, os.path.basename(img_path)))
    return rows, times


def summarize(rows, times):
    res = {}
    allr = [r for g in rows for r in rows[g]]
    for g, rs in list(rows.items()) + [("overall", allr)]:
        n = len(rs)
        exact = sum(t == p for t, p, _ in rs)
        chars = sum(max(0, len(t) - edit_distance(t, p)) for t, p, _ in rs) / max(1, sum(len(t) for t, _, _ in rs))
        res[g] = {"n": n, "exact": exact / n, "char_acc": chars}
    res["ms_per_plate_median"] = 1000 * float(np.median(times))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../models/plate-ocr.onnx")
    ap.add_argument("--kind", choices=["ours", "cct"], default="ours")
    ap.add_argument("--data", required=True, help="the labelled evaluation set (us/eu/br groups)")
    ap.add_argument("--json", default="")
    ap.add_argument("--errors", action="store_true", help="list misreads")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    rows, times = evaluate(Reader(a.model, a.kind), a.data)
    res = summarize(rows, times)
    for g in ("us", "eu", "br", "overall"):
        if g in res:
            print(f"{g:8s} n={res[g]['n']:4d} exact {100 * res[g]['exact']:5.1f}%  char {100 * res[g]['char_acc']:5.1f}%")
    print(f"median {res['ms_per_plate_median']:.2f} ms per plate (cv2 {cv2.__version__}, 1 thread)")
    if a.errors:
        for g, rs in rows.items():
            for t, p, f in rs:
                if t != p:
                    print(f"  {g} {f}: {t} -> {p}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
