"""A parametric stroke font for the confusable plate glyphs (and the rest of A-Z 0-9).

Real plates are lettered in constant-stroke, condensed faces (US state dies, Brazil's Mandatory, DIN 1451, FE),
where `1` is a bar with a flag and often no foot, `0` is a narrow stadium beside a rounder `O`, `D` has a straight
back, `W`'s middle apex sits low or high, `7` may carry a bar. No free font on Debian draws these shapes, so each
glyph here is a set of strokes in a unit box (x right, y down) with its variants drawn at random: stroke width,
glyph width, cap style, flag and foot of `1`, serifs of `I`, apex height of `W`/`M`, bar of `7`/`Z`, a round or
square `0`/`O`. The shapes are drawn from the common public descriptions of such faces, not copied from any
font file."""
import math

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx, cy, rx, ry, a0, a1, n=18):
    """Points of an elliptic arc from angle a0 to a1 (degrees; y down, so 90 is the bottom)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, max(2, int(abs(a1 - a0) / 360 * n * 2) + 2))]


def _bowl(x0, y0, y1, xr):
    """A 'P'/'B'/'D' bowl from (x0, y0) right to xr, round, back to (x0, y1)."""
    r = (y1 - y0) / 2
    return [(x0, y0), (xr - r * 0.9, y0)] + _arc(xr - r * 0.9, y0 + r, r * 0.9, r, -90, 90) + [(x0, y1)]


def glyph(ch, v):
    """Strokes (lists of points in the unit box) of `ch` under the variant draws `v` (dict)."""
    sq = v["square"]  # squarer round letters (stadium 0, DIN-like)
    if ch == "0":
        if sq:
            r = 0.28
            return [[(0, r), (0, 1 - r)] + _arc(0.5, 1 - r, 0.5, r, 180, 0) + [(1, 1 - r), (1, r)]
                    + _arc(0.5, r, 0.5, r, 0, -180)]
        return [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, 28)]
    if ch == "O":
        if sq and v["o_square"]:
            r = 0.38
            return [[(0, r), (0, 1 - r)] + _arc(0.5, 1 - r, 0.5, r, 180, 0) + [(1, 1 - r), (1, r)]
                    + _arc(0.5, r, 0.5, r, 0, -180)]
        return [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, 28)]
    if ch == "D":
        return [[(0, 0), (0, 1)], _bowl(0, 0, 1, 1.0) if not sq else
                [(0, 0), (0.55, 0)] + _arc(0.55, 0.45, 0.45, 0.45, -90, 0) + _arc(0.55, 0.55, 0.45, 0.45, 0, 90) + [(0, 1)]]
    if ch == "Q":
        return [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, 28), [(0.58, 0.68), (1.02, 1.05)]]
    if ch == "1":
        x = 0.62
        s = [[(x, 0), (x, 1)], [(x, 0), (x - v["flag"], v["flag"] * v["flag_slope"])]]
        if v["foot"]:
            s.append([(0.15, 1), (1.0, 1)])
        return s
    if ch == "I":
        s = [[(0.5, 0), (0.5, 1)]]
        if v["serif"]:
            s += [[(0.15, 0), (0.85, 0)], [(0.15, 1), (0.85, 1)]]
        return s
    if ch == "7":
        s = [[(0, 0), (1, 0), (0.3 + v["seven_foot"], 1)]]
        if v["bar7"]:
            s.append([(0.3, 0.5), (0.9, 0.5)])
        return s
    if ch == "Z":
        s = [[(0, 0), (1, 0), (0, 1), (1, 1)]]
        if v["barz"]:
            s.append([(0.2, 0.5), (0.8, 0.5)])
        return s
    if ch == "2":
        a = _arc(0.5, 0.28, 0.5, 0.28, 190, 380)
        return [a + [(0, 1), (1, 1)]]
    if ch == "8":
        return [_arc(0.5, 0.25, 0.42, 0.25, 0, 360, 20), _arc(0.5, 0.73, 0.5, 0.27, 0, 360, 22)]
    if ch == "B":
        return [[(0, 0), (0, 1)], _bowl(0, 0, 0.48, 0.92), _bowl(0, 0.48, 1, 1.0)]
    if ch == "5":
        return [[(1, 0), (0.06, 0), (0.02, 0.46)] + _arc(0.48, 0.68, 0.52, 0.32, -125, 145)]
    if ch == "S":
        return [_arc(0.5, 0.26, 0.47, 0.26, 340, 90) + _arc(0.5, 0.74, 0.5, 0.26, -90, 160)]
    if ch == "6":
        return [_arc(0.5, 0.7, 0.5, 0.3, 0, 360, 22), _arc(0.62, 0.62, 0.62, 0.62, 180, 280)]
    if ch == "G":
        return [_arc(0.5, 0.5, 0.5, 0.5, -40, -360, 28), [(0.52, 0.56), (1, 0.56), (1, 0.92)]]
    if ch == "W":
        m = v["apex"]
        return [[(0, 0), (0.24, 1), (0.5, m), (0.76, 1), (1, 0)]]
    if ch == "M":
        m = v["apex"] + 0.35
        o = v["m_slant"]
        return [[(o, 1), (0, 0), (0.5, m), (1, 0), (1 - o, 1)]]
    if ch == "N":
        return [[(0, 1), (0, 0), (1, 1), (1, 0)]]
    if ch == "H":
        return [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]]
    if ch == "A":
        return [[(0, 1), (0.5, 0), (1, 1)], [(0.2, 0.66), (0.8, 0.66)]]
    if ch == "C":
        return [_arc(0.5, 0.5, 0.5, 0.5, 40, 320, 24)]
    if ch == "E":
        return [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.85, 0.5)]]
    if ch == "F":
        return [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.85, 0.5)]]
    if ch == "J":
        return [[(1, 0), (1, 0.7)] + _arc(0.5, 0.7, 0.5, 0.3, 0, 180)]
    if ch == "K":
        return [[(0, 0), (0, 1)], [(1, 0), (0, 0.62)], [(0.32, 0.42), (1, 1)]]
    if ch == "L":
        return [[(0, 0), (0, 1), (1, 1)]]
    if ch == "P":
        return [[(0, 1), (0, 0)], _bowl(0, 0, 0.55, 1.0)]
    if ch == "R":
        return [[(0, 1), (0, 0)], _bowl(0, 0, 0.55, 1.0), [(0.45, 0.55), (1, 1)]]
    if ch == "T":
        return [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]]
    if ch == "U":
        return [[(0, 0), (0, 0.7)] + _arc(0.5, 0.7, 0.5, 0.3, 180, 0) + [(1, 0)]]
    if ch == "V":
        return [[(0, 0), (0.5, 1), (1, 0)]]
    if ch == "X":
        return [[(0, 0), (1, 1)], [(1, 0), (0, 1)]]
    if ch == "Y":
        return [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]]
    if ch == "3":
        return [_arc(0.5, 0.26, 0.46, 0.26, 200, 450) + _arc(0.5, 0.75, 0.5, 0.25, 270, 520)]
    if ch == "4":
        return [[(0.72, 1), (0.72, 0), (0, 0.7), (1, 0.7)]]
    if ch == "9":
        return [_arc(0.5, 0.3, 0.5, 0.3, 0, 360, 22), [(1, 0.3), (1, 0.62)] + _arc(0.5, 0.62, 0.5, 0.38, 0, 150)]
    raise KeyError(ch)


NARROW = {"1": 0.42, "I": 0.45, "J": 0.8, "0": 0.86, "M": 1.12, "W": 1.18}


def draw_variants(rng):
    """One plate's style: all its glyphs share it, as a plate die set would."""
    return {
        "square": bool(rng.random() < 0.5), "o_square": bool(rng.random() < 0.3),
        "flag": float(rng.uniform(0.18, 0.45)), "flag_slope": float(rng.uniform(0.5, 1.2)),
        "foot": bool(rng.random() < 0.35), "serif": bool(rng.random() < 0.6), "bar7": bool(rng.random() < 0.15),
        "barz": bool(rng.random() < 0.1), "seven_foot": float(rng.uniform(-0.1, 0.25)),
        "apex": float(rng.uniform(0.0, 0.6)), "m_slant": float(rng.uniform(0.0, 0.1)),
        "stroke": float(rng.uniform(0.09, 0.19)), "width": float(rng.uniform(0.48, 0.66)),
        "round_caps": bool(rng.random() < 0.5),
    }


