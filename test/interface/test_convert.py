"""sensor_msgs image <-> numpy without cv_bridge: encodings, step, endianness, errors."""

from __future__ import annotations

import array
import struct
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import run_without
from image_transport_encoders import compressed_depth, png_compressed

from amodal_ros.core.errors import InputError
from amodal_ros.interface.convert import (
    ENCODINGS,
    ConversionError,
    depth_from_compressed,
    depth_from_image,
    image_fields,
    image_to_array,
    labels_from_compressed,
    labels_from_image,
    rgb_from_compressed,
    rgb_from_image,
)
from amodal_ros.interface.messages import FrameIdCheck, frame_from_messages

try:
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header

    _SENSOR_MSGS = ""
except ImportError as err:
    Image = CompressedImage = Header = None
    _SENSOR_MSGS = f"sensor_msgs is not importable ({err}); use scripts/with_env.sh"

try:
    from cv_bridge import CvBridge

    _CV_BRIDGE = ""
except ImportError as err:
    CvBridge = None
    _CV_BRIDGE = f"cv_bridge is not importable ({err}); it is not a dependency of this package"

needs_sensor_msgs = pytest.mark.skipif(bool(_SENSOR_MSGS), reason=_SENSOR_MSGS)

H, W = 5, 7


def sample(encoding: str, h: int = H, w: int = W) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(zlib.crc32(encoding.encode()))
    shape = (h, w) if channels == 1 else (h, w, channels)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def ns_image(header_frame="cam", **fields):
    return SimpleNamespace(header=SimpleNamespace(frame_id=header_frame), **fields)


def ros_image(fields: dict):
    """A real sensor_msgs/Image; data as array.array, as rclpy delivers it."""
    f = dict(fields)
    f["data"] = array.array("B", np.asarray(f["data"], np.uint8).tobytes())
    return Image(**f)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_round_trips(encoding):
    a = sample(encoding)
    fields = image_fields(a, encoding)
    assert fields["step"] == W * a.itemsize * (a.shape[2] if a.ndim == 3 else 1)
    assert fields["data"].dtype == np.uint8 and len(fields["data"]) == a.nbytes
    out = image_to_array(ns_image(**fields))
    assert out.dtype == a.dtype and out.shape == a.shape
    np.testing.assert_array_equal(out, a)


@needs_sensor_msgs
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_round_trips_through_a_real_image_message(encoding):
    a = sample(encoding)
    msg = ros_image(image_fields(a, encoding))
    assert (msg.height, msg.width, msg.encoding) == (H, W, encoding)
    np.testing.assert_array_equal(image_to_array(msg), a)


@pytest.mark.parametrize("container", [list, tuple, bytes, bytearray])
def test_data_as_a_plain_python_sequence_is_read(container):
    """rclpy's array.array and rosbags' ndarray are read in place; a message built in Python
    code may carry a list or tuple of byte values, which numpy cannot read as a buffer."""
    a = sample("16UC1")
    fields = image_fields(a, "16UC1")
    fields["data"] = container(fields["data"].tolist())
    np.testing.assert_array_equal(image_to_array(ns_image(**fields)), a)


def test_rows_padded_beyond_width_are_cut_off():
    a = sample("rgb8")
    row = W * 3
    padded = np.full((H, row + 5), 0xEE, np.uint8)  # 5 bytes of padding per row
    padded[:, :row] = a.reshape(H, row)
    msg = ns_image(
        height=H,
        width=W,
        encoding="rgb8",
        is_bigendian=0,
        step=row + 5,
        data=padded.reshape(-1)[: (row + 5) * (H - 1) + row],
    )  # last row unpadded
    np.testing.assert_array_equal(image_to_array(msg), a)


def test_padded_16_bit_rows():
    a = sample("16UC1")
    padded = np.zeros((H, W * 2 + 2), np.uint8)
    padded[:, : W * 2] = a.view(np.uint8).reshape(H, W * 2)
    msg = ns_image(
        height=H, width=W, encoding="16UC1", is_bigendian=0, step=W * 2 + 2, data=padded.tobytes()
    )
    np.testing.assert_array_equal(image_to_array(msg), a)


