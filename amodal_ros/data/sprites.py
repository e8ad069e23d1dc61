"""Sprites of the synthetic scenes: a textured shape moving on a path, seen by a moving camera.

Targets and occluders are both `Entity`s; a frame is painted far to near from their
`render_roi`s over the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Entity:
    """A textured sprite (a target or an occluder) on a piecewise-linear path (knots in
    [0, 1]), rotating and scaling linearly; positions are in the world (camera shift 0)."""

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
        """(x, y) pixel position of the sprite centre at time s in [0, 1] (world)."""
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


def sprite_radius(parts: np.ndarray) -> float:
    """Largest distance (px) of a shape pixel from the sprite centre (the rotation centre)."""
    ys, xs = np.nonzero(parts)
    h, w = parts.shape
    return float(np.sqrt((xs - w / 2.0) ** 2 + (ys - h / 2.0) ** 2).max()) if len(xs) else 0.0
