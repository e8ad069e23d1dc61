"""Raster helpers of the synthetic scenes: sub-pixel shapes on part maps and smooth textures.

Shapes take float pixel coordinates and are drawn with 4 bits of sub-pixel precision (OpenCV's
`shift`), so a parametric outline keeps its proportions at 12 px as at 200 px. Part maps are
[h, w] uint8 images: 0 outside, 1..3 the object's parts (`paint` gives each its own texture).
"""

from __future__ import annotations

import cv2
import numpy as np

_SUB = 4  # sub-pixel bits


def _fix(points) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * (1 << _SUB)).astype(np.int32)


def fill(img: np.ndarray, points, value: int) -> None:
    """Fill the polygon of float (x, y) `points` in `img` with `value`."""
    cv2.fillPoly(img, [_fix(points).reshape(-1, 1, 2)], int(value), cv2.LINE_8, _SUB)


def rect(img: np.ndarray, x0, y0, x1, y1, value: int) -> None:
    """Fill the axis-aligned box (x0, y0)-(x1, y1) in `img` with `value`."""
    fill(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)


def ellipse(img, cx, cy, ax, ay, value, start=0, end=360, thickness=-1) -> None:
    """Draw an axis-aligned ellipse (arc from `start` to `end` degrees; filled when
    `thickness` < 0) centred at (cx, cy) with half axes (ax, ay)."""
    centre, axes = tuple(_fix((cx, cy)).tolist()), tuple(_fix((max(ax, 0), max(ay, 0))).tolist())
    cv2.ellipse(img, centre, axes, 0, start, end, int(value), thickness, cv2.LINE_8, _SUB)


def line(img, a, b, thickness: int, value: int) -> None:
    """Draw a line from point `a` to point `b`, `thickness` px wide (at least 1)."""
    pa, pb = tuple(_fix(a).tolist()), tuple(_fix(b).tolist())
    cv2.line(img, pa, pb, int(value), max(1, int(thickness)), cv2.LINE_8, _SUB)


def texture(rng, height: int, width: int, cells: int, tint, mix: float) -> np.ndarray:
    """[H, W, 3] uint8 smooth random texture (upsampled noise) blended with the RGB `tint`
    (`mix` = share of the tint: higher is calmer)."""
    ch, cw = max(2, int(height * cells / max(height, width))), max(2, int(cells))
    coarse = rng.integers(40, 215, (ch, cw, 3)).astype(np.float32)
    coarse = (1.0 - mix) * coarse + mix * np.asarray(tint, np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth, 0, 255).astype(np.uint8)


def paint(rng, parts: np.ndarray, tints=None, round_across: bool = False) -> np.ndarray:
    """[h, w, 3] uint8 colours of a part map [h, w] uint8: a smooth texture per part (part 1's
    also fills the outside, so linear warping does not darken the rim) and soft directional
    shading. `tints`: RGB tints of parts 1, 2, ... (random where missing); `round_across`:
    the cylinder-like fall-off runs across the rows (a horizontal pole) instead of the
    columns."""
    h, w = parts.shape
    sprite = None
    for k in range(1, max(1, int(parts.max())) + 1):
        tint = tints[k - 1] if tints is not None and k <= len(tints) else rng.integers(30, 225, 3)
        tex = texture(rng, h, w, cells=rng.integers(2, 6), tint=tint, mix=rng.uniform(0.6, 0.85))
        if sprite is None:
            sprite = tex
        else:
            sprite[parts == k] = tex[parts == k]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None]
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    shade = 1.0 + rng.uniform(-0.12, 0.12) * x + rng.uniform(-0.12, 0.12) * y
    across = y if round_across else x  # a cylinder-like fall-off (bottles, cans, poles)
    shade = shade - np.float32(rng.uniform(0.0, 0.3)) * across**2
    return np.clip(sprite * shade[..., None], 0, 255).astype(np.uint8)
