"""Seed a PyTorch OCR checkpoint from a shipped conv-only ONNX OCR (plate-ocr.onnx), so a new architecture can
start from what earlier sessions trained instead of from scratch (their .pt checkpoints were not kept).

The export folded each BatchNorm into its convolution; the conv weights go back into the convolutions and each
fold's bias into its BatchNorm as an identity (scale 1, running mean 0, running variance 1 - eps, shift = the
bias). Train with `train_ocr.py --freeze-bn` so those BatchNorms stay that identity: in training mode they
would otherwise renormalise by batch statistics and undo the fold. With `--context` the new block starts as the
identity (ocr_model.DilatedRes / TokenMix), so the seeded model reads exactly as the ONNX file does.

usage: python init_from_onnx.py --onnx ../models/plate-ocr.onnx --out out/ocr_ctx_init.pt [--context]
       python init_from_onnx.py --det --onnx ../models/plate-detector.onnx --out out/det_init.pt"""
import argparse

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ocr_model import PlateCRNN


def seeded(onnx_path, context, widths=(16, 32, 64, 96, 128)):
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    convs = [[inits[x] for x in n.input[1:] if x in inits] for n in m.graph.node if n.op_type == "Conv"]
    model = PlateCRNN(widths, context=context)
    targets = []  # (conv, bn or None) in graph order: backbone, seq, head
    for seq in (model.backbone, model.seq):
        mods = list(seq)
        for i, mod in enumerate(mods):
            if isinstance(mod, torch.nn.Conv2d):
                targets.append((mod, mods[i + 1]))
    targets.append((model.head, None))
    if len(targets) != len(convs):
        raise SystemExit(f"{onnx_path}: {len(convs)} convolutions, the model has {len(targets)}")
    with torch.no_grad():
        for (conv, bn), (w, b) in zip(targets, convs):
            if tuple(conv.weight.shape) != w.shape:
                raise SystemExit(f"shape {w.shape} does not fit {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(b))
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    return model, widths


def seeded_det(onnx_path):
    """The detector (det_model.PlateDet) from its exported ONNX file, BatchNorms as identities as above. The
    convolutions are matched in the order the exported graph runs them (the forward pass), which is not the
    order the modules are declared in."""
    from det_model import PlateDet
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    convs = [[inits[x] for x in n.input[1:] if x in inits] for n in m.graph.node if n.op_type == "Conv"]
    model = PlateDet()
    cbrs = [model.s2, model.s4, *model.s8, *model.s16, *model.s32, model.l5, model.l4, model.p4, model.l3,
            model.p3, model.head[0]]
    targets = [(c[0], c[1]) for c in cbrs] + [(model.head[1], None)]
    if len(targets) != len(convs):
        raise SystemExit(f"{onnx_path}: {len(convs)} convolutions, the detector has {len(targets)}")
    with torch.no_grad():
        for (conv, bn), wb in zip(targets, convs):
            w, b = wb[0], wb[1]
            if tuple(conv.weight.shape) != w.shape:
                raise SystemExit(f"shape {w.shape} does not fit {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(b))
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", action="store_true")
    ap.add_argument("--det", action="store_true", help="the file is the detector (plate-detector.onnx)")
    ap.add_argument("--check", default="", help="real_val.npz: compare with the ONNX file in OpenCV")
    a = ap.parse_args()
    if a.det:
        torch.save({"model": seeded_det(a.onnx).state_dict(), "step": 0, "val_loss": None}, a.out)
        print(f"wrote {a.out}")
        return
    model, widths = seeded(a.onnx, a.context)
    torch.save({"model": model.state_dict(), "widths": widths, "context": a.context, "step": 0, "val": None},
               a.out)
    if a.check:
        import cv2
        from common import ctc_greedy
        net = cv2.dnn.readNetFromONNX(a.onnx)
        v = np.load(a.check)
        model.eval()
        same = 0
        for x in v["x"]:
            blob = x.astype(np.float32)[None, None]
            net.setInput(blob)
            with torch.no_grad():
                lp = model(torch.from_numpy(blob))[:, 0].exp().numpy()
            same += ctc_greedy(net.forward()[0])[0] == ctc_greedy(lp)[0]
        print(f"seeded model reads as {a.onnx} on {same}/{len(v['x'])} crops")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
