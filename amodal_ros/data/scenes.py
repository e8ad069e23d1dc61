"""Seeded synthetic amodal video with the ground truth real datasets lack.

Each clip has 1-4 textured target objects of varied shapes (ellipses, convex polygons, stars,
L shapes, thin bars) that move, rotate and scale, partly leave the image, and pass behind
occluders (bars, blobs, and each other) at a known depth order, so they are partly or fully
hidden for several frames. Per frame it gives RGB, metric depth, instance labels (modal),
per-object amodal masks, and each object's full unoccluded appearance (ground truth for
content completion). Numpy/OpenCV only; a 25-frame 128x256 clip takes well under 0.1 s.

Folder format (`write_clip_folder` / `read_clip_folder`), one clip per folder:

    rgb/0000.png ...          RGB frames
    depth/0000.png ...        16-bit depth in millimetres
    labels/0000.png ...       16-bit instance labels: targets 1..N, occluders N+1.., 0 background
    amodal/obj_<id>/0000.png  8-bit amodal mask of each target (255 = object)
    appearance/obj_<id>/0000.png  RGBA: the target's full appearance, alpha = amodal mask
    meta.json                 seed, size, target ids, occluder ids, per-target depth (m)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

SHAPES = ("ellipse", "polygon", "star", "L", "thin")
BACKGROUND_DEPTH = 8.0  # m, plus a slant over the image rows
TEST_SEED_OFFSET = 1_000_000  # test clips use seeds from here: disjoint from training seeds


@dataclass
class AmodalClip:
    """One synthetic clip.

    Attributes:
        rgb: [T, H, W, 3] uint8 frames (with sensor noise).
        depth: [T, H, W] float32 metres.
        labels: [T, H, W] uint16 visible instance ids (targets and occluders), 0 = background.
        amodal: {target id: [T, H, W] bool} whole object, visible or not (clipped to the image).
        appearance: {target id: [T, H, W, 4] uint8} the target alone, unoccluded and noise-free;
            alpha 255 on its amodal mask.
        target_depth: {target id: float} metres (constant over the clip).
        occluder_ids: ids of the pure occluders (bars, blobs); targets occlude each other too.
        seed: the generator seed.
    """

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    amodal: dict[int, np.ndarray]
    appearance: dict[int, np.ndarray] = field(repr=False)
    target_depth: dict[int, float]
    occluder_ids: list[int]
    seed: int

    @property
    def target_ids(self) -> list[int]:
        return sorted(self.amodal)

    def modal(self, object_id: int) -> np.ndarray:
        """[T, H, W] bool visible part of an object."""
        return self.labels == object_id

    def occlusion_ratio(self, object_id: int) -> np.ndarray:
        """[T] hidden share of the object's amodal area (0 where it is outside the image)."""
        from amodal_ros.core.types import occlusion_ratio

        return occlusion_ratio(self.modal(object_id), self.amodal[object_id])


