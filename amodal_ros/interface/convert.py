"""sensor_msgs image <-> numpy, for rclpy messages and rosbags messages alike (same fields).

No rclpy or cv_bridge import: these are the numpy reshapes cv_bridge does, over `encoding`,
`step` and `is_bigendian`, so bag tools work without a ROS install. Errors are ConversionError
(an InputError) naming the encoding or size and what to do.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np

from amodal_ros.core.errors import InputError
from amodal_ros.core.frames import DEPTH_ENCODINGS, MAX_DECODED_PIXELS, MAX_OBJECTS


class ConversionError(InputError):
    """A message that cannot become the array the pipeline needs. `inputs` names the stream
    inputs at fault ("rgb", "masks", "depth"; both for a size mismatch) when known."""

    inputs: tuple[str, ...] = ()


def failure_kind(inputs: tuple[str, ...], err: Exception) -> str:
    """Which way a frame failed: the inputs at fault and the error, numbers left out (a
    compressed image's byte count differs per frame). The node throttles its warnings and
    replay counts failures alike (`--fail-after`) by it."""
    return f"{','.join(inputs)}: {type(err).__name__}: {numbers_left_out(str(err))}"


def numbers_left_out(text: str) -> str:
    """`text` with each number as '#': one kind of message whatever its counts and sizes."""
    return re.sub(r"[0-9]+", "#", text)


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
    raw = msg.data  # rclpy's array.array, rosbags' ndarray, bytes: read in place, no copy
    data = np.frombuffer(bytes(raw) if isinstance(raw, list | tuple) else raw, np.uint8)
    if h == 0 or w == 0:
        raise ConversionError(f"image is empty ({h}x{w}, HxW)")
    # height * step bytes, as cv_bridge asks (the last row's padding may be left out): more
    # is an encoding, height or step that does not describe the data, not a longer image
    if msg.step < row or not msg.step * (h - 1) + row <= len(data) <= msg.step * h:
        raise ConversionError(
            f"{encoding} image {h}x{w} (HxW) needs step >= {row} and {msg.step * h} bytes "
            f"(height * step), got step {msg.step} and {len(data)} bytes: the encoding, size or "
            "step does not match the data (a truncated or mislabelled message)"
        )
    rows = np.lib.stride_tricks.as_strided(data, (h, row), (msg.step, 1))
    array = rows.copy().view(dtype).reshape(h, w, channels)  # a copy: writable, like a padded one
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
    """[H, W, 3] uint8 RGB of a sensor_msgs/CompressedImage (JPEG, PNG or TIFF).

    As image_transport's compressed subscriber reads the format: JPEG and PNG store colour as
    bgr8 ("rgb8; jpeg compressed bgr8", or a bare "jpeg"); TIFF stores the image's own channel
    order ("rgb8; tiff compressed "), which was flipped as if it were BGR.
    """
    import cv2

    data = np.frombuffer(bytes(msg.data), np.uint8)
    # as stored: a JPEG's EXIF rotation would turn the image but not its masks and depth
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = _imdecode(data, flags) if len(data) else None
    if bgr is None:
        raise ConversionError(
            f"compressed image (format {msg.format!r}, {len(data)} bytes) could not be decoded "
            "(truncated or corrupt?); expected JPEG, PNG or TIFF (compressedDepth is not an RGB "
            "stream)"
        )
    encoding, split, compression = str(msg.format).partition(";")
    if split and "compressed bgr" not in compression and encoding.strip().startswith("rgb"):
        return np.ascontiguousarray(bgr)  # stored in the image's own order: RGB already
    return np.ascontiguousarray(bgr[..., ::-1])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PALETTE = 3  # IHDR's colour type of an indexed PNG
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")  # the compressed transport's `format: tiff`
# compressed_depth_image_transport (image_transport_plugins, codec.cpp) prefixes the PNG with its
# `ConfigHeader { int32 format; float32 depthParam[2]; }`, memcpy'd in the publisher's byte order
# (little endian on every platform ROS 2 supports): 12 bytes, then the PNG.
DEPTH_CONFIG_HEADER = struct.Struct("<iff")
# Instance labels in memory: int32 holds every id of mono8, mono16 and 32SC1 exactly, at half
# the bytes of int64 (a 640x480 frame is 1.2 MB; the node keeps a window of them).
LABEL_DTYPE = np.int32


def labels_from_compressed(msg) -> np.ndarray:
    """[H, W] int32 instance labels of a PNG sensor_msgs/CompressedImage (0 = background).

    The PNG is decoded unchanged (`cv2.IMREAD_UNCHANGED`), so 16-bit ids survive: what
    image_transport's `compressed` plugin writes with `format: png` for mono8/mono16/8UC1/
    16UC1 label images (format "16UC1; png compressed ", or a bare "png"). JPEG is refused:
    it is lossy and would change ids at every object edge.
    """
    data = _compressed_bytes(msg)
    if data.startswith(TIFF_SIGNATURES):
        raise ConversionError(
            f"compressed mask image (format {msg.format!r}) is a TIFF, which is not read here: "
            "set the publisher's compressed format to png (ids kept exactly)"
        )
    if not data.startswith(PNG_SIGNATURE):
        raise ConversionError(
            f"compressed mask image (format {msg.format!r}, {len(data)} bytes) is not a PNG; "
            "instance labels need a lossless transport: publish them raw or with the "
            "compressed transport's png format (JPEG changes the ids)"
        )
    palette = len(data) > 25 and data[25] == PNG_PALETTE  # IHDR's colour type
    # IHDR's bit depth: OpenCV scales 1/2/4-bit grey ids (a palette's indices are read as such)
    if len(data) > 25 and data[24] < 8 and not palette:
        raise ConversionError(
            f"compressed mask image (format {msg.format!r}) is a {data[24]}-bit PNG, whose "
            "ids OpenCV scales up to 8 bits (1 would read 255): write label PNGs with 8 or 16 "
            "bits per pixel"
        )
    if palette:  # DAVIS / YouTube-VOS labels
        labels = _palette_indices(data, msg.format)
    else:
        labels = _decode_png(data, "compressed mask image", msg.format)
    if labels.ndim != 2:
        raise ConversionError(
            f"compressed mask image (format {msg.format!r}) is a {labels.shape[2]}-channel PNG; "
            "expected a single-channel instance-label image (8 or 16 bit, pixel = object id)"
        )
    return _few_objects(labels.astype(LABEL_DTYPE), "compressed mask image")


def depth_from_compressed(msg) -> tuple[np.ndarray, str]:
    """([H, W] depth, encoding) of a depth sensor_msgs/CompressedImage, as `depth_from_image`.

    Understands what image_transport writes for depth:
      * `compressedDepth` (compressed_depth_image_transport), format "16UC1; compressedDepth
        png" or "32FC1; compressedDepth png" (older publishers: "...; compressedDepth" or no
        ";" at all): a 12-byte ConfigHeader, then a 16-bit PNG. For 16UC1 the PNG is the
        millimetre image itself; for 32FC1 it is the quantised inverse depth q, and
        depth = depthQuantA / (q - depthQuantB) metres with the header's two parameters,
        q == 0 marking an invalid pixel (NaN here, as the codec decodes it);
      * the `compressed` transport's PNG of a 16UC1/mono16 image ("16UC1; png compressed "),
        taken as millimetres.
    `compressedDepth rvl` is refused (not decoded here), and so is JPEG (lossy).
    """
    data, fmt = _compressed_bytes(msg), str(msg.format)
    encoding, _, compression = fmt.partition(";")
    encoding = encoding.strip()
    if data.startswith(PNG_SIGNATURE):  # the `compressed` transport: a plain PNG
        depth = _decode_png(data, "compressed depth image", fmt)
        if depth.dtype != np.uint16 or depth.ndim != 2:
            raise ConversionError(
                f"compressed depth image (format {fmt!r}) is a {depth.dtype} PNG with shape "
                f"{depth.shape}; expected a single-channel 16-bit PNG of millimetres "
                "(or the compressedDepth transport)"
            )
        return depth, "16UC1"
    if data.startswith(TIFF_SIGNATURES):
        raise ConversionError(
            f"compressed depth image (format {fmt!r}) is a TIFF, which is not read here: set "
            "the publisher's compressed format to png (16UC1), or use the compressedDepth "
            "transport"
        )
    if "rvl" in compression:
        raise ConversionError(
            f"depth image has format {fmt!r}: compressedDepth rvl is not supported; set the "
            "publisher's compressedDepth format to png, or subscribe to the raw depth image"
        )
    has_header = data[DEPTH_CONFIG_HEADER.size :].startswith(PNG_SIGNATURE)
    if "compressedDepth" not in fmt and not has_header:
        raise ConversionError(
            f"compressed depth image (format {fmt!r}, {len(data)} bytes) is neither "
            "compressedDepth nor a 16-bit PNG; depth needs a lossless transport (JPEG is not)"
        )
    if not has_header:
        raise ConversionError(
            f"compressedDepth image (format {fmt!r}) has {len(data)} bytes, not the "
            f"{DEPTH_CONFIG_HEADER.size}-byte header followed by a PNG (truncated or corrupt)"
        )
    _, quant_a, quant_b = DEPTH_CONFIG_HEADER.unpack_from(data)
    # the codec writes depthQuantA = z0 (z0 + 1) > 0: anything else gave NaN, infinite or
    # negative depth without a word
    if encoding == "32FC1" and not (np.isfinite(quant_a) and quant_a > 0 and np.isfinite(quant_b)):
        raise ConversionError(
            f"compressedDepth image (format {fmt!r}) has header parameters depthQuantA "
            f"{quant_a}, depthQuantB {quant_b}, which no codec writes (depthQuantA > 0): a "
            "corrupt message"
        )
    q = _decode_png(data[DEPTH_CONFIG_HEADER.size :], "compressedDepth image", fmt)
    if q.dtype != np.uint16 or q.ndim != 2:
        raise ConversionError(
            f"compressedDepth image (format {fmt!r}) holds a {q.dtype} PNG with shape "
            f"{q.shape}; the codec writes single-channel 16-bit PNGs"
        )
    if encoding in ("16UC1", "mono16"):
        return q, "16UC1"
    if encoding != "32FC1":
        raise ConversionError(
            f"compressedDepth image has encoding {encoding!r} (format {fmt!r}); expected "
            "16UC1 (millimetres) or 32FC1 (metres)"
        )
    # float32 arithmetic, as the codec's decoder does it: depth = A / (q - B), q == 0 invalid
    depth = np.full(q.shape, np.nan, np.float32)
    valid = q != 0
    depth[valid] = np.float32(quant_a) / (q[valid].astype(np.float32) - np.float32(quant_b))
    return depth, "32FC1"


def _compressed_bytes(msg) -> bytes:
    return msg.data.tobytes() if isinstance(msg.data, np.ndarray) else bytes(msg.data)


def _imdecode(data: np.ndarray, flags: int) -> np.ndarray | None:
    """cv2.imdecode, None for what it cannot decode: it returns None for most corrupt data but
    raises cv2.error for some (a header claiming an image too large to allocate). A header
    claiming more than MAX_DECODED_PIXELS is refused before decoding: OpenCV allows 2^30, so
    a 1 MB message could take gigabytes (a decompression bomb)."""
    import cv2

    _refuse_bombs(data)
    if _png_damaged(data):
        return None
    try:
        return cv2.imdecode(data, flags)
    except cv2.error:
        return None


def _png_damaged(data: np.ndarray) -> bool:
    """Whether PNG `data` has a chunk cut short or a checksum that does not match (False for
    any other format): checked here because libpng says it on stderr, a line per message past
    the node's throttled log (30 lines a second from a damaged stream)."""
    if data[:8].tobytes() != PNG_SIGNATURE:
        return False
    view, at = memoryview(data), 8
    while at + 12 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, at)
        end = at + 12 + length
        if end > len(view):
            return True  # cut short
        if zlib.crc32(view[at + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            return True  # changed on the way
        if kind == b"IEND":
            return False
        at = end
    return True  # no IEND chunk: cut short


def _refuse_bombs(data: np.ndarray) -> None:
    claimed = _claimed_pixels(data)
    if claimed > MAX_DECODED_PIXELS:
        raise ConversionError(
            f"compressed image claims {claimed} pixels or more, more than any camera's "
            f"({MAX_DECODED_PIXELS}); not decoded"
        )


def _claimed_pixels(data: np.ndarray) -> int:
    """Width x height a PNG, JPEG or TIFF header states, read from the header itself (what a
    library cannot parse, libpng or libjpeg may still decode). Other formats are refused: the
    compressed transport writes none, and OpenCV decodes them (a 1 kB RLE BMP claiming
    9000 x 9000 gave 243 MB of pixels made up from nothing)."""
    head = data[:8].tobytes()
    if head == PNG_SIGNATURE:  # IHDR is the first chunk: length, b"IHDR", width, height
        if len(data) < 24 or data[12:16].tobytes() != b"IHDR":
            raise ConversionError("PNG without its IHDR header chunk first; not decoded")
        width, height = struct.unpack(">II", data[16:24].tobytes())
        return width * height
    if head[:2] == b"\xff\xd8":
        size = _jpeg_size(data.tobytes())
        if size is None:
            raise ConversionError("JPEG without a frame header (SOF) before its data; not decoded")
        return size[0] * size[1]
    if head[:4] in TIFF_SIGNATURES:
        size = _tiff_size(data.tobytes())
        if size is None:
            raise ConversionError(
                "TIFF without its width and height in its first IFD; not decoded"
            )
        return size[0] * size[1]
    raise ConversionError(
        f"compressed image ({len(data)} bytes) could not be decoded: it is neither JPEG, PNG "
        "nor TIFF (what image_transport's compressed transport writes)"
    )


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a TIFF's first image file directory (ImageLength, ImageWidth)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return None
    (entries,) = struct.unpack_from(order + "H", data, ifd)
    size: dict[int, int] = {}
    for at in range(ifd + 2, min(ifd + 2 + 12 * entries, len(data) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag in (256, 257):  # ImageWidth, ImageLength: a SHORT (3) or a LONG
            size[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), data, at + 8)[0]
    return (size[257], size[256]) if len(size) == 2 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) of a JPEG's first frame header (SOF0-15 but DHT, JPG, DAC markers)."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:  # extraneous bytes before a marker: libjpeg skips them too
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker == 0xDA:  # start of scan: no frame header came before the data
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(
                data[i + 7 : i + 9], "big"
            )
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _decode_png(data: bytes, what: str, fmt: str) -> np.ndarray:
    import cv2

    image = _imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ConversionError(
            f"{what} (format {fmt!r}, {len(data)} bytes) could not be decoded as PNG "
            "(truncated or corrupt)"
        )
    return image


def _palette_indices(data: bytes, fmt: str) -> np.ndarray:
    """An indexed PNG's indices, the ids (OpenCV would give the palette's colours), as the
    folder reader takes them."""
    from PIL import Image

    _refuse_bombs(np.frombuffer(data, np.uint8))
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image)
    except (OSError, ValueError) as err:
        raise ConversionError(
            f"compressed mask image (format {fmt!r}, {len(data)} bytes) could not be decoded as "
            f"a palette PNG ({err}; truncated or corrupt)"
        ) from None


def labels_from_image(msg) -> np.ndarray:
    """[H, W] int32 instance labels (0 = background) from mono8/mono16/32SC1."""
    if msg.encoding not in LABEL_ENCODINGS:
        raise ConversionError(
            f"mask image has encoding {msg.encoding!r}; expected an instance-label image "
            f"{LABEL_ENCODINGS} with pixel = object id, 0 = background"
        )
    labels = image_to_array(msg).astype(LABEL_DTYPE)
    if (labels < 0).any():
        raise ConversionError("mask image has negative labels; ids must be >= 0")
    return _few_objects(labels, "mask image")


def _few_objects(labels: np.ndarray, what: str) -> np.ndarray:
    """`labels`, refused when they hold more than MAX_OBJECTS ids: a depth image remapped
    onto the mask topic (16UC1 is a label encoding too) or noise, each value an object."""
    top = int(labels.max(initial=0))
    if top <= MAX_OBJECTS:  # ids 1..top: no more objects than that (the common case, cheap)
        return labels
    if top < 1 << 16:
        count = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
    else:
        count = int(np.unique(labels[labels > 0]).size)
    if count > MAX_OBJECTS:
        raise ConversionError(
            f"{what} holds {count} ids, more than {MAX_OBJECTS} objects: instance labels give "
            "each object one id (0 = background); is the mask topic remapped to a depth image, "
            "a semantic map or a lossy (JPEG) stream?"
        )
    return labels


def depth_from_image(msg) -> tuple[np.ndarray, str]:
    """([H, W] depth, encoding): 32FC1 metres or 16UC1 millimetres, as the camera sent it
    (mono16, some drivers' name for 16-bit depth, read as 16UC1, as compressedDepth's is)."""
    if msg.encoding == "mono16":
        return image_to_array(msg), "16UC1"
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ConversionError(
            f"depth image has encoding {msg.encoding!r}; expected 32FC1 (metres) or "
            "16UC1 / mono16 (millimetres) registered to the RGB image"
        )
    return image_to_array(msg), msg.encoding


def check_metres(depth: np.ndarray) -> None:
    """Refuse 32FC1 depth that is millimetres (a driver's floats of mm): every 3D extent would
    be 1000x too large with reason EXTENT_OK. A sample of pixels decides (it runs per frame)."""
    from amodal_ros.depth.camera import millimetres_as_metres

    median = millimetres_as_metres(depth[::8, ::8])
    if median is not None:
        raise ConversionError(
            f"depth image is 32FC1 (metres) and its median is {median:.0f} m: millimetres "
            "sent as floats? Publish metres, or 16UC1 millimetres"
        )


def image_fields(array: np.ndarray, encoding: str) -> dict:
    """Field values (height, width, encoding, is_bigendian, step, data as a uint8 array) of a
    sensor_msgs/Image holding `array`; the header is left to the caller."""
    dtype, channels = ENCODINGS[encoding]
    _check_fits(np.asarray(array), np.dtype(dtype), encoding)
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


def _check_fits(array: np.ndarray, dtype: np.dtype, encoding: str) -> None:
    """Refuse values an integer encoding cannot hold (the cast would wrap 300 to 44 in mono8,
    or truncate 1.7 to 1) instead of writing them wrong."""
    if not np.issubdtype(dtype, np.integer) or np.can_cast(array.dtype, dtype) or not array.size:
        return
    info = np.iinfo(dtype)
    lo, hi = array.min(), array.max()
    fractional = np.issubdtype(array.dtype, np.floating) and not np.all(np.mod(array, 1) == 0)
    if lo < info.min or hi > info.max or fractional:
        raise ValueError(
            f"values {lo}..{hi} ({array.dtype}) do not fit encoding {encoding}: it holds "
            f"integers {info.min}..{info.max}; scale or round them first"
        )


def check_same_size(rgb: np.ndarray, other: np.ndarray, what: str) -> None:
    """Raise ConversionError unless `other` has the RGB image's height and width."""
    if rgb.shape[:2] != other.shape[:2]:
        raise ConversionError(
            f"size mismatch: RGB is {rgb.shape[0]}x{rgb.shape[1]} (HxW) but {what} is "
            f"{other.shape[0]}x{other.shape[1]}; {what} must be registered to the RGB image"
        )