@pytest.mark.parametrize(
    "encoding, big", [("mono16", ">u2"), ("16UC1", ">u2"), ("32FC1", ">f4"), ("32SC1", ">i4")]
)
def test_big_endian_data_is_read_in_native_order(encoding, big):
    a = sample(encoding)
    msg = ns_image(
        height=H,
        width=W,
        encoding=encoding,
        is_bigendian=1,
        step=W * a.itemsize,
        data=a.astype(big).tobytes(),
    )
    out = image_to_array(msg)
    assert out.dtype == a.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, a)
    # the same bytes read as little-endian are different numbers
    msg.is_bigendian = 0
    assert not np.array_equal(image_to_array(msg), a)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "encoding"),
    [
        ([[1.7, 3.0]], "mono8"),
        ([[1.0, 300.0]], "mono8"),
        ([[70000, 1]], "16UC1"),
        ([[-1, 2]], "mono16"),
    ],
)
def test_values_an_encoding_cannot_hold_are_refused_not_wrapped(values, encoding):
    # the cast wrote 1.7 as 1, 300 as 44 and 70000 as 4464
    with pytest.raises(ValueError, match=f"do not fit encoding {encoding}"):
        image_fields(np.array(values), encoding)
    fits = image_fields(np.array([[0, 255]], np.int64), "mono8")  # in range: any dtype
    assert list(fits["data"]) == [0, 255]
    whole = image_fields(np.array([[1.0, 3.0]]), "mono8")  # whole floats: exact integers
    assert list(whole["data"]) == [1, 3]
    assert list(image_fields(np.array([[True, False]]), "mono8")["data"]) == [1, 0]


def test_truncated_data_is_a_conversion_error_with_sizes():
    fields = image_fields(sample("rgb8"), "rgb8")
    fields["data"] = fields["data"][:-1]
    with pytest.raises(ConversionError, match=r"rgb8 image 5x7 \(HxW\) .*104 bytes.*truncated"):
        image_to_array(ns_image(**fields))


def test_step_shorter_than_a_row_is_a_conversion_error():
    fields = image_fields(sample("mono16"), "mono16")
    fields["step"] = W  # one byte per pixel for a 16-bit image
    with pytest.raises(ConversionError, match="step >= 14"):
        image_to_array(ns_image(**fields))


def test_data_longer_than_height_times_step_is_refused_not_read_as_garbage():
    # 32FC1 depth bytes labelled 16UC1 (step for 16 bits): twice the bytes the header describes
    depth = np.full((H, W), 1.5, np.float32)
    msg = ns_image(
        height=H, width=W, encoding="16UC1", is_bigendian=0, step=W * 2, data=depth.tobytes()
    )
    with pytest.raises(ConversionError, match="does not match the data"):
        image_to_array(msg)  # before: millimetres of 0 and 16320, no error


def test_the_array_is_writable_with_or_without_row_padding():
    a = sample("rgb8")
    for pad in (0, 3):
        row = a.shape[1] * 3
        data = b"".join(r.tobytes() + b"\0" * pad for r in a)
        msg = ns_image(
            height=H, width=W, encoding="rgb8", is_bigendian=0, step=row + pad, data=data
        )
        out = image_to_array(msg)
        np.testing.assert_array_equal(out, a)
        assert out.flags.writeable, pad


def test_empty_image_is_a_conversion_error():
    with pytest.raises(ConversionError, match="empty"):
        image_to_array(
            ns_image(height=0, width=4, encoding="mono8", is_bigendian=0, step=4, data=b"")
        )


def test_conversion_error_is_an_input_error():
    # StreamFront skips frames that raise InputError; conversion failures must be among them
    assert issubclass(ConversionError, InputError)


def test_unknown_encoding_is_named():
    msg = ns_image(height=1, width=2, encoding="yuv422", is_bigendian=0, step=4, data=b"\0" * 4)
    with pytest.raises(ConversionError, match="'yuv422' is not supported"):
        image_to_array(msg)


@pytest.mark.parametrize(
    "convert, encoding, match",
    [
        (rgb_from_image, "16UC1", "RGB image has encoding '16UC1'"),
        (rgb_from_image, "32FC1", "RGB image has encoding '32FC1'"),
        (labels_from_image, "rgb8", "mask image has encoding 'rgb8'"),
        (labels_from_image, "32FC1", "mask image has encoding '32FC1'"),
        (depth_from_image, "mono8", "depth image has encoding 'mono8'"),
        (depth_from_image, "rgb8", "depth image has encoding 'rgb8'"),
    ],
)
def test_wrong_encoding_for_the_input_is_named(convert, encoding, match):
    with pytest.raises(ConversionError, match=match):
        convert(ns_image(**image_fields(sample(encoding), encoding)))