def ink_line(shown, rng, height=120):
    """Like render._ink_line for a TTF font: one text line as a tight L-mode mask (255 = ink)."""
    v = draw_variants(rng)
    sw = max(2, int(v["stroke"] * height))
    pad = sw
    gw_base = v["width"] * height
    track = int(rng.integers(int(0.06 * height), int(0.2 * height)))
    pieces, x = [], pad
    for ch in shown:
        if ch == " ":
            x += int(rng.integers(20, 60))
            continue
        if ch == "-":
            pieces.append(("-", x, int(0.35 * height)))
            x += int(0.35 * height) + track
            continue
        gw = int(gw_base * NARROW.get(ch, 1.0))
        pieces.append((ch, x, gw))
        x += gw + track
    img = Image.new("L", (x + pad, height + 2 * pad), 0)
    d = ImageDraw.Draw(img)
    for ch, x0, gw in pieces:
        if ch == "-":
            d.line([(x0, pad + height * 0.5), (x0 + gw, pad + height * 0.5)], fill=255, width=sw)
            continue
        for stroke in glyph(ch, v):
            pts = [(x0 + px * gw, pad + py * height) for px, py in stroke]
            d.line(pts, fill=255, width=sw, joint="curve")
            if v["round_caps"]:
                r = sw / 2
                for px, py in (pts[0], pts[-1]):
                    d.ellipse([px - r, py - r, px + r, py + r], fill=255)
    a = np.array(img)
    ys, xs = np.nonzero(a > 0)
    if len(xs) == 0:
        return a
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
