"""Overlay images a person can look at: amodal outlines over RGB, occluded parts shaded."""

from __future__ import annotations

import cv2
import numpy as np

# Distinct BGR-free RGB colours, cycled by object index.
PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
    ],
    np.uint8,
)


def color_for(index: int) -> np.ndarray:
    """A distinct RGB colour for object index `index` (uint8 [3])."""
    return PALETTE[index % len(PALETTE)]


def draw_overlay(
    rgb: np.ndarray, objects: list[tuple[np.ndarray, np.ndarray]], ids: list[int] | None = None
) -> np.ndarray:
    """One frame: [H, W, 3] uint8 RGB and (modal, amodal) [H, W] bool per object -> RGB overlay.

    Visible part lightly tinted, hidden part (amodal minus modal) shaded strongly, and the amodal
    outline drawn in the object's colour (picked by `ids` when given, so it stays stable while
    objects come and go; else by position).
    """
    keys = list(range(len(objects))) if ids is None else list(ids)
    out = rgb.astype(np.float32)
    for key, (modal, amodal) in zip(keys, objects):
        color = color_for(key).astype(np.float32)
        hidden = amodal & ~modal
        out[modal] = 0.75 * out[modal] + 0.25 * color
        out[hidden] = 0.35 * out[hidden] + 0.65 * color
    out = out.astype(np.uint8)
    for key, (_, amodal) in zip(keys, objects):
        contours, _ = cv2.findContours(
            amodal.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in color_for(key)), 1)
    return out


def compose_completion(
    rgb: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> np.ndarray:
    """See-through view: [H, W, 3] uint8 RGB with each object's completed appearance
    ((modal, amodal) [H, W] bool, [H, W, 4] uint8 RGBA) painted over its hidden part."""
    out = rgb.copy()
    for modal, amodal, rgba in layers:
        hidden = amodal & ~modal
        out[hidden] = rgba[..., :3][hidden]
    return out
