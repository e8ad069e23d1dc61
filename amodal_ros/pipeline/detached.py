"""Small detached parts: a connected object has one connected silhouette.

A predicted amodal mask in several parts holds, beside the object, specks: the model's noise,
or a segmenter's spurious blob of the object's id that the modal mask brought in (the demo's
58-px blob beside a pole was one). Removing every part apart from the visible mask costs more
than it gives (the model often predicts a real hidden part apart from the visible one at the
threshold), so only small parts go: a part is kept when it is the frame's largest, covers at
least `share` of the frame's predicted area, or is at least `share / (1 - share)` of the
largest part (the same bound for two parts; many equal parts are all kept), visible or not
(on validation clips a part holding visible pixels needed no more protection than that;
docs/training.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal_ros.core.types import AmodalResult


def detached_specks(
    amodal: np.ndarray, share: float, area: int | None = None
) -> np.ndarray | None:
    """The [H, W] pixels of `amodal`'s small parts (8-connected), or None if there are none.

    Args:
        amodal: [H, W] bool predicted amodal mask of one frame.
        share: a part other than the largest is removed when its area is below this fraction
            of the frame's predicted area and (without `area`) below share / (1 - share) of
            the largest part.
        area: that area when `amodal` is not the whole prediction (a frame's visible part,
            judged by the object's predicted area in another frame); None: its own.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        amodal.astype(np.uint8), connectivity=8
    )
    if count <= 2:  # the background and at most one part
        return None
    areas = stats[:, cv2.CC_STAT_AREA].copy()
    areas[0] = 0
    keep = areas >= share * (areas.sum() if area is None else area)
    # and a part near the largest one's size is no speck: of six equal parts (an object seen
    # through a fence's gaps) each is a sixth of the area, and five went. The bound is the
    # share's own for two parts (a < s (A + a) <=> a < s / (1 - s) A): the same rule there.
    # Not for a visible part judged by the whole object's `area`: its largest part may be a
    # sliver, beside which a segmenter's blob is no speck
    if share < 1 and area is None:
        keep |= areas >= share / (1 - share) * areas.max()
    keep[int(np.argmax(areas))] = True
    keep[0] = True  # the background is not a part
    if keep.all():
        return None
    return ~keep[labels]


def drop_specks(masks: np.ndarray, share: float) -> None:
    """Removes, in place, the small parts of each [H, W] frame of the bool `masks` stack: what
    the pipeline does at its threshold, for a threshold sweep to do at every other one."""
    for frame in masks:
        specks = detached_specks(frame, share)
        if specks is not None:
            frame[specks] = False


def drop_detached(result: AmodalResult, share: float) -> int:
    """Removes, in place, the small parts of `result`'s decoded frames (as free_space.carve:
    masks, soft scores, disagreement and samples become False / 0 there; its modal masks, the
    segmenter's input, stay as they came).

    Returns:
        The number of pixels removed (over all frames).
    """
    removed = 0
    for t in result.decoded_frames():
        specks = detached_specks(result.amodal[t], share)
        if specks is None:
            continue
        removed += int(specks.sum())
        result.clear(t, specks)
    return removed
