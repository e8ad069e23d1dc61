"""FrameResult -> ROS messages, and raw input messages -> Frame.

One builder serves rclpy (the node) and rosbags (replay): a `MessageKit` names the message
classes and how a numpy array becomes a sequence field (array.array for rclpy, ndarray for
rosbags). No rclpy or torch import here.
"""

from __future__ import annotations

import array
import copy
import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from amodal_ros.core.frames import Extent, Frame, FrameResult, ObjectFrameResult
from amodal_ros.interface.convert import (
    ConversionError,
    check_metres,
    check_same_size,
    depth_from_compressed,
    depth_from_image,
    image_fields,
    labels_from_compressed,
    labels_from_image,
    rgb_from_compressed,
    rgb_from_image,
)
from amodal_ros.interface.overlay import color_for, compose_completion, draw_overlay

_TYPECODES = {np.uint8: "B", np.uint32: "I", np.int8: "b", np.float32: "f"}
# visualization_msgs/Marker constants (the same in every ROS 2 distribution)
CUBE, TEXT_VIEW_FACING, ADD, DELETEALL = 1, 9, 0, 3
# Marker namespaces of the markers topic: the extent box and the label of each object
BOX_NS, LABEL_NS = "amodal_extent", "amodal_label"
BOX_ALPHA = 0.4  # the box is see-through, so the point cloud or image inside stays visible
LABEL_HEIGHT = 0.04  # m, height of a label's capital letters


@dataclass
class MessageKit:
    """Message classes of one ROS binding, constructed with keyword arguments only."""

    Time: type
    Header: type
    Image: type
    AmodalObject: type
    AmodalObjectArray: type
    seq: Callable[[np.ndarray], object]
    Point: type
    Quaternion: type
    Pose: type
    Vector3: type
    ColorRGBA: type
    Duration: type
    # given header, ns, id, type, action, pose, scale, color, lifetime, frame_locked and text
    # (in every ROS 2 distribution's Marker); the others take their empty values
    Marker: Callable[..., object]
    MarkerArray: type


def rclpy_kit() -> MessageKit:
    """The rclpy message classes (the node's binding)."""
    from builtin_interfaces.msg import Duration, Time
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from sensor_msgs.msg import Image
    from std_msgs.msg import ColorRGBA, Header
    from visualization_msgs.msg import Marker, MarkerArray

    from amodal_ros.msg import AmodalObject, AmodalObjectArray

    def seq(a: np.ndarray):
        out = array.array(_TYPECODES[a.dtype.type])  # one copy (tobytes made a second)
        out.frombytes(memoryview(np.ascontiguousarray(a)).cast("B"))
        return out

    return MessageKit(
        Time=Time,
        Header=Header,
        Image=Image,
        AmodalObject=AmodalObject,
        AmodalObjectArray=AmodalObjectArray,
        seq=seq,
        Point=Point,
        Quaternion=Quaternion,
        Pose=Pose,
        Vector3=Vector3,
        ColorRGBA=ColorRGBA,
        Duration=Duration,
        Marker=Marker,
        MarkerArray=MarkerArray,
    )


def rosbags_kit(typestore) -> MessageKit:
    """The message classes of a rosbags typestore (the bag tools' binding)."""
    t = typestore.types
    return MessageKit(
        Time=t["builtin_interfaces/msg/Time"],
        Header=t["std_msgs/msg/Header"],
        Image=t["sensor_msgs/msg/Image"],
        AmodalObject=t["amodal_ros/msg/AmodalObject"],
        AmodalObjectArray=t["amodal_ros/msg/AmodalObjectArray"],
        seq=np.ascontiguousarray,
        Point=t["geometry_msgs/msg/Point"],
        Quaternion=t["geometry_msgs/msg/Quaternion"],
        Pose=t["geometry_msgs/msg/Pose"],
        Vector3=t["geometry_msgs/msg/Vector3"],
        ColorRGBA=t["std_msgs/msg/ColorRGBA"],
        Duration=t["builtin_interfaces/msg/Duration"],
        Marker=_rosbags_marker(typestore),
        MarkerArray=t["visualization_msgs/msg/MarkerArray"],
    )


