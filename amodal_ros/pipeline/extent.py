"""An object's amodal 3D extent: its amodal mask back-projected at the depth of its visible
surface into an oriented box in the camera's optical frame (numpy and OpenCV).

    visible pixels' metric depth --block medians, trimmed quantiles--> front, thickness, centre
    amodal mask --back-projected at the centre depth--> principal axes, width, height, centre
    visible (modal) mask along the same axes --> hidden share of the box

The box (`core.frames.Extent`), in the optical frame (x right, y down, z forward):

* **depth:** the valid depths (`depth.camera.valid_depth`: finite, at least 5 cm: nearer is
  no return, e.g. a specular glint's few millimetres) of the visible pixels the amodal mask
  keeps (a segmenter's detached blob that `pipeline.detached` removed from the amodal mask
  stays out of the depth too: on the wall behind, it moved the box there) are summarised by the
  medians of 4 x 4 pixel blocks (noise would otherwise read as thickness: a flat board at 2 m
  with 2 cm of sensor noise would be 0.13 m thick; a median also ignores a block's few flying
  pixels). A segmenter's mask and the registered depth routinely disagree by a pixel or two
  at the mask's rim, and the background that bleeds in there would move the box to the wall
  behind: in the outer 3 pixels, medians beyond the span of the inside's (widened by 3 scaled
  MADs of them, at least 2 cm) are left out; the inside's are all kept (a step, a handle, a
  cylinder's flank are the object). Then `lo`, `hi` = the 5th and 95th percentiles of those
  (trimmed). The visible surface is the near half of an object seen from the front, so the
  thickness along z is `max(MIN_THICKNESS, 2 * (hi - lo))` and the centre lies at
  `lo + thickness / 2`. It is an estimate, short of the back: a sphere seen in perspective
  gives 0.62-0.68 of its diameter and a centre 1-5 cm in front of its own (its visible rim is
  nearer than its centre; radii 3-15 cm at 0.5-1 m), a cylinder seen from the side about
  0.65, a box seen face-on the minimum, a tilted flat board about twice its true depth range.
* **image-plane axes:** every amodal pixel centre (u, v) is back-projected at the centre depth
  z, X = (u - cx) z / fx, Y = (v - cy) z / fy. The angle of the principal axes of those points
  (second moments) is folded into (-45, 45] degrees: the box's x axis is the principal axis
  nearest the camera's x. Shapes whose second moments are (nearly) isotropic, eigenvalues
  within 4 % (discs, squares), have no principal axis: they get the angle of the smallest
  rectangle around them where it is clearly smaller than the upright one (a turned square),
  else 0 (a disc).
* **width, height:** the extent of the back-projected pixels along the box's x and y, each
  pixel a (z / fx) x (z / fy) rectangle, so an axis-aligned mask of w x h pixels is exactly
  w z / fx by h z / fy metres. The centre is the middle of those extents.
* **hidden share:** `1 - (w_vis * h_vis) / (width * height)`, where w_vis, h_vis are the
  visible pixels' extents along the same axes (clipped to the box): the share of the box's
  face that only the amodal completion supports. 0 when the visible part spans the whole box
  (even if an occluder hides its middle: `occlusion_ratio` is the pixel-area share), 0.5 when
  half of the object's length is hidden.

An amodal mask cut off by the image border (the object's `truncated`) gives the box of the part
inside the image: no model predicts beyond it.

A frame with too few valid depth pixels on the visible part (the object hidden, or a sliver
of it showing) takes the depth of its visible surface in the window's nearest frame that has
enough (`window_extent`: EXTENT_DEPTH_FROM_NEAREST_FRAME). No depth is ever invented: without
metric depth, without camera intrinsics, or with too few valid depth pixels on the visible
part in every frame of the window there is no box, only a reason (EXTENT_* constants).
Pixels are taken as rectified, as depth_image_proc takes them: the projection P of CameraInfo
(the rectified image's intrinsics), its K when P is uncalibrated (zero); lens distortion is
not undone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from amodal_ros.core.frames import (
    DEPTH_ENCODINGS,
    EXTENT_BAD_CAMERA_INFO,
    EXTENT_DEPTH_FROM_NEAREST_FRAME,
    EXTENT_NO_AMODAL,
    EXTENT_NO_CAMERA_INFO,
    EXTENT_NO_DEPTH,
    EXTENT_NO_VALID_DEPTH,
    EXTENT_OK,
    Extent,
    Frame,
)

MIN_THICKNESS = 0.02  # m: the thinnest box (a face-on object's visible depth spread is ~0)
DEPTH_QUANTILES = (0.05, 0.95)  # trimmed range of the visible depth (noise, flying pixels)
MIN_DEPTH_PIXELS = 10  # fewer valid depth pixels on the visible part: no box
MIN_DEPTH_FRACTION = 0.25  # ... or fewer than this share of the visible pixels: no box
# The spread is measured on medians of BLOCK x BLOCK pixel blocks (those with at least
# MIN_BLOCK_PIXELS valid depths; the pixels themselves below MIN_BLOCKS such blocks)
BLOCK, MIN_BLOCK_PIXELS, MIN_BLOCKS = 4, 4, 8
# The mask's outer RIM_PX pixels are where a segmenter's mask and the registered depth
# disagree (a mask 1-3 px too wide round a board 1 m before a wall put 152 of 216 boxes > 10 cm
# off): there, block medians beyond the span of the inside's, widened by OUTLIER_MADS scaled
# median absolute deviations of the inside's (at least OUTLIER_MIN_M), are background. The
# inside is the object, every depth of it: a step, a handle, a cylinder's flank (a rule on all
# of them dropped a step nearer than the rest from 40 % of the surface down, moving the front
# 10 cm behind surface the camera sees). Too small an inside: the rule on all of them.
RIM_PX = 3
OUTLIER_MADS, OUTLIER_MIN_M = 3.0, 0.02
# (l1 - l2) / (l1 + l2) of the second moments below which a shape has no principal axis (its
# eigenvalues within 4 %: a disc, a square at any turn). Its box turns to the smallest one
# around it where that is clearly (TIGHTER) smaller than the upright one (a square turned
# 15-45 degrees got a box 1.2-1.4x as wide, at yaw 0), else keeps the camera's axes (a disc's
# boxes are all alike: its yaw must not jitter with its pixels)
ISOTROPIC = 0.02
TIGHTER = 0.95


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the image the masks and depth belong to.

    Attributes:
        fx, fy: focal lengths, pixels.
        cx, cy: principal point, pixels (pixel centres at integer coordinates, as in K).
        width, height: image size the intrinsics are for, pixels; 0 = not known.
        fault: what makes the CameraInfo unusable for any image ("" = nothing).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0
    fault: str = ""

    @classmethod
    def from_camera_info(cls, info) -> Intrinsics | None:
        """From a sensor_msgs/CameraInfo of any binding and ROS version (ROS 2's `p`, `k`;
        ROS 1's `P`, `K`; `width`, `height`); None for None or a message with neither.

        P (3x4, row-major [fx' 0 cx' Tx; 0 fy' cy' Ty; 0 0 1 0]) holds the intrinsics of the
        rectified image, which depth_image_proc and image_geometry project with; K (3x3) is
        taken only when P is uncalibrated (zero), as both are for an uncalibrated camera.

        A driver that bins or crops (`binning_x`, `binning_y`, `roi`) keeps the full sensor's
        size and matrices in the message, as the message defines them; the image it sends is
        the region of interest divided by the binning, and so are these intrinsics (as
        image_geometry reduces them; the region's offset is taken as it is, exact for an
        image without lens distortion)."""
        k = _floats(info, "k", 9)
        p = _floats(info, "p", 12)
        try:
            size = int(info.width), int(info.height)
            bin_x, bin_y = (max(1, int(getattr(info, f"binning_{a}", 0) or 0)) for a in "xy")
            roi = getattr(info, "roi", None)
            x0, y0, roi_w, roi_h = (
                int(getattr(roi, name, 0) or 0)
                for name in ("x_offset", "y_offset", "width", "height")
            )
        except (TypeError, ValueError, AttributeError):
            return None
        fault = _framing_fault(size, (x0, y0, roi_w, roi_h), (bin_x, bin_y))
        if roi_w and roi_h:  # else the full image
            size = roi_w, roi_h
        else:
            x0 = y0 = 0
        if p is not None and p[0] > 0 and p[5] > 0:
            fx, fy, cx, cy = p[0], p[5], p[2], p[6]
        elif k is not None:
            fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        else:
            return None
        return cls(
            fx / bin_x, fy / bin_y, (cx - x0) / bin_x, (cy - y0) / bin_y,
            size[0] // bin_x, size[1] // bin_y, fault,
        )  # fmt: skip

    @property
    def calibrated(self) -> bool:
        """Finite intrinsics with focal lengths > 0 (an uncalibrated camera sends zeros)."""
        finite = all(math.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy))
        return finite and self.fx > 0 and self.fy > 0

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether these are usable intrinsics of an image of `shape` ([H, W, ...])."""
        size_ok = (self.width, self.height) in ((0, 0), (shape[1], shape[0]))
        return self.calibrated and size_ok and not self.fault

    def problem(self, shape: tuple[int, ...]) -> str:
        """What makes these intrinsics unusable for an image of `shape`, said for a log."""
        if self.fault:
            return self.fault
        if not self.calibrated:
            return (
                f"the CameraInfo is uncalibrated (fx {self.fx:g}, fy {self.fy:g} of P, or of K "
                "where P is zero; both must be > 0): calibrate the camera"
            )
        return (
            f"the CameraInfo is for {self.width}x{self.height} images (its width and height "
            f"over its binning and region of interest), the images are {shape[1]}x{shape[0]}: "
            "remap camera_info to the CameraInfo of the image topic"
        )


def _framing_fault(size: tuple[int, int], roi: tuple[int, ...], binning: tuple[int, int]) -> str:
    """What is impossible in a CameraInfo's size, region of interest and binning, or "": a
    binning beyond the image would leave a 0x0 image, which reads as "size unknown" and let
    any intrinsics through; a region outside the sensor crops pixels that do not exist."""
    x0, y0, roi_w, roi_h = roi
    if size == (0, 0):  # size unknown (an uncalibrated driver's zeros): nothing to check
        return ""
    if roi_w and roi_h and (x0 + roi_w > size[0] or y0 + roi_h > size[1]):
        return (
            f"the CameraInfo's region of interest ({roi_w}x{roi_h} at {x0},{y0}) lies outside "
            f"its {size[0]}x{size[1]} sensor: fix the camera driver's roi"
        )
    seen = (roi_w, roi_h) if roi_w and roi_h else size
    if seen[0] < binning[0] or seen[1] < binning[1]:
        return (
            f"the CameraInfo's binning ({binning[0]}x{binning[1]}) is larger than its "
            f"{seen[0]}x{seen[1]} image: fix the camera driver's binning_x and binning_y"
        )
    return ""


def _floats(info, name: str, count: int) -> list[float] | None:
    """CameraInfo's `name` (or ROS 1's upper-case spelling) as `count` floats, or None."""
    values = getattr(info, name, getattr(info, name.upper(), None))
    if values is None:
        return None
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return floats if len(floats) == count else None


def frame_extent(frame: Frame, modal: np.ndarray, amodal: np.ndarray) -> Extent:
    """The amodal 3D box of one object in `frame`, from the frame's camera depth (metres or
    millimetres by its encoding) and its CameraInfo's intrinsics (`amodal_extent` does the
    rest).

    Args:
        frame: the frame (its `depth`, `depth_encoding` and `camera_info` are used).
        modal: [H, W] bool visible pixels of the object in this frame.
        amodal: [H, W] bool amodal mask of the object in this frame (a model result).
    """
    from amodal_ros.depth.camera import depth_metres

    depth_m = None
    if frame.depth is not None and frame.depth_encoding in DEPTH_ENCODINGS:
        depth_m = depth_metres(frame.depth, frame.depth_encoding)
    return amodal_extent(modal, amodal, depth_m, Intrinsics.from_camera_info(frame.camera_info))


def window_extent(
    frames: Sequence[Frame], modal: np.ndarray, amodal: np.ndarray, t: int, detached_share: float
) -> Extent:
    """`frame_extent` of frame t of a window; where that frame has too little valid depth on
    the object's visible part (it is hidden, or a sliver of it shows), the box at the depth of
    its visible surface in the window's nearest frame that has enough, valid, with reason
    EXTENT_DEPTH_FROM_NEAREST_FRAME (a hidden object is about where it was last seen; it, or
    the camera, may have moved since).

    Args:
        frames: the window's frames.
        modal: [T, H, W] bool visible pixels of the object in each frame of the window.
        amodal: [T, H, W] bool its amodal masks (frames the model did not decode carry the
            visible mask).
        t: the frame's index in the window.
        detached_share: `detached_part_share`: visible parts of another frame that are small
            against frame t's amodal area and detached (a segmenter's blob on the wall
            behind, which frame t's amodal mask dropped) give no depth; 0 keeps all.
    """
    from amodal_ros.depth.camera import depth_metres
    from amodal_ros.pipeline.detached import detached_specks

    extent = frame_extent(frames[t], modal[t], amodal[t])
    if extent.reason != EXTENT_NO_VALID_DEPTH:
        return extent
    k = Intrinsics.from_camera_info(frames[t].camera_info)  # usable: frame_extent checked it
    if k is None:
        return extent
    area = int(amodal[t].sum())
    for s in sorted(range(len(frames)), key=lambda s: abs(s - t))[1:]:  # t itself first
        frame, seen = frames[s], modal[s] & amodal[s]
        if frame.depth is None or frame.depth_encoding not in DEPTH_ENCODINGS or not seen.any():
            continue
        specks = detached_specks(seen, detached_share, area) if detached_share > 0 else None
        if specks is not None:
            seen = seen & ~specks
        surface = surface_depth(seen, depth_metres(frame.depth, frame.depth_encoding))
        if surface is not None:
            box = _box(modal[t] & amodal[t], amodal[t], k, *surface)
            return replace(box, reason=EXTENT_DEPTH_FROM_NEAREST_FRAME)
    return extent


def amodal_extent(
    modal: np.ndarray,
    amodal: np.ndarray,
    depth_m: np.ndarray | None,
    intrinsics: Intrinsics | None,
    min_thickness: float = MIN_THICKNESS,
) -> Extent:
    """The amodal 3D box of one object in one frame (see the module docstring).

    Args:
        modal: [H, W] bool visible pixels of the object.
        amodal: [H, W] bool visible and hidden pixels of the object (the model's result).
        depth_m: [H, W] float metric depth registered to the masks, metres (0, NaN, inf:
            invalid), or None when the frame has no metric depth.
        intrinsics: the camera's intrinsics for this image, or None without camera info.
        min_thickness: smallest box thickness along the optical axis, metres.

    Returns:
        A valid Extent, or an invalid one whose reason says what was missing (checked in the
        order: amodal mask, depth, camera info, its calibration, valid visible depth).
    """
    if not amodal.any():
        return Extent(reason=EXTENT_NO_AMODAL)
    if depth_m is None:
        return Extent(reason=EXTENT_NO_DEPTH)
    if intrinsics is None:
        return Extent(reason=EXTENT_NO_CAMERA_INFO)
    if not intrinsics.fits(amodal.shape):
        return Extent(reason=EXTENT_BAD_CAMERA_INFO)
    # 1. depth of the visible surface the amodal mask keeps: front, thickness, centre
    modal = modal & amodal
    surface = surface_depth(modal, depth_m, min_thickness)
    if surface is None:
        return Extent(reason=EXTENT_NO_VALID_DEPTH)
    return _box(modal, amodal, intrinsics, *surface)


def surface_depth(
    modal: np.ndarray, depth_m: np.ndarray, min_thickness: float = MIN_THICKNESS
) -> tuple[float, float] | None:
    """(centre depth z, thickness) in metres of the box behind the visible surface `modal`
    (see the module docstring), or None with too few valid depth pixels on it."""
    from amodal_ros.depth.camera import valid_depth

    valid = modal & valid_depth(depth_m)
    needed = max(MIN_DEPTH_PIXELS, math.ceil(MIN_DEPTH_FRACTION * int(modal.sum())))
    if int(valid.sum()) < needed:
        return None
    visible = _surface_depths(depth_m, valid, modal)  # [B] robust depths
    lo, hi = (float(q) for q in np.quantile(visible, DEPTH_QUANTILES))
    thickness = max(min_thickness, 2.0 * (hi - lo))
    return lo + thickness / 2, thickness


def _box(
    modal: np.ndarray, amodal: np.ndarray, k: Intrinsics, z: float, thickness: float
) -> Extent:
    """The box of the amodal mask at centre depth z (steps 2-5 of the module docstring)."""
    # 2. the amodal mask back-projected at the centre depth: [N] metric X, Y
    xs, ys = _back_project(amodal, k, z)
    # 3. principal axes: angle of the major axis, folded to the one nearest the camera's x
    dx, dy = xs - xs.mean(), ys - ys.mean()
    sxx, syy, sxy = float((dx * dx).mean()), float((dy * dy).mean()), float((dx * dy).mean())
    angle = 0.5 * math.atan2(2 * sxy, sxx - syy)  # (-90, 90] degrees
    if math.hypot(sxx - syy, 2 * sxy) <= ISOTROPIC * (sxx + syy):
        angle = _tightest_angle(xs, ys)
    elif angle > math.pi / 4:
        angle -= math.pi / 2
    elif angle <= -math.pi / 4:
        angle += math.pi / 2
    c, s = math.cos(angle), math.sin(angle)
    # 4. extents along the box axes; a pixel is a (z/fx) x (z/fy) rectangle
    foot = (abs(c) * z / k.fx + abs(s) * z / k.fy, abs(s) * z / k.fx + abs(c) * z / k.fy)
    a, b = xs * c + ys * s, -xs * s + ys * c  # [N] coordinates along the box's x, y
    a0, a1 = float(a.min()) - foot[0] / 2, float(a.max()) + foot[0] / 2
    b0, b1 = float(b.min()) - foot[1] / 2, float(b.max()) + foot[1] / 2
    width, height = a1 - a0, b1 - b0
    am, bm = (a0 + a1) / 2, (b0 + b1) / 2
    centre = (am * c - bm * s, am * s + bm * c, z)
    # 5. the visible part's extent along the same axes -> hidden share of the box's face
    hidden = 1.0
    if modal.any():
        vx, vy = _back_project(modal, k, z)
        va, vb = vx * c + vy * s, -vx * s + vy * c
        w_vis = _overlap(float(va.min()) - foot[0] / 2, float(va.max()) + foot[0] / 2, a0, a1)
        h_vis = _overlap(float(vb.min()) - foot[1] / 2, float(vb.max()) + foot[1] / 2, b0, b1)
        hidden = min(1.0, max(0.0, 1.0 - (w_vis * h_vis) / (width * height)))
    return Extent(
        valid=True,
        reason=EXTENT_OK,
        centre=(float(centre[0]), float(centre[1]), float(centre[2])),
        size=(width, height, thickness),
        orientation=(0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)),
        hidden_share=hidden,
    )