def split_seeds(split: str, count: int, start: int = 0) -> list[int]:
    """Seeds of a split: 'train' from 0, 'test' from TEST_SEED_OFFSET (fixed held-out set)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = 0 if split == "train" else TEST_SEED_OFFSET
    return [base + start + i for i in range(count)]


def make_scene(
    seed: int,
    num_frames: int = 25,
    height: int = 128,
    width: int = 256,
    max_targets: int = 4,
    max_occluders: int = 2,
    noise: float = 4.0,
) -> AmodalClip:
    """A seeded clip: same seed, same arrays, on any machine."""
    if num_frames < 1 or height < 16 or width < 16:
        raise ValueError(f"need >= 1 frame of >= 16x16 px, got {num_frames}x{height}x{width}")
    if not 1 <= max_targets <= 4 or not 0 <= max_occluders <= 4:
        raise ValueError("max_targets must be in 1..4 and max_occluders in 0..4")
    rng = np.random.default_rng(seed)
    size = min(height, width)
    background = _texture(
        rng, height, width, cells=rng.integers(4, 12), tint=rng.integers(60, 200, 3), mix=0.75
    )
    n_targets = int(rng.integers(1, max_targets + 1))
    n_occluders = int(rng.integers(1 if max_occluders else 0, max_occluders + 1))
    targets = [_target(rng, k + 1, height, width, size) for k in range(n_targets)]
    occluders = [
        _occluder(rng, n_targets + 1 + k, height, width, size, targets) for k in range(n_occluders)
    ]
    entities = targets + occluders

    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    rgb = np.empty((num_frames, height, width, 3), np.uint8)
    depth = np.empty((num_frames, height, width), np.float32)
    labels = np.zeros((num_frames, height, width), np.uint16)
    amodal = {o.id: np.zeros((num_frames, height, width), bool) for o in targets}
    appearance = {o.id: np.zeros((num_frames, height, width, 4), np.uint8) for o in targets}
    for t in range(num_frames):
        s = t / max(1, num_frames - 1)
        frame = background.copy()
        z = np.broadcast_to(BACKGROUND_DEPTH + rows, (height, width)).copy()
        for o in sorted(entities, key=lambda e: -e.depth):  # painter's order, far to near
            colour, mask = o.render(s, height, width)
            frame[mask] = colour[mask]
            z[mask] = o.depth
            labels[t][mask] = o.id
            if o.id in amodal:
                amodal[o.id][t] = mask
                appearance[o.id][t][mask, :3] = colour[mask]
                appearance[o.id][t][mask, 3] = 255
        noisy = frame.astype(np.float32) + rng.normal(0.0, noise, frame.shape)
        rgb[t] = np.clip(noisy, 0, 255).astype(np.uint8)
        depth[t] = z
    return AmodalClip(
        rgb=rgb,
        depth=depth,
        labels=labels,
        amodal=amodal,
        appearance=appearance,
        target_depth={o.id: o.depth for o in targets},
        occluder_ids=[o.id for o in occluders],
        seed=seed,
    )


# -- entities ------------------------------------------------------------------------------


@dataclass
class _Entity:
    """A textured sprite moving on a straight path, rotating and scaling linearly."""

    id: int
    depth: float
    sprite: np.ndarray  # [h, w, 3] uint8 texture
    alpha: np.ndarray  # [h, w] uint8 shape mask (255 inside)
    start: tuple[float, float]  # centre (x, y) at s = 0, pixels
    end: tuple[float, float]  # centre at s = 1
    angle: tuple[float, float]  # degrees at s = 0 and s = 1
    scale: tuple[float, float]

    def render(self, s: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(colour [H, W, 3] uint8, mask [H, W] bool) of the entity at time s in [0, 1]."""
        cx = self.start[0] + (self.end[0] - self.start[0]) * s
        cy = self.start[1] + (self.end[1] - self.start[1]) * s
        angle = self.angle[0] + (self.angle[1] - self.angle[0]) * s
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * s
        h, w = self.alpha.shape
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
        m[:, 2] += (cx - w / 2.0, cy - h / 2.0)  # sprite centre -> (cx, cy)
        colour = cv2.warpAffine(self.sprite, m, (width, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(self.alpha, m, (width, height), flags=cv2.INTER_NEAREST)
        return colour, alpha > 127


def _target(rng, object_id: int, height: int, width: int, size: int) -> _Entity:
    extent = int(size * rng.uniform(0.3, 0.5))  # keeps its shape at 32x64
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    alpha = _shape(rng, shape, extent)
    sprite = _texture(rng, extent, extent, cells=rng.integers(2, 6), tint=rng.integers(30, 225, 3))
    y = height * rng.uniform(0.2, 0.8)
    left, right = -0.15 * width, 1.15 * width  # starts or ends partly outside the image
    x0, x1 = (
        (left, width * rng.uniform(0.6, 1.0))
        if rng.random() < 0.5
        else (
            right,
            width * rng.uniform(0.0, 0.4),
        )
    )
    dy = height * rng.uniform(-0.2, 0.2)
    return _Entity(
        id=object_id,
        depth=float(rng.uniform(3.0, 6.0)),
        sprite=sprite,
        alpha=alpha,
        start=(x0, y),
        end=(x1, y + dy),
        angle=(float(rng.uniform(0, 360)), float(rng.uniform(-90, 90))),
        scale=(float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.8, 1.3))),
    )


