"""Small CRNN for plate OCR with a CTC head, built only from layers OpenCV 4.6's DNN runs
(Conv, BatchNorm, ReLU, MaxPool, Slice, Concat, Add, Transpose, Softmax, Reshape).

Two-row plates: the backbone ends with a feature map of height 2; its top and bottom rows are concatenated
along the width, so the CTC sequence reads the upper row first and then the lower one. A one-row plate is
emitted by whichever half the network prefers, the other half predicting blanks.

`context=True` (the "ctx" architecture) adds a block that lets every output column see the whole plate:
residual dilated convolutions along the sequence (dilations 1..16: a receptive field of 63 of the 64 columns)
and a token-mixing layer (a 1x1 convolution across the sequence positions, as in MLP-Mixer). The conv-only head
decided each column from a narrow window, so it could not learn layout priors such as "the last four
characters of an old Brazilian plate are digits". Self-attention and LSTMs were avoided on purpose: OpenCV
4.6's ONNX importer handles neither reliably, and this block is plain Conv/Add/Transpose."""
import torch
import torch.nn as nn

from common import NUM_CLASSES, OCR_H, OCR_W


def cbr(cin, cout, k=3, p=1, d=1):
    return [nn.Conv2d(cin, cout, k, padding=p, dilation=d, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DilatedRes(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d), bias=False),
                                  nn.BatchNorm2d(c))
        # Start as the identity (zero-initialised last BN scale): with random residual branches and mixing the
        # first run sat on CTC's all-blank plateau for 800+ steps; the conv-only model never did.
        nn.init.zeros_(self.body[1].weight)

    def forward(self, x):
        return torch.relu(x + self.body(x))


class TokenMix(nn.Module):
    """x [B, C, 1, T] -> x + mix over T (a learned T x T map shared by all channels)."""

    def __init__(self, t):
        super().__init__()
        self.mix = nn.Conv2d(t, t, 1)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, x):
        y = x.permute(0, 3, 2, 1)  # [B, T, 1, C]
        y = self.mix(y)
        return x + y.permute(0, 3, 2, 1)


class PlateCRNN(nn.Module):
    def __init__(self, widths=(32, 64, 96, 128, 160), export=False, context=False):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.export = export
        self.context = context
        self.backbone = nn.Sequential(
            *cbr(1, c1), nn.MaxPool2d(2),                 # 16 x 64
            *cbr(c1, c2), nn.MaxPool2d(2),                # 8 x 32
            *cbr(c2, c3), *cbr(c3, c3), nn.MaxPool2d((2, 1)),  # 4 x 32
            *cbr(c3, c4), *cbr(c4, c4), nn.MaxPool2d((2, 1)),  # 2 x 32
            *cbr(c4, c5),
        )
        t = 2 * OCR_W // 4
        # A taller input (OCR_H 64: a 2:1 plate keeps its aspect, a glyph's flag or foot keeps its pixels) is
        # read by the first layer at full height and pooled to the 32 rows the rest of the network was
        # trained on; the parameters (and a checkpoint's keys) are the same as at 32.
        if OCR_H not in (32, 64):
            raise ValueError(f"OCR input height {OCR_H}: the network reads 32 or 64 rows")
        self.stem_pool = nn.MaxPool2d((2, 1)) if OCR_H == 64 else None
        if context:
            self.ctx = nn.Sequential(*[DilatedRes(c5, d) for d in (1, 2, 4, 8, 16)], TokenMix(t))
        self.seq = nn.Sequential(*cbr(c5, c5, (1, 3), (0, 1)), *cbr(c5, c5, (1, 3), (0, 1)), nn.Dropout(0.1))
        self.head = nn.Conv2d(c5, NUM_CLASSES, 1)

    def forward(self, x):
        """x: [B, 1, OCR_H, OCR_W] raw grey 0..255 (32x128 shipped). Training: log-probs [T, B, K] for CTC. Export: probs [1, T, K]."""
        x = x * (1.0 / 127.5) - 1.0
        if self.stem_pool is None:
            f = self.backbone(x)
        else:
            f = self.backbone[3:](self.stem_pool(self.backbone[:3](x)))
        f = torch.cat([f[:, :, 0:1, :], f[:, :, 1:2, :]], dim=3)  # [B, C, 1, 2*W/4]
        if self.context:
            f = self.ctx(f)
        f = self.seq(f)
        logits = self.head(f)  # [B, K, 1, T]
        if self.export:
            # Softmax over the last axis: with opset 11 that is one plain Softmax node (axis=2), which OpenCV
            # 4.6 computes correctly; a softmax over axis 1 becomes Transpose/Softmax/Transpose.
            return torch.softmax(logits.reshape(1, NUM_CLASSES, -1).transpose(1, 2), dim=2)  # [1, T, K]
        return logits.squeeze(2).permute(2, 0, 1).log_softmax(2)


def build(ck, export=False):
    """The model a checkpoint describes (old checkpoints have no 'context' key: the conv-only head)."""
    return PlateCRNN(tuple(ck["widths"]), export=export, context=bool(ck.get("context", False)))


def input_shape():
    return (1, 1, OCR_H, OCR_W)