def _rosbags_marker(typestore) -> Callable[..., object]:
    """A Marker constructor that gives the fields ResultMessages does not set (they differ
    between ROS 2 distributions) their empty values: rosbags classes have no defaults."""
    t = typestore.types
    name = "visualization_msgs/msg/Marker"
    cls, names = t[name], {field for field, _ in typestore.fielddefs[name][1]}
    empty = np.zeros(0, np.uint8)

    def marker(**fields):
        defaults = {
            "points": [],
            "colors": [],
            "texture_resource": "",
            "uv_coordinates": [],
            "mesh_resource": "",
            "mesh_use_embedded_materials": False,
        }
        if "texture" in names:
            header = t["std_msgs/msg/Header"](
                stamp=t["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
            )
            defaults["texture"] = t["sensor_msgs/msg/CompressedImage"](
                header=header, format="", data=empty
            )
        if "mesh_file" in names:
            defaults["mesh_file"] = t["visualization_msgs/msg/MeshFile"](filename="", data=empty)
        given = {k: v for k, v in defaults.items() if k in names and k not in fields}
        return cls(**fields, **given)

    return marker


def stamp_ns(header) -> int:
    """A header's stamp in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


# CameraInfo messages kept by stamp (node and replay) for the frames still being matched or run:
# a few windows' worth at a camera's rate
CAMERA_INFOS_KEPT = 256


def camera_info_for(infos: Mapping[int, object], stamp: int, current=None):
    """The CameraInfo that applies to the frame stamped `stamp`.

    `current` if it is the frame's own (same stamp), else the frame's own from `infos`
    ({stamp: CameraInfo}, in arrival order), else the latest received: a camera's intrinsics
    do not change from frame to frame, and the frame's own may arrive after the frame (it is
    then not passed through, but its K is known). `current` (None) before any CameraInfo.
    """
    if current is not None and stamp_ns(current.header) == stamp:
        return current
    own = infos.get(stamp)
    if own is not None:
        return own
    return infos[next(reversed(infos))] if infos else current


T = TypeVar("T")


def nearest_stamped(items: Iterable[tuple[int, T]], stamp: int, tolerance_ns: int) -> T | None:
    """The value of the (stamp, value) pair stamped nearest `stamp`, if within `tolerance_ns`:
    the CameraInfo passed through with a frame (a driver may stamp it apart from the image,
    as the synchroniser allows its inputs to be). Else the latest stamped 0, an unstamped
    publisher's (a static camera_info), which serves every frame: none was passed through."""
    items = list(items)
    best = min(items, key=lambda item: abs(item[0] - stamp), default=None)
    if best is not None and abs(best[0] - stamp) <= tolerance_ns:
        return best[1]
    return next((value for at, value in reversed(items) if at == 0), None)


def restamped(info, stamp):
    """A copy of the CameraInfo `info` (either binding) with `stamp` (a Time), its frame_id
    kept: passed through beside a frame it carries the frame's stamp, since exact-time
    consumers (image_transport's CameraSubscriber, RViz's Camera display) pair an image and
    its camera info by equal stamps, and a driver may stamp one apart (sync_tolerance)."""
    header = type(info.header)(stamp=stamp, frame_id=info.header.frame_id)
    if dataclasses.is_dataclass(info):  # rosbags
        return dataclasses.replace(info, header=header)
    out = copy.copy(info)  # rclpy
    out.header = header
    return out


