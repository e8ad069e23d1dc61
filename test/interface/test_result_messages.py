"""FrameResult -> AmodalObjectArray / Image / MarkerArray, built with rosbags and rclpy,
serialised to CDR and read back; both bindings must give the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from amodal_ros.core.frames import (
    EXTENT_NO_AMODAL,
    EXTENT_OK,
    REASON_OBJECT_TOO_SMALL,
    REASON_OK,
    Extent,
    Frame,
    FrameResult,
    ObjectFrameResult,
)
from amodal_ros.interface.convert import image_to_array
from amodal_ros.interface.messages import (
    ResultMessages,
    camera_info_for,
    rclpy_kit,
    rosbags_kit,
    stamp_ns,
)

MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
ARRAY = "amodal_ros/msg/AmodalObjectArray"
IMAGE = "sensor_msgs/msg/Image"
MARKERS = "visualization_msgs/msg/MarkerArray"

try:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    _ROSBAGS = ""
except ImportError as err:
    _ROSBAGS = f"rosbags is not importable ({err})"

try:
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    from amodal_ros.msg import AmodalObjectArray

    _RCLPY = ""
except ImportError as err:
    _RCLPY = (
        f"rclpy or the built amodal_ros.msg is not importable ({err}); "
        "run `bash scripts/setup.sh` and use scripts/with_env.sh"
    )

needs_rosbags = pytest.mark.skipif(bool(_ROSBAGS), reason=_ROSBAGS)
needs_rclpy = pytest.mark.skipif(bool(_RCLPY), reason=_RCLPY)

H, W = 12, 16
STAMP = 1_700_000_123 * 10**9 + 456_789  # sec and nanosec both non-zero
ANGLE = math.radians(30)  # object 3's box, rotated about the optical axis
BOX = Extent(
    valid=True,
    reason=EXTENT_OK,
    centre=(0.125, -0.25, 1.5),
    size=(0.3, 0.2, 0.05),
    orientation=(0.0, 0.0, math.sin(ANGLE / 2), math.cos(ANGLE / 2)),
    hidden_share=0.25,
)


def amodal_typestore():
    """The newest ROS 2 typestore plus the amodal_ros types from the repository's msg/."""
    store = getattr(Stores, "ROS2_KILTED", Stores.LATEST)
    typestore = get_typestore(store)
    types = {}
    for path in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"amodal_ros/msg/{path.stem}"))
    typestore.register(types)
    return typestore


@pytest.fixture(scope="module")
def typestore():
    if _ROSBAGS:
        pytest.skip(_ROSBAGS)
    return amodal_typestore()


def result() -> FrameResult:
    """Object 3 (valid) is partly hidden by objects 4 and 6, with uncertainty and completion;
    object 4 is too small: modal as amodal, no uncertainty or completion."""
    labels = np.zeros((H, W), np.int64)
    labels[2:8, 2:6] = 3
    labels[2:8, 6:9] = 4  # covers 18 hidden pixels of object 3
    labels[8:10, 2:9] = 6  # covers 14
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    frame = Frame(STAMP, rgb, labels, frame_id="camera_optical")
    amodal = np.zeros((H, W), bool)
    amodal[2:10, 2:9] = True
    uncertainty = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    completion = np.zeros((H, W, 4), np.uint8)
    completion[amodal] = (10, 200, 30, 255)
    obj3 = ObjectFrameResult(
        3,
        labels == 3,
        amodal,
        True,
        REASON_OK,
        occluders={4: 18, 6: 14, 9: 5},  # 9: depth cannot order it
        occluder_order={4: 1, 6: -1},
        uncertainty=uncertainty,
        completion=completion,
        extent=BOX,
    )
    small = labels == 4
    obj4 = ObjectFrameResult(
        4,
        small,
        small.copy(),
        False,
        REASON_OBJECT_TOO_SMALL,
        extent=Extent(reason=EXTENT_NO_AMODAL),
    )
    return FrameResult(
        frame,
        [obj3, obj4],
        window_first_stamp_ns=STAMP - 3 * 125_000_000,
        window_last_stamp_ns=STAMP + 125_000_000,
        window_frames=5,
        frames_missing=1,
        latency=0.25,
    )


