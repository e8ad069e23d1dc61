"""Object families of the synthetic scenes: parametric outlines drawn as part maps.

Each family is a function `(rng, extent) -> [extent, extent] uint8` part map (0 outside,
1..3 coloured parts, holes left at 0) with random proportions drawn from `rng`, upright and
centred. `FAMILIES`, which train, val and test clips draw from: ellipses, convex polygons,
stars, L brackets, thin bars, mugs (handle hole), cups, bottles, bowls, boxes (3/4 view),
hammers, spatulas (slots), cans, books, T brackets (screw holes), rings, forks (tines) and
bananas. `HELD_OUT_FAMILIES` (headphones, keys, scissors, teapots) are never drawn by default
and only make `make_unseen_scene` clips, to check generalisation to shapes a model has not
seen.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal_ros.data.draw import ellipse, fill, line, rect

FAMILIES = (
    *("ellipse", "polygon", "star", "L", "thin"),
    *("mug", "cup", "bottle", "bowl", "box", "hammer", "spatula", "can", "book", "T"),
    *("ring", "fork", "banana"),
)  # train, val and test clips draw from these (the order is part of the seeded draw)
HELD_OUT_FAMILIES = ("headphones", "key", "scissors", "teapot")  # only in make_unseen_scene


def family_mask(family: str, extent: int, seed: int = 0) -> np.ndarray:
    """[extent, extent] bool silhouette of one object of `family` (random proportions drawn
    from `seed`), upright and centred, as the generator draws it."""
    if family not in DRAW:
        raise ValueError(f"unknown family {family!r}; known: {sorted(DRAW)}")
    return DRAW[family](np.random.default_rng(seed), extent) > 0


# basic shapes: integer-pixel outlines, a radius of 0.95 half extents


def _oval(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    c, r = e / 2.0, e / 2.0 * 0.95
    axes = (int(r), int(r * rng.uniform(0.4, 0.9)))
    cv2.ellipse(p, (int(c), int(c)), axes, 0, 0, 360, 1, -1)
    return p


def polygon(rng, e: int) -> np.ndarray:
    """[e, e] uint8 part map of a random convex polygon (3..7 corners); blobs use it too."""
    p = np.zeros((e, e), np.uint8)
    c, r = e / 2.0, e / 2.0 * 0.95
    n = int(rng.integers(3, 8))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.6, 1.0, n)
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
    cv2.fillPoly(p, [cv2.convexHull(pts.astype(np.int32))], 1)
    return p


def _star(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    c, r = e / 2.0, e / 2.0 * 0.95
    n = int(rng.integers(4, 7))
    angles = np.arange(2 * n) * np.pi / n
    radii = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.35, 0.55))
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
    cv2.fillPoly(p, [pts.astype(np.int32)], 1)
    return p


def _l_bracket(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    t = max(2, int(e * rng.uniform(0.25, 0.4)))
    p[: e - 1, :t] = 1
    p[e - t - 1 : e - 1, :] = 1
    return p


def _thin(rng, e: int) -> np.ndarray:
    """A long thin bar with a knob: thin parts are hard for amodal completion."""
    p = np.zeros((e, e), np.uint8)
    t = max(2, int(e * 0.12))
    p[e // 2 - t // 2 : e // 2 + t // 2 + 1, :] = 1
    cv2.circle(p, (e - t * 2, e // 2), t * 2, 1, -1)
    return p


# household objects


def _mug(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bw, bh = e * rng.uniform(0.38, 0.52), e * rng.uniform(0.5, 0.78)
    reach = e * rng.uniform(0.15, 0.24)  # how far the handle sticks out
    x0, y0 = (e - bw - reach) / 2.0, (e - bh) / 2.0
    rect(p, x0, y0, x0 + bw, y0 + bh, 1)
    ellipse(p, x0 + bw / 2, y0 + bh, bw / 2, bh * 0.06, 1)  # rounded bottom
    thick = max(1, int(round(e * rng.uniform(0.05, 0.08))))
    cy, ry = y0 + bh * rng.uniform(0.4, 0.5), bh * rng.uniform(0.2, 0.3)
    ellipse(p, x0 + bw, cy, reach - thick / 2, ry, 1, -90, 90, thick)  # the handle's hole
    ellipse(p, x0 + bw / 2, y0, bw / 2, max(1.0, bh * 0.07), 2)  # the opening, seen above
    return p


def _cup(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    top, h = e * rng.uniform(0.5, 0.8), e * rng.uniform(0.45, 0.8)
    bottom = top * rng.uniform(0.55, 0.85)
    c, y0 = e / 2.0, (e - h) / 2.0
    fill(
        p,
        [(c - top / 2, y0), (c + top / 2, y0), (c + bottom / 2, y0 + h), (c - bottom / 2, y0 + h)],
        1,
    )
    ellipse(p, c, y0, top / 2, max(1.0, h * 0.08), 2)
    return p


def _bottle(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    length, bw = e * rng.uniform(0.8, 0.92), e * rng.uniform(0.24, 0.38)
    nw = max(2.0, bw * rng.uniform(0.3, 0.5))
    neck, shoulder = length * rng.uniform(0.15, 0.25), length * rng.uniform(0.08, 0.18)
    c, y0 = e / 2.0, (e - length) / 2.0
    body_top = y0 + neck + shoulder
    outline = [
        (c - bw / 2, y0 + length),
        (c + bw / 2, y0 + length),
        (c + bw / 2, body_top),
        (c + nw / 2, y0 + neck),
        (c + nw / 2, y0),
        (c - nw / 2, y0),
        (c - nw / 2, y0 + neck),
        (c - bw / 2, body_top),
    ]
    fill(p, outline, 1)
    rect(p, c - nw / 2 - 0.5, y0, c + nw / 2 + 0.5, y0 + neck * 0.35, 2)  # cap
    body = y0 + length - body_top
    band = body_top + body * rng.uniform(0.15, 0.35)
    rect(p, c - bw / 2, band, c + bw / 2, band + body * rng.uniform(0.3, 0.45), 3)  # label
    return p


def _bowl(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bw, bh = e * rng.uniform(0.75, 0.92), e * rng.uniform(0.3, 0.45)
    rim = bh * rng.uniform(0.15, 0.3)
    c = e / 2.0
    top = (e - bh - rim) / 2.0 + rim
    ellipse(p, c, top, bw / 2, bh, 1, 0, 180)  # the lower half of an ellipse
    foot_w = bw * rng.uniform(0.25, 0.4)
    rect(p, c - foot_w / 2, top + bh - 1, c + foot_w / 2, top + bh + e * 0.05, 1)
    ellipse(p, c, top, bw / 2, rim, 2)  # the inside, seen from slightly above
    return p


def _box(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.4, 0.68), e * rng.uniform(0.35, 0.68)
    dx = e * rng.uniform(0.08, 0.22)
    dy = dx * rng.uniform(0.5, 1.0)
    x0, y0 = (e - w - dx) / 2.0, (e - h + dy) / 2.0
    rect(p, x0, y0, x0 + w, y0 + h, 1)
    fill(p, [(x0, y0), (x0 + dx, y0 - dy), (x0 + w + dx, y0 - dy), (x0 + w, y0)], 2)
    side = [(x0 + w, y0), (x0 + w + dx, y0 - dy), (x0 + w + dx, y0 + h - dy), (x0 + w, y0 + h)]
    fill(p, side, 3)
    return p


def _hammer(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    length, hw = e * rng.uniform(0.75, 0.92), max(2.0, e * rng.uniform(0.07, 0.12))
    head_w, head_t = e * rng.uniform(0.35, 0.6), max(2.0, e * rng.uniform(0.12, 0.2))
    c, y0 = e / 2.0, (e - length) / 2.0
    rect(p, c - hw / 2, y0, c + hw / 2, y0 + length, 2)  # the handle
    if rng.random() < 0.5:  # a claw: one side of the head tapers
        fill(
            p,
            [
                (c - head_w / 2, y0 + head_t * 0.3),
                (c + head_w / 2, y0),
                (c + head_w / 2, y0 + head_t),
                (c - head_w / 2, y0 + head_t * 0.7),
            ],
            1,
        )
    else:
        rect(p, c - head_w / 2, y0, c + head_w / 2, y0 + head_t, 1)
    return p


def _spatula(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    handle, hw = e * rng.uniform(0.45, 0.6), max(2.0, e * rng.uniform(0.05, 0.09))
    bw, bl = e * rng.uniform(0.24, 0.38), e * rng.uniform(0.28, 0.4)
    c, y0 = e / 2.0, (e - handle - bl) / 2.0
    rect(p, c - bw / 2, y0 + bw * 0.2, c + bw / 2, y0 + bl, 1)
    ellipse(p, c, y0 + bw * 0.2, bw / 2, bw * 0.2, 1)  # rounded front edge
    rect(p, c - hw / 2, y0 + bl - 1, c + hw / 2, y0 + bl + handle, 2)
    if rng.random() < 0.6 and bw >= 8:  # slots
        n = int(rng.integers(2, 4))
        for x in np.linspace(c - bw * 0.25, c + bw * 0.25, n):
            rect(p, x - 0.5, y0 + bl * 0.25, x + 0.5, y0 + bl * 0.8, 0)
    return p


def _can(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.35, 0.55), e * rng.uniform(0.5, 0.8)
    lid = max(1.0, w * rng.uniform(0.1, 0.18))
    c, y0 = e / 2.0, (e - h) / 2.0
    rect(p, c - w / 2, y0, c + w / 2, y0 + h, 3)  # the printed label
    ellipse(p, c, y0 + h, w / 2, lid, 1)
    rect(p, c - w / 2, y0, c + w / 2, y0 + h * 0.12, 1)
    ellipse(p, c, y0, w / 2, lid, 2)  # the lid
    return p


def _book(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.45, 0.7), e * rng.uniform(0.6, 0.9)
    if rng.random() < 0.4:  # lying flat
        w, h = h, w * rng.uniform(0.4, 0.7)
    x0, y0 = (e - w) / 2.0, (e - h) / 2.0
    rect(p, x0, y0, x0 + w, y0 + h, 1)
    rect(p, x0, y0, x0 + w * rng.uniform(0.08, 0.15), y0 + h, 2)  # spine
    rect(p, x0 + w * 0.95, y0 + 1, x0 + w, y0 + h - 1, 3)  # page edges
    return p


def _t_bracket(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bar, t = e * rng.uniform(0.6, 0.9), max(2.0, e * rng.uniform(0.12, 0.25))
    stem, t2 = e * rng.uniform(0.5, 0.85), max(2.0, e * rng.uniform(0.12, 0.25))
    c, y0 = e / 2.0, (e - stem) / 2.0
    rect(p, c - bar / 2, y0, c + bar / 2, y0 + t, 1)
    rect(p, c - t2 / 2, y0, c + t2 / 2, y0 + stem, 1)
    if rng.random() < 0.5 and t >= 5:  # screw holes
        for x in (c - bar * 0.35, c + bar * 0.35):
            ellipse(p, x, y0 + t / 2, t * 0.22, t * 0.22, 0)
    return p


def _ring(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    outer = e * 0.46 * rng.uniform(0.8, 1.0)
    inner, squash = outer * rng.uniform(0.35, 0.65), rng.uniform(0.55, 1.0)
    c = e / 2.0
    ellipse(p, c, c, outer, outer * squash, 1)
    ellipse(p, c, c, inner, inner * squash, 0)  # the hole
    return p


def _fork(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    handle, hw = e * rng.uniform(0.45, 0.58), max(2.0, e * rng.uniform(0.05, 0.08))
    head_w, tines = max(5.0, e * rng.uniform(0.16, 0.26)), e * rng.uniform(0.2, 0.3)
    neck = e * 0.1
    c, y0 = e / 2.0, (e - handle - neck - tines) / 2.0
    base = y0 + tines
    fill(
        p,
        [
            (c - head_w / 2, base),
            (c + head_w / 2, base),
            (c + hw / 2, base + neck),
            (c - hw / 2, base + neck),
        ],
        1,
    )
    rect(
        p,
        c - hw / 2,
        base + neck - 1,
        c + hw / 2,
        base + neck + handle,
        2 if rng.random() < 0.4 else 1,
    )
    n = int(rng.integers(3, 5))
    width = head_w / (2 * n - 1)
    for k in range(n):
        x = c - head_w / 2 + 2 * k * width
        rect(p, x, y0, x + max(1.0, width), base + 1, 1)
    return p


def _banana(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    span = np.deg2rad(rng.uniform(60, 110))
    chord = e * rng.uniform(0.6, 0.82)
    radius = chord / (2 * np.sin(span / 2))
    sag = radius * (1 - np.cos(span / 2))
    thick = e * rng.uniform(0.1, 0.17)
    c = e / 2.0
    cy = c - sag / 2 + radius  # the arc's apex sits above the centre, its ends below
    for u in np.linspace(0.0, 1.0, 24):
        a = -np.pi / 2 + (u - 0.5) * span
        r = max(1.0, thick * np.sin(np.pi * u) ** 0.8)  # tapering ends
        ellipse(p, c + radius * np.cos(a), cy + radius * np.sin(a), r, r, 1)
    a = -np.pi / 2 - 0.5 * span  # a stalk at one end
    x, y = c + radius * np.cos(a), cy + radius * np.sin(a)
    line(p, (x, y), (x - thick * 0.8, y - thick * 0.5), max(1, int(thick * 0.5)), 2)
    return p


# held-out families: never in the default clips


def _headphones(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    aw, ah = e * rng.uniform(0.28, 0.38), e * rng.uniform(0.3, 0.42)
    band = max(1, int(round(e * rng.uniform(0.05, 0.09))))
    cw, ch = e * rng.uniform(0.08, 0.12), e * rng.uniform(0.13, 0.2)
    c = e / 2.0
    cy = c + (ah - ch) / 2.0
    ellipse(p, c, cy, aw, ah, 1, 180, 360, band)  # the head band, an upper half ellipse
    for x in (c - aw, c + aw):  # ear cups
        ellipse(p, x, cy + ch * 0.3, cw, ch, 2)
    return p


def _key(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bow, shaft = e * rng.uniform(0.15, 0.22), e * rng.uniform(0.45, 0.6)
    sw = max(2.0, e * rng.uniform(0.06, 0.1))
    x0 = (e - 2 * bow - shaft) / 2.0 + bow
    cy = e / 2.0
    rect(p, x0, cy - sw / 2, x0 + bow + shaft, cy + sw / 2, 1)
    ellipse(p, x0, cy, bow, bow, 2)
    ellipse(p, x0, cy, bow * rng.uniform(0.35, 0.55), bow * rng.uniform(0.35, 0.55), 0)
    for k in range(int(rng.integers(2, 5))):  # teeth
        x = x0 + bow + shaft * (0.55 + 0.12 * k)
        rect(p, x, cy, x + max(1.0, e * 0.04), cy + sw / 2 + e * rng.uniform(0.05, 0.1), 1)
    return p


def _scissors(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    ring, blade = e * rng.uniform(0.1, 0.14), e * rng.uniform(0.45, 0.6)
    c = e / 2.0
    top = (e - blade - 3 * ring) / 2.0
    pivot = top + blade
    gap = ring * rng.uniform(0.9, 1.2)
    for side in (-1, 1):
        tip = (c + side * e * 0.03, top)
        base = c + side * gap
        fill(p, [tip, (base - ring * 0.45, pivot), (base + ring * 0.45, pivot)], 1)
        ellipse(p, base, pivot + ring * 1.4, ring, ring * 1.2, 2)
        ellipse(p, base, pivot + ring * 1.4, ring * 0.55, ring * 0.7, 0)
    return p


def _teapot(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    ax, ay = e * rng.uniform(0.22, 0.28), e * rng.uniform(0.17, 0.24)
    c = e / 2.0
    ellipse(p, c, c, ax, ay, 1)
    spout = [(c - ax * 0.8, c + ay * 0.1), (c - ax * 0.7, c + ay * 0.5), (c - ax * 1.7, c - ay)]
    spout.append((c - ax * 1.75, c - ay * 1.15))
    fill(p, spout, 1)
    thick = max(1, int(round(e * 0.05)))
    ellipse(p, c + ax * 0.95, c, ax * 0.5, ay * 0.6, 1, -90, 90, thick)  # handle with a hole
    ellipse(p, c, c - ay, ax * 0.45, ay * 0.2, 2)  # lid
    ellipse(p, c, c - ay * 1.25, ax * 0.12, ay * 0.12, 2)  # knob
    return p


DRAW = {
    "ellipse": _oval,
    "polygon": polygon,
    "star": _star,
    "L": _l_bracket,
    "thin": _thin,
    "mug": _mug,
    "cup": _cup,
    "bottle": _bottle,
    "bowl": _bowl,
    "box": _box,
    "hammer": _hammer,
    "spatula": _spatula,
    "can": _can,
    "book": _book,
    "T": _t_bracket,
    "ring": _ring,
    "fork": _fork,
    "banana": _banana,
    "headphones": _headphones,
    "key": _key,
    "scissors": _scissors,
    "teapot": _teapot,
}  # family name -> (rng, extent) -> [extent, extent] uint8 part map