def _tightest_angle(xs: np.ndarray, ys: np.ndarray) -> float:
    """The angle in (-45, 45] degrees (radians) of the smallest rectangle around points with no
    principal axis, where it is TIGHTER than the upright one; else 0."""
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    (_, _), (w, h), degrees = cv2.minAreaRect(points)
    upright = float(np.ptp(xs)) * float(np.ptp(ys))
    if upright <= 0 or w * h >= TIGHTER * upright:
        return 0.0
    angle = math.radians(degrees) % (math.pi / 2)  # a rectangle's sides repeat every 90
    return angle - math.pi / 2 if angle > math.pi / 4 else angle


def _block_medians(depth: np.ndarray, valid: np.ndarray, b: int) -> np.ndarray:
    """Medians of the valid depths of the b x b blocks (tiling the valid pixels' bounding box)
    that hold at least MIN_BLOCK_PIXELS of them; the valid depths themselves when fewer than
    MIN_BLOCKS blocks do (a small object)."""
    ys, xs = np.nonzero(valid)
    y0, x0 = ys.min(), xs.min()
    h, w = -(-(ys.max() + 1 - y0) // b) * b, -(-(xs.max() + 1 - x0) // b) * b
    grid = np.full((h, w), np.nan)
    grid[ys - y0, xs - x0] = depth[ys, xs]
    blocks = grid.reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
    blocks = blocks[np.isfinite(blocks).sum(1) >= MIN_BLOCK_PIXELS]  # [B, b*b]
    if len(blocks) < MIN_BLOCKS:
        return depth[ys, xs].astype(np.float64)
    return np.nanmedian(blocks, axis=1)


def _surface_depths(depth: np.ndarray, valid: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """Block medians of the visible surface: all of the inside's, and the rim's within their
    span (see RIM_PX); with too small an inside, those of all near their median."""
    inside = valid & _eroded(modal, RIM_PX)
    if int(inside.sum()) < MIN_DEPTH_PIXELS:
        everything = _block_medians(depth, valid, BLOCK)
        median, margin = _spread(everything)
        return everything[np.abs(everything - median) <= margin]
    core = _block_medians(depth, inside, BLOCK)
    rim = valid & ~inside
    if not rim.any():
        return core
    ring = _block_medians(depth, rim, BLOCK)
    _, margin = _spread(core)
    return np.concatenate(
        [core, ring[(ring >= core.min() - margin) & (ring <= core.max() + margin)]]
    )


def _spread(depths: np.ndarray) -> tuple[float, float]:
    """Median of `depths`, and how far from it a depth of the same surface may be: OUTLIER_MADS
    scaled MADs, at least OUTLIER_MIN_M."""
    median = float(np.median(depths))
    mad = 1.4826 * float(np.median(np.abs(depths - median)))  # a normal's standard deviation
    return median, max(OUTLIER_MADS * mad, OUTLIER_MIN_M)


def _eroded(mask: np.ndarray, r: int) -> np.ndarray:
    """`mask` less its outer `r` pixels: a (2r+1)-square erosion, outside the image not mask
    (cv2's default border would count it as mask)."""
    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    small = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return small > 0


def _back_project(mask: np.ndarray, k: Intrinsics, z: float) -> tuple[np.ndarray, np.ndarray]:
    """[N] metric X, Y of the mask's pixel centres at depth z."""
    v, u = np.nonzero(mask)
    return (u - k.cx) * (z / k.fx), (v - k.cy) * (z / k.fy)


def _overlap(lo: float, hi: float, box_lo: float, box_hi: float) -> float:
    return max(0.0, min(hi, box_hi) - max(lo, box_lo))
