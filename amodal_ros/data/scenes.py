"""Seeded synthetic amodal video with the ground truth real datasets lack.

A clip is what a robot's RGB-D camera and instance segmenter give, with the answers: 1-4
textured target objects move, rotate and scale in front of a wall (often with a table top),
enter and leave the image and pass behind occluders and each other at a known depth order.

Object families (`FAMILIES`, parametric outlines drawn with OpenCV, random proportions, 1-3
coloured parts each): ellipses, convex polygons, stars, L brackets, thin bars, mugs (handle
hole), cups, bottles, bowls, boxes (3/4 view), hammers, spatulas (slots), cans, books,
T brackets (screw holes), rings, forks (tines) and bananas. The train, val and test splits
draw from `FAMILIES`; `HELD_OUT_FAMILIES` (headphones, keys, scissors, teapots) are never
drawn by default and only make `make_unseen_scene` clips, with occluder styles weighted
differently (`UNSEEN_OCCLUDER_WEIGHTS`), to check generalisation to new shapes.

Occluders (nearer than every target): poles (vertical, horizontal or diagonal, some drifting),
shelf boards (horizontal bands), a hand with a long forearm reaching in from an image edge,
drifting blobs, and the other targets. Realism, all on by default and set by `make_scene`'s
keyword arguments:

- fully hidden objects: in `hide_prob` of the clips a box or a hand comes into view in front
  of one target, keeps it hidden for 2..`max_hidden_frames` frames (8 = 1 s at the model's
  8 fps) and leaves again; the object is visible before and after;
- objects entering or leaving the image completely (`enter_leave`);
- camera motion (`camera_motion`): a slow pan plus jitter moves background and objects;
- depth like an active stereo camera (`depth_holes`, `depth_noise`): noise growing with z^2,
  millimetre steps, and 0 (invalid) in a shadow band beside near objects, in patches and
  specks and sometimes along the left image edge;
- segmenter errors in `labels` only (`label_errors`): boundaries eroded or dilated by 1 px
  and jagged edges (rates sized for 256 px wide images, lower in smaller ones), small
  spurious blobs, a target's labels missing in a frame.

Ground truth stays exact: `amodal`, `appearance` and `visible` (the exact visible part of each
target) never carry the errors, `labels` (what the model is given) do; `AmodalClip.modal` reads
the labels, so an evaluation scores the true amodal mask given the noisy modal input, as a
deployment would.

Speed (one CPU thread of a busy 2-core development machine, 40 clips): a 25-frame 128x256
clip takes 0.063 s median, 0.09 s at most (32x64: 0.014 s), so clips are generated on the fly
in training. Rendering only each sprite's box and drawing the
RGB noise from bytes are what keep it there.

Same seed, same arrays: all randomness comes from numpy Generators seeded by `seed` (one
stream per concern, so e.g. turning label errors off leaves every other array unchanged).

Folder format (`write_clip_folder` / `read_clip_folder`), one clip per folder:

    rgb/0000.png ...          RGB frames
    depth/0000.png ...        16-bit depth in millimetres, 0 = invalid
    labels/0000.png ...       16-bit instance labels: targets 1..N, occluders N+1.., 0 background
    amodal/obj_<id>/0000.png  8-bit amodal mask of each target (255 = object)
    visible/obj_<id>/0000.png 8-bit exact visible mask of each target (255 = visible)
    appearance/obj_<id>/0000.png  RGBA: the target's full appearance, alpha = amodal mask
    meta.json                 seed, size, target ids, occluder ids, per-target depth (m),
                              per-target family, camera shift per frame (px)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FAMILIES = (
    *("ellipse", "polygon", "star", "L", "thin"),
    *("mug", "cup", "bottle", "bowl", "box", "hammer", "spatula", "can", "book", "T"),
    *("ring", "fork", "banana"),
)  # train, val and test clips draw from these
HELD_OUT_FAMILIES = ("headphones", "key", "scissors", "teapot")  # only in make_unseen_scene
OCCLUDER_STYLES = ("pole", "board", "hand", "blob")
OCCLUDER_WEIGHTS = {"pole": 0.35, "board": 0.2, "hand": 0.2, "blob": 0.25}
UNSEEN_OCCLUDER_WEIGHTS = {"pole": 0.15, "board": 0.3, "hand": 0.4, "blob": 0.15}
BACKGROUND_DEPTH = 8.0  # m, plus a slant over the image rows
TEST_SEED_OFFSET = 1_000_000  # test clips use seeds from here: disjoint from training seeds
VAL_SEED_OFFSET = 2_000_000  # calibration clips
UNSEEN_SEED_OFFSET = 3_000_000  # make_unseen_scene clips
SPLIT_OFFSETS = {
    "train": 0,
    "test": TEST_SEED_OFFSET,
    "val": VAL_SEED_OFFSET,
    "unseen": UNSEEN_SEED_OFFSET,
}
MAX_DEPTH_HOLE_JUMP = 0.3  # m: a depth step this large casts a stereo shadow (invalid band)


@dataclass
class AmodalClip:
    """One synthetic clip.

    Attributes:
        rgb: [T, H, W, 3] uint8 frames (with sensor noise).
        depth: [T, H, W] float32 metres, 0 = invalid (no return), as a depth camera gives.
        labels: [T, H, W] uint16 instance ids (targets and occluders) as a segmenter gives,
            with its errors; 0 = background. The model's modal input.
        amodal: {target id: [T, H, W] bool} whole object, visible or not (clipped to the image).
        appearance: {target id: [T, H, W, 4] uint8} the target alone, unoccluded and noise-free;
            alpha 255 on its amodal mask.
        target_depth: {target id: float} metres (constant over the clip).
        occluder_ids: ids of the pure occluders (poles, boards, hands, blobs); targets occlude
            each other too.
        seed: the generator seed.
        visible: {target id: [T, H, W] bool} exact visible part (ground truth); defaults to
            `labels == id` (clips without segmenter errors).
        families: {target id: family name}; empty when unknown.
        camera: [T, 2] float32 camera shift (x, y) in pixels per frame (0 = no motion).
    """

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    amodal: dict[int, np.ndarray]
    appearance: dict[int, np.ndarray] = field(repr=False)
    target_depth: dict[int, float]
    occluder_ids: list[int]
    seed: int
    visible: dict[int, np.ndarray] | None = field(default=None, repr=False)
    families: dict[int, str] = field(default_factory=dict)
    camera: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.visible is None:
            self.visible = {i: self.labels == i for i in self.amodal}
        if self.camera is None:
            self.camera = np.zeros((len(self.rgb), 2), np.float32)

    @property
    def target_ids(self) -> list[int]:
        """Ids of the targets (the objects with ground truth), ascending."""
        return sorted(self.amodal)

    def modal(self, object_id: int) -> np.ndarray:
        """[T, H, W] bool: the object's mask in `labels`, the (noisy) input a model gets."""
        return self.labels == object_id

    def occlusion_ratio(self, object_id: int) -> np.ndarray:
        """[T] float32 hidden share of the object's amodal area, from the exact visible mask
        (0 where it is outside the image)."""
        from amodal_ros.core.types import occlusion_ratio

        return occlusion_ratio(self.visible[object_id], self.amodal[object_id])


