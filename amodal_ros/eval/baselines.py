"""Baselines run by `amodal-ros eval` beside the model, on the same windows.

Each takes the modal masks [T, H, W] bool of one object and returns amodal masks of the same
shape that contain the modal masks.
"""

from __future__ import annotations

import cv2
import numpy as np

MOSTLY_VISIBLE = 0.9  # a frame whose modal area is >= this share of the window's largest


def modal_as_amodal(modal: np.ndarray) -> np.ndarray:
    """The lower bound: the visible part is all there is."""
    return modal.copy()


def convex_hull(modal: np.ndarray) -> np.ndarray:
    """Per frame, the convex hull of the visible pixels (fills concavities a bar cuts out)."""
    out = np.zeros_like(modal)
    for t, m in enumerate(modal):
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            continue
        hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
        filled = np.zeros(m.shape, np.uint8)
        cv2.fillConvexPoly(filled, hull, 1)
        out[t] = filled.astype(bool) | m
    return out


def interpolate_visible_shape(modal: np.ndarray) -> np.ndarray:
    """Temporal interpolation of the last fully visible shape.

    The shape is the modal mask of the frame with the largest visible area; "mostly visible"
    frames (area >= 90 % of that) anchor its position (bounding-box centre). Every other frame
    gets the shape placed by linear interpolation between the nearest anchors before and after
    it (constant velocity from the two nearest anchors when it lies outside them), OR-ed with
    its modal mask.
    """
    t_count, h, w = modal.shape
    areas = modal.reshape(t_count, -1).sum(1)
    if areas.max() == 0:
        return modal.copy()
    best = int(areas.argmax())
    template = _crop(modal[best])
    anchors = np.flatnonzero(areas >= MOSTLY_VISIBLE * areas.max())
    centres = np.array([_centre(modal[a]) for a in anchors])
    out = modal.copy()
    for t in range(t_count):
        if t in anchors:
            continue
        cx, cy = _position(t, anchors, centres)
        out[t] |= _place(template, cx, cy, h, w)
    return out


def _crop(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _centre(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0


def _position(t: int, anchors: np.ndarray, centres: np.ndarray) -> tuple[float, float]:
    if len(anchors) == 1:
        return tuple(centres[0])
    after = np.searchsorted(anchors, t)
    i0, i1 = (
        (after - 1, after)
        if 0 < after < len(anchors)
        else ((0, 1) if after == 0 else (len(anchors) - 2, len(anchors) - 1))
    )
    t0, t1 = anchors[i0], anchors[i1]
    a = (t - t0) / (t1 - t0)
    return tuple(centres[i0] + a * (centres[i1] - centres[i0]))


def _place(template: np.ndarray, cx: float, cy: float, h: int, w: int) -> np.ndarray:
    """The template with its bounding-box centre at (cx, cy), clipped to the image."""
    th, tw = template.shape
    x0 = int(round(cx - (tw - 1) / 2.0))
    y0 = int(round(cy - (th - 1) / 2.0))
    out = np.zeros((h, w), bool)
    ys, xs = slice(max(0, y0), min(h, y0 + th)), slice(max(0, x0), min(w, x0 + tw))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys, xs] = template[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


BASELINES = {
    "modal": modal_as_amodal,
    "convex_hull": convex_hull,
    "interpolation": interpolate_visible_shape,
}


def mean_colour_fill(rgb: np.ndarray, modal: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """The simplest completion, stage 2's baseline: [T, H, W, 4] RGBA of the amodal masks, the
    camera's pixels where the object is visible and the mean colour of its visible pixels
    where it is hidden (that frame's, else the window's, else grey); the same inputs stage 2
    is given.

    Args:
        rgb: [T, H, W, 3] uint8 frames.
        modal: [T, H, W] bool visible masks (the segmenter's).
        amodal: [T, H, W] bool amodal masks (a method's prediction).
    """
    seen = rgb[modal]
    window = seen.mean(axis=0) if len(seen) else np.full(3, 128.0)
    out = np.zeros((*amodal.shape, 4), np.uint8)
    for t in range(len(rgb)):
        visible = rgb[t][modal[t]]
        colour = visible.mean(axis=0) if len(visible) else window
        out[t, amodal[t], :3] = np.round(colour).astype(np.uint8)
        out[t, modal[t], :3] = rgb[t][modal[t]]
        out[t, ..., 3] = amodal[t] * np.uint8(255)
    return out
