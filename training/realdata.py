"""Loading the real, allowed training sets (never openalpr-dev) and the fixed train/val split.

The split is by ride for the dashcam set (its frames are near-duplicates) and by a hash of the file name
elsewhere, so it is stable across runs and machines."""
import hashlib
import os

import cv2

from common import read_set

TRAIN_SETS = ["openimages_gplates", "ro_dashcam_mit", "ar_fastplateocr_crops", "us_virginia_mit",
              "openimages_gplates_more"]
VAL_RIDES = ("dayride_type1_002", "dayride_type1_003")


def is_val(path):
    base = os.path.basename(path)
    if "ro_dashcam_mit" in path:
        return base.startswith(VAL_RIDES)
    if "us_virginia_mit" in path:
        return False
    return int(hashlib.md5(base.encode()).hexdigest(), 16) % 7 == 0


def read_hand_labels(path):
    """Texts read by eye for boxes a set gives as '?' (training/labels/*.tsv, the data README's columns):
    {(image file name, x, y, w, h): text}."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            f, x, y, w, h, t = line.rstrip("\n").split("\t")
            out[(f, int(x), int(y), int(w), int(h))] = t
    return out


def with_hand_labels(img_path, boxes, hand_labels):
    """`boxes` of one image, with the hand-read text (read_hand_labels) for those the set leaves as '?'."""
    if not hand_labels:
        return boxes
    name = os.path.basename(img_path)
    return [(x, y, w, h, hand_labels.get((name, x, y, w, h), t) if t == "?" else t) for x, y, w, h, t in boxes]


def load_patches(data_root, sets=TRAIN_SETS, min_w=0, ctx=1.0, hand_labels=None):
    """For every box in the sets: (patch BGR, box relative to the patch, text, is_val, set name).
    The patch is the box grown by `ctx` of its size on each side, so crops with margins and jitter fit.
    `hand_labels` (read_hand_labels) gives texts to boxes the set leaves as '?'."""
    out = []
    for s in sets:
        for img_path, boxes in read_set(os.path.join(data_root, s)):
            img = None
            for (x, y, w, h, t) in with_hand_labels(img_path, boxes, hand_labels):
                if w < min_w:
                    continue
                if img is None:
                    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
                H, W = img.shape[:2]
                x0, y0 = max(0, int(x - ctx * w)), max(0, int(y - ctx * h))
                x1, y1 = min(W, int(x + w + ctx * w)), min(H, int(y + h + ctx * h))
                out.append((img[y0:y1, x0:x1].copy(), (x - x0, y - y0, w, h), t, is_val(img_path), s))
    return out


def load_scenes(data_root, sets=("openimages_gplates", "ro_dashcam_mit")):
    """Whole images with all their boxes, for the detector: [(path, [(x,y,w,h), ...], is_val)]."""
    out = []
    for s in sets:
        for img_path, boxes in read_set(os.path.join(data_root, s)):
            out.append((img_path, [b[:4] for b in boxes], is_val(img_path)))
    return out
