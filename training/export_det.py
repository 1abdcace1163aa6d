"""Export a PlateDet checkpoint to ONNX (opset 11, static [1,3,384,640], decoding in the graph, output
[1,5,N]) and compare OpenCV 4.6 with PyTorch on real letterboxed frames of the training sets.

usage: python export_det.py --ckpt out/det_run/best.pt --out ../models/plate-detector.onnx"""
import argparse
import os

import cv2
import numpy as np
import onnx
import torch

from common import DET_H, DET_W, letterbox, read_set
from det_model import PlateDet
from export_ocr import fold_identities


def to_blob(img_bgr):
    canvas, _, _, _ = letterbox(img_bgr)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default="../models/plate-detector.onnx")
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    a = ap.parse_args()
    model = PlateDet(export_hw=(DET_H, DET_W))
    model.load_state_dict(torch.load(a.ckpt, map_location="cpu")["model"])
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, DET_H, DET_W), a.out, opset_version=11,
                      input_names=["images"], output_names=["output0"], do_constant_folding=True)
    fold_identities(a.out)
    net = cv2.dnn.readNetFromONNX(a.out)
    imgs = [p for p, _ in read_set(os.path.join(a.data, "ro_dashcam_mit"))[:10]]
    imgs += [p for p, _ in read_set(os.path.join(a.data, "openimages_gplates"))[:10]]
    worst_box, worst_score = 0.0, 0.0
    for p in imgs:
        blob = to_blob(cv2.imread(p))
        net.setInput(blob)
        o = net.forward()
        with torch.no_grad():
            r = model(torch.from_numpy(blob)).numpy()
        assert o.shape == r.shape == (1, 5, (DET_H // 8) * (DET_W // 8)), (o.shape, r.shape)
        sel = r[0, 4] > 0.05  # compare boxes where they matter
        if sel.any():
            worst_box = max(worst_box, float(np.abs(o[0, :4, sel] - r[0, :4, sel]).max()))
        worst_score = max(worst_score, float(np.abs(o[0, 4] - r[0, 4]).max()))
    print(f"cv2 {cv2.__version__} vs torch on {len(imgs)} real frames: max |score diff| {worst_score:.2e}, "
          f"max |box diff| (score>0.05) {worst_box:.2e} px; output {o.shape}; {os.path.getsize(a.out) / 1e6:.2f} MB")
    if worst_score > 1e-3 or worst_box > 0.5:
        raise SystemExit("OpenCV output differs from PyTorch")


if __name__ == "__main__":
    main()