def test_image_fields_refuses_an_array_that_does_not_fit_the_encoding():
    with pytest.raises(ValueError, match=r"\(5, 7\) does not fit encoding rgb8"):
        image_fields(np.zeros((H, W), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="does not fit encoding mono8"):
        image_fields(np.zeros((H, W, 3), np.uint8), "mono8")


# --- RGB, labels, depth ------------------------------------------------------------------------


def coloured(h=H, w=W) -> np.ndarray:
    """An RGB image with distinct channels: R = 30, G = 20 + x, B = 10 + y."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = 30
    rgb[..., 1] = 20 + np.arange(w)[None]
    rgb[..., 2] = 10 + np.arange(h)[:, None]
    return rgb


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_give_rgb(encoding):
    rgb = coloured()
    a = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
    if encoding.endswith("a8"):
        a = np.concatenate([a, np.full((H, W, 1), 200, np.uint8)], axis=2)
    out = rgb_from_image(ns_image(**image_fields(a, encoding)))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_mono8_rgb_is_grey():
    grey = sample("mono8")
    out = rgb_from_image(ns_image(**image_fields(grey, "mono8")))
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1", "mono16", "16UC1", "32SC1"])
def test_label_images_become_int32_ids(encoding):
    dtype, _ = ENCODINGS[encoding]
    ids = np.zeros((H, W), dtype)
    ids[1:3, 2:5] = 7
    ids[4, :] = 255 if np.dtype(dtype).itemsize == 1 else 40_000
    out = labels_from_image(ns_image(**image_fields(ids, encoding)))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ids.astype(np.int64))


def test_negative_labels_are_refused():
    ids = np.zeros((H, W), np.int32)
    ids[0, 0] = -1
    with pytest.raises(ConversionError, match="negative"):
        labels_from_image(ns_image(**image_fields(ids, "32SC1")))


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1", "mono16"])
def test_depth_keeps_its_units_and_encoding(encoding):
    """mono16 (some drivers' 16-bit depth) is millimetres, as compressedDepth's mono16 is;
    refused raw, a bag of it stopped after ten frames."""
    d = np.abs(sample(encoding))
    out, enc = depth_from_image(ns_image(**image_fields(d, encoding)))
    assert enc == ("16UC1" if encoding == "mono16" else encoding) and out.dtype == d.dtype
    np.testing.assert_array_equal(out, d)


# --- compressed ------------------------------------------------------------------------------


def compressed(rgb: np.ndarray, ext: str):
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return SimpleNamespace(format=ext[1:], data=buf.tobytes())


def test_png_decodes_exactly_to_rgb():
    rgb = coloured(16, 24)
    np.testing.assert_array_equal(rgb_from_compressed(compressed(rgb, ".png")), rgb)


def test_jpeg_decodes_to_rgb_in_the_right_channel_order():
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 220  # red
    out = rgb_from_compressed(compressed(rgb, ".jpg"))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).max() <= 8
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 20


@needs_sensor_msgs
def test_real_compressed_image_message():
    rgb = coloured(16, 24)
    c = compressed(rgb, ".png")
    msg = CompressedImage(format="png", data=array.array("B", c.data))
    np.testing.assert_array_equal(rgb_from_compressed(msg), rgb)


@pytest.mark.parametrize(
    ("fmt", "stored"),
    [
        ("rgb8; tiff compressed ", "rgb"),  # the compressed transport's tiff: the own order
        ("rgba8; tiff compressed ", "rgb"),
        ("bgr8; tiff compressed ", "bgr"),
        ("rgb8; png compressed bgr8", "bgr"),  # jpeg and png: converted to bgr8 first
        ("png", "bgr"),  # an older publisher's bare format
    ],
)
def test_compressed_colour_is_read_in_the_order_its_format_says(fmt, stored):
    """An rgb8 camera over the compressed transport's tiff format came out with red and blue
    swapped: the decoded image was always taken for BGR."""
    rgb = coloured(4, 6)
    pixels = rgb if stored == "rgb" else rgb[..., ::-1]
    suffix = ".tiff" if "tiff" in fmt else ".png"
    data = cv2.imencode(suffix, np.ascontiguousarray(pixels))[1].tobytes()  # as BGR
    np.testing.assert_array_equal(rgb_from_compressed(SimpleNamespace(format=fmt, data=data)), rgb)


def test_a_jpegs_exif_rotation_is_not_applied_to_the_images_its_masks_are_not():
    import io as bytes_io

    from PIL import Image

    rgb = np.zeros((4, 8, 3), np.uint8)
    rgb[:, :4] = 255  # the left half white
    exif = Image.Exif()
    exif[0x0112] = 3  # shown turned 180 degrees
    data = bytes_io.BytesIO()
    Image.fromarray(rgb).save(data, "JPEG", exif=exif.tobytes(), quality=100)
    msg = SimpleNamespace(format="rgb8; jpeg compressed bgr8", data=data.getvalue())
    out = rgb_from_compressed(msg)
    assert out.shape == (4, 8, 3) and out[:, 0].mean() > 250 and out[:, -1].mean() < 5


@pytest.mark.parametrize("data", [b"not an image at all", b""])
def test_undecodable_compressed_image_is_a_conversion_error(data):
    with pytest.raises(ConversionError, match="could not be decoded"):
        rgb_from_compressed(SimpleNamespace(format="jpeg", data=data))


def png_claiming(height: int, width: int) -> bytes:
    """A PNG whose header claims height x width (CRC fixed up), over 4x4 pixels of data."""
    import struct
    import zlib

    png = cv2.imencode(".png", np.zeros((4, 4), np.uint16))[1].tobytes()
    ihdr = struct.pack(">II", width, height) + png[24:29]  # size, then depth, colour, ...
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return png[:16] + ihdr + crc + png[33:]


def test_an_image_too_large_to_allocate_is_a_conversion_error_not_a_cv2_error():
    # cv2.imdecode raises cv2.error here, where it returns None for most corrupt data
    with pytest.raises(cv2.error):
        cv2.imdecode(np.frombuffer(png_claiming(100_000, 100_000), np.uint8), -1)
    huge = png_claiming(100_000, 100_000)
    with pytest.raises(ConversionError, match="pixels or more, more than any camera"):
        rgb_from_compressed(SimpleNamespace(format="png", data=huge))
    with pytest.raises(ConversionError, match="more than any camera's"):
        labels_from_compressed(message("mono16; png compressed ", huge))


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    """A 9000x9000 PNG of zeros is ~80 kB; OpenCV (allowing 2^30 pixels) decoded it into
    243 MB of RGB for one message."""
    import struct
    import zlib

    side = 9000
    rows = zlib.compressobj(9)
    idat = b"".join(rows.compress(bytes(side + 1)) for _ in range(side)) + rows.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grey
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    assert len(bomb) < 200_000
    with pytest.raises(ConversionError, match="claims 81000000 pixels or more"):
        rgb_from_compressed(SimpleNamespace(format="png", data=bomb))
    # a text chunk with a wrong checksum: PIL refuses the header, libpng decodes the image
    text = struct.pack(">I", 4) + b"tEXt" + b"a\x00bc" + bytes(4)
    spoiled = bomb[:33] + text + bomb[33:]
    with pytest.raises(ConversionError, match="claims 81000000 pixels or more"):
        rgb_from_compressed(SimpleNamespace(format="png", data=spoiled))
    # a JPEG whose frame header claims 20000 x 20000
    jpeg = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 20000, 20000)
    with pytest.raises(ConversionError, match="claims 400000000 pixels or more"):
        rgb_from_compressed(SimpleNamespace(format="jpeg", data=bytes(jpeg)))
    # an ordinary JPEG and PNG pass, their sizes read from their headers
    for ext in (".jpg", ".png"):
        image = np.zeros((48, 64, 3), np.uint8)
        ok = cv2.imencode(ext, image)[1]
        assert rgb_from_compressed(SimpleNamespace(format=ext[1:], data=ok.tobytes())).shape == (
            48,
            64,
            3,
        )


# --- compressed depth and masks (image_transport's compressedDepth and png) --------------------


def message(fmt: str, data: bytes, frame_id: str = "cam"):
    return SimpleNamespace(header=SimpleNamespace(frame_id=frame_id), format=fmt, data=data)


def depth_metres(h: int = 6, w: int = 9) -> np.ndarray:
    """0.3 .. 9.5 m across the image, one far pixel beyond the codec's 10 m and one NaN."""
    depth = np.linspace(0.3, 9.5, h * w, dtype=np.float32).reshape(h, w)
    depth[0, 0], depth[1, 1] = 12.0, np.nan
    return depth


@pytest.mark.parametrize("params", [(0.0, 0.0), (1.5, -2.5)])
def test_compressed_depth_16uc1_is_the_millimetre_png(params):
    depth_mm = np.arange(6 * 9, dtype=np.uint16).reshape(6, 9) * 250  # 0 .. 13.25 m
    fmt, data, q = compressed_depth(depth_mm, "16UC1", header_params=params)
    assert fmt == "16UC1; compressedDepth png"
    out, encoding = depth_from_compressed(message(fmt, data))
    assert encoding == "16UC1" and out.dtype == np.uint16
    np.testing.assert_array_equal(out, q)  # exact; the header's depthParam is not used
    assert out[-1, -1] == 0 and out[1, 1] == 2500  # past depth_max (10 m) the codec sends 0
    out, encoding = depth_from_compressed(message("mono16; compressedDepth png", data))
    assert encoding == "16UC1"  # mono16: some drivers' name for it
    np.testing.assert_array_equal(out, q)


@pytest.mark.parametrize(
    "fmt", ["32FC1; compressedDepth png", "32FC1; compressedDepth", "32FC1"]
)  # current, older (no compression name) and oldest (no ';') publishers
def test_compressed_depth_32fc1_is_dequantised_inverse_depth(fmt):
    depth = depth_metres()
    _, data, q = compressed_depth(depth, "32FC1")
    out, encoding = depth_from_compressed(message(fmt, data))
    assert encoding == "32FC1" and out.dtype == np.float32 and out.shape == depth.shape
    # the codec's decoder: depth = A / (q - B) in float32, q == 0 (NaN or >= depth_max) invalid
    quant_a, quant_b = struct.unpack_from("<ff", data, 4)
    assert (quant_a, quant_b) == (100.0 * 101.0, 1.0 - 100.0 * 101.0 / 10.0)
    invalid = q == 0
    assert invalid.sum() == 2 and invalid[0, 0] and invalid[1, 1]
    assert np.isnan(out[invalid]).all()
    expected = np.float32(quant_a) / (q[~invalid].astype(np.float32) - np.float32(quant_b))
    np.testing.assert_array_equal(out[~invalid], expected)
    # q is truncated, so decoding errs far by less than one quantisation step, d^2 / A
    err = out[~invalid] - depth[~invalid]
    assert (err >= -1e-6).all() and (err <= depth[~invalid] ** 2 / quant_a + 1e-5).all()


@needs_sensor_msgs
def test_compressed_depth_in_a_real_compressed_image_message():
    depth_mm = np.full((4, 5), 1234, np.uint16)
    fmt, data, _ = compressed_depth(depth_mm, "16UC1")
    msg = CompressedImage(format=fmt, data=array.array("B", data))
    out, encoding = depth_from_compressed(msg)
    assert encoding == "16UC1"
    np.testing.assert_array_equal(out, depth_mm)


def test_depth_as_a_16_bit_png_of_the_compressed_transport_is_millimetres():
    depth_mm = (np.arange(20, dtype=np.uint16) * 3001).reshape(4, 5)
    fmt, data = png_compressed(depth_mm, "16UC1")
    assert fmt == "16UC1; png compressed "
    out, encoding = depth_from_compressed(message(fmt, data))
    assert encoding == "16UC1"
    np.testing.assert_array_equal(out, depth_mm)


def test_unusable_compressed_depth_is_named():
    fmt, data, _ = compressed_depth(np.full((4, 5), 1000, np.uint16), "16UC1")
    cases = [
        (message("16UC1; compressedDepth rvl", data[:12] + b"\0" * 20), "rvl is not supported"),
        (message(fmt, data[:12]), "not the 12-byte header followed by a PNG"),
        (message(fmt, data[:40]), "could not be decoded as PNG"),
        (message("32SC1; compressedDepth png", data), "encoding '32SC1'"),
        (  # the codec's 12-byte header over an 8-bit PNG: no codec writes that
            message(fmt, data[:12] + png_compressed(np.ones((4, 5), np.uint8), "8UC1")[1]),
            "holds a uint8 PNG with shape",
        ),
        (
            message("8UC1; png compressed ", png_compressed(np.ones((4, 5), np.uint8), "8UC1")[1]),
            "uint8 PNG",
        ),
    ]
    ok, jpeg = cv2.imencode(".jpg", np.zeros((4, 5, 3), np.uint8))
    cases.append((message("bgr8; jpeg compressed bgr8", jpeg.tobytes()), "JPEG is not"))
    for msg, match in cases:
        with pytest.raises(ConversionError, match=match):
            depth_from_compressed(msg)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "mono8", "8UC1"])