def split_seeds(split: str, count: int, start: int = 0) -> list[int]:
    """Seeds of a split, fixed on every machine and disjoint for fewer than 10^6 clips.

    'train' from 0, 'test' from TEST_SEED_OFFSET, 'val' (calibration) from VAL_SEED_OFFSET;
    these three use `make_scene` (FAMILIES). 'unseen' from UNSEEN_SEED_OFFSET, meant for
    `make_unseen_scene` (HELD_OUT_FAMILIES).
    """
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
    base = SPLIT_OFFSETS[split]
    return [base + start + i for i in range(count)]


def make_scene(
    seed: int,
    num_frames: int = 25,
    height: int = 128,
    width: int = 256,
    max_targets: int = 4,
    max_occluders: int = 2,
    noise: float = 4.0,
    *,
    families: tuple[str, ...] | list[str] | None = None,
    occluder_weights: dict[str, float] | None = None,
    hide_prob: float = 0.3,
    max_hidden_frames: int = 8,
    enter_leave: float = 0.3,
    camera_motion: float = 1.0,
    depth_holes: float = 1.0,
    depth_noise: float = 0.002,
    label_errors: float = 1.0,
) -> AmodalClip:
    """A seeded clip: same seed and arguments, same arrays, on any machine.

    Args:
        seed: generator seed (>= 0); see `split_seeds`.
        num_frames, height, width: clip size T x H x W (>= 1 frame of >= 16x16 px).
        max_targets: 1..4 targets are drawn, at most this many.
        max_occluders: 0..4 pure occluders (at least 1 when > 0).
        noise: RGB sensor noise sigma (0-255 scale).
        families: object families of the targets (default FAMILIES; names from FAMILIES or
            HELD_OUT_FAMILIES).
        occluder_weights: {style: weight} over OCCLUDER_STYLES (default OCCLUDER_WEIGHTS).
        hide_prob: share of clips in which one target is fully hidden for 2..max_hidden_frames
            consecutive frames (needs num_frames >= 4 and max_occluders >= 1).
        max_hidden_frames: longest full hiding (8 = 1 s at 8 fps); < 2 turns hiding off.
        enter_leave: share of targets that enter or leave the image completely.
        camera_motion: scale of the camera's pan and jitter (0 = static camera).
        depth_holes: scale of the rates of invalid (0) depth pixels (0 = none).
        depth_noise: depth noise sigma at 1 m in metres; it grows with z^2 (0 = exact depth,
            not rounded to millimetres).
        label_errors: scale of the segmenter error rates in `labels` (0 = exact labels).

    Returns:
        The AmodalClip: rgb [T, H, W, 3] uint8, depth [T, H, W] float32 m, labels
        [T, H, W] uint16, and per target amodal/visible [T, H, W] bool and appearance
        [T, H, W, 4] uint8.
    """
    if num_frames < 1 or height < 16 or width < 16:
        raise ValueError(f"need >= 1 frame of >= 16x16 px, got {num_frames}x{height}x{width}")
    if not 1 <= max_targets <= 4 or not 0 <= max_occluders <= 4:
        raise ValueError("max_targets must be in 1..4 and max_occluders in 0..4")
    families = tuple(FAMILIES if families is None else families)
    unknown = set(families) - set(_DRAW)
    if not families or unknown:
        raise ValueError(f"families must name some of {sorted(_DRAW)}, got {families!r}")
    weights = dict(OCCLUDER_WEIGHTS if occluder_weights is None else occluder_weights)
    if set(weights) - set(OCCLUDER_STYLES) or min(weights.values(), default=-1) < 0:
        raise ValueError(f"occluder_weights: non-negative weights of {OCCLUDER_STYLES}")
    if sum(weights.values()) <= 0:
        raise ValueError("occluder_weights must not all be 0")
    rates = dict(
        hide_prob=hide_prob,
        enter_leave=enter_leave,
        camera_motion=camera_motion,
        depth_holes=depth_holes,
        depth_noise=depth_noise,
        label_errors=label_errors,
    )
    if min(rates.values()) < 0:
        raise ValueError(f"rates must be >= 0, got {rates}")
    return _scene(
        seed,
        num_frames,
        height,
        width,
        max_targets,
        max_occluders,
        noise,
        families,
        weights,
        max_hidden_frames,
        **rates,
    )


def make_unseen_scene(seed: int, **kwargs) -> AmodalClip:
    """A clip of HELD_OUT_FAMILIES objects only, with UNSEEN_OCCLUDER_WEIGHTS (more hands and
    boards): shapes and an occluder mix that train/val/test clips never show. Seeds: use
    `split_seeds('unseen', n)`. Other keyword arguments as `make_scene`."""
    kwargs.setdefault("families", HELD_OUT_FAMILIES)
    kwargs.setdefault("occluder_weights", UNSEEN_OCCLUDER_WEIGHTS)
    return make_scene(seed, **kwargs)


def family_mask(family: str, extent: int, seed: int = 0) -> np.ndarray:
    """[extent, extent] bool silhouette of one object of `family` (random proportions drawn
    from `seed`), upright and centred, as the generator draws it."""
    if family not in _DRAW:
        raise ValueError(f"unknown family {family!r}; known: {sorted(_DRAW)}")
    return _DRAW[family](np.random.default_rng(seed), extent) > 0


# -- the generator -------------------------------------------------------------------------


