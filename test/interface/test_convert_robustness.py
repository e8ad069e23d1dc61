"""Malformed inputs the node's conversions must refuse with a ConversionError naming the input
(found by fuzzing frame_from_messages with real sensor_msgs messages): each was accepted."""

from __future__ import annotations

import array
import io
import struct

import cv2
import numpy as np
import pytest
from image_transport_encoders import compressed_depth, png_compressed

from amodal_ros.interface.convert import (
    ConversionError,
    depth_from_compressed,
    image_fields,
    labels_from_compressed,
    rgb_from_compressed,
)
from amodal_ros.interface.messages import frame_from_messages

sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="use scripts/with_env.sh")
std_msgs = pytest.importorskip("std_msgs.msg", reason="use scripts/with_env.sh")
CompressedImage, Image, Header = sensor_msgs.CompressedImage, sensor_msgs.Image, std_msgs.Header


def image(a: np.ndarray, encoding: str):
    """A real sensor_msgs/Image, data as array.array as rclpy delivers it."""
    f = image_fields(a, encoding)
    f["data"] = array.array("B", f["data"].tobytes())
    return Image(header=Header(frame_id="cam"), **f)


def compressed(fmt: str, data: bytes):
    return CompressedImage(header=Header(frame_id="cam"), format=fmt, data=array.array("B", data))


def depth_like_mm(h: int = 60, w: int = 80) -> np.ndarray:
    """A 16UC1 depth image: a slanted floor, 0.5 .. 5.3 m, thousands of distinct values."""
    return (500 + np.arange(h * w, dtype=np.uint16)).reshape(h, w)


def frame_inputs(masks, h: int = 60, w: int = 80) -> dict:
    return {
        "stamp_ns": 1_000_000_000,
        "rgb": image(np.zeros((h, w, 3), np.uint8), "rgb8"),
        "masks": masks,
        "depth": image(np.full((h, w), 1500, np.uint16), "16UC1"),
    }


def test_a_depth_image_on_the_mask_topic_is_refused_not_taken_for_thousands_of_objects():
    """mask_topic remapped to the depth topic (16UC1 is a label encoding too), or noise in a
    mono16 mask: every distinct millimetre value became an object. At 640x480 a real depth
    image gave 2165 ids, and the processor allocates ~1.8 MB per object per published frame
    (4 GB) plus two mono8 images per object in the AmodalObjectArray: the node runs out of
    memory. The folder CLI refuses more than 256 ids (cli/folders.py MAX_OBJECTS)."""
    m = frame_inputs(image(depth_like_mm(), "16UC1"))
    with pytest.raises(ConversionError) as err:
        frame_from_messages(m)
    assert err.value.inputs == ("masks",)
    # the same over the compressed transport (its png of a 16UC1 depth image is a 16-bit PNG)
    m["masks"] = compressed(*png_compressed(depth_like_mm(), "16UC1"))
    with pytest.raises(ConversionError) as err:
        frame_from_messages(m, compressed={"masks"})
    assert err.value.inputs == ("masks",)


def bmp_rle8_claiming(side: int) -> bytes:
    """A 1 kB 8-bit BMP whose header claims side x side, RLE8-compressed: its only code is
    'end of bitmap', so OpenCV decodes a side x side image of zeros from nothing."""
    bmp = bytearray(cv2.imencode(".bmp", np.zeros((4, 4), np.uint8))[1].tobytes())
    bmp[18:26] = struct.pack("<ii", side, side)  # biWidth, biHeight
    bmp[30:34] = struct.pack("<I", 1)  # biCompression = BI_RLE8
    offset = struct.unpack_from("<I", bmp, 10)[0]
    bmp = bmp[:offset] + b"\x00\x01"  # end of bitmap
    bmp[2:6] = struct.pack("<I", len(bmp))
    bmp[34:38] = struct.pack("<I", 2)  # biSizeImage
    return bytes(bmp)


def tiff_of_zeros(side: int) -> bytes:
    from PIL import Image as PilImage

    buffer = io.BytesIO()
    PilImage.new("L", (side, side)).save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("rgb8; tiff compressed ", tiff_of_zeros),  # the compressed transport's tiff format
        ("bgr8; jpeg compressed bgr8", bmp_rle8_claiming),  # any bytes the decoder takes
    ],
    ids=["tiff", "bmp-rle8"],
)
def test_a_decompression_bomb_in_another_format_than_png_or_jpeg_is_refused(fmt, make):
    """MAX_DECODED_PIXELS is checked against PNG and JPEG headers only: a 118 kB TIFF (a
    format rgb_from_compressed documents) or a 1 kB RLE8 BMP claiming 9000 x 9000 was
    decoded into 243 MB of RGB in the subscriber callback (OpenCV allows 2^30 pixels: 3 GB),
    the BMP's pixels made up from nothing."""
    data = make(9000)
    assert len(data) < 200_000
    with pytest.raises(ConversionError):
        rgb_from_compressed(compressed(fmt, data))