def test_png_label_images_keep_their_ids(encoding):
    dtype, _ = ENCODINGS[encoding]
    ids = np.zeros((H, W), dtype)
    ids[1:3, 2:5] = 7
    ids[4, :] = 255 if np.dtype(dtype).itemsize == 1 else 40_000  # 16-bit ids survive
    fmt, data = png_compressed(ids, encoding)
    for f in (fmt, "png"):  # the transport's format string, or a bare one
        out = labels_from_compressed(message(f, data))
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out, ids.astype(np.int64))


def test_a_label_png_under_8_bits_is_refused_not_rescaled():
    """OpenCV scales 1/2/4-bit grey PNGs up to 8 bits: ids 1, 2, 3 of a 2-bit PNG (PIL's
    bits=2, optipng) read 85, 170, 255, published as other objects' ids."""
    import io as bytes_io

    from PIL import Image as PilImage

    buffer = bytes_io.BytesIO()
    PilImage.fromarray(np.array([[0, 1, 2, 3]], np.uint8)).save(buffer, "PNG", bits=2)
    with pytest.raises(ConversionError, match="is a 2-bit PNG, whose ids OpenCV scales"):
        labels_from_compressed(message("png", buffer.getvalue()))


def test_a_jpeg_with_bytes_before_a_marker_decodes_as_libjpeg_decodes_it():
    """The size check gave up at a stray byte between segments, where libjpeg skips it: a
    camera whose MJPEG does that lost every frame ("JPEG without a frame header")."""
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 220
    data = compressed(rgb, ".jpg").data
    at = data.index(b"\xff\xdb")  # before the quantisation tables' marker
    stray = data[:at] + b"\x00\x00" + data[at:]
    assert cv2.imdecode(np.frombuffer(stray, np.uint8), cv2.IMREAD_COLOR) is not None
    out = rgb_from_compressed(SimpleNamespace(format="jpeg", data=stray))
    assert out.shape == rgb.shape and out[..., 0].mean() > 200