def as_list(seq) -> list:
    return [int(v) for v in seq]


def xyz(v) -> tuple:
    return (v.x, v.y, v.z)


def pose_tuple(pose) -> tuple:
    q = pose.orientation
    return xyz(pose.position) + (q.x, q.y, q.z, q.w)


def check_markers(msg):
    """DELETEALL, then object 3's box and label; object 4 has no extent: no markers."""
    clear, box, label = msg.markers
    for m in msg.markers:
        check_image_header(m)
    assert (clear.action, clear.ns) == (3, "")  # DELETEALL: the previous frame's go
    assert (box.ns, box.id, box.type, box.action) == ("amodal_extent", 3, 1, 0)  # CUBE, ADD
    assert pose_tuple(box.pose) == pytest.approx(BOX.centre + BOX.orientation)
    assert xyz(box.scale) == pytest.approx(BOX.size)
    assert 0 < box.color.a < 1  # see-through
    # in the overlay's colour of the object, the label opaque
    from amodal_ros.interface.overlay import color_for

    rgb = tuple(float(c) / 255 for c in color_for(3))
    assert (box.color.r, box.color.g, box.color.b) == pytest.approx(rgb)
    assert label.color.a == 1.0
    # kept until the next frame's DELETEALL (a lifetime would blank them under a slow window)
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (0, 0) for m in msg.markers)
    assert (label.ns, label.id, label.type) == ("amodal_label", 3, 9)  # TEXT_VIEW_FACING
    assert label.text == "3: 57 % hidden"  # occlusion ratio 32 / 56
    # above the box's image-plane outline: half of 0.3 sin 30 + 0.2 cos 30, plus the text height
    top = (0.3 * math.sin(ANGLE) + 0.2 * math.cos(ANGLE)) / 2 + 0.04
    assert xyz(label.pose.position) == pytest.approx((0.125, -0.25 - top, 1.5))
    assert label.scale.z == pytest.approx(0.04)
    assert (label.color.r, label.color.g, label.color.b) == pytest.approx(
        (box.color.r, box.color.g, box.color.b)
    )


def check_image_header(img, frame_id="camera_optical"):
    assert stamp_ns(img.header) == STAMP and img.header.frame_id == frame_id


