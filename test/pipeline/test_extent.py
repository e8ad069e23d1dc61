"""The amodal 3D extent (pipeline.extent): hand-computed boxes from masks, depth and K."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from amodal_ros.core.frames import (
    EXTENT_BAD_CAMERA_INFO,
    EXTENT_DEPTH_FROM_NEAREST_FRAME,
    EXTENT_NO_AMODAL,
    EXTENT_NO_CAMERA_INFO,
    EXTENT_NO_DEPTH,
    EXTENT_NO_VALID_DEPTH,
    EXTENT_OK,
    Frame,
    ObjectFrameResult,
)
from amodal_ros.pipeline.extent import (
    MIN_THICKNESS,
    Intrinsics,
    amodal_extent,
    frame_extent,
    window_extent,
)

H, W = 48, 64
K = Intrinsics(fx=100.0, fy=100.0, cx=32.0, cy=24.0)


def rectangle(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    return mask


def flat(z: float) -> np.ndarray:
    return np.full((H, W), z, np.float32)


# rows 14..33 (20 px), columns 12..51 (40 px)
RECT = rectangle(slice(14, 34), slice(12, 52))


def test_rectangle_at_known_depth_gives_the_metric_box():
    # flat visible surface at 0.99 m: thickness is the minimum (0.02 m), centre 0.01 m behind it
    box = amodal_extent(RECT, RECT, flat(0.99), K)
    assert (box.valid, box.reason) == (True, EXTENT_OK)
    assert MIN_THICKNESS == 0.02
    # at z = 1.0 m a pixel is 1 cm: 40 x 20 px -> 0.40 x 0.20 m
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    # pixel centres u = 12..51 -> middle 31.5, (31.5 - 32) px * 1 cm; v middle 23.5
    np.testing.assert_allclose(box.centre, (-0.005, -0.005, 1.0), atol=1e-6)
    np.testing.assert_allclose(box.orientation, (0.0, 0.0, 0.0, 1.0), atol=1e-12)
    assert box.hidden_share == 0.0


def test_focal_lengths_and_principal_point_scale_each_axis():
    k = Intrinsics(fx=200.0, fy=50.0, cx=12.0, cy=14.0, width=W, height=H)
    box = amodal_extent(RECT, RECT, flat(1.99), k)  # centre at 2.0 m
    # width 40 px * 2 m / 200 px = 0.4 m; height 20 px * 2 m / 50 px = 0.8 m
    np.testing.assert_allclose(box.size, (0.4, 0.8, 0.02), atol=1e-6)
    # u middle 31.5: (31.5 - 12) * 2 / 200 = 0.195; v middle 23.5: (23.5 - 14) * 2 / 50 = 0.38
    np.testing.assert_allclose(box.centre, (0.195, 0.38, 2.0), atol=1e-6)


def test_millimetre_depth_and_camera_info_of_a_frame():
    info = SimpleNamespace(k=[100.0, 0, 32.0, 0, 100.0, 24.0, 0, 0, 1], width=W, height=H)
    depth = np.full((H, W), 990, np.uint16)  # 16UC1 mm
    frame = Frame(0, np.zeros((H, W, 3), np.uint8), RECT.astype(np.int64), depth, "16UC1")
    frame.camera_info = info
    box = frame_extent(frame, RECT, RECT)
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    np.testing.assert_allclose(box.centre, (-0.005, -0.005, 1.0), atol=1e-6)
    frame.camera_info = None
    assert frame_extent(frame, RECT, RECT).reason == EXTENT_NO_CAMERA_INFO
    frame.depth = None
    assert frame_extent(frame, RECT, RECT).reason == EXTENT_NO_DEPTH


def test_thickness_is_twice_the_visible_depth_spread():
    # a step: the left half of the visible surface at 1.0 m, the right half at 1.1 m -> the
    # trimmed range is 1.0..1.1, thickness 0.2 m, centre depth 1.0 + 0.1 = 1.1 m
    depth = flat(1.0)
    depth[:, 32:] = 1.1
    box = amodal_extent(RECT, RECT, depth, K)
    np.testing.assert_allclose(box.size, (0.44, 0.22, 0.2), atol=1e-5)  # 40 x 20 px at 1.1 m
    assert box.centre[2] == pytest.approx(1.1, abs=1e-6)


def test_trimmed_depth_ignores_flying_pixels_and_holes():
    depth = flat(0.99)
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(RECT)
    pick = rng.permutation(len(ys))
    depth[ys[pick[:10]], xs[pick[:10]]] = 5.0  # 2.5 % of the valid pixels flying far behind
    depth[ys[pick[10:410]], xs[pick[10:410]]] = 0.0  # half of the visible pixels without depth
    depth[ys[pick[410:420]], xs[pick[410:420]]] = np.nan
    box = amodal_extent(RECT, RECT, depth, K)
    assert box.valid
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)


def test_sensor_noise_does_not_read_as_thickness():
    # a flat board at 1.99 m with 2 cm of noise: per pixel, 2 x (q95 - q5) would be 0.13 m
    noise = np.random.default_rng(1).normal(0.0, 0.02, (H, W)).astype(np.float32)
    pixels = (flat(1.99) + noise)[RECT]
    assert 2 * np.diff(np.quantile(pixels, [0.05, 0.95]))[0] > 0.12
    box = amodal_extent(RECT, RECT, flat(1.99) + noise, K)
    assert box.size[2] < 0.05
    assert box.centre[2] == pytest.approx(2.0, abs=0.02)


@pytest.mark.parametrize("bleed", [1, 2, 3])
def test_a_mask_wider_than_the_object_keeps_the_box_off_the_wall_behind(bleed):
    # a board at 0.99 m before a wall at 3 m; the segmenter's mask is `bleed` px too wide all
    # round (masks and registered depth routinely disagree by a pixel or two at the rim)
    depth = np.where(RECT, 0.99, 3.0).astype(np.float32)
    wide = rectangle(slice(14 - bleed, 34 + bleed), slice(12 - bleed, 52 + bleed))
    box = amodal_extent(wide, wide, depth, K)
    assert box.centre[2] == pytest.approx(1.0, abs=0.01)  # before: 2.0 m and more
    assert box.size[2] == pytest.approx(MIN_THICKNESS)
    assert box.size[0] == pytest.approx((40 + 2 * bleed) * 0.01, abs=1e-6)


def test_a_small_object_with_rough_depth_uses_its_pixels_not_their_blocks():
    # 8 x 8 px (4 blocks) on a checkerboard of 1.0 / 1.1 m: each block's median is 1.05, the
    # pixels' spread is 0.1 m
    small = rectangle(slice(20, 28), slice(28, 36))
    v, u = np.mgrid[:H, :W]
    depth = np.where((v + u) % 2 == 0, 1.0, 1.1).astype(np.float32)
    assert amodal_extent(small, small, depth, K).size[2] == pytest.approx(0.2)


def test_a_small_object_uses_its_pixels():
    # 6 x 6 px: too few 4 x 4 blocks, the 36 depths themselves; front half at 1.0, back 1.1
    small = rectangle(slice(20, 26), slice(30, 36))
    depth = flat(1.0)
    depth[:, 33:] = 1.1
    box = amodal_extent(small, small, depth, K)
    np.testing.assert_allclose(box.size, (0.066, 0.066, 0.2), atol=1e-6)  # 6 px at 1.1 m
    assert box.centre[2] == pytest.approx(1.1)


# a 640 x 480 camera, f = 600 px: rays through the pixel centres, for objects seen in
# perspective (the visible rim of a sphere is nearer than its centre: at d - r^2 / d)
CAMERA = Intrinsics(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)
_V, _U = np.mgrid[:480, :640]
RAYS = ((_U - CAMERA.cx) / CAMERA.fx, (_V - CAMERA.cy) / CAMERA.fy)  # [480, 640] x, y at z = 1


def ray_cast(hit: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Depth (z) image: `t` where rays hit, a wall at 3 m elsewhere."""
    return np.where(hit, t, 3.0).astype(np.float32)


