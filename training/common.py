"""Shared pieces of the training pipeline: the dataset format, the alphabet and -- most important -- the
exact crop preparation the Rust runtime performs, so that training-time evaluation measures what ships."""
import glob
import os

import cv2
import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # class i+1; class 0 is the CTC blank
NUM_CLASSES = len(ALPHABET) + 1

# OCR contract (documented in models/MODELS.md; the runtime must do exactly this).
# POLEWATCH_OCR_INPUT=HxW (e.g. 64x128) trains, generates and evaluates a taller-input variant (an
# experiment: ocr_model.PlateCRNN pools the extra height away after its first layer); the default is the
# shipped contract.
_ocr_input = os.environ.get("POLEWATCH_OCR_INPUT", "32x128")
try:
    OCR_H, OCR_W = (int(v) for v in _ocr_input.split("x"))
except ValueError:
    raise SystemExit(f"POLEWATCH_OCR_INPUT={_ocr_input!r}: expected HEIGHTxWIDTH, e.g. 64x128") from None
OCR_MARGIN_X, OCR_MARGIN_Y = 0.05, 0.10

# Detector contract.
DET_W, DET_H = 640, 384
DET_FILL = 114



def read_set(root):
    """Yield (image_path, [(x, y, w, h, text), ...]) for every labelled image under `root` (recursively).

    The format is the one of ../shared/data/README.md: one `<stem>.txt` per image with TAB-separated lines
    `file x y w h PLATE` (`?` for unknown text)."""
    out = []
    for txt in sorted(glob.glob(os.path.join(root, "**", "*.txt"), recursive=True)):
        base = os.path.basename(txt)
        if base in ("split.tsv",) or base.isupper() or base.startswith("LICENSE"):
            continue
        boxes, img = [], None
        with open(txt, encoding="utf-8") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 6:
                    continue
                img = os.path.join(os.path.dirname(txt), parts[0])
                x, y, w, h = (int(float(v)) for v in parts[1:5])
                boxes.append((x, y, w, h, parts[5].replace(" ", "").replace("-", "").upper()))
        if img and os.path.exists(img):
            out.append((img, boxes))
    return out


def expand_box(x, y, w, h, img_w, img_h, mx=OCR_MARGIN_X, my=OCR_MARGIN_Y):
    """Add `mx*w` left and right and `my*h` top and bottom, clamp to the image; returns integer x0, y0, x1, y1
    (x1, y1 exclusive). Rounding: x0 = floor, x1 = ceil, as the runtime does."""
    x0 = max(0, int(np.floor(x - mx * w)))
    y0 = max(0, int(np.floor(y - my * h)))
    x1 = min(img_w, int(np.ceil(x + w + mx * w)))
    y1 = min(img_h, int(np.ceil(y + h + my * h)))
    return x0, y0, x1, y1


def ocr_input_from_box(img_bgr, box):
    """The runtime's OCR crop: margins, BGR->GRAY, stretch-resize to OCR_W x OCR_H (INTER_LINEAR).
    Returns uint8 [OCR_H, OCR_W]."""
    x, y, w, h = box[:4]
    x0, y0, x1, y1 = expand_box(x, y, w, h, img_bgr.shape[1], img_bgr.shape[0])
    crop = img_bgr[y0:y1, x0:x1]
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return cv2.resize(gray, (OCR_W, OCR_H), interpolation=cv2.INTER_LINEAR)


def ctc_greedy(probs):
    """probs [T, K] -> (text, mean max prob of emitted chars). Argmax, collapse repeats, drop blanks."""
    idx = probs.argmax(axis=1)
    text, confs, prev = [], [], 0
    for t, k in enumerate(idx):
        if k != prev and k != 0:
            text.append(ALPHABET[k - 1])
            confs.append(probs[t, k])
        prev = k
    return "".join(text), float(np.mean(confs)) if confs else 0.0


def letterbox(img_bgr, w=DET_W, h=DET_H, fill=DET_FILL):
    """Detector input: scale=min(w/iw, h/ih), INTER_LINEAR resize, centred on a w x h canvas of `fill`.
    Returns (canvas BGR uint8, scale, pad_x, pad_y)."""
    ih, iw = img_bgr.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = int(round(iw * s)), int(round(ih * s))
    resized = cv2.resize(img_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((h, w, 3), fill, np.uint8)
    px, py = (w - nw) // 2, (h - nh) // 2
    canvas[py:py + nh, px:px + nw] = resized
    return canvas, s, px, py
