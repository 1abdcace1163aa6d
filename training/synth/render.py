"""Draw flat, front-on plates (RGB uint8) for several regional layouts with PIL.

Layouts are approximations made from public descriptions (sizes, colours, band positions), not copies of any
plate artwork: the OCR has to learn glyph shapes and layout variety, and the camera degradations come later
(augment.py). Fonts are the Debian packages installed by `make train-deps` (MIT/OFL)."""
import glob
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import strokes
from . import text as ptext

FONT_DIRS = ["/usr/share/fonts/truetype", "/usr/share/fonts/opentype"]


def _find(patterns):
    found = []
    for d in FONT_DIRS:
        for p in patterns:
            found += glob.glob(os.path.join(d, "**", p), recursive=True)
    return sorted(set(found))


MAIN_FONTS = _find(["RG2014C.ttf", "RG2014D.ttf", "RG2014E.ttf", "RG2014EM.ttf", "RG2014B.ttf",
                    "BebasNeue-Regular.otf", "BebasNeue-Bold.otf", "BebasNeue-Book.otf", "OSP-DIN.ttf",
                    "routed-gothic-narrow.ttf", "routed-gothic.ttf", "RobotoCondensed-Bold.ttf",
                    "RobotoCondensed-Medium.ttf", "B612-Bold.otf", "Jura-Bold.otf", "FreeSansBold.ttf",
                    "LiberationSansNarrow-Bold.ttf", "LiberationSansNarrow-Regular.ttf", "LiberationSans-Bold.ttf",
                    "LiberationMono-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf"])
EU_FONTS = _find(["OSP-DIN.ttf", "RG2014C.ttf", "RG2014D.ttf", "LiberationSansNarrow-Bold.ttf",
                  "routed-gothic-narrow.ttf", "RobotoCondensed-Medium.ttf",
                  "DejaVuSansCondensed-Bold.ttf", "BebasNeue-Regular.otf"])
SMALL_FONTS = _find(["NationalPark-Regular.otf", "NationalPark-Heavy.otf", "LiberationSerif-Italic.ttf",
                     "LiberationSerif-BoldItalic.ttf", "LiberationSans-Regular.ttf", "DejaVuSans.ttf",
                     "BebasNeue-Regular.otf"])
if not MAIN_FONTS:
    raise SystemExit("no plate fonts found: run `make train-deps` (Debian fonts-roadgeek, fonts-opendin, ...)")

STATES = ["CALIFORNIA", "TEXAS", "FLORIDA", "NEW YORK", "OHIO", "GEORGIA", "VIRGINIA", "ILLINOIS", "ARIZONA",
          "MICHIGAN", "NEVADA", "OREGON", "WASHINGTON", "COLORADO", "INDIANA", "KANSAS", "UTAH", "MAINE", "IOWA",
          "NEW JERSEY", "PENNSYLVANIA", "MARYLAND", "MISSOURI", "ALABAMA", "KENTUCKY", "MASSACHUSETTS", "IDAHO"]
SLOGANS = ["SUNSHINE STATE", "THE LONE STAR STATE", "EMPIRE STATE", "GARDEN STATE", "dmv.ca.gov", "FAMOUS POTATOES",
           "LAND OF LINCOLN", "VIRGINIA IS FOR LOVERS", "IN GOD WE TRUST", "GRAND CANYON STATE", "PURE MICHIGAN",
           "BIRTHPLACE OF AVIATION", "THE SILVER STATE", "LIVE FREE OR DIE", "PEACH STATE", "BAY STATE"]
EU_CC = ["D", "F", "I", "NL", "PL", "E", "P", "B", "CZ", "SK", "RO", "HR", "A", "GB", "S", "LT", "SLO", "H", "BG"]
BR_CITIES = ["SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA", "RS - PORTO ALEGRE",
             "SC - JOINVILLE", "BA - SALVADOR", "GO - GOIANIA", "DF - BRASILIA", "SP - CAMPINAS"]


def _rgb(rng, lo, hi):
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=3))


# Share of separators drawn as an emblem. 0 keeps the random stream of the first data shards unchanged
# (they were made before emblems existed); gen_ocr.py --p-emblem sets it.
P_EMBLEM = 0.0
# Share of plates lettered in the parametric stroke font (synth/strokes.py) instead of a TTF font; likewise 0
# keeps the older shards' random stream (gen_ocr.py --p-stroke sets it).
P_STROKE = 0.0
STROKE = "<stroke>"


def _main_font(fonts, rng):
    if P_STROKE > 0 and rng.random() < P_STROKE:
        return STROKE
    return fonts[rng.integers(len(fonts))]