def sphere(z0: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask, depth) of a sphere of radius r centred on the optical axis at z0."""
    x, y = RAYS
    a = x * x + y * y + 1  # |(x, y, 1)|^2: z along the ray (x t, y t, t) solves a t^2 - 2 z0 t
    disc = z0 * z0 - a * (z0 * z0 - r * r)  # + z0^2 - r^2 = 0
    hit = disc > 0
    return hit, ray_cast(hit, (z0 - np.sqrt(np.maximum(disc, 0))) / a)


@pytest.mark.parametrize(("z0", "r"), [(0.5, 0.03), (0.6, 0.05), (1.0, 0.1), (0.8, 0.15)])
def test_a_sphere_seen_in_perspective_gives_two_thirds_of_its_diameter(z0, r):
    # the figures the README and the module docstring give planners
    mask, depth = sphere(z0, r)
    box = amodal_extent(mask, mask, depth, CAMERA)
    assert 0.6 <= box.size[2] / (2 * r) <= 0.7
    assert -0.06 < box.centre[2] - z0 < 0  # in front of the true centre, by up to 6 cm
    assert box.size[0] / (2 * r) == pytest.approx(1.0, abs=0.05)
    assert box.orientation == (0.0, 0.0, 0.0, 1.0)  # a disc: isotropic, angle 0


@pytest.mark.parametrize(("z0", "r"), [(0.6, 0.04), (1.0, 0.05)])
def test_a_cylinder_seen_from_the_side_keeps_its_flanks(z0, r):
    # axis along x at depth z0, 20 cm long: a rule on all depths dropped the flanks (0.42)
    x, y = RAYS
    a = y * y + 1
    disc = z0 * z0 - a * (z0 * z0 - r * r)
    hit = (disc > 0) & (np.abs(x * z0) < 0.1)
    depth = ray_cast(hit, (z0 - np.sqrt(np.maximum(disc, 0))) / a)
    box = amodal_extent(hit, hit, depth, CAMERA)
    assert 0.6 <= box.size[2] / (2 * r) <= 0.7


@pytest.mark.parametrize("near_share", [0.2, 0.3, 0.4, 0.45])
def test_a_part_nearer_than_the_rest_stays_in_the_box(near_share):
    # a step 10 cm nearer on the left `near_share` of the object (a handle, a cap): dropped as
    # background from 40 % down, the box began 10 cm behind surface the camera sees
    col = 12 + round(40 * near_share)
    depth = flat(1.1)
    depth[:, :col] = 1.0
    box = amodal_extent(RECT, RECT, depth, K)
    assert box.centre[2] - box.size[2] / 2 == pytest.approx(1.0, abs=1e-6)  # the front
    assert box.size[2] == pytest.approx(0.2, abs=1e-6)


def rotated_rectangle(
    length: float, breadth: float, degrees: float, centre: tuple[float, float] = (32.0, 24.0)
) -> np.ndarray:
    """Pixels whose centres lie in a length x breadth px rectangle centred at `centre` (u, v),
    its long side rotated `degrees` from the image's x towards its y (down)."""
    v, u = np.mgrid[:H, :W]
    a = math.radians(degrees)
    du, dv = u - centre[0], v - centre[1]
    along = du * math.cos(a) + dv * math.sin(a)
    across = -du * math.sin(a) + dv * math.cos(a)
    return (np.abs(along) <= length / 2) & (np.abs(across) <= breadth / 2)


