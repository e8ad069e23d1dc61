"""Target objects of the synthetic scenes: a family's outline, painted, on a path.

A target crosses the image, starts or ends partly outside it, sometimes enters or leaves it
completely, and sometimes bends its path (objects are pushed, picked up, turned).
"""

from __future__ import annotations

import numpy as np

from amodal_ros.data.draw import paint
from amodal_ros.data.shapes import DRAW
from amodal_ros.data.sprites import Entity, sprite_radius


def _path(rng, radius: float, height: int, width: int, enter_leave: float, inside: bool):
    """(knots, xs, ys) of a target's centre; `radius` (px) is how far its mask reaches."""
    if inside:  # crosses the middle of the image, never leaving it
        xa, xb = width * rng.uniform(0.15, 0.4), width * rng.uniform(0.6, 0.85)
        if rng.random() < 0.5:
            xa, xb = xb, xa
        y = height * rng.uniform(0.3, 0.7)
        return (0.0, 1.0), (xa, xb), (y, y + height * rng.uniform(-0.1, 0.1))
    y = height * rng.uniform(0.2, 0.8)
    y1 = y + height * rng.uniform(-0.2, 0.2)
    if rng.random() < enter_leave:  # comes in from outside the image, or leaves it
        out = -radius - 2 if rng.random() < 0.5 else width + radius + 2
        there = width * rng.uniform(0.3, 0.7)
        xa, xb = (out, there) if rng.random() < 0.5 else (there, out)
    else:  # starts or ends cut by the image's edge, its centre within half its reach of it
        # (until 2026-12-06 0.15 width out: 87 % of 2:1 clips' targets wholly outside at an end)
        xa, xb = radius * rng.uniform(-0.5, 0.3), width * rng.uniform(0.6, 1.0)
        if rng.random() < 0.5:  # the right edge
            xa, xb = width - xa, width - xb
        if rng.random() < 0.5:  # ends there
            xa, xb = xb, xa
    if rng.random() < 0.3:  # a bend: objects are pushed, picked up, turn
        mid = float(rng.uniform(0.3, 0.7))
        xm = xa + (xb - xa) * mid
        ym = y + (y1 - y) * mid + height * rng.uniform(-0.15, 0.15)
        return (0.0, mid, 1.0), (xa, xm, xb), (y, ym, y1)
    return (0.0, 1.0), (xa, xb), (y, y1)


def new_target(rng, object_id, family, height, width, size, enter_leave, inside) -> Entity:
    """A target of `family` 3-6 m away, about 0.35-0.6 `size` (= min(height, width)) across;
    `enter_leave`: chance that it enters or leaves the image; `inside`: it stays in the image
    (and is a little smaller), so that a hider can cover it fully."""
    extent = max(8, int(size * rng.uniform(*((0.3, 0.4) if inside else (0.35, 0.6)))))
    parts = DRAW[family](rng, extent)
    scale = (float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.8, 1.3)))
    radius = sprite_radius(parts) * max(scale)
    knots, xs, ys = _path(rng, radius, height, width, enter_leave, inside)
    pose, turn = float(rng.uniform(0, 360)), float(rng.uniform(-90, 90))  # degrees
    return Entity(
        id=object_id,
        depth=float(rng.uniform(3.0, 6.0)),
        sprite=paint(rng, parts),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=knots,
        xs=xs,
        ys=ys,
        angle=(pose, pose + turn),  # until 2026-12-06 `turn` was the end's pose: 180 deg spins
        scale=scale,
        family=family,
    )
