"""Generate the OCR training set: synthetic plates on real backgrounds, synthetic plates warped into the real
plate boxes of the detection sets, and jittered crops of the real labelled plates. Every sample goes through
common.ocr_input_from_box -- the runtime's own crop preparation -- so train and deploy inputs match.

usage: python gen_ocr.py --data ../../shared/data --out out/ocr_data --shard 0 --count 20000 [--real-copies 30]
       [--hand-labels labels/openimages_gplates.tsv]   (--count 0: only the real sets)
Shards are independent (seed = 1000 + shard) so two processes can fill them in parallel."""
import argparse
import os
import time

import cv2
import numpy as np

from common import ocr_input_from_box
from realdata import load_patches, read_hand_labels
from synth.augment import decorate, degrade, jitter_box, quad_for_box, warp_into
from synth import render
from synth.render import render_plate
from synth import text as ptext


def synth_sample(rng, plate_bgr, backgrounds, patches_for_warp, jitter=0.06):
    ph0, pw0 = plate_bgr.shape[:2]
    if patches_for_warp and rng.random() < 0.4:
        patch, (bx, by, bw, bh), _, _, _ = patches_for_warp[rng.integers(len(patches_for_warp))]
        scene = patch.copy()
        g = rng.uniform(1.0, 1.12)
        quad = quad_for_box(bx - (g - 1) * bw / 2, by - (g - 1) * bh / 2, bw * g, bh * g, rng, jitter=0.02, rot=3)
        small = cv2.resize(plate_bgr, (max(8, int(bw * g)), max(4, int(bh * g))), interpolation=cv2.INTER_AREA)
        scene = warp_into(scene, small, quad, rng, match_light=True)
    else:
        pw = float(np.exp(rng.uniform(np.log(42), np.log(280))))
        ph = pw * ph0 / pw0 * rng.uniform(0.85, 1.15)
        sw, sh = int(pw * rng.uniform(1.6, 2.4)), int(ph * rng.uniform(2.2, 3.5))
        bg = backgrounds[rng.integers(len(backgrounds))]
        y0 = int(rng.integers(0, max(1, bg.shape[0] - 64)))
        x0 = int(rng.integers(0, max(1, bg.shape[1] - 64)))
        crop = bg[y0:y0 + int(rng.integers(64, 400)), x0:x0 + int(rng.integers(64, 400))]
        scene = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_LINEAR)
        quad = quad_for_box((sw - pw) / 2 + rng.uniform(-0.1, 0.1) * pw, (sh - ph) / 2 + rng.uniform(-0.15, 0.15) * ph, pw, ph, rng)
        small = cv2.resize(plate_bgr, (max(8, int(pw * 1.5)), max(4, int(ph * 1.5))), interpolation=cv2.INTER_AREA)
        scene = warp_into(scene, small, quad, rng)
    x0, y0 = quad.min(0)
    x1, y1 = quad.max(0)
    scene = degrade(scene, rng)
    box = jitter_box(x0, y0, x1 - x0, y1 - y0, rng, amount=jitter)
    return ocr_input_from_box(scene, box)


def real_sample(rng, patch, box, heavy, jitter=0.05):
    img = degrade(patch, rng) if heavy else patch
    return ocr_input_from_box(img, jitter_box(*box, rng, amount=jitter))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    ap.add_argument("--out", default="out/ocr_data")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--p-emblem", type=float, default=0.0, help="separators drawn as emblems (synth.render)")
    ap.add_argument("--real-copies", type=int, default=0, help="also write real_train/real_val (shard 0 only)")
    ap.add_argument("--box-jitter", type=float, default=0.06, help="synthetic crops: each side moves up to this share")
    ap.add_argument("--real-jitter", type=float, default=0.05, help="real training crops: the same")
    ap.add_argument("--p-stroke", type=float, default=0.0, help="plates lettered in the stroke font (synth.strokes)")
    ap.add_argument("--issued-letters", type=float, default=0.0, help="share of serials with issued letters only")
    ap.add_argument("--hand-labels", default="", help="texts read by eye for '?' boxes (labels/*.tsv)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    render.P_EMBLEM = a.p_emblem
    render.P_STROKE = a.p_stroke
    ptext.P_ISSUED = a.issued_letters
    rng = np.random.default_rng(1000 + a.shard)
    t0 = time.time()
    patches = load_patches(a.data, hand_labels=read_hand_labels(a.hand_labels) if a.hand_labels else None)
    warp_pool = [p for p in patches if p[4] in ("openimages_gplates", "ro_dashcam_mit") and p[1][2] >= 30 and not p[3]]
    backgrounds = [p[0] for p in patches if p[0].shape[0] >= 64 and p[0].shape[1] >= 64]
    print(f"{len(patches)} real boxes, {len(warp_pool)} for warping, loaded in {time.time() - t0:.1f}s", flush=True)

    if a.real_copies:
        texted = [p for p in patches if p[2] != "?" and p[2]]
        for split in ("train", "val"):
            imgs, labels = [], []
            for patch, box, text, val, _ in texted:
                if val != (split == "val"):
                    continue
                if split == "val":
                    imgs.append(ocr_input_from_box(patch, box)); labels.append(text)
                    continue
                for k in range(a.real_copies):
                    imgs.append(real_sample(rng, patch, box, heavy=k % 2 == 1, jitter=a.real_jitter)); labels.append(text)
            np.savez_compressed(os.path.join(a.out, f"real_{split}.npz"), x=np.stack(imgs), y=np.array(labels))
            print(f"real_{split}: {len(imgs)} samples from {len(set(labels))} texts", flush=True)

    if a.count == 0:
        return
    imgs, labels = [], []
    for i in range(a.count):
        plate_rgb, label, _ = render_plate(rng)
        plate = decorate(plate_rgb[..., ::-1].copy(), rng)
        imgs.append(synth_sample(rng, plate, backgrounds, warp_pool, a.box_jitter))
        labels.append(label)
        if (i + 1) % 2000 == 0:
            print(f"shard {a.shard}: {i + 1}/{a.count} {time.time() - t0:.0f}s", flush=True)
    np.savez_compressed(os.path.join(a.out, f"syn_{a.shard:02d}.npz"), x=np.stack(imgs), y=np.array(labels))


if __name__ == "__main__":
    main()