def check_array(msg, expected: FrameResult):
    """Field by field, for a message of either binding after a CDR round trip."""
    assert stamp_ns(msg.header) == STAMP
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_123, 456_789)
    assert msg.header.frame_id == "camera_optical"
    assert msg.window_first_stamp.sec * 10**9 + msg.window_first_stamp.nanosec == (
        expected.window_first_stamp_ns
    )
    assert msg.window_last_stamp.sec * 10**9 + msg.window_last_stamp.nanosec == (
        expected.window_last_stamp_ns
    )
    assert (msg.window_frames, msg.frames_missing) == (5, 1)
    assert msg.latency == pytest.approx(0.25)
    assert [o.object_id for o in msg.objects] == [3, 4]
    o3, o4 = msg.objects
    e3, e4 = expected.objects
    for o, e in ((o3, e3), (o4, e4)):
        for img, mask in ((o.modal_mask, e.modal), (o.amodal_mask, e.amodal)):
            check_image_header(img)
            assert (img.encoding, img.height, img.width, img.step) == ("mono8", H, W, W)
            np.testing.assert_array_equal(image_to_array(img), mask.astype(np.uint8) * 255)
        assert o.occlusion_ratio == pytest.approx(e.occlusion_ratio)
    # object 3: the model result
    assert (o3.amodal_valid, o3.reason) == (True, REASON_OK)
    assert (o3.bbox_x, o3.bbox_y, o3.bbox_width, o3.bbox_height) == (2, 2, 7, 8)
    assert not o3.truncated and not o4.truncated  # both inside the image
    assert as_list(o3.occluder_ids) == [4, 6, 9]
    assert as_list(o3.occluder_overlap_pixels) == [18, 14, 5]
    assert as_list(o3.occluder_depth_order) == [1, -1, 0]  # 0: unknown
    assert o3.occlusion_ratio == pytest.approx(32 / 56)
    # the linspace's mean index inside amodal[2:10, 2:9] is 5.5 * 16 + 5 of 191 (the whole
    # image's mean is 0.5)
    assert o3.mean_uncertainty == pytest.approx(93 / 191)
    check_image_header(o3.uncertainty)
    assert (o3.uncertainty.encoding, o3.uncertainty.step) == ("32FC1", W * 4)
    np.testing.assert_array_equal(image_to_array(o3.uncertainty), e3.uncertainty)
    assert (o3.completion.encoding, o3.completion.step) == ("rgba8", W * 4)
    np.testing.assert_array_equal(image_to_array(o3.completion), e3.completion)
    assert (o3.extent_valid, o3.extent_reason) == (True, EXTENT_OK)
    assert pose_tuple(o3.extent_pose) == pytest.approx(BOX.centre + BOX.orientation)
    assert xyz(o3.extent_size) == pytest.approx(BOX.size)
    assert o3.extent_hidden_share == pytest.approx(0.25)
    # object 4: not run; empty 0x0 images where nothing was computed
    assert (o4.amodal_valid, o4.reason) == (False, REASON_OBJECT_TOO_SMALL)
    assert (o4.bbox_x, o4.bbox_y, o4.bbox_width, o4.bbox_height) == (6, 2, 3, 6)
    assert as_list(o4.occluder_ids) == [] and as_list(o4.occluder_depth_order) == []
    assert o4.occlusion_ratio == 0 and o4.mean_uncertainty == 0
    assert (o4.extent_valid, o4.extent_reason) == (False, EXTENT_NO_AMODAL)
    assert pose_tuple(o4.extent_pose) == (0, 0, 0, 0, 0, 0, 1)  # identity, not a zero quaternion
    assert xyz(o4.extent_size) == (0, 0, 0) and o4.extent_hidden_share == 0
    for img, encoding in ((o4.completion, "rgba8"), (o4.uncertainty, "32FC1")):
        assert (img.height, img.width, img.step, len(img.data)) == (0, 0, 0, 0)
        assert img.encoding == encoding
        check_image_header(img)


def check_overlay(img, expected: FrameResult):
    check_image_header(img)
    assert (img.encoding, img.height, img.width, img.step) == ("rgb8", H, W, W * 3)
    out = image_to_array(img)
    rgb = expected.frame.rgb
    far = np.ones((H, W), bool)
    far[1:11, 1:10] = False  # objects and their outlines
    np.testing.assert_array_equal(out[far], rgb[far])
    hidden = expected.objects[0].amodal & ~expected.objects[0].modal
    assert (out[hidden] != rgb[hidden]).any(axis=-1).all()  # hidden part shaded


def check_completion(img, expected: FrameResult):
    check_image_header(img)
    out = image_to_array(img)
    o3 = expected.objects[0]
    hidden = o3.amodal & ~o3.modal
    np.testing.assert_array_equal(out[hidden], o3.completion[..., :3][hidden])
    np.testing.assert_array_equal(out[~hidden], expected.frame.rgb[~hidden])


def test_camera_info_for_a_frame_is_its_own_else_the_latest():
    from collections import OrderedDict
    from types import SimpleNamespace

    def info(ns: int):
        return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=ns)))

    infos: OrderedDict = OrderedDict()
    assert camera_info_for(infos, 5) is None  # none received yet
    stale = info(1)
    assert camera_info_for(infos, 5, stale) is stale
    infos[3], infos[7], infos[5] = info(3), info(7), info(5)  # in arrival order
    assert camera_info_for(infos, 7) is infos[7]  # its own
    assert camera_info_for(infos, 9) is infos[5]  # its own not yet here: the latest received
    assert camera_info_for(infos, 9, stale) is infos[5]
    own = info(9)
    assert camera_info_for(infos, 9, own) is own  # a frame keeps its own, even evicted


