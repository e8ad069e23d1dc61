"""RGB-D camera depth (metres or millimetres) -> inverse depth, invalid pixels filled."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal_ros.core.errors import InputError

# ROS image encodings of depth images and the factor that turns their values into metres.
DEPTH_ENCODINGS = {"32FC1": 1.0, "16UC1": 1e-3}


def inverse_depth_from_camera(depth: np.ndarray, encoding: str) -> np.ndarray:
    """Camera depth -> inverse depth (1/m), the quantity Depth Anything predicts.

    Args:
        depth: [T, H, W] (or [H, W]) float metres for "32FC1", uint16 millimetres for "16UC1".
            0, NaN, inf and negative values are invalid (no return).
        encoding: "32FC1" or "16UC1".

    Returns:
        float32 array of the same shape; each invalid pixel takes the value of the nearest valid
        pixel of its frame, a frame with no valid pixel takes the window's farthest value.

    Raises:
        InputError: unknown encoding, or no valid pixel in the whole window.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise InputError(
            f"depth encoding {encoding!r} is not supported; "
            "use 32FC1 (metres) or 16UC1 (millimetres)"
        )
    single = depth.ndim == 2
    metres = np.atleast_3d(depth.astype(np.float64) * DEPTH_ENCODINGS[encoding])
    metres = metres[None] if single else metres
    valid = np.isfinite(metres) & (metres > 0)
    if not valid.any():
        raise InputError(
            "depth has no valid pixel in the window (all 0, NaN or inf); check the depth topic "
            "or run without depth using Depth Anything (--depth-model)"
        )
    inverse = np.zeros(metres.shape, np.float32)
    inverse[valid] = 1.0 / metres[valid]
    farthest = float(inverse[valid].min())
    for t in range(len(inverse)):
        inverse[t] = _fill_nearest(inverse[t], valid[t], farthest)
    return inverse[0] if single else inverse


def _fill_nearest(values: np.ndarray, valid: np.ndarray, default: float) -> np.ndarray:
    if valid.all():
        return values
    if not valid.any():
        return np.full_like(values, default)
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