def _ink_line(shown, font_path, rng):
    """Render one text line at a large size into a tight L-mode mask (255 = ink). Separators: a space is a gap,
    a dash is drawn as a short bar (plates use both)."""
    if font_path == STROKE:
        return strokes.ink_line(shown, rng)
    font = ImageFont.truetype(font_path, 120)
    track = int(rng.integers(2, 18))
    pieces, x = [], 0
    emblems = []
    for ch in shown:
        if ch in " -" and P_EMBLEM > 0 and rng.random() < P_EMBLEM:
            # separator drawn as an emblem: registration seal (DE), coat of arms (HR), state graphic (US);
            # it is not a character and must not be read as one
            ew = int(rng.integers(45, 110))
            emblems.append((x + 8, ew))
            x += ew + 16
            continue
        if ch == " ":
            x += int(rng.integers(20, 60))
            continue
        if ch == "-" and rng.random() < 0.3:
            x += int(rng.integers(20, 50))
            continue
        l, t, r, b = font.getbbox(ch)
        pieces.append((x - l, ch))
        x += (r - l) + track
    w = max(1, x - track)
    img = Image.new("L", (w + 20, 200), 0)
    d = ImageDraw.Draw(img)
    for px, ch in pieces:
        d.text((px + 10, 20), ch, font=font, fill=255)
    cap = font.getbbox("H")
    for ex, ew in emblems:
        ch_h = cap[3] - cap[1]
        eh = int(ch_h * rng.uniform(0.45, 0.95))
        y0 = 20 + cap[1] + (ch_h - eh) // 2 + int(rng.integers(-10, 11))
        box = [ex + 10, y0, ex + 10 + min(ew, eh + 20), y0 + eh]
        kind, tone = rng.integers(4), int(rng.integers(90, 256))
        if kind == 0:
            d.ellipse(box, fill=tone)
        elif kind == 1:
            d.ellipse(box, outline=tone, width=int(rng.integers(4, 12)))
        elif kind == 2:  # shield
            x0, y0_, x1, y1 = box
            d.polygon([(x0, y0_), (x1, y0_), (x1, (y0_ + y1) // 2), ((x0 + x1) // 2, y1), (x0, (y0_ + y1) // 2)], fill=tone)
        else:
            d.rectangle(box, fill=tone)
            d.rectangle([box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6], fill=int(rng.integers(0, 120)))
    a = np.array(img)
    ys, xs = np.nonzero(a > 0)
    if len(xs) == 0:
        return a
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _paste_text(canvas, shown, font_path, box, color, rng, stretch=(0.75, 1.25)):
    """Fit a text line into box=(x0, y0, x1, y1) of the PIL canvas: fixed cap height, width from the glyphs times a
    random stretch, shrunk to the box width."""
    x0, y0, x1, y1 = box
    mask = _ink_line(shown, font_path, rng)
    mh, mw = mask.shape
    th = max(2, y1 - y0)
    tw = int(mw * th / mh * rng.uniform(*stretch))
    tw = max(2, min(tw, x1 - x0))
    m = Image.fromarray(mask).resize((tw, th), Image.BILINEAR)
    ox = x0 + (x1 - x0 - tw) // 2 + int(rng.integers(-3, 4))
    canvas.paste(Image.new("RGB", (tw, th), color), (ox, y0), m)


def _small_text(canvas, s, box, color, rng):
    if not SMALL_FONTS:
        return
    _paste_text(canvas, s, SMALL_FONTS[rng.integers(len(SMALL_FONTS))], box, color, rng, stretch=(0.8, 1.1))


def _background(w, h, base, rng):
    """Light plate background with a soft graphic (gradient / blobs), as many US plates have."""
    bg = np.empty((h, w, 3), np.float32)
    bg[:] = base
    if rng.random() < 0.5:
        g = np.linspace(0, 1, h if rng.random() < 0.6 else w, dtype=np.float32)
        tint = np.array(_rgb(rng, 120, 255), np.float32) - np.array(base, np.float32)
        amt = rng.uniform(0.1, 0.45)
        if len(g) == h:
            bg += (g[:, None, None] * tint * amt)
        else:
            bg += (g[None, :, None] * tint * amt)
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.1, 0.5) * w
            yy, xx = np.mgrid[0:h, 0:w]
            m = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
            bg = bg * (1 - 0.35 * m) + np.array(_rgb(rng, 60, 255), np.float32) * 0.35 * m
    return Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))


def _split_two_rows(shown, rng):
    """Split a display string into two rows (motorcycle / square plates)."""
    label = shown.replace(" ", "").replace("-", "")
    n = len(label)
    k = int(np.clip(round(n / 2 + rng.integers(-1, 1)), 2, n - 2))
    return label[:k], label[k:]