def frame_from_messages(
    matched: dict, compressed: Collection[str] = (), arrival: float = 0.0
) -> Frame:
    """A Frame from synchronised {"rgb", "masks"[, "depth"]} messages (raises InputError).

    `compressed` names the inputs that are sensor_msgs/CompressedImage: "rgb" (JPEG/PNG),
    "masks" (PNG), "depth" (compressedDepth or 16-bit PNG); the others are sensor_msgs/Image.
    """
    rgb_msg = matched["rgb"]
    to_rgb = rgb_from_compressed if "rgb" in compressed else rgb_from_image
    rgb = _blaming(("rgb",), to_rgb, rgb_msg)
    to_labels = labels_from_compressed if "masks" in compressed else labels_from_image
    labels = _blaming(("masks",), to_labels, matched["masks"])
    _blaming(("rgb", "masks"), check_same_size, rgb, labels, "the mask image")
    depth, encoding = None, "32FC1"
    if matched.get("depth") is not None:
        to_depth = depth_from_compressed if "depth" in compressed else depth_from_image
        depth, encoding = _blaming(("depth",), to_depth, matched["depth"])
        _blaming(("rgb", "depth"), check_same_size, rgb, depth, "the depth image")
        if encoding == "32FC1":
            _blaming(("depth",), check_metres, depth)
    return Frame(
        stamp_ns=matched["stamp_ns"],
        rgb=rgb,
        labels=labels,
        depth=depth,
        depth_encoding=encoding,
        frame_id=rgb_msg.header.frame_id,
        arrival=arrival,
    )


class FrameIdCheck:
    """Notices depth, masks or camera info stamped with another camera frame than the RGB.

    The pipeline takes pixel (u, v) of the depth and mask images to be pixel (u, v) of the RGB
    image, so both must be registered to the RGB camera (e.g. a RealSense's
    aligned_depth_to_color, masks computed on this RGB). A different non-empty
    `header.frame_id` suggests they are not; frames are still processed (a driver may simply
    name its frames differently), and each mismatch is reported once.
    """

    # input -> (what it is, what it must be, pronoun)
    REQUIREMENTS = {
        "depth": (
            "depth",
            "depth must be registered to the RGB camera, pixel for pixel (e.g. the driver's "
            "aligned_depth_to_color topic)",
            "it is",
        ),
        "masks": (
            "masks",
            "masks must be registered to the RGB camera, pixel for pixel (computed on this RGB "
            "image)",
            "they are",
        ),
        "camera_info": (
            "camera info",
            "its intrinsics give the 3D extents and it is passed through with the results, so "
            "it must be the RGB camera's (e.g. the driver's color/camera_info topic)",
            "it is",
        ),
    }

    def __init__(self) -> None:
        self.reported: set[tuple[str, str, str]] = set()

    def check(self, matched: Mapping[str, object]) -> list[str]:
        """Warnings, each the first time its (input, RGB frame, other frame) is seen."""
        rgb_frame = _frame_id(matched.get("rgb"))
        warnings = []
        for role, (name, requirement, pronoun) in self.REQUIREMENTS.items():
            other = _frame_id(matched.get(role))
            key = (role, rgb_frame, other)
            if not rgb_frame or not other or other == rgb_frame or key in self.reported:
                continue
            self.reported.add(key)
            warnings.append(
                f"{name} frame_id {other!r} differs from the RGB's {rgb_frame!r}: {requirement}. "
                f"Processing goes on as if {pronoun} (if not, amodal masks and 3D extents are "
                "wrong); said once for this pair of frames"
            )
        return warnings


def _frame_id(msg) -> str:
    return "" if msg is None else str(msg.header.frame_id)


def _blaming(inputs: tuple[str, ...], convert, *args):
    """Run a conversion; a ConversionError it raises names `inputs` as the culprits."""
    try:
        return convert(*args)
    except ConversionError as err:
        err.inputs = inputs
        raise


