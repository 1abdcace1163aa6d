"""Export a PlateCRNN checkpoint to ONNX (opset 11, static [1,1,32,128], softmax inside, output [1,T,37]) and
check it in OpenCV 4.6 against PyTorch on real crops: same text and max |prob| difference.

OpenCV 4.6 can load a graph and still compute garbage, so the check runs on real images, not only a load.

usage: python export_ocr.py --ckpt out/ocr_run/best.pt --out ../models/plate-ocr.onnx [--data ../../shared/data]"""
import argparse
import os

import cv2
import numpy as np
import onnx
import torch

from common import ctc_greedy, ocr_input_from_box, read_set
from ocr_model import build, input_shape


def export(ckpt, out):
    ck = torch.load(ckpt, map_location="cpu")
    model = build(ck, export=True)
    model.load_state_dict(ck["model"])
    model.eval()
    dummy = torch.zeros(input_shape())
    torch.onnx.export(model, dummy, out, opset_version=11, input_names=["input"], output_names=["probs"],
                      do_constant_folding=True, dynamic_axes=None)
    fold_identities(out)
    return model


def fold_identities(path):
    """Replace `Identity(initializer)` nodes (the exporter emits them when two parameters are equal) by copies of
    the initializer: OpenCV 4.6 cannot parse an Identity whose input is a constant."""
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def check(model, onnx_path, data_root, limit=200):
    """Compare PyTorch and cv2.dnn on real crops of the training sets (not openalpr-dev)."""
    net = cv2.dnn.readNetFromONNX(onnx_path)
    crops = []
    for s in ("ro_dashcam_mit", "openimages_gplates", "us_virginia_mit"):
        for img_path, boxes in read_set(os.path.join(data_root, s)):
            for b in boxes:
                if b[4] != "?" and len(crops) < limit:
                    crops.append(ocr_input_from_box(cv2.imread(img_path), b))
    same, maxdiff = 0, 0.0
    for c in crops:
        blob = c.astype(np.float32)[None, None]
        net.setInput(blob)
        p_cv = net.forward()
        with torch.no_grad():
            p_pt = model(torch.from_numpy(blob)).numpy()
        assert p_cv.shape == p_pt.shape, (p_cv.shape, p_pt.shape)
        maxdiff = max(maxdiff, float(np.abs(p_cv - p_pt).max()))
        same += ctc_greedy(p_cv[0])[0] == ctc_greedy(p_pt[0])[0]
    print(f"cv2 {cv2.__version__} vs torch on {len(crops)} real crops: same text {same}/{len(crops)}, "
          f"max |prob diff| {maxdiff:.2e}, output shape {p_cv.shape}")
    return same == len(crops) and maxdiff < 1e-3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default="../models/plate-ocr.onnx")
    ap.add_argument("--data", required=True, help="the folder of labelled plate sets")
    a = ap.parse_args()
    model = export(a.ckpt, a.out)
    ok = check(model, a.out, a.data)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB)")
    if not ok:
        raise SystemExit("OpenCV output differs from PyTorch")


if __name__ == "__main__":
    main()