def _scene(
    seed,
    num_frames,
    height,
    width,
    max_targets,
    max_occluders,
    noise,
    families,
    weights,
    max_hidden_frames,
    *,
    hide_prob,
    enter_leave,
    camera_motion,
    depth_holes,
    depth_noise,
    label_errors,
) -> AmodalClip:
    # One stream per concern, so turning a realism feature off leaves everything else alone
    # (e.g. the same objects and masks with and without label errors).
    streams = np.random.SeedSequence(seed).spawn(5)
    rng, cam_rng, rgb_rng, depth_rng, label_rng = (np.random.default_rng(s) for s in streams)
    t_count, size = num_frames, min(height, width)
    times = np.arange(t_count) / max(1, t_count - 1)

    world = _Background(rng, height, width)
    n_targets = int(rng.integers(1, max_targets + 1))
    n_occluders = int(rng.integers(1 if max_occluders else 0, max_occluders + 1))
    hide = rng.random() < hide_prob and t_count >= 4 and max_hidden_frames >= 2 and n_occluders
    targets = []
    for k in range(n_targets):
        family = families[int(rng.integers(len(families)))]
        inside = bool(hide and k == 0)  # the target to hide stays in the image
        targets.append(_new_target(rng, k + 1, family, height, width, size, enter_leave, inside))
    near = min(t.depth for t in targets)
    styles = list(weights)
    p = np.array([weights[s] for s in styles], np.float64)
    occluders = []
    for k in range(n_occluders):
        oid, depth = n_targets + 1 + k, float(rng.uniform(1.0, near - 0.5))
        if hide and k == 0:
            hidden = int(rng.integers(2, min(max_hidden_frames, t_count - 2) + 1))
            first = int(rng.integers(1, t_count - hidden))  # visible before and after
            occluders.append(
                _hider(
                    rng,
                    oid,
                    depth,
                    targets[0],
                    times[first],
                    times[first + hidden - 1],
                    1.0 / (t_count - 1),
                    height,
                    width,
                )
            )
            continue
        style = styles[int(rng.choice(len(styles), p=p / p.sum()))]
        occluders.append(_OCCLUDERS[style](rng, oid, depth, height, width, size))
    entities = sorted(targets + occluders, key=lambda e: -e.depth)  # painter's order

    camera = _camera(cam_rng, t_count, height, width, camera_motion, world.margin)
    rgb = np.empty((t_count, height, width, 3), np.uint8)
    z = np.empty((t_count, height, width), np.float32)
    exact = np.zeros((t_count, height, width), np.uint16)
    amodal = {o.id: np.zeros((t_count, height, width), bool) for o in targets}
    appearance = {o.id: np.zeros((t_count, height, width, 4), np.uint8) for o in targets}
    for t in range(t_count):
        frame, z[t] = world.view(camera[t])
        for o in entities:
            placed = o.render_roi(times[t], height, width, camera[t])
            if placed is None:
                continue
            ys, xs, colour, mask = placed
            np.copyto(frame[ys, xs], colour, where=mask[..., None])
            z[t, ys, xs][mask] = o.depth
            exact[t, ys, xs][mask] = o.id
            if o.id in amodal:
                amodal[o.id][t, ys, xs] = mask
                look = appearance[o.id][t, ys, xs]
                np.copyto(look[..., :3], colour, where=mask[..., None])
                look[..., 3] = mask * np.uint8(255)
        rgb[t] = frame
    if noise > 0:
        noisy = _noise(rgb_rng, rgb.shape, noise)
        noisy += rgb
        rgb = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
    ids_far_to_near = [o.id for o in entities]
    labels = _segmenter_labels(label_rng, exact, ids_far_to_near, len(targets), label_errors)
    depth = _sensor_depth(depth_rng, z, camera, depth_holes, depth_noise)
    return AmodalClip(
        rgb=rgb,
        depth=depth,
        labels=labels,
        amodal=amodal,
        appearance=appearance,
        target_depth={o.id: o.depth for o in targets},
        occluder_ids=[o.id for o in occluders],
        seed=seed,
        visible={o.id: exact == o.id for o in targets},
        families={o.id: o.family for o in targets},
        camera=camera,
    )