def render_us(rng, two_row=False):
    shown, label = ptext.plate_text("us", rng)
    W, H = (600, 300) if not two_row else (400, 300)
    light = rng.random() > 0.08
    if light:
        base = _rgb(rng, 200, 255) if rng.random() < 0.85 else (int(rng.integers(200, 255)),) * 2 + (int(rng.integers(40, 140)),)
        ink = [(10, 20, 90), (15, 15, 15), (120, 10, 20), (10, 70, 30), (30, 30, 120)][rng.integers(5)]
        ink = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in ink)
    else:
        base = _rgb(rng, 5, 60)
        ink = _rgb(rng, 190, 255)
    img = _background(W, H, base, rng)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:  # coloured band top or bottom
        bc = _rgb(rng, 0, 200)
        if rng.random() < 0.5:
            d.rectangle([0, 0, W, int(H * rng.uniform(0.12, 0.22))], fill=bc)
        else:
            d.rectangle([0, int(H * rng.uniform(0.8, 0.9)), W, H], fill=bc)
    font = _main_font(MAIN_FONTS, rng)
    top_c = _rgb(rng, 0, 160)
    if rng.random() < 0.9:
        _small_text(img, STATES[rng.integers(len(STATES))], (40, int(H * 0.04), W - 40, int(H * rng.uniform(0.15, 0.22))), top_c, rng)
    if rng.random() < 0.7:
        _small_text(img, SLOGANS[rng.integers(len(SLOGANS))], (60, int(H * 0.84), W - 60, int(H * 0.95)), top_c, rng)
    if rng.random() < 0.4:  # registration stickers in the corners
        for cx in ([20] if rng.random() < 0.5 else [20, W - 90]):
            d.rectangle([cx, 18, cx + 70, 60], fill=_rgb(rng, 0, 255))
    margin = int(W * rng.uniform(0.04, 0.12))
    if not two_row:
        ch = H * rng.uniform(0.42, 0.55)
        y0 = int(H * 0.5 - ch / 2 + rng.integers(-8, 9))
        _paste_text(img, shown, font, (margin, y0, W - margin, int(y0 + ch)), ink, rng)
    else:
        r1, r2 = _split_two_rows(shown, rng)
        ch = H * rng.uniform(0.28, 0.34)
        _paste_text(img, r1, font, (margin, int(H * 0.2), W - margin, int(H * 0.2 + ch)), ink, rng)
        _paste_text(img, r2, font, (margin, int(H * 0.56), W - margin, int(H * 0.56 + ch)), ink, rng)
        label = r1 + r2
    return np.array(img), label


def render_eu(rng, two_row=False):
    shown, label = ptext.plate_text("eu", rng)
    W, H = (520, 110) if not two_row else (340, 200)
    base = (255, 255, 255) if rng.random() < 0.8 else (245, 200, 20)
    base = tuple(int(np.clip(c - rng.integers(0, 40), 0, 255)) for c in base)
    img = Image.new("RGB", (W, H), base)
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, W - 3, H - 3], outline=(20, 20, 20), width=int(rng.integers(2, 6)))
    band = 0
    if rng.random() < 0.85:
        band = int(W * (0.085 if not two_row else 0.12))
        d.rectangle([3, 3, band, H - 4], fill=(0, 50, int(rng.integers(130, 200))))
        for k in range(8):  # stars ring, coarse
            a = 2 * np.pi * k / 8
            cx, cy = band / 2 + band * 0.25 * np.cos(a), H * 0.3 + band * 0.25 * np.sin(a)
            d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(255, 210, 0))
        _small_text(img, EU_CC[rng.integers(len(EU_CC))], (6, int(H * 0.6), band - 3, int(H * 0.88)), (255, 255, 255), rng)
    font = _main_font(EU_FONTS, rng) if EU_FONTS else MAIN_FONTS[0]
    ink = _rgb(rng, 0, 40)
    x0, x1 = band + 8, W - 8
    if not two_row:
        ch = H * rng.uniform(0.62, 0.75)
        y0 = int((H - ch) / 2 + rng.integers(-3, 4))
        _paste_text(img, shown, font, (x0, y0, x1, int(y0 + ch)), ink, rng, stretch=(0.85, 1.2))
    else:
        r1, r2 = _split_two_rows(shown, rng)
        ch = H * rng.uniform(0.33, 0.38)
        _paste_text(img, r1, font, (x0, int(H * 0.08), x1, int(H * 0.08 + ch)), ink, rng)
        _paste_text(img, r2, font, (x0, int(H * 0.54), x1, int(H * 0.54 + ch)), ink, rng)
        label = r1 + r2
    return np.array(img), label