def test_rotated_rectangle_gives_the_rotation_about_the_optical_axis():
    mask = rotated_rectangle(40, 10, 30)
    box = amodal_extent(mask, mask, flat(0.99), K)
    qx, qy, qz, qw = box.orientation
    assert (qx, qy) == (0.0, 0.0)
    assert 2 * math.degrees(math.atan2(qz, qw)) == pytest.approx(30, abs=1.5)
    # 40 x 10 px at 1 cm/px, within about a pixel of rasterisation
    assert box.size[0] == pytest.approx(0.40, abs=0.015)
    assert box.size[1] == pytest.approx(0.10, abs=0.015)
    np.testing.assert_allclose(box.centre[:2], (0.0, 0.0), atol=0.005)


def test_a_turned_rectangle_off_the_optical_axis_is_centred_where_it_is():
    mask = rotated_rectangle(40, 10, 30, centre=(40.0, 30.0))  # 8 px right, 6 px down of K's
    box = amodal_extent(mask, mask, flat(0.99), K)
    np.testing.assert_allclose(box.centre, (0.08, 0.06, 1.0), atol=0.005)


def test_a_steep_rectangle_folds_to_the_axis_nearest_the_cameras_x():
    # long side at 70 degrees: the box's x is the short side at -20 degrees
    mask = rotated_rectangle(40, 10, 70)
    box = amodal_extent(mask, mask, flat(0.99), K)
    qz, qw = box.orientation[2:]
    assert 2 * math.degrees(math.atan2(qz, qw)) == pytest.approx(-20, abs=1.5)
    assert box.size[0] == pytest.approx(0.10, abs=0.015)
    assert box.size[1] == pytest.approx(0.40, abs=0.015)


def test_hidden_share_is_the_share_of_the_box_beyond_the_visible_part():
    # the right half of the object's length is hidden: half of the box is inferred
    visible = rectangle(slice(14, 34), slice(12, 32))
    box = amodal_extent(visible, RECT, flat(0.99), K)
    assert box.hidden_share == pytest.approx(0.5)
    np.testing.assert_allclose(box.size[:2], (0.40, 0.20), atol=1e-6)  # the amodal box
    # a pole in front of the middle hides pixels but not the extent: the box is all measured
    poled = RECT & ~rectangle(slice(0, H), slice(28, 34))
    box = amodal_extent(poled, RECT, flat(0.99), K)
    assert box.hidden_share == pytest.approx(0.0, abs=1e-9)
    obj = ObjectFrameResult(1, poled, RECT, True, EXTENT_OK, extent=box)
    assert obj.occlusion_ratio == pytest.approx(6 / 40)  # the pixel share differs
    # hidden along both axes: the top-left quarter seen, three quarters of the box inferred
    quarter = rectangle(slice(14, 24), slice(12, 32))
    assert amodal_extent(quarter, RECT, flat(0.99), K).hidden_share == pytest.approx(0.75)
    # a tall narrow box seen only at its bottom: each axis of the visible part is measured
    # against the box's own range along it (its height far exceeds its width here)
    tall = rectangle(slice(4, 44), slice(27, 37))
    bottom = rectangle(slice(34, 44), slice(27, 37))
    assert amodal_extent(bottom, tall, flat(0.99), K).hidden_share == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no depth", EXTENT_NO_DEPTH),
        ("no camera info", EXTENT_NO_CAMERA_INFO),
        ("uncalibrated", EXTENT_BAD_CAMERA_INFO),
        ("other size", EXTENT_BAD_CAMERA_INFO),
        ("no depth on the visible part", EXTENT_NO_VALID_DEPTH),
        ("too little depth on the visible part", EXTENT_NO_VALID_DEPTH),
        ("nothing visible", EXTENT_NO_VALID_DEPTH),
        ("empty amodal mask", EXTENT_NO_AMODAL),
    ],
)
def test_missing_inputs_give_no_box_and_the_reason(case, reason):
    modal, amodal, depth, k = RECT, RECT, flat(1.0), K
    if case == "no depth":
        depth = None
    elif case == "no camera info":
        k = None
    elif case == "uncalibrated":
        k = Intrinsics(0.0, 0.0, 0.0, 0.0, W, H)  # CameraInfo of an uncalibrated camera
    elif case == "other size":
        k = Intrinsics(100.0, 100.0, 32.0, 24.0, width=2 * W, height=2 * H)
    elif case == "no depth on the visible part":
        depth[RECT] = 0.0  # the background has depth, the object none: never borrowed
    elif case == "too little depth on the visible part":
        depth[RECT] = np.nan
        depth[14:34, 12:19] = 1.0  # 140 of 800 visible pixels: below a quarter
    elif case == "nothing visible":
        modal = np.zeros_like(RECT)
    elif case == "empty amodal mask":
        amodal = np.zeros_like(RECT)
    box = amodal_extent(modal, amodal, depth, k)
    assert (box.valid, box.reason) == (False, reason)
    assert box.size == (0.0, 0.0, 0.0) and box.centre == (0.0, 0.0, 0.0)
    assert box.orientation == (0.0, 0.0, 0.0, 1.0) and box.hidden_share == 0.0