class ResultMessages:
    """Builds the output messages of one FrameResult with one MessageKit."""

    def __init__(self, kit: MessageKit):
        self.kit = kit

    def time(self, ns: int):
        """A builtin_interfaces/Time of `ns` nanoseconds."""
        return self.kit.Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def header(self, frame: Frame):
        """The RGB frame's header (stamp and frame_id), copied into every output."""
        return self.kit.Header(stamp=self.time(frame.stamp_ns), frame_id=frame.frame_id)

    def image(self, frame: Frame, a: np.ndarray | None, encoding: str):
        """A sensor_msgs/Image of `a` in `encoding` (0x0 for None: not computed)."""
        if a is None:  # the empty 0x0 image the messages document for "not computed"
            f = dict(
                height=0,
                width=0,
                encoding=encoding,
                is_bigendian=0,
                step=0,
                data=np.zeros(0, np.uint8),
            )
        else:
            f = image_fields(a, encoding)
        f["data"] = self.kit.seq(f["data"])
        return self.kit.Image(header=self.header(frame), **f)

    def amodal_object(self, frame: Frame, o: ObjectFrameResult):
        """The AmodalObject message of one object in one frame."""
        x, y, w, h = _bbox(o.amodal)
        ids = list(o.occluders)
        return self.kit.AmodalObject(
            object_id=int(o.object_id),
            modal_mask=self.image(frame, o.modal.astype(np.uint8) * 255, "mono8"),
            amodal_mask=self.image(frame, o.amodal.astype(np.uint8) * 255, "mono8"),
            completion=self.image(frame, o.completion, "rgba8"),
            occlusion_ratio=o.occlusion_ratio,
            mean_uncertainty=o.mean_uncertainty,
            uncertainty=self.image(frame, o.uncertainty, "32FC1"),
            bbox_x=x,
            bbox_y=y,
            bbox_width=w,
            bbox_height=h,
            truncated=o.truncated,
            amodal_valid=bool(o.valid),
            reason=int(o.reason),
            occluder_ids=self.kit.seq(np.array(ids, np.uint32)),
            occluder_overlap_pixels=self.kit.seq(
                np.array([o.occluders[i] for i in ids], np.uint32)
            ),
            occluder_depth_order=self.kit.seq(
                np.array([o.occluder_order.get(i, 0) for i in ids], np.int8)
            ),
            extent_valid=bool(o.extent.valid),
            extent_reason=int(o.extent.reason),
            extent_pose=self.pose(o.extent),
            extent_size=self.kit.Vector3(**dict(zip("xyz", map(float, o.extent.size)))),
            extent_hidden_share=float(o.extent.hidden_share),
        )

    def pose(self, extent: Extent):
        """geometry_msgs/Pose of an extent's box: its centre and orientation."""
        x, y, z = (float(v) for v in extent.centre)
        qx, qy, qz, qw = (float(v) for v in extent.orientation)
        return self.kit.Pose(
            position=self.kit.Point(x=x, y=y, z=z),
            orientation=self.kit.Quaternion(x=qx, y=qy, z=qz, w=qw),
        )

    def array(self, result: FrameResult, latency: float | None = None):
        """The AmodalObjectArray of one frame; header copied from the RGB frame."""
        frame = result.frame
        return self.kit.AmodalObjectArray(
            header=self.header(frame),
            window_first_stamp=self.time(result.window_first_stamp_ns),
            window_last_stamp=self.time(result.window_last_stamp_ns),
            window_frames=result.window_frames,
            frames_missing=result.frames_missing,
            latency=float(result.latency if latency is None else latency),
            objects=[self.amodal_object(frame, o) for o in result.objects],
        )

    def markers(self, result: FrameResult):
        """visualization_msgs/MarkerArray for RViz, header copied from the frame: a DELETEALL
        (clears the previous frame's markers), then per object with a valid extent a
        see-through CUBE (namespace amodal_extent) in the overlay's colour and a
        TEXT_VIEW_FACING label "<id>: <occlusion ratio> % hidden" above it (amodal_label),
        ", cut off by the image edge" added for a truncated object; marker id = object id."""
        header = self.header(result.frame)
        markers = [self._delete_all(header)]
        for o in result.objects:
            e = o.extent
            if not e.valid:
                continue
            r, g, b = (float(c) / 255 for c in color_for(o.object_id))
            markers.append(
                self._marker(
                    header, BOX_NS, o.object_id, CUBE, ADD, e, e.size, (r, g, b, BOX_ALPHA)
                )
            )
            # above the box: the top of its image-plane outline, y up = -y in the optical frame
            qz, qw = e.orientation[2:]
            c, s = abs(qw * qw - qz * qz), abs(2 * qz * qw)  # |cos|, |sin| of the box's angle
            top = (s * e.size[0] + c * e.size[1]) / 2 + LABEL_HEIGHT
            x, y, z = e.centre
            label = Extent(valid=True, centre=(x, y - top, z))
            text = f"{o.object_id}: {round(100 * o.occlusion_ratio)} % hidden"
            text += ", cut off by the image edge" if o.truncated else ""
            markers.append(
                self._marker(
                    header,
                    LABEL_NS,
                    o.object_id,
                    TEXT_VIEW_FACING,
                    ADD,
                    label,
                    (0.0, 0.0, LABEL_HEIGHT),  # text markers are scaled by z only
                    (r, g, b, 1.0),
                    text,
                )
            )
        return self.kit.MarkerArray(markers=markers)

    def cleared_markers(self, frame: Frame):
        """A MarkerArray of one DELETEALL in `frame`'s header: the boxes go when the node stops
        (they are kept until the next frame's DELETEALL, lifetime 0, which never comes)."""
        return self.kit.MarkerArray(markers=[self._delete_all(self.header(frame))])

    def _delete_all(self, header):
        return self._marker(header, "", 0, CUBE, DELETEALL, Extent(), (0, 0, 0), (0, 0, 0, 0))

    def _marker(self, header, ns, marker_id, kind, action, at, scale, rgba, text=""):
        k = self.kit
        return k.Marker(
            header=header,
            ns=ns,
            id=int(marker_id),
            type=kind,
            action=action,
            pose=self.pose(at),
            scale=k.Vector3(**dict(zip("xyz", map(float, scale)))),
            color=k.ColorRGBA(**dict(zip("rgba", map(float, rgba)))),
            lifetime=k.Duration(sec=0, nanosec=0),  # until the next frame's DELETEALL
            frame_locked=False,
            text=text,
        )

    def overlay(self, result: FrameResult):
        """rgb8 overlay: amodal outlines over the RGB, hidden parts shaded, colour per id."""
        return self.image(result.frame, overlay_image(result), "rgb8")

    def completion(self, result: FrameResult):
        """rgb8 frame with every object's completed appearance painted over its hidden part,
        farther objects first where depth orders them (two objects hidden behind one bar: the
        nearer one's appearance shows there)."""
        layers = [
            (o.modal, o.amodal, o.completion)
            for o in far_to_near(result.objects)
            if o.completion is not None
        ]
        return self.image(result.frame, compose_completion(result.frame.rgb, layers), "rgb8")