@dataclass
class _Entity:
    """A textured sprite on a piecewise-linear path (knots in [0, 1]), rotating and scaling
    linearly."""

    id: int
    depth: float
    sprite: np.ndarray  # [h, w, 3] uint8 texture
    alpha: np.ndarray  # [h, w] uint8 shape mask (255 inside)
    knots: tuple[float, ...]  # increasing times from 0 to 1
    xs: tuple[float, ...]  # centre x at each knot, pixels (world: camera shift 0)
    ys: tuple[float, ...]
    angle: tuple[float, float]  # degrees at s = 0 and s = 1
    scale: tuple[float, float]
    family: str = ""

    def centre(self, s: float) -> tuple[float, float]:
        k = 0
        while k < len(self.knots) - 2 and s > self.knots[k + 1]:
            k += 1
        u = (s - self.knots[k]) / (self.knots[k + 1] - self.knots[k])
        x = self.xs[k] + (self.xs[k + 1] - self.xs[k]) * u
        return x, self.ys[k] + (self.ys[k + 1] - self.ys[k]) * u

    def _matrix(self, s: float, shift) -> np.ndarray:
        cx, cy = self.centre(s)
        cx, cy = cx - shift[0], cy - shift[1]  # the camera moves right: the world moves left
        angle = self.angle[0] + (self.angle[1] - self.angle[0]) * s
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * s
        h, w = self.alpha.shape
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
        m[:, 2] += (cx - w / 2.0, cy - h / 2.0)  # sprite centre -> (cx, cy)
        return m

    def render_roi(self, s: float, height: int, width: int, shift):
        """(rows, cols, colour [h, w, 3] uint8, mask [h, w] bool) inside the sprite's image
        box at time s seen with camera `shift`, or None when it is outside the image. Warping
        only the box is what keeps the generator fast."""
        m = self._matrix(s, shift)
        h, w = self.alpha.shape
        corners = m @ np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
        x0, y0 = (max(0, int(np.floor(v.min())) - 1) for v in corners)
        x1 = min(width, int(np.ceil(corners[0].max())) + 2)
        y1 = min(height, int(np.ceil(corners[1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return None
        m[:, 2] -= (x0, y0)
        alpha = cv2.warpAffine(self.alpha, m, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST)
        mask = alpha > 127
        if not mask.any():
            return None
        colour = cv2.warpAffine(
            self.sprite,
            m,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return slice(y0, y1), slice(x0, x1), colour, mask


class _Background:
    """A wall (and often a table top) larger than the image by a margin, so the camera can
    pan over it; depth is a slanted plane (the table nearer towards the bottom)."""

    def __init__(self, rng, height: int, width: int):
        self.margin = (int(0.1 * width) + 8, int(0.05 * height) + 8)
        mx, my = self.margin
        bh, bw = height + 2 * my, width + 2 * mx
        tint = rng.integers(60, 200, 3)
        self.rgb = _texture(rng, bh, bw, cells=rng.integers(4, 12), tint=tint, mix=0.75)
        rows = (np.arange(bh, dtype=np.float32) - my) / height
        column = BACKGROUND_DEPTH + rows
        if rng.random() < 0.6:  # a table top below a horizon row, nearer towards the bottom
            horizon = int(bh * rng.uniform(0.45, 0.8))
            table = _texture(
                rng, bh, bw, cells=rng.integers(6, 16), tint=rng.integers(50, 210, 3), mix=0.7
            )
            self.rgb[horizon:] = table[horizon:]
            front = np.float32(rng.uniform(6.5, 7.0))  # beyond every target (<= 6 m)
            column[horizon:] = np.linspace(column[horizon], front, bh - horizon)
        self.depth = np.ascontiguousarray(np.broadcast_to(column[:, None], (bh, bw)))
        self.size = (width, height)

    def view(self, shift) -> tuple[np.ndarray, np.ndarray]:
        """(RGB [H, W, 3] uint8, depth [H, W] float32) seen with camera shift (x, y)."""
        m = np.array(
            [[1, 0, -(self.margin[0] + shift[0])], [0, 1, -(self.margin[1] + shift[1])]],
            np.float64,
        )
        flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.warpAffine(self.rgb, m, self.size, **flags), cv2.warpAffine(
            self.depth, m, self.size, **flags
        )


def _camera(rng, t_count: int, height: int, width: int, amount: float, margin) -> np.ndarray:
    """[T, 2] float32 camera shift (x, y) px: a slow pan plus a small random-walk jitter."""
    pan = np.array([width * rng.uniform(-0.08, 0.08), height * rng.uniform(-0.04, 0.04)])
    jitter = np.cumsum(rng.normal(0.0, 0.35, (t_count, 2)), 0)
    s = np.arange(t_count)[:, None] / max(1, t_count - 1)
    shift = amount * (pan * s + jitter - jitter[0])
    limit = np.array(margin, np.float64) - 2  # stay on the background canvas
    return np.clip(shift, -limit, limit).astype(np.float32)


def _path(rng, radius: float, height: int, width: int, enter_leave: float, inside: bool):
    """(knots, xs, ys) of a target's centre."""
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
    elif rng.random() < 0.5:  # starts or ends partly outside the image
        xa, xb = -0.15 * width, width * rng.uniform(0.6, 1.0)
    else:
        xa, xb = 1.15 * width, width * rng.uniform(0.0, 0.4)
    if rng.random() < 0.3:  # a bend: objects are pushed, picked up, turn
        mid = float(rng.uniform(0.3, 0.7))
        xm = xa + (xb - xa) * mid
        ym = y + (y1 - y) * mid + height * rng.uniform(-0.15, 0.15)
        return (0.0, mid, 1.0), (xa, xm, xb), (y, ym, y1)
    return (0.0, 1.0), (xa, xb), (y, y1)


def _new_target(rng, object_id, family, height, width, size, enter_leave, inside) -> _Entity:
    extent = max(8, int(size * rng.uniform(*((0.3, 0.4) if inside else (0.35, 0.6)))))
    parts = _DRAW[family](rng, extent)
    scale = (float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.8, 1.3)))
    radius = _radius(parts) * max(scale)
    knots, xs, ys = _path(rng, radius, height, width, enter_leave, inside)
    return _Entity(
        id=object_id,
        depth=float(rng.uniform(3.0, 6.0)),
        sprite=_paint(rng, parts),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=knots,
        xs=xs,
        ys=ys,
        angle=(float(rng.uniform(0, 360)), float(rng.uniform(-90, 90))),
        scale=scale,
        family=family,
    )


def _radius(parts: np.ndarray) -> float:
    """Largest distance (px) of a shape pixel from the sprite centre (the rotation centre)."""
    ys, xs = np.nonzero(parts)
    h, w = parts.shape
    return float(np.sqrt((xs - w / 2.0) ** 2 + (ys - h / 2.0) ** 2).max()) if len(xs) else 0.0


def _hider(rng, object_id, depth, target: _Entity, s0, s1, step, height, width) -> _Entity:
    """A box or a hand that comes into view, covers `target` fully from time s0 to s1 and
    leaves again, each within two frames (`step` = time between frames), so the object is
    hidden for about s1 - s0 of the clip. While covering, it follows the target's (straight)
    path and its square or palm contains the disc the target's mask can reach at any
    rotation."""
    reach = _radius(target.alpha) * max(target.scale)
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
        _rect(parts, c - band / 2, 0, c + band / 2, size, 2)
        sprite, angle = _paint(rng, parts), float(rng.uniform(-30, 30))
        family = "box"
        away = rng.uniform(0, 2 * np.pi, 2)  # comes from any side, leaves to any side
    else:  # a hand over the object, the forearm out of the image
        parts = _hand_parts(rng, half + 1.0, int(2 * max(height, width)))
        sprite, angle = _paint(rng, parts, _skin_tints(rng)), float(rng.uniform(0, 360))
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
    return _Entity(
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


# -- occluders -----------------------------------------------------------------------------


def _pole(rng, object_id, depth, height, width, size) -> _Entity:
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
    return _Entity(
        id=object_id,
        depth=depth,
        sprite=_paint(rng, parts, round_across=True),
        alpha=parts * np.uint8(255),
        knots=(0.0, 1.0),
        xs=(x, x + dx),
        ys=(y, y + dy),
        angle=(float(angle), float(angle + turn)),
        scale=(1.0, 1.0),
        family="pole",
    )


def _board(rng, object_id, depth, height, width, size) -> _Entity:
    """A shelf board: a horizontal band over the whole width with a darker front lip."""
    thick = max(3, int(height * rng.uniform(0.08, 0.25)))
    length = int(2.5 * width)
    parts = np.ones((thick, length), np.uint8)
    parts[-max(1, thick // 5) :] = 2
    sprite = _paint(rng, parts)
    # wood: a brown (or painted) tint with grain lines along the board
    wood = np.array([rng.uniform(110, 210), rng.uniform(70, 150), rng.uniform(30, 100)])
    if rng.random() < 0.3:
        wood = rng.uniform(60, 230, 3)
    grain = rng.uniform(-20, 20, (max(2, thick // 2), 6)).astype(np.float32)
    grain = cv2.resize(grain, (length, thick), interpolation=cv2.INTER_CUBIC)[..., None]
    sprite[parts == 1] = np.clip(wood + grain, 0, 255).astype(np.uint8)[parts == 1]
    x, y = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.15, 0.85)
    angle = float(rng.uniform(-4, 4))
    return _Entity(
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


def _hand(rng, object_id, depth, height, width, size) -> _Entity:
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
    return _Entity(
        id=object_id,
        depth=depth,
        sprite=_paint(rng, parts, _skin_tints(rng)),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=knots,
        xs=tuple(float(p[0]) for p in points),
        ys=tuple(float(p[1]) for p in points),
        angle=(float(angle), float(angle + rng.uniform(-10, 10))),
        scale=(1.0, 1.0),
        family="hand",
    )


def _blob(rng, object_id, depth, height, width, size) -> _Entity:
    """A convex blob drifting against the targets."""
    extent = max(8, int(size * rng.uniform(0.3, 0.5)))
    parts = _polygon(rng, extent)
    return _Entity(
        id=object_id,
        depth=depth,
        sprite=_paint(rng, parts),
        alpha=(parts > 0).astype(np.uint8) * np.uint8(255),
        knots=(0.0, 1.0),
        xs=(width * rng.uniform(0.5, 0.9), width * rng.uniform(0.1, 0.5)),
        ys=(height * rng.uniform(0.3, 0.7), height * rng.uniform(0.3, 0.7)),
        angle=(0.0, float(rng.uniform(-45, 45))),
        scale=(1.0, 1.0),
        family="blob",
    )


_OCCLUDERS = {"pole": _pole, "board": _board, "hand": _hand, "blob": _blob}


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
        _line(parts, c, tip, fw, 1)
    thumb = np.pi + rng.choice([-1, 1]) * rng.uniform(1.0, 1.4)
    _line(parts, c, (c[0] + 1.6 * palm * np.cos(thumb), c[1] + 1.6 * palm * np.sin(thumb)), fw, 1)
    _ellipse(parts, c[0], c[1], palm, palm, 1)
    arm = max(2, int(round(2 * palm * rng.uniform(0.6, 0.85))))
    _line(parts, c, (w - 1.0, c[1]), arm, 1)
    sleeve = c[0] + palm * rng.uniform(1.5, 4.0)
    if rng.random() < 0.7:
        _line(parts, (sleeve, c[1]), (w - 1.0, c[1]), arm + 2, 2)
    return parts


def _skin_tints(rng) -> list[np.ndarray]:
    skins = np.array([[224, 172, 105], [198, 134, 66], [141, 85, 36], [241, 194, 125]])
    skin = skins[int(rng.integers(len(skins)))] + rng.integers(-20, 20, 3)
    return [np.clip(skin, 0, 255), rng.integers(30, 225, 3)]


# -- object families: parametric outlines as part maps (0 outside, 1..3 parts) ------------


def _basic_family(shape: str):
    def draw(rng, extent: int) -> np.ndarray:
        return (_shape(rng, shape, extent) > 0).astype(np.uint8)

    return draw


def _polygon(rng, e: int) -> np.ndarray:
    return (_shape(rng, "polygon", e) > 0).astype(np.uint8)


def _mug(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bw, bh = e * rng.uniform(0.38, 0.52), e * rng.uniform(0.5, 0.78)
    reach = e * rng.uniform(0.15, 0.24)  # how far the handle sticks out
    x0, y0 = (e - bw - reach) / 2.0, (e - bh) / 2.0
    _rect(p, x0, y0, x0 + bw, y0 + bh, 1)
    _ellipse(p, x0 + bw / 2, y0 + bh, bw / 2, bh * 0.06, 1)  # rounded bottom
    thick = max(1, int(round(e * rng.uniform(0.05, 0.08))))
    cy, ry = y0 + bh * rng.uniform(0.4, 0.5), bh * rng.uniform(0.2, 0.3)
    _ellipse(p, x0 + bw, cy, reach - thick / 2, ry, 1, -90, 90, thick)  # the handle's hole
    _ellipse(p, x0 + bw / 2, y0, bw / 2, max(1.0, bh * 0.07), 2)  # the opening, seen above
    return p


def _cup(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    top, h = e * rng.uniform(0.5, 0.8), e * rng.uniform(0.45, 0.8)
    bottom = top * rng.uniform(0.55, 0.85)
    c, y0 = e / 2.0, (e - h) / 2.0
    _fill(
        p,
        [(c - top / 2, y0), (c + top / 2, y0), (c + bottom / 2, y0 + h), (c - bottom / 2, y0 + h)],
        1,
    )
    _ellipse(p, c, y0, top / 2, max(1.0, h * 0.08), 2)
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
    _fill(p, outline, 1)
    _rect(p, c - nw / 2 - 0.5, y0, c + nw / 2 + 0.5, y0 + neck * 0.35, 2)  # cap
    body = y0 + length - body_top
    band = body_top + body * rng.uniform(0.15, 0.35)
    _rect(p, c - bw / 2, band, c + bw / 2, band + body * rng.uniform(0.3, 0.45), 3)  # label
    return p


def _bowl(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bw, bh = e * rng.uniform(0.75, 0.92), e * rng.uniform(0.3, 0.45)
    rim = bh * rng.uniform(0.15, 0.3)
    c = e / 2.0
    top = (e - bh - rim) / 2.0 + rim
    _ellipse(p, c, top, bw / 2, bh, 1, 0, 180)  # the lower half of an ellipse
    foot_w = bw * rng.uniform(0.25, 0.4)
    _rect(p, c - foot_w / 2, top + bh - 1, c + foot_w / 2, top + bh + e * 0.05, 1)
    _ellipse(p, c, top, bw / 2, rim, 2)  # the inside, seen from slightly above
    return p


def _box(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.4, 0.68), e * rng.uniform(0.35, 0.68)
    dx = e * rng.uniform(0.08, 0.22)
    dy = dx * rng.uniform(0.5, 1.0)
    x0, y0 = (e - w - dx) / 2.0, (e - h + dy) / 2.0
    _rect(p, x0, y0, x0 + w, y0 + h, 1)
    _fill(p, [(x0, y0), (x0 + dx, y0 - dy), (x0 + w + dx, y0 - dy), (x0 + w, y0)], 2)
    side = [(x0 + w, y0), (x0 + w + dx, y0 - dy), (x0 + w + dx, y0 + h - dy), (x0 + w, y0 + h)]
    _fill(p, side, 3)
    return p


def _hammer(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    length, hw = e * rng.uniform(0.75, 0.92), max(2.0, e * rng.uniform(0.07, 0.12))
    head_w, head_t = e * rng.uniform(0.35, 0.6), max(2.0, e * rng.uniform(0.12, 0.2))
    c, y0 = e / 2.0, (e - length) / 2.0
    _rect(p, c - hw / 2, y0, c + hw / 2, y0 + length, 2)  # the handle
    if rng.random() < 0.5:  # a claw: one side of the head tapers
        _fill(
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
        _rect(p, c - head_w / 2, y0, c + head_w / 2, y0 + head_t, 1)
    return p


def _spatula(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    handle, hw = e * rng.uniform(0.45, 0.6), max(2.0, e * rng.uniform(0.05, 0.09))
    bw, bl = e * rng.uniform(0.24, 0.38), e * rng.uniform(0.28, 0.4)
    c, y0 = e / 2.0, (e - handle - bl) / 2.0
    _rect(p, c - bw / 2, y0 + bw * 0.2, c + bw / 2, y0 + bl, 1)
    _ellipse(p, c, y0 + bw * 0.2, bw / 2, bw * 0.2, 1)  # rounded front edge
    _rect(p, c - hw / 2, y0 + bl - 1, c + hw / 2, y0 + bl + handle, 2)
    if rng.random() < 0.6 and bw >= 8:  # slots
        n = int(rng.integers(2, 4))
        for x in np.linspace(c - bw * 0.25, c + bw * 0.25, n):
            _rect(p, x - 0.5, y0 + bl * 0.25, x + 0.5, y0 + bl * 0.8, 0)
    return p


def _can(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.35, 0.55), e * rng.uniform(0.5, 0.8)
    lid = max(1.0, w * rng.uniform(0.1, 0.18))
    c, y0 = e / 2.0, (e - h) / 2.0
    _rect(p, c - w / 2, y0, c + w / 2, y0 + h, 3)  # the printed label
    _ellipse(p, c, y0 + h, w / 2, lid, 1)
    _rect(p, c - w / 2, y0, c + w / 2, y0 + h * 0.12, 1)
    _ellipse(p, c, y0, w / 2, lid, 2)  # the lid
    return p


def _book(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    w, h = e * rng.uniform(0.45, 0.7), e * rng.uniform(0.6, 0.9)
    if rng.random() < 0.4:  # lying flat
        w, h = h, w * rng.uniform(0.4, 0.7)
    x0, y0 = (e - w) / 2.0, (e - h) / 2.0
    _rect(p, x0, y0, x0 + w, y0 + h, 1)
    _rect(p, x0, y0, x0 + w * rng.uniform(0.08, 0.15), y0 + h, 2)  # spine
    _rect(p, x0 + w * 0.95, y0 + 1, x0 + w, y0 + h - 1, 3)  # page edges
    return p


def _t_bracket(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bar, t = e * rng.uniform(0.6, 0.9), max(2.0, e * rng.uniform(0.12, 0.25))
    stem, t2 = e * rng.uniform(0.5, 0.85), max(2.0, e * rng.uniform(0.12, 0.25))
    c, y0 = e / 2.0, (e - stem) / 2.0
    _rect(p, c - bar / 2, y0, c + bar / 2, y0 + t, 1)
    _rect(p, c - t2 / 2, y0, c + t2 / 2, y0 + stem, 1)
    if rng.random() < 0.5 and t >= 5:  # screw holes
        for x in (c - bar * 0.35, c + bar * 0.35):
            _ellipse(p, x, y0 + t / 2, t * 0.22, t * 0.22, 0)
    return p


def _ring(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    outer = e * 0.46 * rng.uniform(0.8, 1.0)
    inner, squash = outer * rng.uniform(0.35, 0.65), rng.uniform(0.55, 1.0)
    c = e / 2.0
    _ellipse(p, c, c, outer, outer * squash, 1)
    _ellipse(p, c, c, inner, inner * squash, 0)  # the hole
    return p


def _fork(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    handle, hw = e * rng.uniform(0.45, 0.58), max(2.0, e * rng.uniform(0.05, 0.08))
    head_w, tines = max(5.0, e * rng.uniform(0.16, 0.26)), e * rng.uniform(0.2, 0.3)
    neck = e * 0.1
    c, y0 = e / 2.0, (e - handle - neck - tines) / 2.0
    base = y0 + tines
    _fill(
        p,
        [
            (c - head_w / 2, base),
            (c + head_w / 2, base),
            (c + hw / 2, base + neck),
            (c - hw / 2, base + neck),
        ],
        1,
    )
    _rect(
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
        _rect(p, x, y0, x + max(1.0, width), base + 1, 1)
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
        _ellipse(p, c + radius * np.cos(a), cy + radius * np.sin(a), r, r, 1)
    a = -np.pi / 2 - 0.5 * span  # a stalk at one end
    x, y = c + radius * np.cos(a), cy + radius * np.sin(a)
    _line(p, (x, y), (x - thick * 0.8, y - thick * 0.5), max(1, int(thick * 0.5)), 2)
    return p


# held-out families: never in the default clips


def _headphones(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    aw, ah = e * rng.uniform(0.28, 0.38), e * rng.uniform(0.3, 0.42)
    band = max(1, int(round(e * rng.uniform(0.05, 0.09))))
    cw, ch = e * rng.uniform(0.08, 0.12), e * rng.uniform(0.13, 0.2)
    c = e / 2.0
    cy = c + (ah - ch) / 2.0
    _ellipse(p, c, cy, aw, ah, 1, 180, 360, band)  # the head band, an upper half ellipse
    for x in (c - aw, c + aw):  # ear cups
        _ellipse(p, x, cy + ch * 0.3, cw, ch, 2)
    return p


def _key(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    bow, shaft = e * rng.uniform(0.15, 0.22), e * rng.uniform(0.45, 0.6)
    sw = max(2.0, e * rng.uniform(0.06, 0.1))
    x0 = (e - 2 * bow - shaft) / 2.0 + bow
    cy = e / 2.0
    _rect(p, x0, cy - sw / 2, x0 + bow + shaft, cy + sw / 2, 1)
    _ellipse(p, x0, cy, bow, bow, 2)
    _ellipse(p, x0, cy, bow * rng.uniform(0.35, 0.55), bow * rng.uniform(0.35, 0.55), 0)
    for k in range(int(rng.integers(2, 5))):  # teeth
        x = x0 + bow + shaft * (0.55 + 0.12 * k)
        _rect(p, x, cy, x + max(1.0, e * 0.04), cy + sw / 2 + e * rng.uniform(0.05, 0.1), 1)
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
        _fill(p, [tip, (base - ring * 0.45, pivot), (base + ring * 0.45, pivot)], 1)
        _ellipse(p, base, pivot + ring * 1.4, ring, ring * 1.2, 2)
        _ellipse(p, base, pivot + ring * 1.4, ring * 0.55, ring * 0.7, 0)
    return p


def _teapot(rng, e: int) -> np.ndarray:
    p = np.zeros((e, e), np.uint8)
    ax, ay = e * rng.uniform(0.22, 0.28), e * rng.uniform(0.17, 0.24)
    c = e / 2.0
    _ellipse(p, c, c, ax, ay, 1)
    spout = [(c - ax * 0.8, c + ay * 0.1), (c - ax * 0.7, c + ay * 0.5), (c - ax * 1.7, c - ay)]
    spout.append((c - ax * 1.75, c - ay * 1.15))
    _fill(p, spout, 1)
    thick = max(1, int(round(e * 0.05)))
    _ellipse(p, c + ax * 0.95, c, ax * 0.5, ay * 0.6, 1, -90, 90, thick)  # handle with a hole
    _ellipse(p, c, c - ay, ax * 0.45, ay * 0.2, 2)  # lid
    _ellipse(p, c, c - ay * 1.25, ax * 0.12, ay * 0.12, 2)  # knob
    return p


_DRAW = {
    **{s: _basic_family(s) for s in ("ellipse", "polygon", "star", "L", "thin")},
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
}

# drawing helpers: float coordinates, drawn with 4 bits of sub-pixel precision
_SUB = 4


def _fix(points) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * (1 << _SUB)).astype(np.int32)


def _fill(img: np.ndarray, points, value: int) -> None:
    cv2.fillPoly(img, [_fix(points).reshape(-1, 1, 2)], int(value), cv2.LINE_8, _SUB)


def _rect(img: np.ndarray, x0, y0, x1, y1, value: int) -> None:
    _fill(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)


def _ellipse(img, cx, cy, ax, ay, value, start=0, end=360, thickness=-1) -> None:
    centre, axes = tuple(_fix((cx, cy)).tolist()), tuple(_fix((max(ax, 0), max(ay, 0))).tolist())
    cv2.ellipse(img, centre, axes, 0, start, end, int(value), thickness, cv2.LINE_8, _SUB)


def _line(img, a, b, thickness: int, value: int) -> None:
    pa, pb = tuple(_fix(a).tolist()), tuple(_fix(b).tolist())
    cv2.line(img, pa, pb, int(value), max(1, int(thickness)), cv2.LINE_8, _SUB)


def _paint(rng, parts: np.ndarray, tints=None, round_across: bool = False) -> np.ndarray:
    """[h, w, 3] uint8 colours of a part map: a smooth texture per part (part 1's also fills
    the outside, so linear warping does not darken the rim) and soft directional shading."""
    h, w = parts.shape
    sprite = None
    for k in range(1, max(1, int(parts.max())) + 1):
        tint = tints[k - 1] if tints is not None and k <= len(tints) else rng.integers(30, 225, 3)
        tex = _texture(rng, h, w, cells=rng.integers(2, 6), tint=tint, mix=rng.uniform(0.6, 0.85))
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


# -- sensor models -------------------------------------------------------------------------


def _noise(rng, shape, sigma: float) -> np.ndarray:
    """float32 zero-mean noise of standard deviation `sigma`: the sum of two uniform bytes (a
    triangular distribution, close enough to a Gaussian for sensor noise and 3x faster to
    draw than float32 normals, which took a third of a clip's time)."""
    pair = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    out = pair[0].astype(np.float32)
    out += pair[1]
    out -= 255.0
    out *= np.float32(sigma / np.sqrt(2 * (256**2 - 1) / 12.0))  # sd of a uniform byte: 73.9
    return out


def _segmenter_labels(rng, exact, ids_far_to_near, n_targets: int, amount: float) -> np.ndarray:
    """[T, H, W] uint16 labels with an instance segmenter's errors, from the exact ones.

    Each instance's mask is eroded or dilated by 1 px in some frames (each instance leans one
    way; less often below 256 px wide), its edge made jagged, a target's labels go missing in
    a frame now and then, and small spurious blobs of a target's id appear near it or
    anywhere."""
    if amount <= 0:
        return exact.copy()
    t_count, height, width = exact.shape
    # 1-px boundary errors are sized for a 256-px-wide image (a camera's 1-2 px at 640 px):
    # smaller images get them less often, else they would swamp a 10-px object
    fine = min(1.0, width / 256.0)
    p_morph, p_jag = min(1.0, 0.5 * amount * fine), min(1.0, 0.4 * amount * fine)
    p_missed, p_spur = min(1.0, 0.02 * amount), min(1.0, 0.04 * amount)
    lean = {i: int(rng.choice([-1, 1])) for i in ids_far_to_near}
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    out = np.zeros_like(exact)
    spot = max(1.0, 0.03 * min(height, width))
    for t in range(t_count):
        coarse = rng.random((height // 3 + 1, width // 3 + 1), dtype=np.float32)
        field = cv2.resize(coarse, (width + 2, height + 2), interpolation=cv2.INTER_NEAREST)
        jag = (field[:height, :width] < 0.5).astype(np.uint8)  # 3-px blocks: jagged steps
        draws = rng.random((len(ids_far_to_near), 4))
        for i, u in zip(ids_far_to_near, draws):
            mask = (exact[t] == i).view(np.uint8)
            if i <= n_targets and u[0] < p_missed:
                continue
            if u[1] < p_morph:
                grow = lean[i] if u[2] < 0.75 else -lean[i]
                mask = (cv2.dilate if grow > 0 else cv2.erode)(mask, kernel)
            if u[3] < p_jag:
                ring = cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)
                mask = mask ^ (ring & jag)
            out[t][mask > 0] = i
        for i in range(1, n_targets + 1):
            if rng.random() >= p_spur:
                continue
            ys, xs = np.nonzero(exact[t] == i)
            x, y, r = rng.random(), rng.random(), spot * rng.uniform(0.5, 1.5)
            if len(xs) and rng.random() < 0.7:  # near the object: a fragment the segmenter
                x = xs.min() + (xs.max() - xs.min()) * x + rng.uniform(-3, 3) * spot
                y = ys.min() + (ys.max() - ys.min()) * y + rng.uniform(-3, 3) * spot
            else:
                x, y = x * width, y * height
            _ellipse(out[t], x, y, r, r * rng.uniform(0.5, 1.0), i)
    return out


def _sensor_depth(rng, z: np.ndarray, camera: np.ndarray, holes: float, noise: float):
    """[T, H, W] float32 depth as an active-stereo camera gives from the exact depth `z`:
    noise (sigma `noise` * z^2), millimetre steps, and 0 where there is no return: a shadow
    band left of near objects, flickering patches fixed in the world, specks, sometimes a
    band along the left image edge."""
    out = z.copy()
    if noise > 0:
        out += _noise(rng, z.shape, noise) * z * z
        out = np.round(np.maximum(out, 0.05) * 1000.0) / np.float32(1000.0)
    if holes <= 0:
        return out.astype(np.float32)
    t_count, height, width = z.shape
    size = min(height, width)
    shadow = int(rng.integers(1, 4))
    # min over [x, x + shadow]: a pixel is dark if a nearer surface is just right of it
    kernel = np.ones((1, shadow + 1), np.uint8)
    band = int(width * rng.uniform(0.01, 0.05)) if rng.random() < 0.5 * holes else 0
    patches = [
        (
            width * rng.uniform(0, 1),
            height * rng.uniform(0, 1),
            size * rng.uniform(0.03, 0.1),
            size * rng.uniform(0.02, 0.08),
        )
        for _ in range(int(rng.poisson(1.5 * holes)))
    ]
    p_shadow = min(1.0, 0.7 * holes)
    for t in range(t_count):
        near = cv2.erode(z[t], kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        hole = ((z[t] - near) > MAX_DEPTH_HOLE_JUMP) & (
            rng.random((height, width), dtype=np.float32) < p_shadow
        )
        spots = np.zeros((height, width), np.uint8)
        for x, y, ax, ay in patches:
            if rng.random() < 0.85:  # flickers
                _ellipse(spots, x - camera[t, 0], y - camera[t, 1], ax, ay, 1)
        for _ in range(int(rng.poisson(2.0 * holes))):
            r = rng.uniform(0.5, 2.0)
            _ellipse(spots, rng.uniform(0, width), rng.uniform(0, height), r, r, 1)
        hole |= spots.astype(bool)
        hole[:, :band] = True
        out[t][hole] = 0.0
    return out.astype(np.float32)


def _shape(rng, shape: str, extent: int) -> np.ndarray:
    """[extent, extent] uint8 mask (255 inside) of one of the five basic shapes."""
    mask = np.zeros((extent, extent), np.uint8)
    c, r = extent / 2.0, extent / 2.0 * 0.95
    if shape == "ellipse":
        axes = (int(r), int(r * rng.uniform(0.4, 0.9)))
        cv2.ellipse(mask, (int(c), int(c)), axes, 0, 0, 360, 255, -1)
    elif shape == "polygon":
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = r * rng.uniform(0.6, 1.0, n)
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [cv2.convexHull(pts.astype(np.int32))], 255)
    elif shape == "star":
        n = int(rng.integers(4, 7))
        angles = np.arange(2 * n) * np.pi / n
        radii = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.35, 0.55))
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 255)
    elif shape == "L":
        t = max(2, int(extent * rng.uniform(0.25, 0.4)))
        mask[: extent - 1, :t] = 255
        mask[extent - t - 1 : extent - 1, :] = 255
    else:  # "thin": a long thin bar with a knob, thin parts are hard for amodal completion
        t = max(2, int(extent * 0.12))
        mask[extent // 2 - t // 2 : extent // 2 + t // 2 + 1, :] = 255
        cv2.circle(mask, (extent - t * 2, extent // 2), t * 2, 255, -1)
    return mask


def _texture(rng, height: int, width: int, cells: int, tint, mix: float) -> np.ndarray:
    """[H, W, 3] uint8 smooth random texture (upsampled noise) blended with the RGB `tint`
    (`mix` = share of the tint: higher is calmer)."""
    ch, cw = max(2, int(height * cells / max(height, width))), max(2, int(cells))
    coarse = rng.integers(40, 215, (ch, cw, 3)).astype(np.float32)
    coarse = (1.0 - mix) * coarse + mix * np.asarray(tint, np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth, 0, 255).astype(np.uint8)


# -- folders ------------------------------------------------------------------------------


def write_clip_folder(clip: AmodalClip, folder: Path) -> Path:
    """Write a clip in the folder format of this module's docstring; returns the folder."""
    folder = Path(folder)
    t_count = len(clip.rgb)
    for sub in ("rgb", "depth", "labels"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    depth_mm = np.clip(np.round(clip.depth * 1000.0), 0, 65535).astype(np.uint16)
    for t in range(t_count):
        name = f"{t:04d}.png"
        _write(folder / "rgb" / name, clip.rgb[t][..., ::-1])
        _write(folder / "depth" / name, depth_mm[t])
        _write(folder / "labels" / name, clip.labels[t])
        for i in clip.target_ids:
            _write(folder / "amodal" / f"obj_{i}" / name, clip.amodal[i][t].astype(np.uint8) * 255)
            _write(
                folder / "visible" / f"obj_{i}" / name, clip.visible[i][t].astype(np.uint8) * 255
            )
            rgba = clip.appearance[i][t]
            _write(folder / "appearance" / f"obj_{i}" / name, rgba[..., [2, 1, 0, 3]])
    meta = {
        "seed": clip.seed,
        "num_frames": t_count,
        "height": int(clip.rgb.shape[1]),
        "width": int(clip.rgb.shape[2]),
        "target_ids": clip.target_ids,
        "occluder_ids": clip.occluder_ids,
        "target_depth_m": {str(k): v for k, v in clip.target_depth.items()},
        "families": {str(k): v for k, v in clip.families.items()},
        "camera_shift_px": np.asarray(clip.camera, np.float64).tolist(),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def read_clip_folder(folder: Path) -> AmodalClip:
    """Read a clip written by `write_clip_folder` (depth comes back at millimetre precision).
    Folders written before `visible` existed read it as `labels == id` (they had exact
    labels)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a synthetic clip folder (no meta.json)")
    meta = json.loads(meta_path.read_text())
    names = [f"{t:04d}.png" for t in range(meta["num_frames"])]
    rgb = np.stack([_read(folder / "rgb" / n)[..., ::-1] for n in names])
    depth = np.stack([_read(folder / "depth" / n) for n in names]).astype(np.float32) / 1000.0
    labels = np.stack([_read(folder / "labels" / n) for n in names]).astype(np.uint16)
    amodal, appearance, visible = {}, {}, {}
    for i in meta["target_ids"]:
        amodal[i] = np.stack([_read(folder / "amodal" / f"obj_{i}" / n) > 127 for n in names])
        appearance[i] = np.stack(
            [_read(folder / "appearance" / f"obj_{i}" / n)[..., [2, 1, 0, 3]] for n in names]
        )
        if (folder / "visible" / f"obj_{i}").is_dir():
            visible[i] = np.stack(
                [_read(folder / "visible" / f"obj_{i}" / n) > 127 for n in names]
            )
    camera = meta.get("camera_shift_px")
    return AmodalClip(
        rgb=np.ascontiguousarray(rgb),
        depth=depth,
        labels=labels,
        amodal=amodal,
        appearance=appearance,
        target_depth={int(k): v for k, v in meta["target_depth_m"].items()},
        occluder_ids=list(meta["occluder_ids"]),
        seed=meta["seed"],
        visible=visible if len(visible) == len(amodal) else None,
        families={int(k): v for k, v in meta.get("families", {}).items()},
        camera=None if camera is None else np.asarray(camera, np.float32).reshape(-1, 2),
    )


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image)):
        raise OSError(f"could not write {path}")


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"missing or unreadable image {path}")
    return image