def test_lossy_or_colour_label_images_are_refused():
    ok, jpeg = cv2.imencode(".jpg", np.zeros((H, W), np.uint8))
    with pytest.raises(ConversionError, match="is not a PNG.*lossless"):
        labels_from_compressed(message("mono8; jpeg compressed ", jpeg.tobytes()))
    _, colour = png_compressed(coloured(), "rgb8")
    with pytest.raises(ConversionError, match="3-channel PNG"):
        labels_from_compressed(message("rgb8; png compressed bgr8", colour))
    with pytest.raises(ConversionError, match="could not be decoded as PNG"):
        labels_from_compressed(
            message("png", png_compressed(np.ones((H, W), np.uint8), "mono8")[1][:30])
        )


# --- frame_from_messages -----------------------------------------------------------------------


def inputs(rgb_size=(H, W), mask_size=(H, W), depth_size=(H, W)):
    labels = np.zeros(mask_size, np.uint16)
    labels[1:3, 1:3] = 4
    return {
        "stamp_ns": 1_500_000_000,
        "rgb": ns_image(**image_fields(np.zeros((*rgb_size, 3), np.uint8), "bgr8")),
        "masks": ns_image(**image_fields(labels, "mono16")),
        "depth": ns_image(**image_fields(np.ones(depth_size, np.uint16) * 1500, "16UC1")),
    }


