"""Training samples for the detector: random crops of letterboxed-scale scenes around real plate boxes, with
rendered plates composited in (US/BR/EU layouts the real sets lack), and CenterNet targets at stride 8.

Scenes are decoded once and kept in memory at the scale they would have on the 640x384 letterbox canvas (times
a zoom range), so a sample costs a crop, not a JPEG decode."""
import cv2
import numpy as np

from common import DET_H, DET_W
from det_model import LOGWH_HALF, LOGWH_MID, STRIDE
from synth.augment import decorate, degrade, quad_for_box, warp_into
from synth.render import render_plate

MIN_BOX = 6  # boxes narrower than this on the canvas are ignored (neither positive nor negative)


def load_scene(path, boxes, max_side=1280, hard=()):
    """(image, plate boxes, hard-negative boxes), boxes scaled with the image."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    s = min(1.0, max_side / max(img.shape[:2]))
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    scale = lambda bs: np.array([[x * s, y * s, w * s, h * s] for x, y, w, h in bs], np.float32).reshape(-1, 4)
    return img, scale(boxes), scale(hard)


def add_synthetic(img, boxes, rng, n):
    """Composite n rendered plates at random places/sizes; returns new image and boxes."""
    img = img.copy()
    H, W = img.shape[:2]
    new = [boxes]
    for _ in range(n):
        plate_rgb, _, _ = render_plate(rng)
        plate = decorate(plate_rgb[..., ::-1].copy(), rng)
        ph0, pw0 = plate.shape[:2]
        pw = float(np.exp(rng.uniform(np.log(max(20, W * 0.03)), np.log(W * 0.3))))
        ph = pw * ph0 / pw0
        if pw >= W - 4 or ph >= H - 4:
            continue
        x, y = rng.uniform(0, W - pw), rng.uniform(0, H - ph)
        quad = quad_for_box(x, y, pw, ph, rng)
        x0, y0 = np.clip(quad.min(0) - 2, 0, None).astype(int)
        x1, y1 = np.minimum(quad.max(0) + 3, [W, H]).astype(int)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        small = cv2.resize(plate, (max(8, int(pw * 1.5)), max(4, int(ph * 1.5))), interpolation=cv2.INTER_AREA)
        patch = warp_into(img[y0:y1, x0:x1].copy(), small, quad - [x0, y0], rng)
        img[y0:y1, x0:x1] = patch
        q0, q1 = quad.min(0), quad.max(0)
        new.append(np.array([[q0[0], q0[1], q1[0] - q0[0], q1[1] - q0[1]]], np.float32))
    return img, np.concatenate(new)


def sample(scene, rng, crop=224, p_synth=0.35, p_focus=0.75, p_hard=0.0):
    """One training crop: (RGB float 0..1 [3,crop,crop], target [6, crop/8, crop/8]). With p_hard, the crop
    is centred on one of the scene's hard negatives (mine_det_negatives.py) when it has any."""
    img, boxes, hard = scene
    ih, iw = img.shape[:2]
    s = min(DET_W / iw, DET_H / ih) * float(np.exp(rng.uniform(np.log(0.6), np.log(2.2))))
    if len(hard) and rng.random() < p_hard:
        b = hard[rng.integers(len(hard))] * s
        cx = b[0] + b[2] / 2 + rng.uniform(-0.3, 0.3) * crop
        cy = b[1] + b[3] / 2 + rng.uniform(-0.3, 0.3) * crop
    # focus the crop on a plate most of the time
    elif len(boxes) and rng.random() < p_focus:
        b = boxes[rng.integers(len(boxes))] * s
        cx = b[0] + b[2] / 2 + rng.uniform(-0.45, 0.45) * crop
        cy = b[1] + b[3] / 2 + rng.uniform(-0.45, 0.45) * crop
    else:
        cx, cy = rng.uniform(0, iw * s), rng.uniform(0, ih * s)
    ox, oy = cx - crop / 2, cy - crop / 2
    M = np.array([[s, 0, -ox], [0, s, -oy]], np.float32)
    out = cv2.warpAffine(img, M, (crop, crop), flags=cv2.INTER_LINEAR, borderValue=(114, 114, 114))
    bx = boxes.copy() if len(boxes) else np.zeros((0, 4), np.float32)
    bx[:, :2] = bx[:, :2] * s - [ox, oy]
    bx[:, 2:] *= s
    if rng.random() < p_synth:
        out, bx = add_synthetic(out, bx, rng, int(rng.integers(1, 3)))
    if rng.random() < 0.5:
        out = out[:, ::-1].copy()
        bx[:, 0] = crop - bx[:, 0] - bx[:, 2]
    if rng.random() < 0.5:
        out = degrade(out, rng)
    rgb = cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1) / 255.0
    return rgb, make_target(bx, crop)


def make_target(boxes, crop):
    """Channels: 0 heat (gaussian, 1 at the centre cell), 1 ignore mask, 2-3 offset (cell units, from the cell centre),
    4-5 log(w/8), log(h/8), 6 regression weight. Stored as [7, g, g]."""
    g = crop // STRIDE
    t = np.zeros((7, g, g), np.float32)
    t[1] = 1.0
    yy, xx = np.mgrid[0:g, 0:g]
    for x, y, w, h in boxes:
        cx, cy = (x + w / 2) / STRIDE, (y + h / 2) / STRIDE
        if not (0 <= cx < g and 0 <= cy < g):
            continue
        ix, iy = int(cx), int(cy)
        if w < MIN_BOX:
            t[1, max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2] = 0
            continue
        sx, sy = max(0.5, w / STRIDE / 6), max(0.5, h / STRIDE / 6)
        heat = np.exp(-((xx - ix) ** 2 / (2 * sx ** 2) + (yy - iy) ** 2 / (2 * sy ** 2)))
        t[0] = np.maximum(t[0], heat)
        # regression on the peak and its close neighbours: they may win NMS at inference
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                jx, jy = ix + dx, iy + dy
                if 0 <= jx < g and 0 <= jy < g and heat[jy, jx] > 0.3 and heat[jy, jx] >= t[6, jy, jx]:
                    t[2, jy, jx] = cx - (jx + 0.5)
                    t[3, jy, jx] = cy - (jy + 0.5)
                    t[4, jy, jx] = np.log(max(w, 1) / STRIDE)
                    t[5, jy, jx] = np.log(max(h, 1) / STRIDE)
                    t[6, jy, jx] = heat[jy, jx]
    return t