def test_intrinsics_from_camera_info():
    info = SimpleNamespace(k=np.array([500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]), width=640)
    info.height = 480
    k = Intrinsics.from_camera_info(info)
    assert k == Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    assert k.fits((480, 640)) and not k.fits((240, 320))
    assert Intrinsics.from_camera_info(None) is None
    assert Intrinsics(500.0, 510.0, 319.5, 239.5).fits((1, 1))  # size unknown (0): any
    # a ROS 1 bag's CameraInfo spells it K; a message without a 3x3 K gives no intrinsics
    ros1 = SimpleNamespace(K=info.k, width=640, height=480)
    assert Intrinsics.from_camera_info(ros1) == k
    assert Intrinsics.from_camera_info(SimpleNamespace(k=[1.0, 2.0], width=2, height=2)) is None
    nine_plus = SimpleNamespace(k=[*info.k, 0.0, 0.0, 0.0], width=640, height=480)
    assert Intrinsics.from_camera_info(nine_plus) is None  # a 3x4 matrix is no K
    # usable only with finite focal lengths > 0 along both axes
    assert not Intrinsics(500.0, 0.0, 319.5, 239.5).calibrated
    assert not Intrinsics(float("nan"), 510.0, 319.5, 239.5).calibrated
    assert not Intrinsics(500.0, 510.0, float("inf"), 239.5).calibrated


def test_intrinsics_are_the_rectified_images_projection_as_depth_image_proc_takes_them():
    """An image_rect topic's pixels follow P, not the raw image's K (rectification moves the
    principal point and rescales the focal lengths); K is taken only when P is zero."""
    k = [500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]
    p = [480.0, 0, 310.0, 0, 0, 485.0, 245.0, 0, 0, 0, 1, 0]
    info = SimpleNamespace(k=k, p=p, width=640, height=480)
    assert Intrinsics.from_camera_info(info) == Intrinsics(480.0, 485.0, 310.0, 245.0, 640, 480)
    info.p = [0.0] * 12  # a driver that fills K only
    assert Intrinsics.from_camera_info(info) == Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    info.p = [480.0, 0, 310.0, 0, 0, 0.0, 245.0, 0, 0, 0, 1, 0]  # half a P: not calibrated
    assert Intrinsics.from_camera_info(info) == Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    ros1 = SimpleNamespace(K=k, P=p, width=640, height=480)
    assert Intrinsics.from_camera_info(ros1).fx == 480.0


def test_intrinsics_of_a_binned_or_cropped_image_are_reduced_as_image_geometry_does():
    """A driver that bins or crops sends the full sensor's size and matrices: the image is
    the region of interest over the binning, and so are its intrinsics (every box was
    EXTENT_BAD_CAMERA_INFO before: the sizes never matched)."""
    msgs = pytest.importorskip("sensor_msgs.msg")  # the real message's fields
    info = msgs.CameraInfo(width=1280, height=960, binning_x=2, binning_y=2)
    info.p = [960.0, 0, 640.0, 0, 0, 970.0, 480.0, 0, 0, 0, 1, 0]
    k = Intrinsics.from_camera_info(info)
    assert k == Intrinsics(480.0, 485.0, 320.0, 240.0, 640, 480)
    assert k.fits((480, 640))
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 200, 100, 800, 600
    assert Intrinsics.from_camera_info(info) == Intrinsics(480.0, 485.0, 220.0, 190.0, 400, 300)
    info.binning_x = info.binning_y = 0  # 0 is no binning, as 1
    assert Intrinsics.from_camera_info(info) == Intrinsics(960.0, 970.0, 440.0, 380.0, 800, 600)
    info.roi.height = 0  # a region without a height: the full image, as without one
    assert Intrinsics.from_camera_info(info) == Intrinsics(960.0, 970.0, 640.0, 480.0, 1280, 960)
    info.binning_x, info.binning_y = 2, 1  # each axis by its own
    info.roi.width = info.roi.height = 0
    assert Intrinsics.from_camera_info(info) == Intrinsics(480.0, 970.0, 320.0, 480.0, 640, 960)
    # the same object seen binned and whole: the same box
    modal = np.zeros((H, W), bool)
    modal[10:30, 20:60] = True
    depth = np.where(modal, 1.5, 0.0)
    whole = Intrinsics(100.0, 100.0, 39.5, 23.5, W, H)
    binned = SimpleNamespace(k=[200.0, 0, 79.0, 0, 200.0, 47.0, 0, 0, 1], width=2 * W)
    binned.height, binned.binning_x, binned.binning_y = 2 * H, 2, 2
    one = amodal_extent(modal, modal, depth, whole)
    two = amodal_extent(modal, modal, depth, Intrinsics.from_camera_info(binned))
    assert two.valid and two.centre == pytest.approx(one.centre)
    assert two.size == pytest.approx(one.size)


def test_a_camera_info_framing_no_image_can_have_is_refused_with_its_reason():
    """A binning beyond the image left a 0x0 image, read as "size unknown": any intrinsics
    passed the size check; a region of interest outside the sensor crops nothing real."""
    msgs = pytest.importorskip("sensor_msgs.msg")
    info = msgs.CameraInfo(width=640, height=480, binning_x=1000, binning_y=1000)
    info.p = [500.0, 0, 319.5, 0, 0, 510.0, 239.5, 0, 0, 0, 1, 0]
    k = Intrinsics.from_camera_info(info)
    assert not k.fits((480, 640)) and not k.fits((1, 1))
    assert "binning (1000x1000) is larger than its 640x480 image" in k.problem((480, 640))
    info.binning_x = info.binning_y = 2
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 600, 0, 100, 100
    k = Intrinsics.from_camera_info(info)
    assert not k.fits((50, 50))
    assert "region of interest (100x100 at 600,0) lies outside" in k.problem((50, 50))
    info.roi.x_offset = 540  # inside: reduced as before
    assert Intrinsics.from_camera_info(info).fits((50, 50))
    info.width = info.height = 0  # an uncalibrated driver's zeros: nothing to check
    info.roi.width = info.roi.height = 0
    assert Intrinsics.from_camera_info(info).fits((7, 9))


