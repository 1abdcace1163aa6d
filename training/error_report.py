"""What an OCR model gets wrong: look-alike glyph pairs, errors by region/set, by plate width and by length.

Reads through OpenCV's DNN exactly as the runtime does (the runtime's crop rule, greedy CTC). Always on the
held-out real crops of the training sets (realdata.is_val: never trained on); with `--eval DIR`, also on a
labelled evaluation set, for the report only (never used to choose anything).

usage: python error_report.py --model ../models/plate-ocr.onnx --data ../../shared/data [--eval DIR] [--json F]
       (several --model: one block each, same crops)"""
import argparse
import collections
import json
import os

import cv2
import numpy as np

from common import ctc_greedy, ocr_input_from_box, read_set
from realdata import load_patches, read_hand_labels

# Pairs the issue names (either direction counts).
CONFUSABLE = [("1", "I"), ("0", "O"), ("0", "D"), ("O", "D"), ("W", "M"), ("W", "N"), ("W", "H"), ("8", "B"),
              ("7", "Z"), ("2", "Z"), ("5", "S"), ("6", "G"), ("Q", "O"), ("Q", "0")]
CONF_SET = {frozenset(p) for p in CONFUSABLE}


def align(truth, pred):
    """Substitution pairs (truth char, read char) on a Levenshtein alignment, and whether only substitutions
    were needed (same length)."""
    n, m = len(truth), len(pred)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (truth[i - 1] != pred[j - 1]))
    subs, i, j = [], n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (truth[i - 1] != pred[j - 1]):
            if truth[i - 1] != pred[j - 1]:
                subs.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return subs[::-1], int(d[n, m])


def width_bucket(w):
    for hi in (40, 60, 90, 130, 200):
        if w < hi:
            return f"<{hi}px"
    return ">=200px"


def heldout_crops(data_root, hand_labels):
    out = []
    for patch, box, text, val, set_name in load_patches(data_root, hand_labels=hand_labels):
        if val and text and text != "?":
            out.append((ocr_input_from_box(patch, box), text, set_name, box[2]))
    return out


def eval_crops(root):
    out = []
    for img_path, boxes in read_set(root):
        group = os.path.relpath(img_path, root).split(os.sep)[0]
        img = None
        for x, y, w, h, t in boxes:
            if t == "?" or not t:
                continue
            if img is None:
                img = cv2.imread(img_path, cv2.IMREAD_COLOR)
            out.append((ocr_input_from_box(img, (x, y, w, h)), t, group, w))
    return out


def report(net, crops):
    by = {k: collections.defaultdict(lambda: [0, 0]) for k in ("group", "width", "length")}
    pairs, chars_ok, chars_all = collections.Counter(), 0, 0
    wrong, conf_only, wrong_len = 0, 0, 0
    for x, truth, group, w in crops:
        net.setInput(x.astype(np.float32)[None, None])
        pred, _ = ctc_greedy(net.forward()[0])
        ok = pred == truth
        for k, v in (("group", group), ("width", width_bucket(w)), ("length", str(len(truth)))):
            by[k][v][0] += ok
            by[k][v][1] += 1
        subs, dist = align(truth, pred)
        chars_all += len(truth)
        chars_ok += max(0, len(truth) - dist)
        if ok:
            continue
        wrong += 1
        pairs.update(f"{a}->{b}" for a, b in subs)
        if len(pred) != len(truth):
            wrong_len += 1
        elif subs and all(frozenset(s) in CONF_SET for s in subs):
            conf_only += 1
    n = len(crops)
    return {
        "plates": n, "exact": round(100 * (n - wrong) / max(1, n), 1),
        "char_accuracy": round(100 * chars_ok / max(1, chars_all), 1),
        "wrong": wrong, "wrong_only_lookalikes": conf_only, "wrong_length": wrong_len,
        "top_pairs": pairs.most_common(15),
        **{f"by_{k}": {g: f"{100 * a / b:.1f}% of {b}" for g, (a, b) in sorted(v.items())} for k, v in by.items()},
    }


def show(title, r):
    print(f"\n== {title}: {r['plates']} plates, exact {r['exact']}%, char accuracy {r['char_accuracy']}%")
    print(f"   wrong {r['wrong']}: only look-alike glyphs {r['wrong_only_lookalikes']}, wrong length {r['wrong_length']}")
    print("   confusion pairs (truth->read):", ", ".join(f"{p} {c}" for p, c in r["top_pairs"]))
    for k in ("by_group", "by_width", "by_length"):
        print(f"   {k[3:]}: " + "; ".join(f"{g} {v}" for g, v in r[k].items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets (held-out crops)")
    ap.add_argument("--hand-labels", default=os.path.join(os.path.dirname(__file__), "labels/openimages_gplates.tsv"))
    ap.add_argument("--eval", action="append", default=[], help="an evaluation set, reported only")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    sets = {"held-out training crops": heldout_crops(a.data, read_hand_labels(a.hand_labels))}
    for e in a.eval:
        sets[os.path.basename(os.path.normpath(e)) + " (report only)"] = eval_crops(e)
    out = {}
    for m in a.model:
        net = cv2.dnn.readNetFromONNX(m)
        for title, crops in sets.items():
            r = report(net, crops)
            out[f"{m} :: {title}"] = r
            show(f"{os.path.basename(m)} on {title}", r)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
