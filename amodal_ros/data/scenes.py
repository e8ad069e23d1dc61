"""Seeded synthetic amodal video with the ground truth real datasets lack.

A clip (`AmodalClip`) is what a robot's RGB-D camera and instance segmenter give, with the
answers: 1-4 textured target objects move, rotate and scale in front of a wall (often with a
table top), enter and leave the image and pass behind occluders and each other at a known
depth order. This module composes a clip; the parts live beside it:

- `shapes`: the object families (`FAMILIES` for train/val/test, `HELD_OUT_FAMILIES` only in
  `make_unseen_scene`, with occluder styles weighted differently, `UNSEEN_OCCLUDER_WEIGHTS`);
- `targets`: a family's outline painted and put on a path; `occluders`: poles, shelf boards,
  hands, blobs and the hiders that cover a target fully; `background`: the wall, the table
  and the camera's motion; `sprites`: the moving sprite they all are; `draw`: raster helpers;
- `sensor`: what a real camera and segmenter make of the clean render;
- `clip`: `AmodalClip`; `clip_folder`: the folder format (`write_clip_folder`,
  `read_clip_folder`).

Realism, all on by default and set by `make_scene`'s keyword arguments:

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
in training. Rendering only each sprite's box and drawing the RGB noise from bytes are what
keep it there.

Same seed, same arrays: all randomness comes from numpy Generators seeded by `seed` (one
stream per concern: turning label errors off leaves every other array unchanged; the other
features share streams, e.g. objects entering and leaving or being hidden draw from the
scene's, and depth noise from the depth holes', so turning one off changes more).
"""

from __future__ import annotations

import numpy as np

from amodal_ros.data.background import BACKGROUND_DEPTH, Background, camera_shifts
from amodal_ros.data.clip import AmodalClip
from amodal_ros.data.clip_folder import read_clip_folder, write_clip_folder
from amodal_ros.data.occluders import (
    OCCLUDER_STYLES,
    OCCLUDER_WEIGHTS,
    OCCLUDERS,
    UNSEEN_OCCLUDER_WEIGHTS,
    hider,
)
from amodal_ros.data.sensor import (
    MAX_DEPTH_HOLE_JUMP,
    segmenter_labels,
    sensor_depth,
    sensor_rgb,
)
from amodal_ros.data.shapes import DRAW, FAMILIES, HELD_OUT_FAMILIES, family_mask
from amodal_ros.data.targets import new_target

__all__ = [
    "BACKGROUND_DEPTH",
    "FAMILIES",
    "HELD_OUT_FAMILIES",
    "MAX_DEPTH_HOLE_JUMP",
    "OCCLUDER_STYLES",
    "OCCLUDER_WEIGHTS",
    "SPLIT_OFFSETS",
    "TEST_SEED_OFFSET",
    "UNSEEN_OCCLUDER_WEIGHTS",
    "UNSEEN_SEED_OFFSET",
    "VAL_SEED_OFFSET",
    "AmodalClip",
    "family_mask",
    "make_scene",
    "make_unseen_scene",
    "read_clip_folder",
    "split_of",
    "split_seeds",
    "write_clip_folder",
]

SPLIT_SIZE = 1_000_000  # seeds a split holds; the next split starts after them
TEST_SEED_OFFSET = 1_000_000  # test clips use seeds from here: disjoint from training seeds
VAL_SEED_OFFSET = 2_000_000  # calibration clips
UNSEEN_SEED_OFFSET = 3_000_000  # make_unseen_scene clips
SPLIT_OFFSETS = {
    "train": 0,
    "test": TEST_SEED_OFFSET,
    "val": VAL_SEED_OFFSET,
    "unseen": UNSEEN_SEED_OFFSET,
}


