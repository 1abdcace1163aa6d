"""Plate text patterns per region. `L` = letter, `D` = digit, ` `/`-` = separators drawn on the plate but
absent from the label. Realistic patterns matter because a CTC model learns letter/digit priors by position;
a share of fully random strings keeps it from over-trusting them (vanity plates exist)."""
import numpy as np

LET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIG = "0123456789"
# Serial letters as issued: most US states and Italy never issue I, O or Q in a series (they read as 1/0),
# Italy also skips U; vanity plates (random_text) keep every letter.
LET_US = "ABCDEFGHJKLMNPRSTUVWXYZ"
LET_IT = "ABCDEFGHJKLMNPRSTVWXYZ"

US = ["LLL DDDD", "LLL-DDDD", "DLLL DDD", "LLL DDD", "DDD LLL", "LL DDDDD", "DDD DDDD", "LLL LDDD", "LDD LLL",
      "DD DDDD", "DDDDDD", "LLLDDDD", "DLL DDDD", "LLDDDD", "LLL-DDD", "DDDLLL", "LDDDDD", "DDDDLL", "LL DDDD",
      "DLLLDDD", "LLLL DD", "DDD-LLL", "LLDLDD", "DDDDDDD"]
EU = ["LL DDD LL", "LL-DDD-LL", "LDD LLL", "LLDD LLL", "DDDD LLL", "L LL DDDD", "LL LL DDD", "LLL LL DDD",
      "LL DDDD", "LLL DDDD", "LL DDDDD", "LL-DD-LL", "DD-LLL-D", "L-DDD-LL", "LLL DDLL", "LL DDDLL", "LL DDD L",
      "LLL DDD", "DLLL DDD", "LL DDDDL", "LLL DDDDL", "LDD DDD", "LLDDDDD"]
BR = ["LLL-DDDD", "LLL DLDD", "LLLDLDD", "LLL DDDD"]
AR = ["LLL DDD", "LL DDD LL"]
REGIONS = {"us": US, "eu": EU, "br": BR, "ar": AR}


def fill(pattern, rng, letters=LET):
    """Turn a pattern into (display string with separators, label without them)."""
    out = []
    for ch in pattern:
        if ch == "L":
            out.append(letters[rng.integers(len(letters))])
        elif ch == "D":
            out.append(DIG[rng.integers(10)])
        else:
            out.append(ch)
    shown = "".join(out)
    return shown, shown.replace(" ", "").replace("-", "")


def random_text(rng, lo=4, hi=8):
    """A vanity-like random string; occasionally a separator is drawn in it."""
    n = int(rng.integers(lo, hi + 1))
    chars = [(LET + DIG)[rng.integers(36)] for _ in range(n)]
    if n >= 5 and rng.random() < 0.4:
        chars.insert(int(rng.integers(2, n - 1)), " " if rng.random() < 0.6 else "-")
    shown = "".join(chars)
    return shown, shown.replace(" ", "").replace("-", "")


# Set by gen_ocr.py --issued-letters: the share of serial plates drawn with the letters their issuer uses
# (0 keeps the older shards' random stream).
P_ISSUED = 0.0


def plate_text(region, rng, p_random=0.2):
    if rng.random() < p_random:
        return random_text(rng)
    pats = REGIONS[region]
    pat = pats[rng.integers(len(pats))]
    letters = LET
    if P_ISSUED > 0 and rng.random() < P_ISSUED:
        if region == "us":
            letters = LET_US
        elif region == "eu" and pat in ("LL DDD LL", "LL-DDD-LL"):
            letters = LET_IT
    return fill(pat, rng, letters)