def render_br(rng, two_row=False):
    """Old grey Brazilian plate (ABC-1234, city line on top) or Mercosur (blue band with BRASIL, ABC1D23)."""
    W, H = (400, 130) if not two_row else (200, 170)
    mercosur = rng.random() < 0.45
    if mercosur:
        shown, label = ptext.fill(["LLL DLDD", "LLLDLDD"][rng.integers(2)], rng) if rng.random() > 0.15 else ptext.random_text(rng, 6, 7)
        img = Image.new("RGB", (W, H), _rgb(rng, 225, 255))
        d = ImageDraw.Draw(img)
        bh = int(H * 0.22)
        d.rectangle([0, 0, W, bh], fill=(0, 50, int(rng.integers(140, 200))))
        _small_text(img, "BRASIL", (int(W * 0.35), int(bh * 0.2), int(W * 0.65), int(bh * 0.85)), (255, 255, 255), rng)
        d.rectangle([1, 1, W - 2, H - 2], outline=(20, 20, 20), width=3)
        top = bh + 6
    else:
        shown, label = ptext.fill(["LLL-DDDD", "LLL DDDD", "LLLDDDD"][rng.integers(3)], rng) if rng.random() > 0.15 else ptext.random_text(rng, 6, 7)
        g = int(rng.integers(150, 215))
        base = (g, g, g) if rng.random() < 0.85 else ((200, 30, 30) if rng.random() < 0.5 else (250, 250, 250))
        img = Image.new("RGB", (W, H), base)
        d = ImageDraw.Draw(img)
        d.rectangle([1, 1, W - 2, H - 2], outline=(30, 30, 30), width=4)
        _small_text(img, BR_CITIES[rng.integers(len(BR_CITIES))], (int(W * 0.2), 8, int(W * 0.8), int(H * 0.22)), (30, 30, 30), rng)
        top = int(H * 0.27)
    font = [f for f in MAIN_FONTS if "RG2014" in f or "DIN" in f or "Narrow" in f] or MAIN_FONTS
    font = _main_font(font, rng)
    ink = _rgb(rng, 0, 45) if not (not mercosur and img.getpixel((W // 2, H // 2))[1] < 100) else (240, 240, 240)
    if not two_row:
        _paste_text(img, shown, font, (14, top + 4, W - 14, H - 10), ink, rng, stretch=(0.85, 1.2))
    else:
        r1, r2 = label[:3], label[3:]
        mid = (top + H) // 2
        _paste_text(img, r1, font, (14, top + 3, W - 14, mid - 3), ink, rng)
        _paste_text(img, r2, font, (14, mid + 3, W - 14, H - 8), ink, rng)
        label = r1 + r2
    return np.array(img), label


def render_ar(rng, two_row=False):
    """Old Argentine (black with white ABC 123) or Mercosur-like (white, blue band, AB 123 CD)."""
    if rng.random() < 0.5:
        shown, label = ptext.fill("LLL DDD", rng)
        W, H = 400, 130
        img = Image.new("RGB", (W, H), _rgb(rng, 0, 40))
        d = ImageDraw.Draw(img)
        d.rectangle([2, 2, W - 3, H - 3], outline=(220, 220, 220), width=3)
        _small_text(img, "ARGENTINA", (int(W * 0.3), 8, int(W * 0.7), 28), (220, 220, 220), rng)
        font = _main_font(MAIN_FONTS, rng)
        _paste_text(img, shown, font, (16, 36, W - 16, H - 12), _rgb(rng, 200, 255), rng)
        return np.array(img), label
    shown, label = ptext.fill("LL DDD LL", rng)
    img = Image.new("RGB", (400, 130), _rgb(rng, 225, 255))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 400, 28], fill=(0, 50, 160))
    _small_text(img, "REPUBLICA ARGENTINA", (110, 5, 290, 24), (255, 255, 255), rng)
    font = _main_font(MAIN_FONTS, rng)
    _paste_text(img, shown, font, (16, 36, 384, 118), _rgb(rng, 0, 40), rng)
    return np.array(img), label


RENDERERS = {"us": render_us, "eu": render_eu, "br": render_br, "ar": render_ar}
REGION_WEIGHTS = {"us": 0.42, "eu": 0.30, "br": 0.20, "ar": 0.08}


def render_plate(rng, p_two_row=0.07):
    """A random flat plate: (RGB uint8 array, label)."""
    regions = list(REGION_WEIGHTS)
    p = np.array([REGION_WEIGHTS[r] for r in regions])
    region = regions[rng.choice(len(regions), p=p / p.sum())]
    two = region != "ar" and rng.random() < p_two_row
    img, label = RENDERERS[region](rng, two)
    return img, label, region