def test_a_blob_the_amodal_mask_dropped_and_glints_give_no_depth():
    """A segmenter's blob of the object's id on the wall behind, which `drop_detached` took out
    of the amodal mask, put the box at the wall, 4 m thick; readings of a few millimetres (a
    specular glint, no return) made a board 2 m thick."""
    depth = np.where(RECT, 0.99, 3.0).astype(np.float32)  # board before a wall at 3 m
    blob = rectangle(slice(2, 10), slice(54, 62))  # 64 px: 8 % of the modal mask
    box = amodal_extent(RECT | blob, RECT, depth, K)
    assert box.centre[2] == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    assert box.hidden_share == 0.0  # the blob widens no visible extent either
    glints = flat(0.99)
    glints[16:24, 14:22] = 0.002  # 64 px of 2 mm readings: 1.88 m thick before
    box = amodal_extent(RECT, RECT, glints, K)
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)


def test_a_hidden_object_gets_its_box_at_the_depth_where_the_window_last_saw_it():
    """Fully hidden behind a board at 0.5 m in the window's last frame, the object had no box
    (too few valid depth pixels), the case amodal completion exists for; it is boxed at the
    depth of its visible surface in the nearest frame that shows it (1 m, not its own blob on
    the wall at 3 m, small against its amodal area), and says so."""
    info = SimpleNamespace(k=[100.0, 0, 32.0, 0, 100.0, 24.0, 0, 0, 1], width=W, height=H)
    board = rectangle(slice(0, H), slice(8, 56))
    blob = rectangle(slice(2, 14), slice(0, 8))  # a segmenter's blob of the object's id
    sliver = rectangle(slice(14, 34), slice(44, 52))  # 160 px of the object's 800
    frames, modal = [], np.zeros((4, H, W), bool)
    for t in range(4):
        hidden = t >= 2  # the board passes in front from frame 2 on
        depth = np.where(board, 0.5, 3.0) if hidden else np.where(RECT, 0.99, 3.0)
        frame = Frame(t, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.int64))
        frame.depth, frame.camera_info = depth.astype(np.float32), info
        frames.append(frame)
        modal[t] = False if hidden else RECT | blob
    amodal = modal.copy()  # frames the model did not decode carry the visible mask
    amodal[3] = RECT  # the newest frame's amodal mask, the blob dropped
    box = window_extent(frames, modal, amodal, 3, detached_share=0.2)
    assert (box.valid, box.reason) == (True, EXTENT_DEPTH_FROM_NEAREST_FRAME)
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    np.testing.assert_allclose(box.centre, (-0.005, -0.005, 1.0), atol=1e-6)
    assert box.hidden_share == 1.0  # nothing of the box is seen in this frame
    assert window_extent(frames, modal, amodal, 1, 0.2).reason == EXTENT_OK  # its own depth
    assert window_extent(frames, modal, amodal, 3, 0.0).centre[2] > 2.0  # the blob's depth kept
    decoded = amodal.copy()
    decoded[:2] = RECT  # frames the model decoded dropped the blob too: never their depth
    assert window_extent(frames, modal, decoded, 3, 0.0).centre[2] == pytest.approx(1.0)
    # seen only as a sliver beside the blob: the blob is small against the object's amodal
    # area (not against the sliver, where it would be half the visible pixels)
    modal[:2] = sliver | blob
    amodal[:2] = modal[:2]
    box = window_extent(frames, modal, amodal, 3, 0.2)
    assert box.reason == EXTENT_DEPTH_FROM_NEAREST_FRAME and box.centre[2] < 1.1
    for frame in frames[:2]:  # no depth where it was seen: none to take
        frame.depth = None
    assert window_extent(frames, modal, amodal, 3, 0.2).reason == EXTENT_NO_VALID_DEPTH


def test_a_hidden_object_takes_the_depth_of_the_nearest_frame_that_saw_it():
    """Seen at 2 m in frame 2 and at 1 m in frame 5, hidden by a board at 0.3 m between: frame
    3 takes frame 2's depth and frame 4 frame 5's."""
    info = SimpleNamespace(k=[100.0, 0, 32.0, 0, 100.0, 24.0, 0, 0, 1], width=W, height=H)
    frames, modal = [], np.zeros((6, H, W), bool)
    for t in range(6):
        seen_at = {2: 2.0, 5: 1.0}.get(t)
        frame = Frame(t, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.int64))
        frame.depth, frame.camera_info = flat(seen_at or 0.3), info
        frames.append(frame)
        modal[t] = RECT if seen_at else False
    amodal = np.broadcast_to(RECT, modal.shape).copy()
    assert [window_extent(frames, modal, amodal, t, 0.0).centre[2] for t in (3, 4)] == [
        pytest.approx(2.01),
        pytest.approx(1.01),
    ]


