"""Train the plate detector on random crops (one CPU thread, fixed seed).

Loss: CenterNet focal loss on the score map, L1 on centre offsets and log sizes (in the bounded tanh
parameterisation the exported graph uses). Checkpoint choice: loss on a fixed validation batch from the held-out
rides/images, never openalpr-dev.

usage: python train_det.py --data ../../shared/data --out out/det_run --steps 4000"""
import argparse
import json
import os
import time

import numpy as np
import torch

from det_data import load_scene, sample
from det_model import LOGWH_HALF, LOGWH_MID, PlateDet
from realdata import load_scenes

torch.set_num_threads(1)


def losses(out, t):
    heat, ign, reg_w = t[:, 0], t[:, 1], t[:, 6]
    p = torch.sigmoid(out[:, 0]).clamp(1e-4, 1 - 1e-4)
    pos = (heat > 0.999).float()
    neg = (1 - pos) * ign
    pos_l = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_l = -(torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * neg).sum()
    npos = pos.sum().clamp(min=1)
    focal = (pos_l + neg_l) / npos
    lw = LOGWH_MID + LOGWH_HALF * torch.tanh(out[:, 3:5])
    wsum = reg_w.sum().clamp(min=1e-3)
    off = ((out[:, 1:3] - t[:, 2:4]).abs().sum(1) * reg_w).sum() / wsum
    size = ((lw - t[:, 4:6]).abs().sum(1) * reg_w).sum() / wsum
    return focal + off + size, (focal.item(), off.item(), size.item())


def batch(scenes, rng, n, crop, p_focus=0.75, p_hard=0.0):
    xs, ts = zip(*(sample(scenes[rng.integers(len(scenes))], rng, crop, p_focus=p_focus, p_hard=p_hard) for _ in range(n)))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    ap.add_argument("--out", default="out/det_run")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--p-focus", type=float, default=0.75, help="share of crops centred near a plate")
    ap.add_argument("--init", default="", help="checkpoint to continue from")
    ap.add_argument("--hard", default="", help="hard negatives (mine_det_negatives.py JSON)")
    ap.add_argument("--p-hard", type=float, default=0.0, help="share of crops centred on a hard negative")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="BatchNorms stay in eval mode (a checkpoint seeded from ONNX: init_from_onnx.py --det)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    meta = load_scenes(a.data, ("openimages_gplates", "ro_dashcam_mit", "us_virginia_mit"))
    hard = {}
    if a.hard:
        with open(a.hard) as f:
            hard = json.load(f)
    train = [load_scene(p, b, hard=hard.get(os.path.realpath(p), ())) for p, b, v in meta if not v]
    val = [load_scene(p, b) for p, b, v in meta if v]
    print(f"{sum(len(s[2]) for s in train)} hard negatives on {sum(1 for s in train if len(s[2]))} training frames", flush=True)
    vrng = np.random.default_rng(12345)
    vx, vt = batch(val, vrng, 128, a.crop)
    print(f"{len(train)} train scenes, {len(val)} val scenes, loaded in {time.time() - t0:.0f}s", flush=True)

    model = PlateDet()
    if a.init:
        model.load_state_dict(torch.load(a.init)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    def set_train():
        model.train()
        if a.freeze_bn:
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.eval()

    set_train()
    best, run = 1e9, None
    for step in range(1, a.steps + 1):
        x, t = batch(train, rng, a.batch, a.crop, a.p_focus, a.p_hard)
        loss, parts = losses(model(x), t)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        run = np.array(parts) if run is None else 0.95 * run + 0.05 * np.array(parts)
        if step % 50 == 0:
            print(f"step {step} focal {run[0]:.3f} off {run[1]:.3f} size {run[2]:.3f} {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            model.eval()
            with torch.no_grad():
                vl = sum(losses(model(vx[i:i + 32]), vt[i:i + 32])[0].item() for i in range(0, len(vx), 32)) / 4
            set_train()
            ck = {"model": model.state_dict(), "step": step, "val_loss": vl}
            torch.save(ck, os.path.join(a.out, "last.pt"))
            if vl <= best:
                best = vl
                torch.save(ck, os.path.join(a.out, "best.pt"))
            print(f"step {step} val loss {vl:.3f} (best {best:.3f})", flush=True)


if __name__ == "__main__":
    main()