def _occluder(rng, object_id: int, height: int, width: int, size: int, targets) -> _Entity:
    """A bar or blob nearer than every target, placed across the targets' paths."""
    near = min(t.depth for t in targets)
    if rng.random() < 0.6:  # a vertical bar, sometimes wider than the objects (full occlusion)
        bar_w = int(width * rng.uniform(0.06, 0.3))
        alpha = np.full((height * 2, bar_w), 255, np.uint8)
        x = width * rng.uniform(0.3, 0.7)
        start = end = (x, height / 2.0)
        angle = (float(rng.uniform(-15, 15)),) * 2
    else:  # a blob drifting against the targets
        extent = int(size * rng.uniform(0.3, 0.5))
        alpha = _shape(rng, "polygon", extent)
        start = (width * rng.uniform(0.5, 0.9), height * rng.uniform(0.3, 0.7))
        end = (width * rng.uniform(0.1, 0.5), height * rng.uniform(0.3, 0.7))
        angle = (0.0, float(rng.uniform(-45, 45)))
    h, w = alpha.shape
    sprite = _texture(rng, h, w, cells=rng.integers(2, 5), tint=rng.integers(30, 225, 3))
    return _Entity(
        id=object_id,
        depth=float(rng.uniform(1.0, near - 0.5)),
        sprite=sprite,
        alpha=alpha,
        start=start,
        end=end,
        angle=angle,
        scale=(1.0, 1.0),
    )


def _shape(rng, shape: str, extent: int) -> np.ndarray:
    """[extent, extent] uint8 mask (255 inside) of one shape kind, centred."""
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


def _texture(rng, height: int, width: int, cells: int, tint=None, mix=0.55) -> np.ndarray:
    """[H, W, 3] uint8 smooth random texture (upsampled noise), optionally tinted (`mix` =
    share of the tint: higher is calmer)."""
    ch, cw = max(2, int(height * cells / max(height, width))), max(2, int(cells))
    coarse = rng.integers(40, 215, (ch, cw, 3)).astype(np.float32)
    if tint is not None:
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
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def read_clip_folder(folder: Path) -> AmodalClip:
    """Read a clip written by `write_clip_folder` (depth comes back at millimetre precision)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a synthetic clip folder (no meta.json)")
    meta = json.loads(meta_path.read_text())
    names = [f"{t:04d}.png" for t in range(meta["num_frames"])]
    rgb = np.stack([_read(folder / "rgb" / n)[..., ::-1] for n in names])
    depth = np.stack([_read(folder / "depth" / n) for n in names]).astype(np.float32) / 1000.0
    labels = np.stack([_read(folder / "labels" / n) for n in names]).astype(np.uint16)
    amodal, appearance = {}, {}
    for i in meta["target_ids"]:
        amodal[i] = np.stack([_read(folder / "amodal" / f"obj_{i}" / n) > 127 for n in names])
        appearance[i] = np.stack(
            [_read(folder / "appearance" / f"obj_{i}" / n)[..., [2, 1, 0, 3]] for n in names]
        )
    return AmodalClip(
        rgb=np.ascontiguousarray(rgb),
        depth=depth,
        labels=labels,
        amodal=amodal,
        appearance=appearance,
        target_depth={int(k): v for k, v in meta["target_depth_m"].items()},
        occluder_ids=list(meta["occluder_ids"]),
        seed=meta["seed"],
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