@pytest.mark.parametrize(
    ("quant_a", "quant_b"),
    [(float("nan"), -1009.0), (float("inf"), -1009.0), (0.0, -1009.0), (-10100.0, -1009.0)],
)
def test_a_compressed_depth_header_that_no_codec_writes_is_refused(quant_a, quant_b):
    """compressedDepth 32FC1 depth is depthQuantA / (q - depthQuantB) with the header's two
    floats; the codec writes depthQuantA = z0 (z0 + 1) > 0. A corrupt header (NaN, inf, 0 or
    negative depthQuantA) gave a frame of all-NaN, +inf ('beyond range', inverse depth 0),
    0 or negative depth without any error."""
    _, data, _ = compressed_depth(np.full((4, 5), 1.5, np.float32), "32FC1")
    corrupt = struct.pack("<iff", 0, quant_a, quant_b) + data[12:]
    with pytest.raises(ConversionError, match="compressedDepth"):
        depth_from_compressed(compressed("32FC1; compressedDepth png", corrupt))


def test_a_palette_label_png_gives_its_indices_as_the_folder_reader_does():
    """Palette PNGs are the label format of DAVIS and YouTube-VOS, which the folder reader
    reads as their indices (cli/folders.py _read_label); over the compressed transport the
    same PNG was refused as 'a 3-channel PNG', which it is not (OpenCV expands the palette)."""
    from PIL import Image as PilImage

    ids = np.zeros((4, 6), np.uint8)
    ids[1:3, 1:3], ids[0, 5] = 1, 7
    palette = PilImage.fromarray(ids, "P")
    palette.putpalette([0, 0, 0, 128, 0, 0] + [0, 128, 0] * 254)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    labels = labels_from_compressed(compressed("png", buffer.getvalue()))
    np.testing.assert_array_equal(labels, ids)


def palette_png(ids: np.ndarray, claim: tuple[int, int] | None = None) -> bytes:
    """An indexed PNG of `ids`; its header claiming `claim` (height, width) pixels if given."""
    import zlib

    from PIL import Image as PilImage

    palette = PilImage.fromarray(ids, "P")
    palette.putpalette([0, 0, 0] + [200, 0, 0] * 255)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    png = buffer.getvalue()
    if claim is None:
        return png
    ihdr = struct.pack(">II", claim[1], claim[0]) + png[24:29]
    return png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]


def test_a_palette_png_claiming_more_pixels_than_any_camera_is_not_decoded():
    """Palette PNGs are read by Pillow, not OpenCV: the header's size is checked first too."""
    png = palette_png(np.zeros((4, 4), np.uint8), claim=(100_000, 100_000))
    with pytest.raises(ConversionError, match="more than any camera's"):
        labels_from_compressed(compressed("png", png))


@pytest.mark.parametrize("encoding", ["mono16", "32SC1"])
def test_as_many_ids_as_objects_pass_and_one_more_is_refused(encoding):
    """MAX_OBJECTS ids pass (any values: a tracker's ids grow large), one more is refused;
    32SC1 ids past 16 bits are counted too."""
    from amodal_ros.core.frames import MAX_OBJECTS
    from amodal_ros.interface.convert import labels_from_image

    dtype = np.uint16 if encoding == "mono16" else np.int32
    base = 300 if encoding == "mono16" else 70_000  # past the cheap `max <= MAX_OBJECTS` case
    ids = np.zeros((20, 20), dtype)
    ids.ravel()[:MAX_OBJECTS] = base + np.arange(MAX_OBJECTS) * 7
    assert len(np.unique(labels_from_image(image(ids, encoding)))) == MAX_OBJECTS + 1
    ids.ravel()[MAX_OBJECTS] = 1
    with pytest.raises(ConversionError, match=f"{MAX_OBJECTS + 1} ids, more than"):
        labels_from_image(image(ids, encoding))


def test_a_tiff_without_its_size_is_not_decoded():
    """A TIFF's size is read from its first directory before decoding; one without it (cut
    short) is refused as a JPEG without its frame header is."""
    data = tiff_of_zeros(8)
    with pytest.raises(ConversionError, match="TIFF without its width and height"):
        rgb_from_compressed(compressed("rgb8; tiff compressed ", data[:8] + b"\x00" * 4))
    assert rgb_from_compressed(compressed("rgb8; tiff compressed ", data)).shape == (8, 8, 3)


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_a_damaged_png_is_refused_without_libpng_writing_to_stderr(damage, capfd):
    """libpng printed "libpng error: IDAT: CRC error" to stderr for each damaged message: a
    line per frame of a damaged stream, past the node's throttled log."""
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    good = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()  # stored as bgr8
    assert np.array_equal(rgb_from_compressed(compressed("rgb8; png compressed bgr8", good)), rgb)
    flipped = good[:300] + bytes([good[300] ^ 0xFF]) + good[301:]
    bad = flipped if damage == "flipped" else good[:-20]
    pngs = {
        "rgb": lambda: rgb_from_compressed(compressed("rgb8; png compressed bgr8", bad)),
        "masks": lambda: labels_from_compressed(compressed("mono8; png compressed mono8", bad)),
        "depth": lambda: depth_from_compressed(
            compressed("16UC1; compressedDepth png", struct.pack("<iff", 0, 0.0, 0.0) + bad)
        ),
    }
    capfd.readouterr()
    for convert in pngs.values():
        with pytest.raises(ConversionError, match="truncated or corrupt"):
            convert()
    assert capfd.readouterr().err == ""
