"""FrameResult -> ROS messages, and raw input messages -> Frame.

One builder serves rclpy (the node) and rosbags (replay): a `MessageKit` names the message
classes and how a numpy array becomes a sequence field (array.array for rclpy, ndarray for
rosbags). No rclpy or torch import here.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amodal_ros.core.frames import Frame, FrameResult, ObjectFrameResult
from amodal_ros.interface.convert import (
    ConversionError,
    check_same_size,
    depth_from_image,
    image_fields,
    labels_from_image,
    rgb_from_compressed,
    rgb_from_image,
)
from amodal_ros.pipeline.overlay import compose_completion, draw_overlay

_TYPECODES = {np.uint8: "B", np.uint32: "I", np.int8: "b", np.float32: "f"}


@dataclass
class MessageKit:
    """Message classes of one ROS binding, constructed with keyword arguments only."""

    Time: type
    Header: type
    Image: type
    AmodalObject: type
    AmodalObjectArray: type
    seq: Callable[[np.ndarray], object]


def rclpy_kit() -> MessageKit:
    """The rclpy message classes (the node's binding)."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from amodal_ros.msg import AmodalObject, AmodalObjectArray

    def seq(a: np.ndarray):
        return array.array(_TYPECODES[a.dtype.type], a.tobytes())

    return MessageKit(Time, Header, Image, AmodalObject, AmodalObjectArray, seq)


def rosbags_kit(typestore) -> MessageKit:
    """The message classes of a rosbags typestore (the bag tools' binding)."""
    t = typestore.types
    return MessageKit(
        t["builtin_interfaces/msg/Time"],
        t["std_msgs/msg/Header"],
        t["sensor_msgs/msg/Image"],
        t["amodal_ros/msg/AmodalObject"],
        t["amodal_ros/msg/AmodalObjectArray"],
        seq=np.ascontiguousarray,
    )


def stamp_ns(header) -> int:
    """A header's stamp in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def frame_from_messages(matched: dict, compressed: bool = False, arrival: float = 0.0) -> Frame:
    """A Frame from synchronised {"rgb", "masks"[, "depth"]} messages (raises InputError)."""
    rgb_msg = matched["rgb"]
    rgb = _blaming(("rgb",), rgb_from_compressed if compressed else rgb_from_image, rgb_msg)
    labels = _blaming(("masks",), labels_from_image, matched["masks"])
    _blaming(("rgb", "masks"), check_same_size, rgb, labels, "the mask image")
    depth, encoding = None, "32FC1"
    if matched.get("depth") is not None:
        depth, encoding = _blaming(("depth",), depth_from_image, matched["depth"])
        _blaming(("rgb", "depth"), check_same_size, rgb, depth, "the depth image")
    return Frame(
        stamp_ns=matched["stamp_ns"],
        rgb=rgb,
        labels=labels,
        depth=depth,
        depth_encoding=encoding,
        frame_id=rgb_msg.header.frame_id,
        arrival=arrival,
    )


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
            amodal_valid=bool(o.valid),
            reason=int(o.reason),
            occluder_ids=self.kit.seq(np.array(ids, np.uint32)),
            occluder_overlap_pixels=self.kit.seq(
                np.array([o.occluders[i] for i in ids], np.uint32)
            ),
            occluder_depth_order=self.kit.seq(
                np.array([o.occluder_order.get(i, 0) for i in ids], np.int8)
            ),
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

    def overlay(self, result: FrameResult):
        """rgb8 overlay: amodal outlines over the RGB, hidden parts shaded, colour per id."""
        return self.image(result.frame, overlay_image(result), "rgb8")

    def completion(self, result: FrameResult):
        """rgb8 frame with every object's completed appearance painted over its hidden part."""
        layers = [
            (o.modal, o.amodal, o.completion) for o in result.objects if o.completion is not None
        ]
        return self.image(result.frame, compose_completion(result.frame.rgb, layers), "rgb8")


def overlay_image(result: FrameResult) -> np.ndarray:
    """[H, W, 3] uint8 overlay of one frame's objects (colour by object id)."""
    objs = [(o.modal, o.amodal) for o in result.objects]
    ids = [o.object_id for o in result.objects]
    return draw_overlay(result.frame.rgb, objs, ids=ids)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    from amodal_ros.core.types import mask_bbox

    return tuple(int(v) for v in mask_bbox(mask))
