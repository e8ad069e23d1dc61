"""Test-side encoders of the sensor_msgs/CompressedImage payloads image_transport's plugins
publish, written from the plugins' encoders (ros-perception/image_transport_plugins) so that
recorded bags and live topics can be imitated without ROS:

- compressed_depth_image_transport, `encodeCompressedDepthImage` (src/codec.cpp): format
  "<encoding>; compressedDepth png"; data = ConfigHeader {int32 format = INV_DEPTH (0);
  float32 depthParam[2]} (12 bytes, little endian) + a 16-bit PNG. 16UC1: the millimetre image,
  values above depth_max * 1000 set to 0, depthParam left 0. 32FC1: depthQuantA = z0 (z0 + 1),
  depthQuantB = 1 - depthQuantA / depth_max (float32, z0 = depth_quantization), the PNG holds
  q = (unsigned short)(depthQuantA / depth + depthQuantB) where depth < depth_max, else 0.
  Defaults of the plugin's parameters: depth_max 10.0 m, depth_quantization 100.0, png_level 9.
- compressed_image_transport, `CompressedPublisher::publish`: format "<encoding>; png
  compressed " (plus the target format "bgr8"/"bgr16" for colour images), data = the PNG.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

INV_DEPTH = 0  # compressed_depth_image_transport's compressionFormat of every message
PNG_LEVEL = 9


def _png(a: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    assert ok
    return buf.tobytes()


def _float_to_ushort(x: np.ndarray) -> np.ndarray:
    """The C++ `unsigned short = float` of the encoder as gcc compiles it on x86-64: truncation
    to a 32-bit int (cvttss2si; inf, NaN and out-of-range give INT_MIN), then the low 16 bits.
    So 0 m depth (inf) becomes 0 (invalid) and depths under about 0.15 m wrap around."""
    finite = np.isfinite(x) & (np.abs(x) < 2.0**31)
    as_int = np.where(finite, np.trunc(np.where(finite, x, 0)), -(2.0**31)).astype(np.int64)
    return (as_int & 0xFFFF).astype(np.uint16)


def compressed_depth(
    depth: np.ndarray,
    encoding: str,
    depth_max: float = 10.0,
    depth_quantization: float = 100.0,
    header_params: tuple[float, float] = (0.0, 0.0),
) -> tuple[str, bytes, np.ndarray]:
    """(format, data, q) of a compressedDepth message of `depth` ([H, W] float32 m for 32FC1,
    uint16 mm for 16UC1); q is the 16-bit image inside the PNG. `header_params` are the
    depthParam a 16UC1 message carries (unused by the decoder; old publishers left garbage)."""
    if encoding == "32FC1":
        z0 = np.float32(depth_quantization)
        quant_a = z0 * (z0 + np.float32(1.0))
        quant_b = np.float32(1.0) - quant_a / np.float32(depth_max)
        q = np.zeros(depth.shape, np.uint16)
        near = depth < np.float32(depth_max)  # NaN compares false: 0, like a far pixel
        with np.errstate(divide="ignore", invalid="ignore"):
            x = quant_a / depth[near].astype(np.float32) + quant_b
        q[near] = _float_to_ushort(x)
        params = (float(quant_a), float(quant_b))
    elif encoding == "16UC1":
        q = depth.astype(np.uint16).copy()
        q[q > np.uint16(int(depth_max * 1000.0))] = 0  # the plugin's max-depth filter
        params = header_params
    else:
        raise ValueError(f"compressedDepth encodes 32FC1 or 16UC1, not {encoding!r}")
    data = struct.pack("<iff", INV_DEPTH, *params) + _png(q)
    return f"{encoding}; compressedDepth png", data, q


def png_compressed(image: np.ndarray, encoding: str) -> tuple[str, bytes]:
    """(format, data) of the `compressed` transport with format png: single-channel images as
    they are (8 or 16 bit), colour ones as BGR."""
    if image.ndim == 3:
        bits = 8 * image.dtype.itemsize
        bgr = image[..., 2::-1] if encoding.startswith("rgb") else image[..., :3]
        return f"{encoding}; png compressed bgr{bits}", _png(np.ascontiguousarray(bgr))
    return f"{encoding}; png compressed ", _png(image)