def test_frame_from_messages():
    frame = frame_from_messages(inputs(), arrival=12.5)
    assert frame.stamp_ns == 1_500_000_000 and frame.frame_id == "cam" and frame.arrival == 12.5
    assert frame.rgb.shape == (H, W, 3) and frame.object_ids() == [4]
    assert frame.depth_encoding == "16UC1" and frame.depth.dtype == np.uint16
    no_depth = inputs()
    del no_depth["depth"]
    assert frame_from_messages(no_depth).depth is None


def test_millimetres_sent_as_32fc1_are_refused_and_blamed_on_depth():
    """A driver publishing 32FC1 in millimetres would give boxes 1000x too large marked OK;
    metres, with holes and +inf, pass."""
    m = inputs()
    millimetres = np.full((H, W), 990.0, np.float32)
    m["depth"] = ns_image(**image_fields(millimetres, "32FC1"))
    with pytest.raises(ConversionError, match="median is 990 m: millimetres") as err:
        frame_from_messages(m)
    assert err.value.inputs == ("depth",)
    metres = millimetres / 1000
    metres[::2] = np.inf  # nothing within range (REP 117)
    metres[1::4] = np.nan
    m["depth"] = ns_image(**image_fields(metres, "32FC1"))
    assert frame_from_messages(m).depth_encoding == "32FC1"


def test_frame_from_compressed_rgb():
    m = inputs(rgb_size=(H, W))
    m["rgb"] = compressed(coloured(), ".png")
    m["rgb"].header = SimpleNamespace(frame_id="optical")
    frame = frame_from_messages(m, compressed={"rgb"})
    np.testing.assert_array_equal(frame.rgb, coloured())
    assert frame.frame_id == "optical"


def test_frame_from_compressed_depth_and_masks():
    m = inputs()
    labels = np.zeros((H, W), np.uint16)
    labels[1:3, 1:3] = 1000
    m["masks"] = message(*png_compressed(labels, "mono16"))
    depth_mm = np.full((H, W), 1500, np.uint16)
    fmt, data, _ = compressed_depth(depth_mm, "16UC1")
    m["depth"] = message(fmt, data)
    frame = frame_from_messages(m, compressed={"masks", "depth"})
    assert frame.object_ids() == [1000]
    assert frame.depth_encoding == "16UC1"
    np.testing.assert_array_equal(frame.depth, depth_mm)
    m["depth"] = message("16UC1; compressedDepth rvl", data)  # a bad one is blamed on depth
    with pytest.raises(ConversionError, match="rvl") as err:
        frame_from_messages(m, compressed={"masks", "depth"})
    assert err.value.inputs == ("depth",)


