"""A grasp planner's view of amodal_ros: where each object's *whole* shape is.

ros2 run amodal_ros amodal_node   # (or the launch file), then:
python -m amodal_ros.examples.grasp_targets
"""

import numpy as np
import rclpy
from rclpy.node import Node

from amodal_ros.msg import AmodalObjectArray


class GraspTargets(Node):
    """Keeps, per object id, a grasp target, the occlusion ratio and the occluder ids.

    The target is the centre of the object's amodal 3D box (x, y, z m in the camera optical
    frame, with its size in m) when the node could measure it (camera depth and camera info),
    else the amodal mask's centre in the image (x, y px, size None).
    """

    def __init__(self, topic: str = "amodal/objects", **node_options):
        super().__init__("grasp_targets", **node_options)
        self.targets: dict[int, tuple] = {}
        self.create_subscription(AmodalObjectArray, topic, self.on_objects, 10)

    def on_objects(self, msg: AmodalObjectArray) -> None:
        """Keep each valid object's grasp target, occlusion ratio and occluders."""
        for obj in msg.objects:
            if not obj.amodal_valid:  # obj.reason: window filling, too small, deadline, error
                continue
            if obj.extent_valid:  # the whole object's box, in msg.header.frame_id
                p, s = obj.extent_pose.position, obj.extent_size
                target, size = (p.x, p.y, p.z), (s.x, s.y, s.z)
            else:  # obj.extent_reason: no depth, no camera info, nothing visible to measure
                m = obj.amodal_mask  # mono8, 255 = object pixel, visible or hidden
                rows = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)
                ys, xs = np.nonzero(rows[:, : m.width])
                if not len(xs):
                    continue
                target, size = (float(xs.mean()), float(ys.mean())), None
            self.targets[obj.object_id] = (
                target,
                size,
                obj.occlusion_ratio,  # 0 = fully visible, 0.6 = 60 % hidden
                list(obj.occluder_ids),  # what to move first, largest overlap first
            )


def main() -> None:
    """Spin the subscriber until Ctrl-C."""
    rclpy.init()
    node = GraspTargets()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
