"""Tiny anchor-free single-class plate detector (CenterNet-style, one stride-8 head fed by a small FPN).

Static shapes and only layers OpenCV 4.6's DNN runs: Conv, BatchNorm, ReLU, Resize(nearest), Add, Slice,
Sigmoid, Tanh, Exp, Mul, MaxPool, Concat, Reshape. In export mode the grid decoding happens in the graph and the output
is YOLOv8-shaped: [1, 5, N] = (cx, cy, w, h, score) in input-canvas pixels, score after sigmoid."""
import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDE = 8
LOGWH_MID, LOGWH_HALF = 2.0, 4.0  # log(w/stride) = MID + HALF*tanh(raw): bounded without Clip


def cbr(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def log_wh(raw):
    """Box size parameterisation shared by training and export (OpenCV 4.6 cannot parse opset-11 Clip)."""
    return LOGWH_MID + LOGWH_HALF * torch.tanh(raw)


class PlateDet(nn.Module):
    def __init__(self, export_hw=None):
        super().__init__()
        self.s2 = cbr(3, 16, 3, 2)
        self.s4 = cbr(16, 24, 3, 2)
        self.s8 = nn.Sequential(cbr(24, 32, 3, 2), cbr(32, 32))
        self.s16 = nn.Sequential(cbr(32, 64, 3, 2), cbr(64, 64))
        self.s32 = nn.Sequential(cbr(64, 96, 3, 2), cbr(96, 96), cbr(96, 96))
        self.l5 = cbr(96, 48, 1)
        self.l4 = cbr(64, 48, 1)
        self.l3 = cbr(32, 48, 1)
        self.p4 = cbr(48, 48)
        self.p3 = cbr(48, 32, 1)
        self.head = nn.Sequential(cbr(32, 32), nn.Conv2d(32, 5, 1))
        nn.init.constant_(self.head[1].bias[0:1], -4.0)
        self.export_hw = export_hw
        if export_hw:
            h, w = export_hw[0] // STRIDE, export_hw[1] // STRIDE
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            self.register_buffer("grid", torch.stack([gx, gy]).float()[None] + 0.5, persistent=False)

    def forward(self, x):
        """x: [B, 3, H, W] RGB 0..1. Training: raw head [B, 5, H/8, W/8] = (score logit, ox, oy, log w, log h)."""
        c3 = self.s8(self.s4(self.s2(x)))
        c4 = self.s16(c3)
        c5 = self.s32(c4)
        p5 = self.l5(c5)
        p4 = self.p4(self.l4(c4) + F.interpolate(p5, scale_factor=2.0, mode="nearest"))
        p3 = self.p3(self.l3(c3) + F.interpolate(p4, scale_factor=2.0, mode="nearest"))
        out = self.head(p3)
        if not self.export_hw:
            return out
        xy = (out[:, 1:3] + self.grid) * float(STRIDE)
        wh = torch.exp(log_wh(out[:, 3:5])) * float(STRIDE)
        score = torch.sigmoid(out[:, 0:1])
        # CenterNet peak extraction in the graph: a cell keeps its score only where it is the 3x3 maximum,
        # so the runtime's plain threshold + NMS sees one candidate per plate (Sub/Add/Relu/Mul/MaxPool only).
        peak = torch.relu(score - F.max_pool2d(score, 3, 1, 1) + 1e-4) * 1e4
        score = score * peak
        return torch.cat([xy, wh, score], 1).reshape(1, 5, -1)