@pytest.mark.parametrize("degrees", [0, 5, 15, 30, 45, -20])
def test_a_turned_square_gets_its_own_box_and_a_disc_yaw_0(degrees):
    """A square has no principal axis: it got yaw 0 and the upright box around it, 1.2-1.4x
    as wide as the square (a gripper closing on a cube by that box misses it). Turned 5
    degrees, its upright box is 1.08x as wide (0.85 of the area): still turned."""
    mask = rotated_rectangle(30, 30, degrees)
    box = amodal_extent(mask, mask, flat(0.99), K)
    yaw = 2 * math.degrees(math.atan2(box.orientation[2], box.orientation[3]))
    folded = (degrees + 45) % 90 - 45  # a square's sides repeat every 90 degrees
    assert yaw == pytest.approx(folded if folded != -45 else 45, abs=2.0)
    assert box.size[:2] == pytest.approx((0.30, 0.30), abs=0.02)
    v, u = np.mgrid[:H, :W]
    disc = (u - 32.0) ** 2 + (v - 24.0) ** 2 <= 15**2
    assert amodal_extent(disc, disc, flat(0.99), K).orientation == (0.0, 0.0, 0.0, 1.0)


def test_a_frame_with_depth_in_no_known_encoding_has_no_depth_for_a_box():
    frame = Frame(0, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.int64))
    frame.depth, frame.depth_encoding = np.full((H, W), 100, np.uint8), "8UC1"
    frame.camera_info = SimpleNamespace(k=[100.0, 0, 32.0, 0, 100.0, 24.0, 0, 0, 1], width=W)
    frame.camera_info.height = H
    assert frame_extent(frame, RECT, RECT).reason == EXTENT_NO_DEPTH


def test_a_box_needs_ten_valid_depth_pixels_on_the_visible_part():
    from amodal_ros.pipeline.extent import MIN_DEPTH_PIXELS, surface_depth

    ten = rectangle(slice(20, 22), slice(30, 35))
    assert MIN_DEPTH_PIXELS == int(ten.sum()) == 10
    assert surface_depth(ten, flat(1.0)) is not None
    nine = ten.copy()
    nine[20, 30] = False
    assert surface_depth(nine, flat(1.0)) is None


def test_a_surfaces_spread_is_three_scaled_mads_and_at_least_2_cm():
    from amodal_ros.pipeline.extent import _spread

    median, margin = _spread(np.array([1.0, 1.01, 1.02, 1.03, 1.04]))
    assert median == pytest.approx(1.02) and margin == pytest.approx(3 * 1.4826 * 0.01)
    assert _spread(np.array([2.0, 2.0, 2.0])) == (2.0, 0.02)  # a flat face: the floor


def test_a_mildly_oval_object_turned_gets_its_own_axis():
    """An oval 30 x 26 px turned 30 degrees (second moments 14 % apart, clearly not a disc):
    its box is along its long axis. Taken for isotropic, it got the upright box around it
    and yaw 0 (its smallest rectangle is within 5 % of the upright one)."""
    v, u = np.mgrid[:H, :W]
    a = math.radians(30)
    along = (u - 32.0) * math.cos(a) + (v - 24.0) * math.sin(a)
    across = -(u - 32.0) * math.sin(a) + (v - 24.0) * math.cos(a)
    oval = (along / 15) ** 2 + (across / 13) ** 2 <= 1
    box = amodal_extent(oval, oval, flat(0.99), K)
    yaw = 2 * math.degrees(math.atan2(box.orientation[2], box.orientation[3]))
    assert yaw == pytest.approx(30, abs=2.0)
    assert box.size[:2] == pytest.approx((0.31, 0.27), abs=0.01)  # and a pixel's footprint


def test_a_turned_box_is_the_same_with_non_square_pixels():
    """A camera with fy = fx / 2 sees an object half as many rows tall as one with square
    pixels: the same turned rectangle, each of its rows seen twice by the square-pixel
    camera, gives the same metric box (a pixel's footprint along each turned box axis takes
    the focal length of each image axis in its share)."""
    square = Intrinsics(fx=100.0, fy=100.0, cx=32.0, cy=47.5)  # an image 2H rows tall
    wide = Intrinsics(fx=100.0, fy=50.0, cx=32.0, cy=23.5)  # pixels twice as tall as wide
    v, u = np.mgrid[: 2 * H, :W]
    a = math.radians(30)
    along = (u - 32.0) * math.cos(a) + (v - 48.0) * math.sin(a)
    across = -(u - 32.0) * math.sin(a) + (v - 48.0) * math.cos(a)
    tall = (np.abs(along) <= 20) & (np.abs(across) <= 6)  # 40 x 12 px, 2H x W
    tall[1::2] = tall[::2]  # rows in pairs: each pair is one row of the wide-pixel camera
    short = tall[::2]  # [H, W]
    one = amodal_extent(tall, tall, np.full((2 * H, W), 0.99, np.float32), square)
    two = amodal_extent(short, short, flat(0.99), wide)
    assert two.orientation == pytest.approx(one.orientation, abs=0.01)
    assert two.size == pytest.approx(one.size, abs=0.001)
    assert two.centre == pytest.approx(one.centre, abs=0.001)


def test_a_small_object_of_eight_blocks_is_measured_on_their_medians():
    """A 5 x 16 px strip (no inside past its 3 px rim) on rough depth (a checkerboard of 1.0 /
    1.1 m): four 4 x 4 blocks and four of one row, each with 4 or more valid pixels, are
    MIN_BLOCKS; their medians (1.05) give the minimum thickness, not the pixels' 0.2 m."""
    strip = rectangle(slice(20, 25), slice(24, 40))
    v, u = np.mgrid[:H, :W]
    depth = np.where((v + u) % 2 == 0, 1.0, 1.1).astype(np.float32)
    box = amodal_extent(strip, strip, depth, K)
    assert box.size[2] == pytest.approx(MIN_THICKNESS)
    assert box.centre[2] == pytest.approx(1.05 + MIN_THICKNESS / 2)


