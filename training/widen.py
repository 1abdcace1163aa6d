"""Widen a PlateCRNN checkpoint (Net2WiderNet, Chen et al. 2016): a model with more channels per layer that
starts as the same function, so a larger OCR continues from the shipped one instead of from scratch (from
scratch, CTC sat on its all-blank plateau for 800+ steps on this machine).

Each widened layer's new channels copy randomly chosen old ones (conv rows and BatchNorm entries); the next
layer divides its weights on each copied channel by how many copies there are, so the sum it computes is
unchanged. The residual stream of the context block keeps one mapping throughout (a residual add needs both
sides on the same channels). A little noise on the copied rows breaks the symmetry between a channel and its
copies; without it they would get the same gradients forever.

usage: python widen.py --ckpt checkpoints/ocr_ctx_s3_best.pt --widths 24,48,96,144,192 --out out/ocr_wide_init.pt"""
import argparse

import numpy as np
import torch

from ocr_model import build


def mapping(c_old, c_new, rng):
    if c_new < c_old:
        raise SystemExit(f"cannot narrow {c_old} channels to {c_new}")
    g = np.concatenate([np.arange(c_old), rng.integers(0, c_old, c_new - c_old)])
    return torch.from_numpy(g), torch.from_numpy(np.bincount(g, minlength=c_old)).float()


def widen(ck, widths, seed=0, noise=0.01):
    """A checkpoint dict for `widths` whose model computes (nearly) what `ck`'s does."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    old = build(ck)
    old.load_state_dict(ck["model"])
    sd = {k: v.clone() for k, v in ck["model"].items()}
    new_ck = dict(ck, widths=list(widths))
    new = build(new_ck)

    def out_rows(conv, bn, g, c_old):
        w = sd[conv + ".weight"][g].clone()
        if len(g) > c_old:
            w[c_old:] += noise * w.std() * torch.randn(w[c_old:].shape, generator=gen)
        sd[conv + ".weight"] = w
        for p in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{bn}.{p}"] = sd[f"{bn}.{p}"][g].clone()

    def in_cols(conv, g, cnt):
        sd[conv + ".weight"] = sd[conv + ".weight"][:, g] / cnt[g][None, :, None, None]

    # The backbone: every Conv2d is followed by its BatchNorm2d.
    convs = [i for i, m in enumerate(old.backbone) if isinstance(m, torch.nn.Conv2d)]
    prev = None
    for i in convs:
        conv, bn = f"backbone.{i}", f"backbone.{i + 1}"
        if prev is not None:
            in_cols(conv, *prev)
        c_old = old.backbone[i].out_channels
        g, cnt = mapping(c_old, new.backbone[i].out_channels, rng)
        out_rows(conv, bn, g, c_old)
        prev = (g, cnt)
    g5, c5 = prev, old.backbone[convs[-1]].out_channels
    if old.context:
        for k, m in enumerate(old.ctx):
            if hasattr(m, "body"):
                conv, bn = f"ctx.{k}.body.0", f"ctx.{k}.body.1"
                in_cols(conv, *g5)
                out_rows(conv, bn, g5[0], c5)
    prev = g5
    for i in (0, 3):
        conv, bn = f"seq.{i}", f"seq.{i + 1}"
        in_cols(conv, *prev)
        c_old = old.seq[i].out_channels
        g, cnt = mapping(c_old, new.seq[i].out_channels, rng)
        out_rows(conv, bn, g, c_old)
        prev = (g, cnt)
    in_cols("head", *prev)
    missing = set(new.state_dict()) ^ set(sd)
    if missing:
        raise SystemExit(f"widening left tensors unmatched: {sorted(missing)}")
    new.load_state_dict(sd)
    new_ck["model"] = new.state_dict()
    new_ck["step"] = 0
    return new_ck


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--widths", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.01)
    a = ap.parse_args()
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    widths = tuple(int(c) for c in a.widths.split(","))
    new_ck = widen(ck, widths, a.seed, a.noise)
    # The same function check: both models on random plates-sized input, eval mode.
    old, new = build(ck), build(new_ck)
    old.load_state_dict(ck["model"]); new.load_state_dict(new_ck["model"])
    old.eval(); new.eval()
    x = torch.rand(16, 1, 32, 128) * 255
    with torch.no_grad():
        d = (old(x).exp() - new(x).exp()).abs().max().item()
    print(f"widened {tuple(ck['widths'])} -> {widths}: max |prob diff| {d:.2e} on random input", flush=True)
    torch.save(new_ck, a.out)


if __name__ == "__main__":
    main()