def split_of(seed) -> str:
    """The split a clip's seed belongs to ('' for a seed of none, or no whole number: a
    user's own clips may name theirs in any way)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        return ""
    for split, offset in SPLIT_OFFSETS.items():
        if offset <= seed < offset + SPLIT_SIZE:
            return split
    return ""


def split_seeds(split: str, count: int, start: int = 0) -> list[int]:
    """Seeds of a split, fixed on every machine and disjoint for fewer than 10^6 clips.

    'train' from 0, 'test' from TEST_SEED_OFFSET, 'val' (calibration) from VAL_SEED_OFFSET;
    these three use `make_scene` (FAMILIES). 'unseen' from UNSEEN_SEED_OFFSET, meant for
    `make_unseen_scene` (HELD_OUT_FAMILIES).
    """
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
    if start < 0 or count < 0 or start + count > SPLIT_SIZE:
        raise ValueError(
            f"a split holds clips 0 to {SPLIT_SIZE - 1}, got {count} from {start}: more would "
            "be the next split's clips"
        )
    base = SPLIT_OFFSETS[split]
    return [base + start + i for i in range(count)]


# a clip is made whole in memory: about 21 bytes a pixel of every frame (measured: 400 frames
# of 128x256 took 465 MB); past 2^28 pixels (5.6 GB) a typo'd frame count (demo-bag --frames
# 2147483647) was killed by the kernel's out-of-memory killer without a word
BYTES_PER_SCENE_PIXEL = 21
MAX_SCENE_PIXELS = 1 << 28


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
    pixels = num_frames * height * width
    if pixels > MAX_SCENE_PIXELS:
        raise ValueError(
            f"a clip of {num_frames} frames of {height}x{width} px is {pixels} pixels, more "
            f"than {MAX_SCENE_PIXELS} (a clip is made whole in memory, about "
            f"{BYTES_PER_SCENE_PIXEL} bytes a pixel): fewer frames or smaller images"
        )
    if not 1 <= max_targets <= 4 or not 0 <= max_occluders <= 4:
        raise ValueError("max_targets must be in 1..4 and max_occluders in 0..4")
    families = tuple(FAMILIES if families is None else families)
    unknown = set(families) - set(DRAW)
    if not families or unknown:
        raise ValueError(f"families must name some of {sorted(DRAW)}, got {families!r}")
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


# -- the composition of a clip -------------------------------------------------------------


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
    # One stream per concern (the module docstring says which features leave which arrays
    # alone): e.g. the same objects and masks with and without label errors.
    streams = np.random.SeedSequence(seed).spawn(5)
    rng, cam_rng, rgb_rng, depth_rng, label_rng = (np.random.default_rng(s) for s in streams)
    t_count, size = num_frames, min(height, width)
    times = np.arange(t_count) / max(1, t_count - 1)

    world = Background(rng, height, width)
    n_targets = int(rng.integers(1, max_targets + 1))
    n_occluders = int(rng.integers(1 if max_occluders else 0, max_occluders + 1))
    hide = rng.random() < hide_prob and t_count >= 4 and max_hidden_frames >= 2 and n_occluders
    targets = []
    for k in range(n_targets):
        family = families[int(rng.integers(len(families)))]
        inside = bool(hide and k == 0)  # the target to hide stays in the image
        targets.append(new_target(rng, k + 1, family, height, width, size, enter_leave, inside))
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
                hider(
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
        occluders.append(OCCLUDERS[style](rng, oid, depth, height, width, size))
    entities = sorted(targets + occluders, key=lambda e: -e.depth)  # painter's order
    camera = camera_shifts(cam_rng, t_count, height, width, camera_motion, world.margin)
    rgb, z, exact, amodal, appearance = _render(
        world, entities, [o.id for o in targets], camera, times
    )
    rgb = sensor_rgb(rgb_rng, rgb, noise)
    ids_far_to_near = [o.id for o in entities]
    labels = segmenter_labels(label_rng, exact, ids_far_to_near, len(targets), label_errors)
    depth = sensor_depth(depth_rng, z, camera, depth_holes, depth_noise)
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


def _render(world: Background, entities, target_ids, camera: np.ndarray, times: np.ndarray):
    """The clean clip, painted far to near (`entities` in that order) over the background
    seen by `camera` [T, 2] px at `times` [T] in [0, 1]: (rgb [T, H, W, 3] uint8, depth
    [T, H, W] float32 m, exact labels [T, H, W] uint16, {target id: amodal [T, H, W] bool},
    {target id: appearance [T, H, W, 4] uint8})."""
    (width, height), t_count = world.size, len(camera)
    rgb = np.empty((t_count, height, width, 3), np.uint8)
    z = np.empty((t_count, height, width), np.float32)
    exact = np.zeros((t_count, height, width), np.uint16)
    amodal = {i: np.zeros((t_count, height, width), bool) for i in target_ids}
    appearance = {i: np.zeros((t_count, height, width, 4), np.uint8) for i in target_ids}
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
    return rgb, z, exact, amodal, appearance
