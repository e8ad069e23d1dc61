"""sensor_msgs image <-> numpy, for rclpy messages and rosbags messages alike (same fields).

No rclpy or cv_bridge import: these are the numpy reshapes cv_bridge does, over `encoding`,
`step` and `is_bigendian`, so bag tools work without a ROS install. Errors are ConversionError
(an InputError) naming the encoding or size and what to do.
"""

from __future__ import annotations

import numpy as np

from amodal_ros.core.errors import InputError


class ConversionError(InputError):
    """A message that cannot become the array the pipeline needs. `inputs` names the stream
    inputs at fault ("rgb", "masks", "depth"; both for a size mismatch) when known."""

    inputs: tuple[str, ...] = ()


# encoding -> (dtype, channels)
ENCODINGS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "8UC1": (np.uint8, 1),
    "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1),
    "32SC1": (np.int32, 1),
    "32FC1": (np.float32, 1),
}
RGB_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
LABEL_ENCODINGS = ("mono8", "8UC1", "mono16", "16UC1", "32SC1")
DEPTH_ENCODINGS = ("32FC1", "16UC1")


def image_to_array(msg) -> np.ndarray:
    """[H, W] or [H, W, C] array of a sensor_msgs/Image, honouring step and endianness."""
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ConversionError(
            f"image encoding {encoding!r} is not supported; supported: {sorted(ENCODINGS)}"
        )
    dtype, channels = ENCODINGS[encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    h, w = int(msg.height), int(msg.width)
    row = w * channels * dtype.itemsize
    data = np.frombuffer(
        bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data, np.uint8
    )
    if h == 0 or w == 0:
        raise ConversionError(f"image is empty ({h}x{w}, HxW)")
    if msg.step < row or len(data) < msg.step * (h - 1) + row:
        raise ConversionError(
            f"{encoding} image {h}x{w} (HxW) needs step >= {row} and {row * h} bytes, got step "
            f"{msg.step} and {len(data)} bytes (truncated or corrupt message)"
        )
    rows = np.lib.stride_tricks.as_strided(data, (h, row), (msg.step, 1))
    array = np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    return array[..., 0] if channels == 1 else array


def rgb_from_image(msg) -> np.ndarray:
    """[H, W, 3] uint8 RGB from rgb8/bgr8/rgba8/bgra8/mono8."""
    if msg.encoding not in RGB_ENCODINGS:
        raise ConversionError(
            f"RGB image has encoding {msg.encoding!r}; expected one of {RGB_ENCODINGS}"
        )
    a = image_to_array(msg)
    if msg.encoding == "mono8":
        return np.repeat(a[..., None], 3, axis=2)
    if msg.encoding.startswith("bgr"):
        a = a[..., 2::-1]
    return np.ascontiguousarray(a[..., :3])


def rgb_from_compressed(msg) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a sensor_msgs/CompressedImage (JPEG or PNG)."""
    import cv2

    data = np.frombuffer(bytes(msg.data), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    if bgr is None:
        raise ConversionError(
            f"compressed image (format {msg.format!r}, {len(data)} bytes) could not be decoded; "
            "expected JPEG or PNG (compressedDepth is not an RGB stream)"
        )
    return np.ascontiguousarray(bgr[..., ::-1])


def labels_from_image(msg) -> np.ndarray:
    """[H, W] int64 instance labels (0 = background) from mono8/mono16/32SC1."""
    if msg.encoding not in LABEL_ENCODINGS:
        raise ConversionError(
            f"mask image has encoding {msg.encoding!r}; expected an instance-label image "
            f"{LABEL_ENCODINGS} with pixel = object id, 0 = background"
        )
    labels = image_to_array(msg).astype(np.int64)
    if (labels < 0).any():
        raise ConversionError("mask image has negative labels; ids must be >= 0")
    return labels


def depth_from_image(msg) -> tuple[np.ndarray, str]:
    """([H, W] depth, encoding): 32FC1 metres or 16UC1 millimetres, as the camera sent it."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ConversionError(
            f"depth image has encoding {msg.encoding!r}; expected 32FC1 (metres) or "
            "16UC1 (millimetres) registered to the RGB image"
        )
    return image_to_array(msg), msg.encoding


def image_fields(array: np.ndarray, encoding: str) -> dict:
    """Field values (height, width, encoding, is_bigendian, step, data as a uint8 array) of a
    sensor_msgs/Image holding `array`; the header is left to the caller."""
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    h, w = array.shape[:2]
    if (array.shape[2] if array.ndim == 3 else 1) != channels:
        raise ValueError(f"array of shape {array.shape} does not fit encoding {encoding}")
    return dict(
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * channels * array.dtype.itemsize,
        data=array.view(np.uint8).reshape(-1),
    )


def check_same_size(rgb: np.ndarray, other: np.ndarray, what: str) -> None:
    """Raise ConversionError unless `other` has the RGB image's height and width."""
    if rgb.shape[:2] != other.shape[:2]:
        raise ConversionError(
            f"size mismatch: RGB is {rgb.shape[0]}x{rgb.shape[1]} (HxW) but {what} is "
            f"{other.shape[0]}x{other.shape[1]}; {what} must be registered to the RGB image"
        )
