"""RGB-D camera depth (metres or millimetres) -> inverse depth, invalid pixels filled."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal_ros.core.errors import InputError, UnusableDepthError
from amodal_ros.core.frames import DEPTH_ENCODINGS

# m; nearer is no measurement: depth cameras start at 0.07 m (RealSense D405) or farther. A
# stray reading nearer (a specular glint: 16UC1 values of a few mm) became the window's
# largest inverse depth, and min-max normalisation squeezed every real surface to -1; a
# denormal 32FC1 value gave an infinite inverse depth and failed the whole window
MIN_DEPTH_M = 0.05


def depth_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """float32 metres of a depth image of a supported `encoding` (invalid values stay 0, NaN
    or inf: callers test `isfinite(d) & (d > 0)`).

    Raises:
        InputError: an encoding that is not a depth encoding.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise InputError(
            f"depth encoding {encoding!r} is not supported; "
            "use 32FC1 (metres) or 16UC1 (millimetres)"
        )
    return depth.astype(np.float32) * np.float32(DEPTH_ENCODINGS[encoding])


def inverse_depth_from_camera(depth: np.ndarray, encoding: str) -> np.ndarray:
    """Camera depth -> inverse depth (1/m), the quantity Depth Anything predicts.

    Args:
        depth: [T, H, W] (or [H, W]) float metres for "32FC1", uint16 millimetres for "16UC1".
            0, NaN, -inf and values nearer than MIN_DEPTH_M are invalid (no return); +inf
            is beyond the camera's range (REP 117), inverse depth 0.
        encoding: "32FC1" or "16UC1".

    Returns:
        float32 array of the same shape; each invalid pixel takes the value of the nearest valid
        pixel of its frame, a frame with no valid pixel takes the window's farthest value.

    Raises:
        InputError: unknown encoding, or no valid pixel in the whole window.
    """
    single = depth.ndim == 2
    frames = [inverse_depth_frame(frame, encoding) for frame in (depth[None] if single else depth)]
    inverse = fill_empty_frames(frames)
    return inverse[0] if single else inverse


def valid_depth(metres: np.ndarray) -> np.ndarray:
    """Where depth in metres is a return: finite and at least MIN_DEPTH_M."""
    return np.isfinite(metres) & (metres >= MIN_DEPTH_M)


MAX_MEDIAN_DEPTH_M = 100.0  # a depth camera's scene is nearer; millimetres read as metres not


def millimetres_as_metres(metres: np.ndarray) -> float | None:
    """The median of float depth's returns when it is past MAX_MEDIAN_DEPTH_M, millimetres
    stored as floats (1500.0 read as 1.5 km, boxes 1000x too large); else None."""
    returns = metres[valid_depth(metres)]
    if not returns.size:
        return None
    median = float(np.median(returns))
    return median if median > MAX_MEDIAN_DEPTH_M else None


def measured_inverse_depth(depth: np.ndarray, encoding: str) -> np.ndarray:
    """[H, W] float32 inverse depth (1/m) of a depth image where the camera measured it: 0
    where it saw nothing within its range (+inf, REP 117: a simulator's sky, open space), NaN
    where it had no return (`valid_depth`; -inf, too near, is none either)."""
    metres = depth_metres(depth, encoding)
    valid = valid_depth(metres)
    inverse = np.full(metres.shape, np.nan, np.float32)
    inverse[valid] = np.float32(1.0) / metres[valid]
    inverse[metres == np.inf] = 0.0
    return inverse


def inverse_depth_frame(depth: np.ndarray, encoding: str) -> np.ndarray:
    """One [H, W] frame of `inverse_depth_from_camera`, on its own so that a sliding window
    converts only its new frames; all NaN when the frame has no valid pixel (its value comes
    from the whole window: `fill_empty_frames`)."""
    inverse = measured_inverse_depth(depth, encoding)
    valid = ~np.isnan(inverse)
    return _fill_nearest(inverse, valid) if valid.any() else inverse


def fill_empty_frames(frames: list[np.ndarray]) -> np.ndarray:
    """[T, H, W] of `inverse_depth_frame`s: a frame with no valid pixel (all NaN) takes the
    window's farthest value (a filled frame's minimum is its valid pixels' minimum).

    Raises:
        UnusableDepthError: no frame has a valid pixel.
    """
    inverse = np.stack(frames)
    empty = np.isnan(inverse).all(axis=(1, 2))
    if empty.all():
        raise UnusableDepthError(
            f"depth has no valid pixel in the window (all 0, NaN, -inf or nearer than "
            f"{MIN_DEPTH_M} m); check the camera depth (its topic or folder) "
            "or run without depth using Depth Anything (--depth-model)"
        )
    if empty.any():
        inverse[empty] = inverse[~empty].min()
    return inverse


def _fill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if valid.all():
        return values
    # Distance transform to the nearest valid pixel, with the label of that pixel.
    _, labels = cv2.distanceTransformWithLabels(
        (~valid).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(valid)
    lookup = np.zeros(labels.max() + 1, np.float32)
    lookup[labels[ys, xs]] = values[ys, xs]
    return lookup[labels]


@dataclass
class CameraDepth:
    """Depth source for RGB-D cameras: registered depth images -> relative inverse depth."""

    encoding: str = "32FC1"

    def __post_init__(self) -> None:
        if self.encoding not in DEPTH_ENCODINGS:
            raise ValueError(
                f"encoding must be one of {sorted(DEPTH_ENCODINGS)}, got {self.encoding!r}"
            )

    def inverse_depth(self, frames: np.ndarray) -> np.ndarray:
        """[T, H, W] depth images -> [T, H, W] float32 inverse depth, invalid pixels filled."""
        return inverse_depth_from_camera(frames, self.encoding)