# --- rosbags ---------------------------------------------------------------------------------


@needs_rosbags
def test_rosbags_array_message_round_trips_through_cdr(typestore):
    expected = result()
    msg = ResultMessages(rosbags_kit(typestore)).array(expected)
    data = typestore.serialize_cdr(msg, ARRAY)
    check_array(typestore.deserialize_cdr(data, ARRAY), expected)


@needs_rosbags
def test_rosbags_overlay_and_completion_images(typestore):
    expected = result()
    builder = ResultMessages(rosbags_kit(typestore))
    overlay = typestore.deserialize_cdr(
        typestore.serialize_cdr(builder.overlay(expected), IMAGE), IMAGE
    )
    check_overlay(overlay, expected)
    completion = typestore.deserialize_cdr(
        typestore.serialize_cdr(builder.completion(expected), IMAGE), IMAGE
    )
    check_completion(completion, expected)


@needs_rosbags
def test_rosbags_markers(typestore):
    msg = ResultMessages(rosbags_kit(typestore)).markers(result())
    check_markers(typestore.deserialize_cdr(typestore.serialize_cdr(msg, MARKERS), MARKERS))


@needs_rosbags
@pytest.mark.parametrize("edge", ["top", "bottom", "left", "right"])
def test_an_object_at_the_image_edge_is_truncated_in_its_message_and_label(typestore, edge):
    expected = result()
    o3 = expected.objects[0]
    cut = {"top": (0, slice(None)), "bottom": (H - 1, slice(None))}
    cut |= {"left": (slice(None), 0), "right": (slice(None), W - 1)}
    o3.amodal[cut[edge]][5] = True  # one hidden pixel at the edge
    builder = ResultMessages(rosbags_kit(typestore))
    msg = typestore.deserialize_cdr(typestore.serialize_cdr(builder.array(expected), ARRAY), ARRAY)
    assert [o.truncated for o in msg.objects] == [True, False]
    label = builder.markers(expected).markers[2]
    assert label.text == "3: 58 % hidden, cut off by the image edge"  # 33 / 57


@needs_rosbags
def test_the_see_through_view_paints_nearer_objects_over_farther_ones(typestore):
    """Two objects hidden behind one bar at the same pixels: the nearer one (1, which depth
    puts in front of 2) shows there, whatever the ids' order (2 was painted last)."""
    from amodal_ros.interface.messages import far_to_near

    frame = Frame(STAMP, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.int64))
    behind_bar = np.zeros((H, W), bool)
    behind_bar[4:8, 6:10] = True

    def hidden_object(object_id, colour, order):
        modal = np.zeros((H, W), bool)
        modal[4:8, 2 if object_id == 1 else 12 : 6 if object_id == 1 else 14] = True
        completion = np.zeros((H, W, 4), np.uint8)
        completion[modal | behind_bar] = (*colour, 255)
        return ObjectFrameResult(
            object_id, modal, modal | behind_bar, True, REASON_OK,
            occluders={3 - object_id: 4}, occluder_order={3 - object_id: order},
            completion=completion,
        )  # fmt: skip

    near, far = hidden_object(1, (255, 0, 0), -1), hidden_object(2, (0, 0, 255), +1)
    for objects in ([near, far], [far, near]):
        assert [o.object_id for o in far_to_near(objects)] == [2, 1]
        result = FrameResult(frame, objects, STAMP, STAMP, 1, 0)
        image = ResultMessages(rosbags_kit(typestore)).completion(result)
        assert tuple(image_to_array(image)[5, 7]) == (255, 0, 0)
    unordered = [hidden_object(2, (0, 0, 255), 0), hidden_object(1, (255, 0, 0), 0)]
    assert [o.object_id for o in far_to_near(unordered)] == [1, 2]  # no depth: id order


