"""Input checks shared by both stages; each failure names the argument and what was received."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from amodal_ros.core.errors import InputError
from amodal_ros.core.types import ObjectTrack


def check_tracks(tracks: Sequence[ObjectTrack]) -> tuple[int, int, int]:
    """All tracks: [T, H, W] boolean masks of one shape, unique ids, not empty in every frame.

    Returns (T, H, W).
    """
    if not tracks:
        raise InputError("no objects given: pass at least one ObjectTrack")
    ids = [t.object_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise InputError(f"object ids must be unique within a window, got {ids}")
    shape = None
    for track in tracks:
        masks = track.masks
        if not isinstance(masks, np.ndarray) or masks.ndim != 3:
            raise InputError(
                f"object {track.object_id}: masks must be a [T, H, W] array, got "
                f"{getattr(masks, 'shape', type(masks).__name__)}"
            )
        if masks.dtype != bool:
            if not np.isin(masks, (0, 1)).all():
                raise InputError(
                    f"object {track.object_id}: masks must be boolean (or 0/1), got {masks.dtype} "
                    "values outside {0, 1}"
                )
            track.masks = masks.astype(bool)
        if shape is None:
            shape = masks.shape
        elif masks.shape != shape:
            raise InputError(
                f"object {track.object_id}: masks shape {masks.shape} differs from {shape} of "
                f"object {tracks[0].object_id}; all objects of a window share frames and size"
            )
        if track.frame_keys is not None and len(track.frame_keys) != masks.shape[0]:
            raise InputError(
                f"object {track.object_id}: {len(track.frame_keys)} frame keys "
                f"for {masks.shape[0]} frames"
            )
        if not track.masks.any():
            raise InputError(
                f"object {track.object_id}: modal mask is empty in all {masks.shape[0]} frames; "
                "an object must be visible in at least one frame of its window"
            )
    t, h, w = tracks[0].masks.shape  # one shape for all, checked above
    return t, h, w


def check_frames(
    name: str, frames: np.ndarray | None, t: int, h: int, w: int, channels: int | None
):
    """Per-frame images/depth must match the masks' frame count and size."""
    if frames is None:
        return
    expected = (t, h, w) if channels is None else (t, h, w, channels)
    if frames.shape != expected:
        raise InputError(
            f"{name} has shape {frames.shape}, expected {expected} to match the modal masks "
            f"({t} frames of {h}x{w})"
        )