def test_frame_id_mismatch_is_reported_once_per_pair_of_frames():
    check = FrameIdCheck()
    m = inputs()
    m["rgb"].header.frame_id = "camera_color_optical_frame"
    m["masks"].header.frame_id = "camera_color_optical_frame"
    m["depth"].header.frame_id = "camera_depth_optical_frame"
    (warning,) = check.check(m)
    assert "depth frame_id 'camera_depth_optical_frame'" in warning
    assert "'camera_color_optical_frame'" in warning and "registered to the RGB camera" in warning
    assert check.check(m) == []  # once
    m["masks"].header.frame_id = "segmenter_frame"
    (warning,) = check.check(m)
    assert warning.startswith("masks frame_id 'segmenter_frame' differs")
    assert check.check(m) == []
    m["depth"].header.frame_id = "another_depth_frame"  # a new pair is new news
    assert len(check.check(m)) == 1
    # another camera's CameraInfo (a multi-camera bag's default topic) gives wrong extents
    m["camera_info"] = SimpleNamespace(header=SimpleNamespace(frame_id="left_ir_optical_frame"))
    (warning,) = check.check(m)
    assert warning.startswith("camera info frame_id 'left_ir_optical_frame' differs")
    assert "must be the RGB camera's" in warning
    m["camera_info"] = None  # none received yet: nothing to compare
    assert check.check(m) == []
    # frames are still made (the check does not fail them)
    assert frame_from_messages(m).frame_id == "camera_color_optical_frame"


@pytest.mark.parametrize("rgb_frame, other", [("cam", "cam"), ("", "depth"), ("cam", "")])
def test_same_or_unnamed_frames_are_not_reported(rgb_frame, other):
    m = inputs()
    m["rgb"].header.frame_id = rgb_frame
    m["masks"].header.frame_id = m["depth"].header.frame_id = other
    assert FrameIdCheck().check(m) == []
    del m["depth"]  # without depth: only the masks are compared
    assert FrameIdCheck().check(m) == []


@pytest.mark.parametrize(
    "sizes, what, culprits",
    [
        (dict(mask_size=(H, W + 1)), "the mask image", ("rgb", "masks")),
        (dict(depth_size=(H + 2, W)), "the depth", ("rgb", "depth")),
    ],
)
def test_size_mismatch_names_the_input(sizes, what, culprits):
    with pytest.raises(
        ConversionError, match=f"size mismatch: RGB is 5x7 \\(HxW\\) but {what}"
    ) as err:
        frame_from_messages(inputs(**sizes))
    assert err.value.inputs == culprits


@pytest.mark.parametrize("role", ["rgb", "masks", "depth"])
def test_a_bad_message_is_blamed_on_its_input(role):
    m = inputs()
    m[role].encoding = "yuv422"
    with pytest.raises(ConversionError, match="yuv422") as err:
        frame_from_messages(m)
    assert err.value.inputs == (role,)


# --- cv_bridge and torch ---------------------------------------------------------------------


@pytest.mark.skipif(bool(_CV_BRIDGE) or bool(_SENSOR_MSGS), reason=_CV_BRIDGE or _SENSOR_MSGS)
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "16UC1", "32FC1"])
def test_same_arrays_as_cv_bridge(encoding):
    msg = ros_image(image_fields(sample(encoding), encoding))
    np.testing.assert_array_equal(
        image_to_array(msg), CvBridge().imgmsg_to_cv2(msg, desired_encoding="passthrough")
    )


NO_TORCH = """
from types import SimpleNamespace
import numpy as np
from amodal_ros.interface.convert import image_fields
from amodal_ros.interface.messages import ResultMessages, frame_from_messages
img = lambda a, e: SimpleNamespace(header=SimpleNamespace(frame_id='c'), **image_fields(a, e))
frame = frame_from_messages(
    {'stamp_ns': 5, 'rgb': img(np.zeros((2, 3, 3), np.uint8), 'rgb8'),
     'masks': img(np.ones((2, 3), np.uint8), 'mono8')})
assert frame.object_ids() == [1] and 'torch' not in sys.modules
print('ok')
"""


def test_conversions_work_without_torch():
    assert run_without(NO_TORCH).strip() == "ok"


def test_tiff_depth_and_labels_say_to_use_png():
    """The compressed transport's tiff was refused as a lossy transport ("JPEG is not")."""
    tiff = cv2.imencode(".tiff", np.full((4, 6), 700, np.uint16))[1].tobytes()
    msg = SimpleNamespace(format="16UC1; tiff compressed ", data=tiff)
    with pytest.raises(ConversionError, match="is a TIFF, which is not read here.*png"):
        depth_from_compressed(msg)
    with pytest.raises(ConversionError, match="is a TIFF, which is not read here.*png"):
        labels_from_compressed(msg)