def test_painting_order_follows_depth_through_a_chain_and_survives_contradictions():
    """far_to_near over three objects (2 behind 3 behind 1: painted 2, 3, 1, not in id order
    once 2 is done), an occluder that is no object of the frame (an unlabelled id), and two
    objects each said to be nearer than the other (id order, no endless wait)."""
    from amodal_ros.interface.messages import far_to_near

    empty = np.zeros((H, W), bool)

    def obj(object_id, order):
        return ObjectFrameResult(
            object_id, empty, empty, True, REASON_OK,
            occluders={i: 1 for i in order}, occluder_order=order,
        )  # fmt: skip

    # +1: the occluder is nearer than the object; -1: the object is nearer than the occluder
    chain = [obj(1, {3: -1}), obj(2, {3: +1}), obj(3, {1: +1, 2: -1})]
    assert [o.object_id for o in far_to_near(chain)] == [2, 3, 1]
    assert [o.object_id for o in far_to_near(chain[::-1])] == [2, 3, 1]
    stranger = [obj(1, {7: +1, 2: -1}), obj(2, {7: -1})]  # 7 is not in this frame
    assert [o.object_id for o in far_to_near(stranger)] == [2, 1]
    contradiction = [obj(2, {1: +1}), obj(1, {2: +1})]
    assert [o.object_id for o in far_to_near(contradiction)] == [1, 2]


@needs_rosbags
def test_latency_can_be_overridden_at_publication(typestore):
    msg = ResultMessages(rosbags_kit(typestore)).array(result(), latency=1.5)
    assert msg.latency == 1.5


@needs_rosbags
def test_a_frame_without_objects(typestore):
    empty = result()
    empty.objects = []
    msg = typestore.deserialize_cdr(
        typestore.serialize_cdr(ResultMessages(rosbags_kit(typestore)).array(empty), ARRAY), ARRAY
    )
    assert list(msg.objects) == [] and msg.header.frame_id == "camera_optical"


# --- rclpy -------------------------------------------------------------------------------------


@needs_rclpy
def test_rclpy_array_message_round_trips_through_cdr():
    expected = result()
    msg = ResultMessages(rclpy_kit()).array(expected)
    check_array(deserialize_message(serialize_message(msg), AmodalObjectArray), expected)


@needs_rclpy
def test_rclpy_overlay_and_completion_images():
    expected = result()
    builder = ResultMessages(rclpy_kit())
    check_overlay(
        deserialize_message(serialize_message(builder.overlay(expected)), Image), expected
    )
    check_completion(
        deserialize_message(serialize_message(builder.completion(expected)), Image), expected
    )


@needs_rclpy
def test_rclpy_markers():
    msg = ResultMessages(rclpy_kit()).markers(result())
    check_markers(deserialize_message(serialize_message(msg), MarkerArray))


@needs_rclpy
@needs_rosbags
def test_rclpy_and_rosbags_write_the_same_cdr(typestore):
    # Fast-CDR leaves alignment padding uninitialised, so the bytes are compared after a
    # rosbags re-serialisation (zero padding): same length, same content, each side reads both
    expected = result()
    for build, msg_type, name in (
        (ResultMessages.array, AmodalObjectArray, ARRAY),
        (ResultMessages.overlay, Image, IMAGE),
        (ResultMessages.markers, MarkerArray, MARKERS),
    ):
        a = bytes(serialize_message(build(ResultMessages(rclpy_kit()), expected)))
        b = bytes(
            typestore.serialize_cdr(build(ResultMessages(rosbags_kit(typestore)), expected), name)
        )
        assert len(a) == len(b)
        assert bytes(typestore.serialize_cdr(typestore.deserialize_cdr(a, name), name)) == b
        if msg_type is AmodalObjectArray:
            check_array(deserialize_message(b, msg_type), expected)
            check_array(typestore.deserialize_cdr(a, name), expected)


