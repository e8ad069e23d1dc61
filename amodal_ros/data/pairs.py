"""Self-supervised stage-2 (content completion) pairs, built as the paper builds them.

An object that is nearly fully visible (> 95 % of its amodal area on average) becomes a
training target: a random other object's mask track is pasted over it as an occluder (up to
5 tries) until the mean modal/amodal IoU drops below 0.7. The input is the object's remaining
visible RGB and its amodal mask; the target is the whole object's RGB (diffusion-vas), which
the caller renders from the visible mask made here.
"""

from __future__ import annotations

import numpy as np

MIN_VISIBLE = 0.95  # objects at least this visible can be targets
MAX_IOU = 0.7  # paste occluders until mean modal/amodal IoU is below this
MAX_TRIES = 5


def visibility(modal: np.ndarray, amodal: np.ndarray) -> float:
    """Mean over frames (where the object is in the image) of modal area / amodal area."""
    area = amodal.reshape(len(amodal), -1).sum(1)
    seen = modal.reshape(len(modal), -1).sum(1)
    keep = area > 0
    return float(np.mean(seen[keep] / area[keep])) if keep.any() else 0.0


def make_pair(
    modal: np.ndarray,
    amodal: np.ndarray,
    occluder_tracks: list[np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """The object's [T, H, W] bool visible mask after pasting occluders over it, or None when it
    is not visible enough or no occluder (in MAX_TRIES tries) hides enough of it.

    Args:
        modal, amodal: [T, H, W] bool of the object.
        occluder_tracks: candidate [T, H, W] bool mask tracks of other objects.
    """
    if visibility(modal, amodal) <= MIN_VISIBLE or not occluder_tracks:
        return None
    visible = modal.copy()
    for _ in range(MAX_TRIES):
        occluder = occluder_tracks[int(rng.integers(len(occluder_tracks)))]
        visible &= ~occluder
        if visibility(visible, amodal) < MAX_IOU:
            return visible
    return None
