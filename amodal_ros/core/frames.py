"""Stream-level types: one synchronised input frame, and what is published for it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Why an object's amodal mask is not a model result (mirrors msg/AmodalObject.msg).
REASON_OK = 0
REASON_WINDOW_NOT_FULL = 1
REASON_OBJECT_TOO_SMALL = 2
REASON_DEADLINE_MISSED = 3
REASON_EMPTY_MODAL = 4
REASON_ERROR = 5
REASON_NAMES = {
    REASON_OK: "ok",
    REASON_WINDOW_NOT_FULL: "window not full",
    REASON_OBJECT_TOO_SMALL: "object too small",
    REASON_DEADLINE_MISSED: "deadline missed",
    REASON_EMPTY_MODAL: "not visible in the window",
    REASON_ERROR: "pipeline error",
}

# Why an object has no 3D extent, or where a valid one's depth is from (mirrors the EXTENT_*
# constants of msg/AmodalObject.msg).
EXTENT_OK = 0
EXTENT_NO_AMODAL = 1
EXTENT_NO_DEPTH = 2
EXTENT_NO_CAMERA_INFO = 3
EXTENT_BAD_CAMERA_INFO = 4
EXTENT_NO_VALID_DEPTH = 5
EXTENT_NOT_COMPUTED = 6
EXTENT_DEPTH_FROM_NEAREST_FRAME = 7  # valid: depth of the window's nearest frame showing it
EXTENT_REASON_NAMES = {
    EXTENT_OK: "ok",
    EXTENT_NO_AMODAL: "no amodal mask (amodal result not valid, or empty)",
    EXTENT_NO_DEPTH: "no metric camera depth for the frame",
    EXTENT_NO_CAMERA_INFO: "no camera info for the frame",
    EXTENT_BAD_CAMERA_INFO: "camera info uncalibrated (fx or fy not > 0) or of another size",
    EXTENT_NO_VALID_DEPTH: "too few valid depth pixels on the visible part in any frame of "
    "the window",
    EXTENT_NOT_COMPUTED: "not computed",
    EXTENT_DEPTH_FROM_NEAREST_FRAME: "measured at the depth of the window's nearest frame "
    "with enough valid depth on the visible part (none in this one)",
}


# ROS image encodings of camera depth and the factor that turns their values into metres.
DEPTH_ENCODINGS = {"32FC1": 1.0, "16UC1": 1e-3}
# more ids than any scene holds objects (the tracker keeps 256): a depth image on the mask
# topic, a semantic map, a lossy image or noise; each id is a model call and two images in
# the published array (2165 ids of a 640x480 depth image would take gigabytes a frame)
MAX_OBJECTS = 256
MAX_DECODED_PIXELS = 1 << 26  # 67 MP, past any camera's (8K is 33 MP): a larger one is a bomb


@dataclass
class Frame:
    """One synchronised camera frame.

    Attributes:
        stamp_ns: header stamp of the RGB image, nanoseconds (the frame's identity).
        rgb: [H, W, 3] uint8 RGB.
        labels: [H, W] integer instance labels of the visible pixels, 0 = background.
        depth: [H, W] camera depth in `depth_encoding` units (registered to RGB), or None.
        depth_encoding: "32FC1" (metres) or "16UC1" (millimetres).
        frame_id: header frame_id of the RGB image, copied to every output.
        arrival: monotonic seconds when the frame was complete (for latency).
        camera_info: the CameraInfo that applies to this frame (`camera_info_for`): its own
            (same stamp), else the latest received; None before any. Its P (K where P is
            zero: `pipeline.extent.Intrinsics`) gives the objects' 3D extents; the node passes
            it through only when it is the frame's own.
    """

    stamp_ns: int
    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray | None = None
    depth_encoding: str = "32FC1"
    frame_id: str = ""
    arrival: float = 0.0
    camera_info: object = field(default=None, repr=False)

    def object_ids(self) -> list[int]:
        """Labelled object ids in this frame (0, the background, excluded)."""
        ids = np.unique(self.labels)
        return [int(i) for i in ids if i != 0]


@dataclass(frozen=True)
class Extent:
    """An object's amodal 3D extent: an oriented box in the camera's optical frame (x right,
    y down, z forward along the optical axis), built by `amodal_ros.pipeline.extent`.

    Box axes: z is the optical axis; x and y lie in the image plane, rotated about z from the
    camera's x and y by the angle of the amodal mask's principal axes (the one within +-45
    degrees of the camera's x is the box's x; a mask without principal axes, a square, takes
    its smallest box's, a disc the camera's).

    Attributes:
        valid: True when the box was measured; False: see `reason`, the box fields are zero.
        reason: one of the EXTENT_* constants: EXTENT_OK or EXTENT_DEPTH_FROM_NEAREST_FRAME
            when valid.
        centre: (x, y, z) box centre, metres.
        size: (width, height, thickness) along the box's x, y, z axes, metres.
        orientation: (x, y, z, w) unit quaternion of the box axes in the optical frame (a
            rotation about z only).
        hidden_share: share of the box's width x height face beyond the visible part's own
            extent along the box axes: what the amodal completion adds, 0..1 (unitless).
    """

    valid: bool = False
    reason: int = EXTENT_NOT_COMPUTED
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    hidden_share: float = 0.0


@dataclass
class ObjectFrameResult:
    """One object in one published frame. Masks are [H, W] bool at camera resolution.

    `occluders` maps occluder id -> hidden-part pixels it covers (largest first);
    `occluder_order` maps the same ids to +1 (occluder nearer than the object's visible part,
    as expected), -1 (farther: the occlusion is implausible) or 0 (no depth).
    """

    object_id: int
    modal: np.ndarray
    amodal: np.ndarray
    valid: bool
    reason: int
    occluders: dict[int, int] = field(default_factory=dict)
    occluder_order: dict[int, int] = field(default_factory=dict)
    uncertainty: np.ndarray | None = None  # [H, W] float32 0..1, with num_samples > 1
    completion: np.ndarray | None = None  # [H, W, 4] uint8 RGBA, with stage 2
    soft: np.ndarray | None = None  # [H, W] float32 0..1 amodal score (AmodalResult.soft)
    samples: np.ndarray | None = None  # [S, H, W] bool hypotheses, with num_samples > 1
    extent: Extent = field(default_factory=Extent)  # amodal 3D box (pipeline.extent)

    @property
    def occlusion_ratio(self) -> float:
        """Hidden share of the amodal area (0 for an empty mask)."""
        area = int(self.amodal.sum())
        return float((self.amodal & ~self.modal).sum() / area) if area else 0.0

    @property
    def truncated(self) -> bool:
        """The amodal mask reaches the image border (`core.types.touches_border`)."""
        from amodal_ros.core.types import touches_border

        return touches_border(self.amodal)

    @property
    def mean_uncertainty(self) -> float:
        """Mean sample disagreement inside the amodal mask (0 without samples)."""
        if self.uncertainty is None or not self.amodal.any():
            return 0.0
        return float(self.uncertainty[self.amodal].mean())


@dataclass
class FrameResult:
    """Everything published for one input frame (one AmodalObjectArray message)."""

    frame: Frame
    objects: list[ObjectFrameResult]
    window_first_stamp_ns: int
    window_last_stamp_ns: int
    window_frames: int
    frames_missing: int
    latency: float = 0.0  # s, from arrival of the window's last frame to the result


MODEL_PERIOD_NS = 125_000_000  # 8 fps: the frame rate the published model was trained at


def clip_frame(
    t: int,
    rgb: np.ndarray,
    labels: np.ndarray,
    depth: np.ndarray | None = None,
    depth_encoding: str = "32FC1",
    first_stamp: int = 0,
    period_ns: int = MODEL_PERIOD_NS,
) -> Frame:
    """Frame t of a clip (a folder of images, a synthetic scene), stamped as a camera at the
    model's rate would stamp it, so that the clip windows exactly like a live stream.

    Args:
        rgb: [H, W, 3] uint8.
        labels: [H, W] integer instance labels, 0 = background.
        depth: [H, W] camera depth in `depth_encoding` units, or None.
    """
    return Frame(
        stamp_ns=first_stamp + t * period_ns,
        rgb=rgb,
        labels=labels,
        depth=depth,
        depth_encoding=depth_encoding,
    )


def frames_from_arrays(
    rgb: np.ndarray,
    labels: np.ndarray,
    depth: np.ndarray | None = None,
    depth_encoding: str = "32FC1",
    first_stamp: int = 0,
    period_ns: int = MODEL_PERIOD_NS,
) -> list[Frame]:
    """`clip_frame` for each frame of a clip held in arrays ([T, ...] each)."""
    return [
        clip_frame(
            t,
            rgb[t],
            labels[t],
            None if depth is None else depth[t],
            depth_encoding,
            first_stamp,
            period_ns,
        )
        for t in range(len(rgb))
    ]