def far_to_near(objects: list[ObjectFrameResult]) -> list[ObjectFrameResult]:
    """`objects` ordered so that each comes before those depth says are nearer than it (its
    occluders with order +1; objects it occludes with order -1 are farther); id order where
    depth says nothing, or contradicts itself."""
    by_id = {o.object_id: o for o in objects}
    farther: dict[int, set[int]] = {i: set() for i in by_id}  # farther ones still to paint
    for o in objects:
        for other, order in o.occluder_order.items():
            if other in by_id and order:
                near, far = (other, o.object_id) if order > 0 else (o.object_id, other)
                farther[near].add(far)
    ordered, left = [], sorted(by_id)
    while left:
        ready = [i for i in left if not farther[i]] or left[:1]  # a cycle: id order
        first = ready[0]
        ordered.append(by_id[first])
        left.remove(first)
        for i in left:
            farther[i].discard(first)
    return ordered


def overlay_image(result: FrameResult) -> np.ndarray:
    """[H, W, 3] uint8 overlay of one frame's objects (colour by object id)."""
    objs = [(o.modal, o.amodal) for o in result.objects]
    ids = [o.object_id for o in result.objects]
    return draw_overlay(result.frame.rgb, objs, ids=ids)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    from amodal_ros.core.types import mask_bbox

    return tuple(int(v) for v in mask_bbox(mask))
