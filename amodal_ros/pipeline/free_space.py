"""Free space: a hidden part cannot lie where the depth camera sees past the object.

Where a camera measures a surface clearly behind an object, the object is not in front of it
(it would hide that surface), so no hidden part of it can be there. Stage 1's masks are cut to
what the depth allows: a predicted pixel (never a visible one) whose valid depth is more than
`margin` (a fraction) farther than the object's visible part is removed. Nothing is removed
near the visible mask (the model's outline is only known to its working grid, and depth edges
and a segmenter's outline blur there), nor where the depth is invalid. Metric camera depth
only: a depth model's relative estimate has no scale for a margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from amodal_ros.core.types import AmodalResult, mask_bbox


def keep_band(image_shape: tuple[int, int], working_shape: tuple[int, int]) -> int:
    """Pixels around the visible mask that are never removed: half a cell of the model's
    working grid at the image's size (2 px for 128x256 images of a 32x64 model)."""
    (h, w), (wh, ww) = image_shape, working_shape
    return math.ceil(0.5 * max(h / wh, w / ww))


def object_depth(
    depth: Sequence[np.ndarray], modal: np.ndarray, t: int, unit_m: float = 1.0
) -> float | None:
    """Median valid depth (in the images' unit, `unit_m` metres) of the object's visible
    pixels in frame `t`, or in the nearest frame where some are visible (a hidden object is
    about where it was last seen); None when no frame has one."""
    from amodal_ros.depth.camera import valid_depth

    for s in sorted(range(len(modal)), key=lambda s: abs(s - t)):
        seen = depth[s][modal[s]]
        # a glint's few millimetres is no return (as extents), in metres whatever the unit
        seen = seen[valid_depth(seen * unit_m)]
        if seen.size:
            return float(np.median(seen))
    return None


def carve(
    result: AmodalResult,
    depth: Sequence[np.ndarray],
    margin: float,
    keep_px: int,
    unit_m: float = 1.0,
) -> int:
    """Removes from `result`, in place, its predicted pixels that the depth shows to be free
    space (in place: a window's results are its own, and copying 25 frames of masks and scores
    per object costs more than the cut).

    Args:
        result: stage 1's result for one object ([T, H, W] masks at the input size); its
            amodal masks, soft scores, disagreement and samples become False / 0 there.
        depth: T [H, W] depth images as the camera sent them, `unit_m` metres per unit
            (only ratios are compared; below MIN_DEPTH_M, 0, NaN and -inf: no return,
            unknown; +inf: nothing within the camera's range (REP 117), so free space).
        margin: how much farther than the object's visible part a surface must be, as a
            fraction of that depth (0.1: 10 cm at 1 m).
        keep_px: pixels around the visible mask never removed (`keep_band`).
        unit_m: metres per depth unit (DEPTH_ENCODINGS: 1e-3 for 16UC1): the images are not
            converted whole per window, only the object's visible pixels are judged in metres.

    Returns:
        The number of pixels removed (over all frames).
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * keep_px + 1, 2 * keep_px + 1))
    removed = 0
    for t in result.decoded_frames():
        beyond = (result.soft[t] > 0) & ~result.modal[t]  # what the model adds to the visible
        if not beyond.any():
            continue
        own = object_depth(depth, result.modal, t, unit_m)
        if own is None:
            break  # no visible pixel with depth in the whole window: nothing to compare with
        box = _box(beyond, keep_px)  # only there can a pixel go: the rest of the frame is not read
        near = cv2.dilate(result.modal[t][box].astype(np.uint8), kernel) > 0
        seen = depth[t][box]
        # 0, NaN, -inf compare False (no return: unknown); +inf is nothing within the range
        # (REP 117): seen through, as a farther surface is
        free = beyond[box] & (seen > own * (1.0 + margin)) & ~near
        if not free.any():
            continue
        removed += int(free.sum())
        result.clear(t, free, box)
    return removed


def _box(pixels: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The bounding box (`mask_bbox`) of a non-empty [H, W] mask, grown by `pad` (the visible
    mask that far outside still keeps pixels inside); slicing clips it to the image."""
    x, y, w, h = (int(v) for v in mask_bbox(pixels))
    return slice(max(y - pad, 0), y + h + pad), slice(max(x - pad, 0), x + w + pad)
