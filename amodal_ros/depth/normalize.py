"""Window normalisation shared by every depth source (numpy only)."""

from __future__ import annotations

import numpy as np

from amodal_ros.core.errors import InputError


def normalize_window(inverse_depth: np.ndarray) -> np.ndarray:
    """Min-max normalise relative inverse depth over the whole window to [-1, 1].

    As the reference: one min and max over all frames together, so relative depth between
    frames is kept. Args: inverse_depth [T, H, W] float, finite. Returns [T, H, W] float32.
    """
    x = np.asarray(inverse_depth, dtype=np.float32)
    if x.ndim != 3:
        raise InputError(f"depth must be [T, H, W], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(
            "depth has NaN or inf values; fill invalid pixels first (see CameraDepth)"
        )
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:
        return np.zeros_like(x)
    return ((x - lo) / (hi - lo) * 2.0 - 1.0).astype(np.float32)
