"""The amodal_ros messages: .msg conventions, constants, CDR round trip and a real DDS round trip.

The .msg text checks run everywhere; the rest needs rclpy and the colcon-built amodal_ros.msg
(`bash scripts/setup.sh`, then `scripts/with_env.sh python -m pytest test/test_messages.py`).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

MSG_DIR = Path(__file__).resolve().parents[1] / "msg"
MSG_FILES = sorted(MSG_DIR.glob("*.msg"))

try:
    import rclpy
    from rclpy.serialization import deserialize_message, serialize_message

    _RCLPY_ERROR = ""
except ImportError as err:  # no ROS 2 in this environment
    rclpy = None
    _RCLPY_ERROR = f"rclpy is not importable ({err})"

try:
    from amodal_ros.msg import AmodalObject, AmodalObjectArray

    _MSG_ERROR = ""
except ImportError as err:  # pip-only install or not built
    AmodalObject = AmodalObjectArray = None
    _MSG_ERROR = f"amodal_ros.msg is not importable ({err})"

_SKIP_REASON = _RCLPY_ERROR or _MSG_ERROR
needs_ros = pytest.mark.skipif(
    bool(_SKIP_REASON),
    reason=f"{_SKIP_REASON}; run `bash scripts/setup.sh` and use `scripts/with_env.sh`",
)

REASONS = {
    "REASON_OK": 0,
    "REASON_WINDOW_NOT_FULL": 1,
    "REASON_OBJECT_TOO_SMALL": 2,
    "REASON_DEADLINE_MISSED": 3,
    "REASON_EMPTY_MODAL": 4,
    "REASON_ERROR": 5,
}
EXTENT_REASONS = {
    "EXTENT_OK": 0,
    "EXTENT_NO_AMODAL": 1,
    "EXTENT_NO_DEPTH": 2,
    "EXTENT_NO_CAMERA_INFO": 3,
    "EXTENT_BAD_CAMERA_INFO": 4,
    "EXTENT_NO_VALID_DEPTH": 5,
    "EXTENT_NOT_COMPUTED": 6,
    "EXTENT_DEPTH_FROM_NEAREST_FRAME": 7,
}


# --- .msg text conventions (no ROS needed) ------------------------------------------------


def _msg_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _split_comment(line: str) -> tuple[str, str]:
    code, _, comment = line.partition("#")
    return code.strip(), comment.strip()


def _field_lines(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, comment) of every field line; constants, blanks and comments skipped."""
    fields = []
    for line in _msg_lines(path):
        code, comment = _split_comment(line)
        if not code or "=" in code:
            continue
        ftype, name = code.split()[:2]
        fields.append((ftype, name, comment))
    return fields


def test_msg_files_exist():
    assert {p.name for p in MSG_FILES} == {"AmodalObject.msg", "AmodalObjectArray.msg"}


@pytest.mark.parametrize("path", MSG_FILES, ids=lambda p: p.name)
def test_msg_starts_with_purpose_comment(path):
    first = _msg_lines(path)[0]
    assert first.startswith("#") and len(first.lstrip("# ").strip()) > 10, first


@pytest.mark.parametrize("path", MSG_FILES, ids=lambda p: p.name)
def test_every_msg_field_has_a_comment(path):
    fields = _field_lines(path)
    assert fields, f"{path.name} has no fields"
    missing = [name for _, name, comment in fields if not comment]
    assert not missing, f"{path.name}: fields without a trailing comment: {missing}"


@pytest.mark.parametrize(
    ("prefix", "expected", "names"),
    [("REASON", REASONS, "REASON_NAMES"), ("EXTENT", EXTENT_REASONS, "EXTENT_REASON_NAMES")],
)
def test_reason_constants_in_msg_text(prefix, expected, names):
    consts = {}
    for line in _msg_lines(MSG_DIR / "AmodalObject.msg"):
        code, _ = _split_comment(line)
        m = re.fullmatch(rf"uint8\s+({prefix}_\w+)\s*=\s*(\d+)", code)
        if m:
            consts[m.group(1)] = int(m.group(2))
    assert consts == expected
    # the pipeline's own copy (it runs without a ROS build) agrees with the message
    from amodal_ros.core import frames

    assert {name: getattr(frames, name) for name in expected} == expected
    assert set(getattr(frames, names)) == set(expected.values())


# --- generated Python types ----------------------------------------------------------------


@needs_ros
def test_reason_constants():
    for name, value in {**REASONS, **EXTENT_REASONS}.items():
        assert getattr(AmodalObject, name) == value, name


@needs_ros
@pytest.mark.parametrize("path", MSG_FILES, ids=lambda p: p.name)
def test_generated_fields_match_msg_text(path):
    """A stale build (msg/ edited, setup.sh not re-run) shows up here."""
    cls = {"AmodalObject.msg": AmodalObject, "AmodalObjectArray.msg": AmodalObjectArray}[path.name]
    assert [name for _, name, _ in _field_lines(path)] == list(cls.get_fields_and_field_types())


# --- building and serializing ---------------------------------------------------------------


def _image(array: np.ndarray, encoding: str):
    from sensor_msgs.msg import Image

    img = Image()
    img.height, img.width = int(array.shape[0]), int(array.shape[1])
    img.encoding = encoding
    img.is_bigendian = 0
    img.step = int(array.strides[0])
    img.data = np.ascontiguousarray(array).tobytes()
    return img