# --- without torch -----------------------------------------------------------------------------

NO_TORCH = """
sys.path.insert(0, {test_dir!r})
from test_result_messages import ARRAY, amodal_typestore, result
from amodal_ros.interface.messages import ResultMessages, rosbags_kit
ts = amodal_typestore()
builder = ResultMessages(rosbags_kit(ts))
data = ts.serialize_cdr(builder.array(result()), ARRAY)
overlay = builder.overlay(result())
markers = ts.serialize_cdr(builder.markers(result()), 'visualization_msgs/msg/MarkerArray')
assert len(data) > 0 and overlay.height > 0 and len(markers) > 0
assert 'torch' not in sys.modules
print('ok')
"""


@needs_rosbags
def test_result_messages_build_without_torch():
    from conftest import run_without  # not at module level: the subprocess imports this file

    assert run_without(NO_TORCH.format(test_dir=str(Path(__file__).parent))).strip() == "ok"


def test_the_camera_info_passed_through_is_the_nearest_within_the_sync_tolerance():
    from amodal_ros.interface.messages import nearest_stamped

    infos = {1_000: "a", 34_000: "b", 67_000: "c"}  # stamped apart from the frames
    assert nearest_stamped(infos.items(), 33_000, 5_000) == "b"  # the node published none
    assert nearest_stamped(infos.items(), 50_000, 5_000) is None  # none near enough
    assert nearest_stamped({}.items(), 0, 5_000) is None
    # a static camera_info publisher stamps 0: it serves every frame (none was passed through)
    static = {0: "static", 10_000: "b"}
    assert nearest_stamped(static.items(), 900_000, 5_000) == "static"
    assert nearest_stamped(static.items(), 11_000, 5_000) == "b"
    assert nearest_stamped(infos.items(), 39_000, 5_000) == "b"  # exactly the tolerance away
    # of several static ones (the node keeps them in arrival order), the latest serves
    assert nearest_stamped([(0, "first"), (10_000, "b"), (0, "latest")], 900_000, 5_000) == (
        "latest"
    )


@needs_rclpy
def test_the_camera_info_passed_through_carries_the_frames_stamp(typestore):
    """A driver may stamp its camera info apart from the image; exact-time consumers (RViz's
    Camera display, image_transport's CameraSubscriber) pair the two by equal stamps."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo

    from amodal_ros.interface.messages import restamped

    live = CameraInfo(width=W, height=H, k=[2.0] * 9)
    live.header.frame_id, live.header.stamp = "cam", Time(sec=5, nanosec=3_000_000)
    out = restamped(live, Time(sec=5, nanosec=0))
    assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (5, 0, "cam")
    assert out.width == W and list(out.k) == [2.0] * 9
    assert live.header.stamp.nanosec == 3_000_000  # the kept one is not changed
    kit = rosbags_kit(typestore)
    recorded = typestore.deserialize_cdr(
        typestore.serialize_cdr(
            typestore.types["sensor_msgs/msg/CameraInfo"](
                header=kit.Header(stamp=kit.Time(sec=5, nanosec=3_000_000), frame_id="cam"),
                height=H,
                width=W,
                distortion_model="plumb_bob",
                d=np.zeros(5),
                k=np.full(9, 2.0),
                r=np.eye(3).ravel(),
                p=np.zeros(12),
                binning_x=0,
                binning_y=0,
                roi=typestore.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False),
            ),  # fmt: skip
            "sensor_msgs/msg/CameraInfo",
        ),
        "sensor_msgs/msg/CameraInfo",
    )
    out = restamped(recorded, kit.Time(sec=5, nanosec=0))
    assert (out.header.stamp.nanosec, out.header.frame_id, out.width) == (0, "cam", W)
