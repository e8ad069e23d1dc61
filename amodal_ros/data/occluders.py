"""Occluders of the synthetic scenes, all nearer than every target.

Poles (vertical, horizontal or diagonal, some drifting), shelf boards (horizontal bands), a
hand with a long forearm reaching in from an image edge and drifting blobs are drawn by style
(`OCCLUDERS`, weighted by `OCCLUDER_WEIGHTS`); a hider (a box or a hand) is planned around one
target to hide it fully for a few frames. Each is an `Entity` at the depth it is given.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal_ros.data.draw import ellipse, line, paint, rect
from amodal_ros.data.shapes import polygon
from amodal_ros.data.sprites import Entity, sprite_radius

OCCLUDER_WEIGHTS = {"pole": 0.35, "board": 0.2, "hand": 0.2, "blob": 0.25}
UNSEEN_OCCLUDER_WEIGHTS = {"pole": 0.15, "board": 0.3, "hand": 0.4, "blob": 0.15}


def _pole(rng, object_id, depth, height, width, size) -> Entity:
    """A pole across the whole image: vertical, horizontal or diagonal, sometimes drifting;
    some are wider than the objects (full occlusion)."""
    thick = max(2, int(size * rng.uniform(0.04, 0.25)))
    length = int(2.5 * max(height, width))
    pick = rng.random()
    if pick < 0.5:
        angle = 90.0 + rng.uniform(-10, 10)
    elif pick < 0.7:
        angle = rng.uniform(-8, 8)
    else:
        angle = float(rng.choice([-1, 1]) * rng.uniform(25, 65))
    parts = np.ones((thick, length), np.uint8)
    x, y = width * rng.uniform(0.2, 0.8), height * rng.uniform(0.2, 0.8)
    dx, dy = (width * rng.uniform(-0.25, 0.25), height * rng.uniform(-0.15, 0.15))
    if rng.random() < 0.65:  # most poles stand still (in the world)
        dx = dy = 0.0
    turn = rng.uniform(-8, 8) if dx else 0.0
    return Entity(
        id=object_id,
        depth=depth,
        sprite=paint(rng, parts, round_across=True),
        alpha=parts * np.uint8(255),
        knots=(0.0, 1.0),
        xs=(x, x + dx),
        ys=(y, y + dy),
        angle=(float(angle), float(angle + turn)),
        scale=(1.0, 1.0),
        family="pole",
    )


def _board(rng, object_id, depth, height, width, size) -> Entity:
    """A shelf board: a horizontal band over the whole width with a darker front lip."""
    thick = max(3, int(height * rng.uniform(0.08, 0.25)))
    length = int(2.5 * width)
    parts = np.ones((thick, length), np.uint8)
    parts[-max(1, thick // 5) :] = 2
    sprite = paint(rng, parts)
    # wood: a brown (or painted) tint with grain lines along the board
    wood = np.array([rng.uniform(110, 210), rng.uniform(70, 150), rng.uniform(30, 100)])
    if rng.random() < 0.3:
        wood = rng.uniform(60, 230, 3)
    grain = rng.uniform(-20, 20, (max(2, thick // 2), 6)).astype(np.float32)
    grain = cv2.resize(grain, (length, thick), interpolation=cv2.INTER_CUBIC)[..., None]
    sprite[parts == 1] = np.clip(wood + grain, 0, 255).astype(np.uint8)[parts == 1]
    x, y = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.15, 0.85)
    angle = float(rng.uniform(-4, 4))
    return Entity(
        id=object_id,
        depth=depth,
        sprite=sprite,
        alpha=parts.astype(bool).astype(np.uint8) * np.uint8(255),
        knots=(0.0, 1.0),
        xs=(x, x),
        ys=(y, y),
        angle=(angle, angle),
        scale=(1.0, 1.0),
        family="board",
    )


def _hand(rng, object_id, depth, height, width, size) -> Entity:
    """A hand reaching in from an image edge (the forearm stays out of the image), then
    staying, moving on or pulling back."""
    palm = size * rng.uniform(0.1, 0.16)
    parts = _hand_parts(rng, palm, int(1.8 * max(height, width)))
    edge = int(rng.integers(4))  # 0 right, 1 top, 2 left, 3 bottom: the arm points there
    angle = 90.0 * edge + rng.uniform(-25, 25)
    out = palm * 2.5
    along = rng.uniform(0.2, 0.8)
    depth_in = rng.uniform(0.25, 0.6)

    def at(inward: float, lateral: float) -> tuple[float, float]:
        """Palm centre `inward` (share of the image) from the edge, `lateral` along it."""
        if edge == 0:
            return width * (1 - inward), height * lateral
        if edge == 2:
            return width * inward, height * lateral
        if edge == 1:
            return width * lateral, height * inward
        return width * lateral, height * (1 - inward)

    outside = -out / (width if edge in (0, 2) else height)
    lateral2 = float(np.clip(along + rng.uniform(-0.2, 0.2), 0.1, 0.9))
    mode = int(rng.integers(3))
    if mode == 0:  # in and out again
        s1, s2 = rng.uniform(0.2, 0.4), rng.uniform(0.6, 0.8)
        knots = (0.0, s1, s2, 1.0)
        points = [at(outside, along), at(depth_in, along), at(depth_in, lateral2)]
        points.append(at(outside, lateral2))
    elif mode == 1:  # reaches in
        knots, points = (0.0, 1.0), [at(outside, along), at(depth_in, lateral2)]
    else:  # already in, moving
        knots = (0.0, 1.0)
        points = [at(depth_in, along), at(depth_in * rng.uniform(0.5, 1.2), lateral2)]
    return Entity(
        id=object_id,
        depth=depth,
        sprite=paint(rng, parts, _skin_tints(rng)),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=knots,
        xs=tuple(float(p[0]) for p in points),
        ys=tuple(float(p[1]) for p in points),
        angle=(float(angle), float(angle + rng.uniform(-10, 10))),
        scale=(1.0, 1.0),
        family="hand",
    )


def _blob(rng, object_id, depth, height, width, size) -> Entity:
    """A convex blob drifting against the targets."""
    extent = max(8, int(size * rng.uniform(0.3, 0.5)))
    parts = polygon(rng, extent)
    return Entity(
        id=object_id,
        depth=depth,
        sprite=paint(rng, parts),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=(0.0, 1.0),
        xs=(width * rng.uniform(0.5, 0.9), width * rng.uniform(0.1, 0.5)),
        ys=(height * rng.uniform(0.3, 0.7), height * rng.uniform(0.3, 0.7)),
        angle=(0.0, float(rng.uniform(-45, 45))),
        scale=(1.0, 1.0),
        family="blob",
    )


# style -> (rng, id, depth m, height, width, min(height, width)) -> Entity
OCCLUDERS = {"pole": _pole, "board": _board, "hand": _hand, "blob": _blob}
OCCLUDER_STYLES = tuple(OCCLUDERS)


def _hand_parts(rng, palm: float, length: int) -> np.ndarray:
    """Parts of a hand pointing left with its forearm to the right edge of the sprite; the
    palm (a disc of radius `palm`) is at the sprite centre. 1 skin, 2 sleeve."""
    finger = palm * rng.uniform(0.9, 1.3)
    h = 2 * int(np.ceil(palm + finger + 2))
    w = 2 * length
    parts = np.zeros((h, w), np.uint8)
    c = (w / 2.0, h / 2.0)
    fw = max(1, int(round(palm * rng.uniform(0.28, 0.38))))
    for k, spread in enumerate(np.linspace(-0.65, 0.65, 4)):
        a = np.pi + spread * 0.6  # fingers fan out to the left
        reach = palm + finger * (0.85 if k in (0, 3) else 1.0)
        tip = (c[0] + reach * np.cos(a), c[1] + reach * np.sin(a))
        line(parts, c, tip, fw, 1)
    thumb = np.pi + rng.choice([-1, 1]) * rng.uniform(1.0, 1.4)
    line(parts, c, (c[0] + 1.6 * palm * np.cos(thumb), c[1] + 1.6 * palm * np.sin(thumb)), fw, 1)
    ellipse(parts, c[0], c[1], palm, palm, 1)
    arm = max(2, int(round(2 * palm * rng.uniform(0.6, 0.85))))
    line(parts, c, (w - 1.0, c[1]), arm, 1)
    sleeve = c[0] + palm * rng.uniform(1.5, 4.0)
    if rng.random() < 0.7:
        line(parts, (sleeve, c[1]), (w - 1.0, c[1]), arm + 2, 2)
    return parts


def _skin_tints(rng) -> list[np.ndarray]:
    skins = np.array([[224, 172, 105], [198, 134, 66], [141, 85, 36], [241, 194, 125]])
    skin = skins[int(rng.integers(len(skins)))] + rng.integers(-20, 20, 3)
    return [np.clip(skin, 0, 255), rng.integers(30, 225, 3)]


def hider(rng, object_id, depth, target: Entity, s0, s1, step, height, width) -> Entity:
    """A box or a hand that comes into view, covers `target` fully from time s0 to s1 and
    leaves again, each within two frames (`step` = time between frames), so the object is
    hidden for about s1 - s0 of the clip. While covering, it follows the target's (straight)
    path and its square or palm contains the disc the target's mask can reach at any
    rotation."""
    reach = sprite_radius(target.alpha) * max(target.scale)
    slack = float(rng.uniform(1.0, 4.0))  # how far the hider's centre is off the target's
    turn = rng.uniform(0, 2 * np.pi)
    offset = slack * np.array([np.cos(turn), np.sin(turn)])
    half = reach + slack + 2.5  # + 2.5 px for the nearest-neighbour rounding of both masks
    (xa, ya), (xb, yb) = target.centre(s0), target.centre(s1)
    pa, pb = np.array([xa, ya]) + offset, np.array([xb, yb]) + offset
    size = int(np.ceil(2 * half)) + 2
    if rng.random() < 0.5:  # a box carried in front of the object
        parts = np.ones((size, size), np.uint8)
        c = size / 2.0
        band = size * rng.uniform(0.08, 0.18)  # packing tape
        rect(parts, c - band / 2, 0, c + band / 2, size, 2)
        sprite, angle = paint(rng, parts), float(rng.uniform(-30, 30))
        family = "box"
        away = rng.uniform(0, 2 * np.pi, 2)  # comes from any side, leaves to any side
    else:  # a hand over the object, the forearm out of the image
        parts = _hand_parts(rng, half + 1.0, int(2 * max(height, width)))
        sprite, angle = paint(rng, parts, _skin_tints(rng)), float(rng.uniform(0, 360))
        family = "hand"
        # it reaches in and pulls back along its forearm, which never sweeps over the object
        away = np.deg2rad([-angle, -angle])  # the arm's direction in image coordinates
    out = 1.5 * max(height, width) + 4 * half  # out of view
    knots, points = [0.0], []
    s_in, s_out = s0 - 2 * step, s1 + 2 * step
    park_in = pa + out * np.array([np.cos(away[0]), np.sin(away[0])])
    park_out = pb + out * np.array([np.cos(away[1]), np.sin(away[1])])
    points.append(park_in)
    if s_in > 1e-9:
        knots.append(s_in)
        points.append(park_in)
    knots += [s0, s1]
    points += [pa, pb]
    if s_out < 1 - 1e-9:
        knots.append(s_out)
        points.append(park_out)
    knots.append(1.0)
    points.append(park_out)
    return Entity(
        id=object_id,
        depth=depth,
        sprite=sprite,
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=tuple(float(k) for k in knots),
        xs=tuple(float(p[0]) for p in points),
        ys=tuple(float(p[1]) for p in points),
        angle=(angle, angle),
        scale=(1.0, 1.0),
        family=family,
    )