def _decode(img, dtype, channels=1) -> np.ndarray:
    arr = np.frombuffer(bytes(img.data), dtype=dtype)
    shape = (img.height, img.width) if channels == 1 else (img.height, img.width, channels)
    return arr.reshape(shape)


def _object(object_id: int, occluders: list[tuple[int, int]], *, with_stage2: bool, rng):
    h, w = 6, 8
    modal = np.zeros((h, w), np.uint8)
    modal[1:4, 2:5] = 255
    amodal = modal.copy()
    amodal[1:5, 2:7] = 255
    obj = AmodalObject()
    obj.object_id = object_id
    obj.modal_mask = _image(modal, "mono8")
    obj.amodal_mask = _image(amodal, "mono8")
    if with_stage2:
        obj.completion = _image(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "rgba8")
        obj.uncertainty = _image(rng.random((h, w), dtype=np.float32), "32FC1")
        obj.mean_uncertainty = 0.25
    # float32 fields come back float32-rounded; store a float32 value so `==` holds after CDR.
    obj.occlusion_ratio = float(np.float32(1.0 - (modal > 0).sum() / (amodal > 0).sum()))
    obj.bbox_x, obj.bbox_y, obj.bbox_width, obj.bbox_height = 2, 1, 5, 4
    obj.amodal_valid = True
    obj.reason = AmodalObject.REASON_OK
    obj.occluder_ids = [oid for oid, _ in occluders]
    obj.occluder_overlap_pixels = [px for _, px in occluders]
    return obj


def _array_msg():
    rng = np.random.default_rng(0)
    msg = AmodalObjectArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789
    msg.header.frame_id = "camera_color_optical_frame"
    msg.window_first_stamp.sec, msg.window_first_stamp.nanosec = 1_700_000_120, 0
    msg.window_last_stamp.sec, msg.window_last_stamp.nanosec = 1_700_000_123, 456_789
    msg.window_frames = 25
    msg.frames_missing = 2
    msg.latency = 0.75
    invalid = _object(9, [], with_stage2=False, rng=rng)
    invalid.amodal_valid = False
    invalid.reason = AmodalObject.REASON_WINDOW_NOT_FULL
    invalid.amodal_mask = invalid.modal_mask
    msg.objects = [_object(3, [(7, 12), (11, 3)], with_stage2=True, rng=rng), invalid]
    return msg


@needs_ros
def test_cdr_round_trip():
    msg = _array_msg()
    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 0
    back = deserialize_message(data, AmodalObjectArray)

    assert back == msg
    assert back.header.stamp.sec == 1_700_000_123 and back.header.stamp.nanosec == 456_789
    assert back.header.frame_id == "camera_color_optical_frame"
    assert (back.window_frames, back.frames_missing) == (25, 2)
    assert back.latency == pytest.approx(0.75)
    assert [o.object_id for o in back.objects] == [3, 9]

    first, second = back.objects
    assert list(first.occluder_ids) == [7, 11]
    assert list(first.occluder_overlap_pixels) == [12, 3]
    np.testing.assert_array_equal(
        _decode(first.amodal_mask, np.uint8), _decode(msg.objects[0].amodal_mask, np.uint8)
    )
    np.testing.assert_array_equal(
        _decode(first.uncertainty, np.float32), _decode(msg.objects[0].uncertainty, np.float32)
    )
    assert first.completion.encoding == "rgba8" and first.completion.step == 8 * 4
    assert first.occlusion_ratio == pytest.approx(1 - 9 / 20)

    assert not second.amodal_valid and second.reason == AmodalObject.REASON_WINDOW_NOT_FULL
    assert second.completion.width == 0 and len(second.completion.data) == 0
    assert second.uncertainty.height == 0 and second.mean_uncertainty == 0.0
    assert list(second.occluder_ids) == [] and list(second.occluder_overlap_pixels) == []


# --- a real DDS round trip -----------------------------------------------------------------


@needs_ros
def test_dds_round_trip():
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    msg = _array_msg()
    topic = f"/amodal_ros_test_{uuid.uuid4().hex[:12]}"
    received = []

    context = Context()
    rclpy.init(context=context)
    executor = node = None
    try:
        node = rclpy.create_node(f"amodal_msg_test_{uuid.uuid4().hex[:8]}", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        pub = node.create_publisher(AmodalObjectArray, topic, 10)
        node.create_subscription(AmodalObjectArray, topic, received.append, 10)

        deadline = time.monotonic() + 10.0
        next_publish = 0.0
        while not received and time.monotonic() < deadline:
            if time.monotonic() >= next_publish:  # re-publish until discovery has matched
                pub.publish(msg)
                next_publish = time.monotonic() + 0.2
            executor.spin_once(timeout_sec=0.05)
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)

    assert received, f"no AmodalObjectArray arrived on {topic} within 10 s"
    got = received[0]
    assert [o.object_id for o in got.objects] == [3, 9]
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (1_700_000_123, 456_789)
    assert got.header.frame_id == "camera_color_optical_frame"
    assert list(got.objects[0].occluder_ids) == [7, 11]
    assert got == msg
