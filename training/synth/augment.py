"""Camera-like degradations and scene placement for rendered plates (numpy + cv2, BGR/RGB agnostic).

The eval images are road and parking photos: small, tilted, blurred, noisy, JPEG'd plates under any light. The
renderer's clean plates only become useful training data after these; the parameters are wide on purpose."""
import cv2
import numpy as np


def decorate(plate, rng):
    """Frame, screws, dirt and small edge occlusions on the flat plate (RGB uint8, modified copy)."""
    p = plate.copy()
    h, w = p.shape[:2]
    if rng.random() < 0.35:  # dealer frame: thicker at the bottom
        c = tuple(int(v) for v in rng.integers(0, 255, 3)) if rng.random() < 0.4 else (20, 20, 20)
        t = max(2, int(h * rng.uniform(0.03, 0.08)))
        b = max(t, int(h * rng.uniform(0.05, 0.16)))
        cv2.rectangle(p, (0, 0), (w - 1, h - 1), c, t)
        p[h - b:] = c
    if rng.random() < 0.5:  # screws
        r = max(2, int(h * rng.uniform(0.025, 0.05)))
        c = tuple(int(v) for v in rng.integers(60, 230, 3))
        for sx in (0.2, 0.8) if rng.random() < 0.7 else (0.08, 0.92):
            cv2.circle(p, (int(w * sx), int(h * rng.uniform(0.06, 0.15))), r, c, -1)
    if rng.random() < 0.3:  # dirt
        for _ in range(int(rng.integers(1, 8))):
            m = np.zeros((h, w), np.float32)
            cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(3, max(4, h // 4))), 1.0, -1)
            m = cv2.GaussianBlur(m, (0, 0), max(1, h / 30))[..., None] * rng.uniform(0.2, 0.6)
            p = (p * (1 - m) + np.array([90, 70, 50]) * m).astype(np.uint8)
    if rng.random() < 0.08:  # small occlusion at a corner/edge (tow hitch, bumper)
        ow, oh = int(w * rng.uniform(0.05, 0.15)), int(h * rng.uniform(0.2, 0.5))
        x0 = 0 if rng.random() < 0.5 else w - ow
        y0 = h - oh if rng.random() < 0.7 else 0
        p[y0:y0 + oh, x0:x0 + ow] = rng.integers(0, 255, 3)
    return p


def quad_for_box(x, y, w, h, rng, jitter=0.06, rot=8.0):
    """A perspective quad roughly filling box (x,y,w,h): rotation, per-corner jitter."""
    cx, cy = x + w / 2, y + h / 2
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float32)
    a = np.deg2rad(rng.normal(0, rot / 2.5))
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    pts = pts @ R.T
    pts += rng.uniform(-jitter, jitter, pts.shape).astype(np.float32) * np.array([w, h], np.float32)
    if rng.random() < 0.5:  # yaw: one side shorter
        s = rng.uniform(0.0, 0.15) * h
        if rng.random() < 0.5:
            pts[1, 1] += s / 2; pts[2, 1] -= s / 2
        else:
            pts[0, 1] += s / 2; pts[3, 1] -= s / 2
    return pts + np.array([cx, cy], np.float32)


def warp_into(scene, plate, quad, rng, match_light=False):
    """Paste `plate` (RGB) into `scene` (same channel order) on the 4-point `quad`; returns the new scene.
    With match_light the plate's brightness follows the region it covers (real lighting of a real box)."""
    h, w = plate.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    H, W = scene.shape[:2]
    warped = cv2.warpPerspective(plate, M, (W, H), flags=cv2.INTER_AREA if w > 2 * W else cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), M, (W, H), flags=cv2.INTER_LINEAR)[..., None]
    warped = warped.astype(np.float32)
    if match_light:
        region = scene[mask[..., 0] > 0.5]
        if len(region):
            target = np.percentile(region, 90) / 255.0
            gain = np.clip(target / max(1e-3, warped[mask[..., 0] > 0.5].mean() / 255.0 * 1.25), 0.5, 1.2)
            tint = region.reshape(-1, 3).mean(0) / max(1.0, region.mean())
            warped *= gain * np.clip(tint, 0.7, 1.3)
    return (scene * (1 - mask) + warped * mask).astype(np.uint8)


def degrade(img, rng):
    """Lighting, blur, noise and compression on a small scene patch (uint8, 3 channels)."""
    f = img.astype(np.float32) / 255.0
    f = np.clip(f * rng.uniform(0.65, 1.25) + rng.uniform(-0.1, 0.1), 0, 1) ** rng.uniform(0.65, 1.6)
    if rng.random() < 0.1:  # IR look: grey, bright plate, crushed background
        g = f.mean(2, keepdims=True)
        f = np.repeat(np.clip((g - rng.uniform(0.1, 0.35)) * rng.uniform(1.3, 2.2), 0, 1), 3, 2)
    if rng.random() < 0.1:  # low light
        f = f * rng.uniform(0.2, 0.45)
    if rng.random() < 0.15:  # glare blob
        h, w = f.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        r = rng.uniform(0.1, 0.5) * w
        m = np.exp(-(((xx - rng.uniform(0, w)) ** 2 + (yy - rng.uniform(0, h)) ** 2) / (2 * r * r)))
        f = np.clip(f + m[..., None] * rng.uniform(0.2, 0.8), 0, 1)
    if rng.random() < 0.15:  # shadow over part of the patch
        h, w = f.shape[:2]
        xs = int(rng.uniform(0.2, 0.8) * w)
        f[:, :xs] *= rng.uniform(0.35, 0.75)
    if rng.random() < 0.3:  # colour cast (tail lights, sodium lamps, dashcam pink)
        f = np.clip(f * rng.uniform(0.7, 1.3, 3), 0, 1)
    img = (f * 255).astype(np.uint8)
    r = rng.random()
    if r < 0.25:
        k = int(rng.integers(3, 9))
        ker = np.zeros((k, k), np.float32)
        ker[k // 2, :] = 1
        M = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180) if rng.random() < 0.3 else rng.uniform(-20, 20), 1)
        ker = cv2.warpAffine(ker, M, (k, k))
        img = cv2.filter2D(img, -1, ker / max(ker.sum(), 1e-3))
    elif r < 0.55:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.6))
    sigma = rng.choice([0, 2, 5, 9, 14], p=[0.25, 0.3, 0.25, 0.12, 0.08])
    if sigma:
        img = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 95))])
        img = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return img


def jitter_box(x, y, w, h, rng, amount=0.06):
    """A detector-like box around the true one: each side moves by up to `amount` of the size."""
    dx0, dx1 = rng.uniform(-amount, amount, 2) * w
    dy0, dy1 = rng.uniform(-amount * 1.5, amount * 1.5, 2) * h
    return x + dx0, y + dy0, max(4, w - dx0 + dx1), max(4, h - dy0 + dy1)