def test_a_small_objects_mask_too_wide_keeps_its_box_off_the_wall_behind():
    """A 6 x 6 px object at 0.99 m before a wall at 3 m, its mask a pixel too wide all round:
    too small for an inside, its depths near their median (the object's) are kept, the wall's
    bled in at the rim dropped; all kept, the box reached the wall (4 m thick)."""
    depth = np.where(rectangle(slice(21, 27), slice(29, 35)), 0.99, 3.0).astype(np.float32)
    wide = rectangle(slice(20, 28), slice(28, 36))
    box = amodal_extent(wide, wide, depth, K)
    assert box.size[2] == pytest.approx(MIN_THICKNESS)
    assert box.centre[2] == pytest.approx(1.0)


def test_a_rim_a_little_nearer_than_the_inside_is_the_objects_front():
    """A tray seen from above: its 3 px lip 1.5 cm nearer than its floor (within the 2 cm
    spread of the inside) is surface the camera sees, so the box's front is the lip's depth;
    dropped as background, the box began behind the lip."""
    depth = flat(1.0)
    depth[RECT & ~rectangle(slice(17, 31), slice(15, 49))] = 0.985
    box = amodal_extent(RECT, RECT, depth, K)
    assert box.centre[2] - box.size[2] / 2 == pytest.approx(0.985, abs=1e-6)
    assert box.size[2] == pytest.approx(0.03, abs=1e-6)


def test_a_mask_too_wide_up_to_the_image_edge_keeps_the_box_off_the_wall_behind():
    """A board 2 px below the image's top edge, its mask 2 px too wide all round and so up to
    the edge: the rows on the edge are the mask's rim (outside the image is not mask), and the
    wall bled in there is dropped; taken for the inside, it moved the box towards the wall."""
    board = rectangle(slice(2, 22), slice(12, 52))
    depth = np.where(board, 0.99, 3.0).astype(np.float32)
    wide = rectangle(slice(0, 24), slice(10, 54))
    box = amodal_extent(wide, wide, depth, K)
    assert box.centre[2] == pytest.approx(1.0, abs=0.01)
    assert box.size[2] == pytest.approx(MIN_THICKNESS)


def test_a_box_needs_a_quarter_of_the_visible_pixels_with_depth():
    """A depth image with readings on a corner of the object only gives no box: a quarter of
    its visible pixels (rounded up) must have valid depth. 802 visible pixels: 201 do."""
    modal = RECT.copy()
    modal[34, 12:14] = True  # 802 px: a quarter is 200.5
    ys, xs = np.nonzero(modal)
    order = np.lexsort((ys, xs))  # column by column from the left
    for readings, valid in [(200, False), (201, True)]:
        depth = np.zeros((H, W), np.float32)
        depth[ys[order[:readings]], xs[order[:readings]]] = 0.99
        box = amodal_extent(modal, modal, depth, K)
        assert box.valid is valid
        assert box.reason == (EXTENT_OK if valid else EXTENT_NO_VALID_DEPTH)


def test_a_small_object_of_seven_blocks_uses_its_pixels():
    """A 5 x 14 px strip on rough depth (a checkerboard of 1.0 / 1.1 m) fills seven blocks,
    one short of MIN_BLOCKS: seven medians are too few to trim, so its pixels' spread (0.2 m)
    is its thickness; the strip of eight blocks beside it gets the minimum."""
    strip = rectangle(slice(20, 25), slice(24, 38))
    v, u = np.mgrid[:H, :W]
    depth = np.where((v + u) % 2 == 0, 1.0, 1.1).astype(np.float32)
    assert amodal_extent(strip, strip, depth, K).size[2] == pytest.approx(0.2)


def test_an_object_without_depth_at_its_rim_is_measured_on_its_inside():
    """Stereo depth often has no readings along an object's outline: with valid depth only
    inside its 3 px rim, the box is the object's, measured on the inside alone (the rim has
    no depths to weigh against it)."""
    inside = rectangle(slice(17, 31), slice(15, 49))  # RECT less its 3 px rim
    depth = np.where(inside, 0.99, 0.0).astype(np.float32)
    box = amodal_extent(RECT, RECT, depth, K)
    assert (box.valid, box.reason) == (True, EXTENT_OK)
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    assert box.centre[2] == pytest.approx(1.0)


def test_a_tiny_objects_few_inside_pixels_do_not_decide_its_depth():
    """A 9 x 9 px object at 1.1 m whose 3 x 3 px centre reads 10 cm nearer (a reflection):
    nine pixels past the rim are too few to be the object's reference, so its depths near
    their median are kept and the box is at 1.1 m; taken as the inside, they moved it to the
    reflection, 10 cm in front of the object."""
    obj = rectangle(slice(20, 29), slice(28, 37))
    depth = flat(1.1)
    depth[23:26, 31:34] = 1.0
    box = amodal_extent(obj, obj, depth, K)
    assert box.centre[2] - box.size[2] / 2 == pytest.approx(1.1)
    assert box.size[2] == pytest.approx(MIN_THICKNESS)


