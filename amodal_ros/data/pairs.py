"""Self-supervised stage-2 (content completion) pairs, built as the paper builds them.

An object that is nearly fully visible (> 95 % of its amodal area on average) becomes a
training target: a random other object's mask track is pasted over it as an occluder (up to
5 tries) until the mean modal/amodal IoU drops below 0.7. The input is the object's remaining
visible RGB and its amodal mask; the target is the whole object's RGB (diffusion-vas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_VISIBLE = 0.95  # objects at least this visible can be targets
MAX_IOU = 0.7  # paste occluders until mean modal/amodal IoU is below this
MAX_TRIES = 5


@dataclass
class CompletionPair:
    """One stage-2 training window. rgb [T, H, W, 3] uint8 frames; modal [T, H, W] bool (the
    object's visible part after pasting); amodal [T, H, W] bool; target [T, H, W, 3] uint8 the
    whole object on white (the stage-2 output format)."""

    rgb: np.ndarray
    modal: np.ndarray
    amodal: np.ndarray
    target: np.ndarray


def visibility(modal: np.ndarray, amodal: np.ndarray) -> float:
    """Mean over frames (where the object is in the image) of modal area / amodal area."""
    area = amodal.reshape(len(amodal), -1).sum(1)
    seen = modal.reshape(len(modal), -1).sum(1)
    keep = area > 0
    return float(np.mean(seen[keep] / area[keep])) if keep.any() else 0.0


def make_pair(
    rgb: np.ndarray,
    modal: np.ndarray,
    amodal: np.ndarray,
    occluder_tracks: list[np.ndarray],
    rng: np.random.Generator,
) -> CompletionPair | None:
    """A pair for one object, or None when it is not visible enough or no occluder (in
    MAX_TRIES tries) hides enough of it.

    Args:
        rgb: [T, H, W, 3] uint8 frames; modal, amodal: [T, H, W] bool of the object.
        occluder_tracks: candidate [T, H, W] bool mask tracks of other objects.
    """
    if visibility(modal, amodal) <= MIN_VISIBLE or not occluder_tracks:
        return None
    visible = modal.copy()
    for _ in range(MAX_TRIES):
        occluder = occluder_tracks[int(rng.integers(len(occluder_tracks)))]
        visible &= ~occluder
        if visibility(visible, amodal) < MAX_IOU:
            target = np.full(rgb.shape, 255, np.uint8)
            target[amodal] = rgb[amodal]
            return CompletionPair(rgb=rgb, modal=visible, amodal=amodal, target=target)
    return None
