"""A grasp planner's view of amodal_ros: where each object's *whole* shape is.

ros2 run amodal_ros amodal_node   # (or the launch file), then:
python -m amodal_ros.examples.grasp_targets
"""

from dataclasses import dataclass
from itertools import zip_longest

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from amodal_ros.msg import AmodalObjectArray


@dataclass
class GraspTarget:
    """One object as its newest valid result saw it."""

    frame_id: str  # the camera's optical frame: transform with TF before grasping
    stamp: Time  # the camera frame's stamp: how old this target is
    pixel: tuple[float, float]  # the amodal mask's centre in the image, px
    box_centre_m: tuple[float, float, float] | None  # the amodal 3D box in frame_id, or None
    box_size_m: tuple[float, float, float] | None  # (no camera depth or camera info),
    box_yaw_rad: float | None  # along the box's axes, turned this much about the optical axis
    occlusion_ratio: float  # 0 = fully visible, 0.6 = 60 % hidden
    truncated: bool  # at the image edge: it may go on outside, beyond mask and box
    occluder_ids: list[int]  # what to move first, largest overlap first (in front, or no depth)


class GraspTargets(Node):
    """`targets`: object id -> GraspTarget, for the objects the newest message answered
    validly (one that left, or whose answer is not valid, is not kept stale)."""

    def __init__(self, topic: str = "amodal/objects", **node_options):
        super().__init__("grasp_targets", **node_options)
        self.targets: dict[int, GraspTarget] = {}
        sub = self.create_subscription(AmodalObjectArray, topic, self.on_objects, 10)
        self.get_logger().info(f"waiting for amodal objects on {sub.topic_name}")

    def on_objects(self, msg: AmodalObjectArray) -> None:
        """Replace the targets with this message's valid objects."""
        targets = {}
        for obj in msg.objects:
            if not obj.amodal_valid:  # obj.reason: window filling, too small, deadline, error
                continue
            m = obj.amodal_mask  # mono8, 255 = object pixel, visible or hidden
            rows = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)
            ys, xs = np.nonzero(rows[:, : m.width])
            if not len(xs):
                continue
            centre = size = yaw = None
            if obj.extent_valid:  # else obj.extent_reason: no depth, no camera info, ...
                p, s, q = obj.extent_pose.position, obj.extent_size, obj.extent_pose.orientation
                centre, size = (p.x, p.y, p.z), (s.x, s.y, s.z)
                yaw = 2.0 * float(np.arctan2(q.z, q.w))  # a turn about z only
            ids = obj.occluder_ids  # depth order -1: the occluder is behind, nothing to move
            targets[obj.object_id] = GraspTarget(
                msg.header.frame_id,
                msg.header.stamp,
                (float(xs.mean()), float(ys.mean())),
                centre,
                size,
                yaw,
                obj.occlusion_ratio,
                obj.truncated,
                [i for i, o in zip_longest(ids, obj.occluder_depth_order, fillvalue=0) if o >= 0],
            )
        self.targets = targets
        said = [
            f"{i}: {t.occlusion_ratio:.0%} hidden"
            + (f", box centre {t.box_centre_m[2]:.2f} m away" if t.box_centre_m else "")
            for i, t in targets.items()
        ]
        self.get_logger().info(
            f"{len(targets)} target(s) " + "; ".join(said), throttle_duration_sec=1.0
        )


def main() -> None:
    """Spin the subscriber until Ctrl-C."""
    rclpy.init()
    node = GraspTargets()
    try:
        while rclpy.ok():  # (a Ctrl-C that woke a blocking spin too early left it waiting)
            rclpy.spin_once(node, timeout_sec=0.5)
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C, as rclpy reports it
        pass
    except Exception:
        if rclpy.ok():  # Ctrl-C while a wait began raises RCLError once rclpy shut down
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