def test_a_thin_objects_mask_too_tall_keeps_its_box_off_the_wall_behind():
    """A pen 3 px tall at 0.99 m before a wall at 3 m, its mask 2 px too tall on both sides:
    the ten pixels past the mask's 3 px rim (MIN_DEPTH_PIXELS) are enough to be the object,
    and the wall in the rim is dropped; ruled by the median of all, the box went to the
    wall."""
    pen = rectangle(slice(22, 25), slice(24, 40))
    wide = rectangle(slice(20, 27), slice(24, 40))  # 7 x 16 px: 1 x 10 px past the rim
    depth = np.where(pen, 0.99, 3.0).astype(np.float32)
    box = amodal_extent(wide, wide, depth, K)
    assert box.centre[2] == pytest.approx(1.0)
    assert box.size[2] == pytest.approx(MIN_THICKNESS)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_bar_at_45_degrees_gets_yaw_plus_45(sign):
    """A bar at exactly 45 degrees, either way, has its axes equally near the camera's x:
    its yaw is +45, the closed end of the documented (-45, 45], not -45 (a planner comparing
    yaws reads one bar one way), with width and height along that box's axes."""
    v, u = np.mgrid[:H, :W]
    du, dv = u - 32, v - 24
    bar = (np.abs(du - sign * dv) <= 1) & (np.abs(du + sign * dv) <= 20)  # 61 px
    box = amodal_extent(bar, bar, flat(0.99), K)
    yaw = 2 * math.degrees(math.atan2(box.orientation[2], box.orientation[3]))
    assert yaw == pytest.approx(45.0)
    long, short = (0, 1) if sign == 1 else (1, 0)  # the bar along the box's x, or its y
    assert box.size[long] > 5 * box.size[short]


def test_intrinsics_need_a_focal_length_in_each_of_ps_axes_and_all_finite():
    """A P with fx' 0 is as uncalibrated as one with fy' 0: K is taken. Intrinsics with any
    of fx, fy, cx, cy not finite, or a focal length 0, place no box."""
    k = [500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]
    p = [0.0, 0, 310.0, 0, 0, 485.0, 245.0, 0, 0, 0, 1, 0]  # half a P, fx' missing
    info = SimpleNamespace(k=k, p=p, width=640, height=480)
    assert Intrinsics.from_camera_info(info) == Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    assert not Intrinsics(0.0, 510.0, 319.5, 239.5).calibrated
    good = (500.0, 510.0, 319.5, 239.5)
    for i in range(4):
        for bad in (float("nan"), float("inf")):
            values = list(good)
            values[i] = bad
            assert not Intrinsics(*values).calibrated, values


def window_frames(depths: list[np.ndarray | None], info) -> list[Frame]:
    """Frames of a window with these float32 depths (metres) and this CameraInfo."""
    frames = []
    for t, depth in enumerate(depths):
        frame = Frame(t, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.int64))
        frame.depth, frame.camera_info = depth, info
        frames.append(frame)
    return frames


INFO = SimpleNamespace(k=[100.0, 0, 32.0, 0, 100.0, 24.0, 0, 0, 1], width=W, height=H)


def test_a_frame_without_depth_or_with_wrong_camera_info_borrows_no_depth():
    """Only a frame whose visible part lacks valid depth takes another frame's: a frame with
    no depth image has no box (no depth is invented), and one whose CameraInfo is for another
    image size has none either (its intrinsics would put the box elsewhere)."""
    frames = window_frames([flat(0.99), flat(0.99)], INFO)
    modal = np.stack([RECT, RECT])
    frames[1].depth = None
    assert window_extent(frames, modal, modal, 1, 0.0).reason == EXTENT_NO_DEPTH
    frames[1].depth = flat(0.99)
    frames[1].camera_info = SimpleNamespace(k=INFO.k, width=2 * W, height=2 * H)
    frames[1].depth[RECT] = 0.0  # and no valid depth on it in its own frame
    box = window_extent(frames, modal, modal, 1, 0.0)
    assert (box.valid, box.reason) == (False, EXTENT_BAD_CAMERA_INFO)


def test_a_window_frame_with_depth_in_no_known_encoding_gives_no_depth_to_another():
    """Hidden in frame 2, the object takes the depth of frame 0 (2 m): frame 1, nearer but
    with depth in an encoding that is not metric (8UC1), is passed over, not an error that
    lost the window."""
    frames = window_frames([flat(1.99), flat(0.99), flat(0.5)], INFO)
    frames[1].depth, frames[1].depth_encoding = np.full((H, W), 100, np.uint8), "8UC1"
    modal = np.stack([RECT, RECT, np.zeros_like(RECT)])
    amodal = np.stack([RECT] * 3)
    box = window_extent(frames, modal, amodal, 2, 0.0)
    assert box.reason == EXTENT_DEPTH_FROM_NEAREST_FRAME
    assert box.centre[2] == pytest.approx(2.0)


def test_a_borrowed_depths_box_is_hidden_but_for_the_visible_part_inside_the_amodal_mask():
    """Seen as a sliver without depth (a dark stripe) beside a segmenter's blob on the wall,
    which its amodal mask dropped: the box from frame 0's depth is 90 % hidden (the sliver is
    4 of its 40 px wide); counted with the blob, it read as all seen."""
    frames = window_frames([flat(0.99), flat(0.99)], INFO)
    sliver = rectangle(slice(14, 34), slice(48, 52))
    blob = rectangle(slice(2, 10), slice(12, 20))  # above the object, outside its amodal mask
    frames[1].depth[sliver] = 0.0
    modal = np.stack([RECT, sliver | blob])
    amodal = np.stack([RECT, RECT])
    box = window_extent(frames, modal, amodal, 1, 0.0)
    assert box.reason == EXTENT_DEPTH_FROM_NEAREST_FRAME
    np.testing.assert_allclose(box.size, (0.40, 0.20, 0.02), atol=1e-6)
    assert box.hidden_share == pytest.approx(0.9)
