"""Train the plate OCR (PlateCRNN + CTC) on the generated shards, one CPU thread, fixed seed.

Batches mix synthetic shards and jittered real crops (`--real-frac`); cheap extra augmentation runs here on the
uint8 batch (shift, contrast, inversion, noise) so each pass over the shards differs. Checkpoints are chosen
on the held-out real crops (real_val.npz: other rides / other images than training), never on openalpr-dev.

usage: python train_ocr.py --data-dir out/ocr_data --out out/ocr_run --steps 6000"""
import argparse
import glob
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import ALPHABET, ctc_greedy
from ocr_model import PlateCRNN

torch.set_num_threads(1)


def encode(labels):
    flat, lens = [], []
    for s in labels:
        ids = [ALPHABET.index(c) + 1 for c in s if c in ALPHABET]
        flat += ids
        lens.append(len(ids))
    return torch.tensor(flat, dtype=torch.long), torch.tensor(lens, dtype=torch.long)


def augment(x, rng):
    """x: uint8 [B, H, W] -> float32 [B, 1, H, W] 0..255 with light, cheap variety."""
    b, h, w = x.shape
    out = np.empty((b, h, w), np.float32)
    for i in range(b):
        img = x[i].astype(np.float32)
        dx, dy = rng.integers(-3, 4), rng.integers(-2, 3)
        img = np.roll(img, (dy, dx), (0, 1))
        if dx > 0: img[:, :dx] = img[:, dx:dx + 1]
        if dx < 0: img[:, dx:] = img[:, dx - 1:dx]
        if rng.random() < 0.5:
            m = img.mean()
            img = (img - m) * rng.uniform(0.6, 1.4) + m + rng.uniform(-25, 25)
        if rng.random() < 0.05:
            img = 255 - img
        if rng.random() < 0.2:
            img = img + rng.normal(0, rng.uniform(2, 10), img.shape)
        out[i] = img
    return torch.from_numpy(np.clip(out, 0, 255)[:, None])


def evaluate(model, x, y):
    model.eval()
    ok, preds = 0, []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            lp = model(torch.from_numpy(x[i:i + 256].astype(np.float32)[:, None]))  # [T, B, K]
            for j, p in enumerate(lp.permute(1, 0, 2).exp().numpy()):
                t, _ = ctc_greedy(p)
                preds.append(t)
                ok += t == y[i + j]
    model.train()
    return ok / max(1, len(x)), preds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="out/ocr_data")
    ap.add_argument("--out", default="out/ocr_run")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--real-frac", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--widths", default="16,32,64,96,128")
    ap.add_argument("--init", default="", help="checkpoint to continue from (fine-tuning)")
    ap.add_argument("--extra-shards", default="", help="glob of further syn_*.npz shards to add")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    shards = sorted(glob.glob(os.path.join(a.data_dir, "syn_*.npz")))
    if a.extra_shards:
        shards += sorted(glob.glob(a.extra_shards))
    xs, ys = [], []
    for s in shards:
        d = np.load(s)
        xs.append(d["x"]); ys += list(d["y"])
    sx, sy = np.concatenate(xs), np.array(ys)
    r = np.load(os.path.join(a.data_dir, "real_train.npz")); rx, ry = r["x"], r["y"]
    v = np.load(os.path.join(a.data_dir, "real_val.npz")); vx, vy = v["x"], v["y"]
    print(f"synthetic {len(sx)} from {len(shards)} shards, real {len(rx)}, val {len(vx)}", flush=True)

    widths = tuple(int(c) for c in a.widths.split(","))
    model = PlateCRNN(widths)
    if a.init:
        model.load_state_dict(torch.load(a.init)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.08)
    n_real = int(round(a.batch * a.real_frac))
    best, t0, run_loss = -1.0, time.time(), 0.0
    for step in range(1, a.steps + 1):
        si = rng.integers(0, len(sx), a.batch - n_real)
        ri = rng.integers(0, len(rx), n_real)
        xb = np.concatenate([sx[si], rx[ri]])
        labels = list(sy[si]) + list(ry[ri])
        inp = augment(xb, rng)
        targets, tlens = encode(labels)
        lp = model(inp)
        ilens = torch.full((lp.shape[1],), lp.shape[0], dtype=torch.long)
        loss = F.ctc_loss(lp, targets, ilens, tlens, blank=0, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0:
            print(f"step {step} loss {run_loss:.3f} lr {sched.get_last_lr()[0]:.5f} {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            acc, _ = evaluate(model, vx, vy)
            ck = {"model": model.state_dict(), "widths": widths, "step": step, "val": acc}
            torch.save(ck, os.path.join(a.out, "last.pt"))
            if acc >= best:
                best = acc
                torch.save(ck, os.path.join(a.out, "best.pt"))
            print(f"step {step} real-val exact {acc:.3f} (best {best:.3f})", flush=True)


if __name__ == "__main__":
    main()
