"""OCR checkpoints on the held-out frames of the training sets (realdata.is_val), read two ways: on the
labelled boxes (OCR-only) and on the shipped detector's boxes (end to end, each labelled plate read through
the detection that overlaps it most, IoU >= 0.5). The second is what the daemon sees: detector boxes are
looser than labels, so an OCR trained only on tight crops loses plates there. Never run on openalpr-dev.

usage: python eval_heldout.py --data <folder of the plate sets> --ckpt out/ocr_run4/best.pt [--ckpt ...]
       [--detector ../models/plate-detector.onnx --thr 0.55] [--hand-labels labels/openimages_gplates.tsv]
       [--confidence]"""
import argparse
import os

import cv2
import numpy as np
import torch

from common import ctc_greedy, ocr_input_from_box, read_set
from eval_det import detect, iou
from ocr_model import build
from realdata import is_val, read_hand_labels, with_hand_labels

# Sets of whole road/street frames (the crop-only set has no scene for the detector).
SCENE_SETS = ("openimages_gplates", "ro_dashcam_mit", "us_virginia_mit")


def heldout_frames(data_root, hand):
    """[(image path, [(x, y, w, h, text)])] of the held-out frames that have at least one plate text."""
    out = []
    for s in SCENE_SETS:
        for path, boxes in read_set(os.path.join(data_root, s)):
            if not is_val(path):
                continue
            boxes = with_hand_labels(path, boxes, hand)
            if any(b[4] != "?" for b in boxes):
                out.append((path, boxes))
    return out


def read_all(model, crops, with_prob=False):
    """Greedy readings; with_prob also gives each one's best-path probability (a lower bound of the
    runtime's reading probability, which sums every path of the text)."""
    if not crops:
        return []
    with torch.no_grad():
        lp = model(torch.from_numpy(np.stack(crops).astype(np.float32)[:, None]))
    probs = lp.permute(1, 0, 2).exp().numpy()
    if not with_prob:
        return [ctc_greedy(p)[0] for p in probs]
    return [(ctc_greedy(p)[0], float(np.prod(p.max(axis=1)))) for p in probs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    ap.add_argument("--ckpt", action="append", required=True)
    ap.add_argument("--detector", default="../models/plate-detector.onnx")
    ap.add_argument("--thr", type=float, default=0.55)
    ap.add_argument("--hand-labels", default="labels/openimages_gplates.tsv")
    ap.add_argument("--confidence", action="store_true", help="also: what each min_read_confidence would keep")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    hand = read_hand_labels(a.hand_labels) if a.hand_labels else {}
    net = cv2.dnn.readNetFromONNX(a.detector)
    label_crops, det_crops, truths, false_crops, side_errs = [], [], [], [], []
    for path, boxes in heldout_frames(a.data, hand):
        img = cv2.imread(path)
        dets = detect(net, img, 640, 384, a.thr)
        false_crops += [ocr_input_from_box(img, d[0]) for d in dets
                        if max((iou(d[0], b[:4]) for b in boxes), default=0.0) < 0.5]
        for b in boxes:
            if b[4] == "?":
                continue
            truths.append(b[4])
            label_crops.append(ocr_input_from_box(img, b[:4]))
            best = max((d[0] for d in dets), key=lambda d: iou(d, b[:4]), default=None)
            found_it = best is not None and iou(best, b[:4]) >= 0.5
            det_crops.append(ocr_input_from_box(img, best) if found_it else None)
            if found_it:
                (dx, dy, dw, dh), (x, y, w, h) = best, b[:4]
                side_errs.append(((dx - x) / w, (dx + dw - x - w) / w, (dy - y) / h, (dy + dh - y - h) / h))
    found = [i for i, c in enumerate(det_crops) if c is not None]
    print(f"{len(truths)} labelled plates on held-out frames, {len(found)} found by the detector")
    if side_errs:
        # How far the detector's box sides sit from the labels' (share of the plate's width/height): the box
        # jitter the OCR should be trained with (gen_ocr.py --box-jitter).
        p90 = np.percentile(np.abs(np.array(side_errs)), 90, axis=0)
        print("detector box sides vs labels, 90th percentile |offset|: left {:.3f} right {:.3f} top {:.3f} "
              "bottom {:.3f}".format(*p90))
    for ck_path in a.ckpt:
        ck = torch.load(ck_path, weights_only=False)
        model = build(ck)
        model.load_state_dict(ck["model"])
        model.eval()
        on_labels = read_all(model, label_crops)
        on_dets = read_all(model, [det_crops[i] for i in found])
        ocr = sum(p == t for p, t in zip(on_labels, truths))
        e2e = sum(on_dets[k] == truths[i] for k, i in enumerate(found))
        ocr_found = sum(on_labels[i] == truths[i] for i in found)
        print(f"{ck_path}: OCR-only {100 * ocr / len(truths):.1f} %, end to end {100 * e2e / len(truths):.1f} %; "
              f"of the {len(found)} found: {ocr_found} read on the labelled box, {e2e} on the detector's "
              f"(step {ck.get('step')}, real-val {ck.get('val')})")
        if a.confidence:
            # What a min_read_confidence gate would keep: right reads on found plates, and boxes on no
            # labelled plate that still read as 4..10 characters (what the runtime would report).
            right = [pr for (t, pr), i in zip(read_all(model, [det_crops[i] for i in found], True), found) if t == truths[i]]
            false = [pr for t, pr in read_all(model, false_crops, True) if 4 <= len(t) <= 10]
            for g in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6):
                print(f"  gate {g:.1f}: keeps {sum(p >= g for p in right)}/{len(right)} right reads, "
                      f"{sum(p >= g for p in false)}/{len(false)} reads of boxes on no labelled plate")


if __name__ == "__main__":
    main()
