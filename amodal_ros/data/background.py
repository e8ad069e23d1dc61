"""The world behind the objects of the synthetic scenes, and the camera's motion over it.

A wall (often with a table top) larger than the image, so the camera can pan over it; the
camera's shift per frame moves the background and every sprite alike.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal_ros.data.draw import texture

BACKGROUND_DEPTH = 8.0  # m, plus a slant over the image rows


class Background:
    """A wall (and often a table top) larger than the image by a margin, so the camera can
    pan over it; depth is a slanted plane (the table nearer towards the bottom)."""

    def __init__(self, rng, height: int, width: int):
        self.margin = (int(0.1 * width) + 8, int(0.05 * height) + 8)
        mx, my = self.margin
        bh, bw = height + 2 * my, width + 2 * mx
        tint = rng.integers(60, 200, 3)
        self.rgb = texture(rng, bh, bw, cells=rng.integers(4, 12), tint=tint, mix=0.75)
        rows = (np.arange(bh, dtype=np.float32) - my) / height
        column = BACKGROUND_DEPTH + rows
        if rng.random() < 0.6:  # a table top below a horizon row, nearer towards the bottom
            horizon = int(bh * rng.uniform(0.45, 0.8))
            table = texture(
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


def camera_shifts(rng, t_count: int, height: int, width: int, amount: float, margin) -> np.ndarray:
    """[T, 2] float32 camera shift (x, y) px: a slow pan plus a small random-walk jitter."""
    pan = np.array([width * rng.uniform(-0.08, 0.08), height * rng.uniform(-0.04, 0.04)])
    jitter = np.cumsum(rng.normal(0.0, 0.35, (t_count, 2)), 0)
    s = np.arange(t_count)[:, None] / max(1, t_count - 1)
    shift = amount * (pan * s + jitter - jitter[0])
    limit = np.array(margin, np.float64) - 2  # stay on the background canvas
    return np.clip(shift, -limit, limit).astype(np.float32)
