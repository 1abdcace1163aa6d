"""Train the plate OCR (PlateCRNN + CTC) on the generated shards, one CPU thread, fixed seed.

Batches mix synthetic shards and jittered real crops (`--real-frac`); cheap extra augmentation runs here on the
uint8 batch (shift, contrast, inversion, noise) so each pass over the shards differs. Checkpoints are chosen
on the held-out real crops (real_val.npz: other rides / other images than training), never on openalpr-dev.

Resumable: `last.pt` (model, optimiser, schedule, step, random state) is written every `--save-every` steps, and
`--resume out/run/last.pt` continues the same stage where it stopped (a new session, a killed process). Shards
added to the data folder since are picked up on resume. `--hard-frac` replays the synthetic samples with the
highest recent CTC loss (hard-example mining: the look-alike glyphs are where the loss stays high).

usage: python train_ocr.py --data-dir out/ocr_data --out out/ocr_run --steps 6000 [--context] [--resume ...]"""
import argparse
import glob
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import ALPHABET, ctc_greedy
from ocr_model import PlateCRNN



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


def set_train(model, freeze_bn):
    """Training mode; with freeze_bn every BatchNorm outside the context block stays in eval mode (a fixed
    scale and shift: the fold of an exported model, see init_from_onnx.py)."""
    model.train()
    if freeze_bn:
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d) and not name.startswith("ctx."):
                mod.eval()


def evaluate(model, x, y, device="cpu"):
    model.eval()
    ok, preds = 0, []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            lp = model(torch.from_numpy(x[i:i + 256].astype(np.float32)[:, None]).to(device))  # [T, B, K]
            for j, p in enumerate(lp.permute(1, 0, 2).exp().cpu().numpy()):
                t, _ = ctc_greedy(p)
                preds.append(t)
                ok += t == y[i + j]
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
    ap.add_argument("--context", action="store_true", help="the whole-plate context block (ocr_model.PlateCRNN)")
    ap.add_argument("--resume", default="", help="last.pt of an interrupted run of this same stage")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hard-frac", type=float, default=0.0, help="share of each batch replayed from hard examples")
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--freeze-bn", action="store_true",
                    help="keep the seeded BatchNorms (init_from_onnx.py) fixed; the context block's still train")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a lent GPU machine (training/gpu.sh)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
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
    model = PlateCRNN(widths, context=a.context).to(a.device)
    if a.init:
        # strict=False: a conv-only checkpoint can seed the backbone and head of a context model
        missing, unexpected = model.load_state_dict(torch.load(a.init, map_location=a.device)["model"],
                                                    strict=not a.context)
        if missing or unexpected:
            print(f"init: new {len(missing)} tensors, ignored {len(unexpected)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.08)
    n_real = int(round(a.batch * a.real_frac))
    n_hard = int(round(a.batch * a.hard_frac))
    hard = {}  # synthetic index -> last seen loss
    best, t0, run_loss, start = -1.0, time.time(), 0.0, 1
    if a.resume:
        ck = torch.load(a.resume, weights_only=False, map_location=a.device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        best, run_loss, start = ck["best"], ck["run_loss"], ck["step"] + 1
        hard = ck.get("hard", {}) if ck.get("n_syn") == len(sx) else {}  # indices shift when shards were added
        print(f"resumed at step {start} (best real-val {best:.3f})", flush=True)

    def save(step, acc=None):
        ck = {"model": model.state_dict(), "widths": widths, "context": a.context, "step": step,
              "val": acc, "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.bit_generator.state,
              "torch_rng": torch.get_rng_state(), "best": best, "run_loss": run_loss, "hard": hard,
              "n_syn": len(sx)}
        torch.save(ck, os.path.join(a.out, "last.tmp"))
        os.replace(os.path.join(a.out, "last.tmp"), os.path.join(a.out, "last.pt"))
        return ck

    set_train(model, a.freeze_bn)
    for step in range(start, a.steps + 1):
        nh = min(n_hard, len(hard) // 4)
        si = rng.integers(0, len(sx), a.batch - n_real - nh)
        if nh:
            pool = sorted(hard, key=hard.get, reverse=True)[:max(nh * 8, 64)]
            si = np.concatenate([si, rng.choice(pool, nh, replace=False)])
        ri = rng.integers(0, len(rx), n_real)
        xb = np.concatenate([sx[si], rx[ri]])
        labels = list(sy[si]) + list(ry[ri])
        inp = augment(xb, rng).to(a.device)
        targets, tlens = encode(labels)
        lp = model(inp)
        ilens = torch.full((lp.shape[1],), lp.shape[0], dtype=torch.long)
        per = F.ctc_loss(lp, targets.to(a.device), ilens.to(a.device), tlens.to(a.device), blank=0,
                         zero_infinity=True, reduction="none").cpu()
        loss = (per / tlens.clamp(min=1)).mean()
        if n_hard:
            for k, idx in enumerate(si):
                hard[int(idx)] = float(per[k]) / max(1, int(tlens[k]))
            if len(hard) > 20000:
                hard = dict(sorted(hard.items(), key=lambda kv: kv[1], reverse=True)[:10000])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0:
            print(f"step {step} loss {run_loss:.3f} lr {sched.get_last_lr()[0]:.5f} {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            acc, _ = evaluate(model, vx, vy, a.device)
            set_train(model, a.freeze_bn)
            if acc >= best:
                best = acc
            ck = save(step, acc)
            if acc >= best:
                torch.save({k: ck[k] for k in ("model", "widths", "context", "step", "val")},
                           os.path.join(a.out, "best.pt"))
            print(f"step {step} real-val exact {acc:.3f} (best {best:.3f})", flush=True)
        elif step % a.save_every == 0:
            save(step)


if __name__ == "__main__":
    main()
