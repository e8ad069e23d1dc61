"""Seeded synthetic RGB-D clips of objects passing behind occluders, with amodal ground truth.

Numpy/OpenCV only. Objects move on straight paths behind a vertical bar that is nearer to
the camera, so they are partly or fully hidden for some frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticClip:
    """One clip. rgb [T, H, W, 3] uint8; depth [T, H, W] float32 metres; labels [T, H, W] uint16
    instance ids of the visible pixels (0 = background, occluders have ids too); amodal
    {object id: [T, H, W] bool} for the target objects."""

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    amodal: dict[int, np.ndarray]

    def modal(self, object_id: int) -> np.ndarray:
        return self.labels == object_id


def make_clip(
    num_frames: int = 25, height: int = 128, width: int = 256, num_objects: int = 2, seed: int = 0
) -> SyntheticClip:
    """Objects 1..num_objects move behind an occluder bar (id num_objects + 1)."""
    rng = np.random.default_rng(seed)
    background = _texture(rng, height, width)
    bar_id = num_objects + 1
    bar_x = width * rng.uniform(0.4, 0.55)
    bar_w = width * rng.uniform(0.12, 0.2)
    objects = []
    for k in range(num_objects):
        size = min(height, width) * rng.uniform(0.18, 0.3)
        y = height * rng.uniform(0.25, 0.75)
        x0, x1 = (-0.1 * width, 1.05 * width) if k % 2 == 0 else (1.05 * width, -0.1 * width)
        color = rng.integers(40, 230, 3)
        objects.append(
            dict(
                id=k + 1,
                size=size,
                y=y,
                x0=x0,
                x1=x1,
                color=color,
                depth=3.0 + k,
                shape=k % 2,
                angle=rng.uniform(0, 180),
            )
        )
    rgb = np.empty((num_frames, height, width, 3), np.uint8)
    depth = np.empty((num_frames, height, width), np.float32)
    labels = np.zeros((num_frames, height, width), np.uint16)
    amodal = {o["id"]: np.zeros((num_frames, height, width), bool) for o in objects}
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(num_frames):
        s = t / max(1, num_frames - 1)
        frame, z = background.copy(), np.full((height, width), 8.0, np.float32) + yy / height
        for o in sorted(objects, key=lambda o: -o["depth"]):  # far to near
            cx = o["x0"] + (o["x1"] - o["x0"]) * s
            mask = _shape_mask(
                height, width, cx, o["y"], o["size"], o["shape"], o["angle"] + 40 * s
            )
            amodal[o["id"]][t] = mask
            frame[mask] = o["color"]
            z[mask], labels[t][mask] = o["depth"], o["id"]
        bar = (xx >= bar_x - bar_w / 2) & (xx < bar_x + bar_w / 2)
        frame[bar] = (200, 200, 60)
        z[bar], labels[t][bar] = 1.5, bar_id
        noise = rng.normal(0, 4, frame.shape)
        rgb[t] = np.clip(frame + noise, 0, 255).astype(np.uint8)
        depth[t] = z
    return SyntheticClip(rgb, depth, labels, amodal)


def _texture(rng, height, width) -> np.ndarray:
    coarse = rng.integers(60, 200, (max(2, height // 16), max(2, width // 16), 3)).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float64)


def _shape_mask(height, width, cx, cy, size, shape, angle) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    center = (int(round(cx)), int(round(cy)))
    if shape == 0:
        axes = (int(size), int(size * 0.6))
        cv2.ellipse(mask, center, axes, angle, 0, 360, 1, -1)
    else:
        box = cv2.boxPoints(((cx, cy), (size * 1.6, size), angle)).astype(np.int32)
        cv2.fillPoly(mask, [box], 1)
    return mask.astype(bool)