def test_a_header_at_exactly_the_pixel_bound_is_no_bomb():
    """8192 x 8192 is MAX_DECODED_PIXELS: refused only above it (then for its data, which is
    4 x 4, as any corrupt image)."""
    with pytest.raises(ConversionError) as refused:
        rgb_from_compressed(SimpleNamespace(format="png", data=png_claiming(8192, 8192)))
    assert "claims" not in str(refused.value)
    with pytest.raises(ConversionError, match="claims 67117056 pixels or more"):
        rgb_from_compressed(SimpleNamespace(format="png", data=png_claiming(8192, 8193)))


@pytest.mark.parametrize("read", [rgb_from_compressed, labels_from_compressed])
def test_a_png_cut_inside_its_header_is_a_conversion_error(read):
    cut = png_claiming(4, 4)[:20]
    with pytest.raises(ConversionError):
        read(SimpleNamespace(format="mono16; png compressed ", data=cut))


@pytest.mark.parametrize(
    "height, width, step, size, problem",
    [(2, 0, 0, 0, "empty"), (2, 3, 3, 7, "got step 3 and 7 bytes")],
    ids=["no columns", "a byte more than rows x step"],
)
def test_a_raw_image_of_no_pixels_or_the_wrong_size_is_refused(height, width, step, size, problem):
    msg = SimpleNamespace(
        encoding="mono8", height=height, width=width, step=step, is_bigendian=0, data=bytes(size)
    )
    with pytest.raises(ConversionError, match=problem):
        image_to_array(msg)


SOF = b"\xff\xc0\x00\x11\x08\x00\x10\x00\x20"  # a frame header: 16 rows, 32 columns


@pytest.mark.parametrize(
    "data, size",
    [
        (b"\xff\xd8" + SOF, (16, 32)),  # the header ends the data
        (b"\xff\xd8\x00" + SOF + bytes(8), (16, 32)),  # a stray byte before it
        (b"\xff\xd8\xff" + SOF + bytes(8), (16, 32)),  # a fill byte
        (b"\xff\xd8\xff\xd8" + SOF + bytes(8), (16, 32)),  # a second start (no length)
        (b"\xff\xd8\xff\xc4\x00\x05\x00\x11\x22" + SOF + bytes(8), (16, 32)),  # tables first
        (
            b"\xff\xd8\xff\xfe\x00\x06ab\xff\xc0" + SOF + bytes(8),
            (16, 32),
        ),  # a comment "ab\xff\xc0"
        (b"\xff\xd8\xff\xda\x00\x02" + SOF + bytes(8), None),  # a scan before any frame header
    ],
    ids=["ends", "stray", "fill", "restart", "tables", "comment", "scan first"],
)
def test_a_jpegs_size_is_read_from_its_frame_header_past_other_segments(data, size):
    """What the bomb check reads before decoding (`_jpeg_size`)."""
    from amodal_ros.interface.convert import _jpeg_size

    assert _jpeg_size(data) == size


def test_a_jpeg_whose_scan_comes_before_any_frame_header_is_refused_not_a_type_error():
    """Its size cannot be checked before decoding (the bomb check): a ConversionError, which
    the node and replay count per input, never a TypeError from the parser's None."""
    jpeg = b"\xff\xd8\xff\xda\x00\x02" + SOF + bytes(8)
    with pytest.raises(ConversionError, match="JPEG without a frame header"):
        rgb_from_compressed(SimpleNamespace(format="jpeg", data=jpeg))


def test_millimetre_floats_are_found_whatever_the_first_pixel_holds():
    from amodal_ros.interface.convert import check_metres

    depth = np.full((64, 64), 1500.0, np.float32)
    depth[0, 0] = 0.0  # no return there
    with pytest.raises(ConversionError):
        check_metres(depth)


def test_a_label_png_of_fewer_than_8_bits_is_refused():
    """OpenCV scales 1-, 2- and 4-bit grey up to 8 bits: id 1 would read 17 or 255."""
    image = np.ones((2, 8), np.uint8)
    raw = b"".join(b"\x00" + bytes([0x11] * 4) for _ in range(2))  # 4-bit pixels of 1

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", image.shape[1], image.shape[0], 4, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    png += chunk(b"IEND", b"")
    assert cv2.imdecode(np.frombuffer(png, np.uint8), -1).max() == 17  # what it would read
    with pytest.raises(ConversionError, match="4-bit"):
        labels_from_compressed(message("mono8; png compressed ", png))


def test_an_empty_array_has_fields_of_no_pixels():
    assert image_fields(np.zeros((0, 4)), "mono8")["height"] == 0
