"""A grasp planner's view of amodal_ros: the centre of each object's *whole* shape.

ros2 run amodal_ros amodal_node   # (or the launch file), then:
python -m amodal_ros.examples.grasp_targets
"""

import numpy as np
import rclpy
from rclpy.node import Node

from amodal_ros.msg import AmodalObjectArray


class GraspTargets(Node):
    """Keeps, per object id, the amodal centre (x, y px), occlusion ratio and occluder ids."""

    def __init__(self, topic: str = "amodal/objects", **node_options):
        super().__init__("grasp_targets", **node_options)
        self.targets: dict[int, tuple] = {}
        self.create_subscription(AmodalObjectArray, topic, self.on_objects, 10)

    def on_objects(self, msg: AmodalObjectArray) -> None:
        """Keep each valid object's amodal centre, occlusion ratio and occluders."""
        for obj in msg.objects:
            if not obj.amodal_valid:  # obj.reason: window filling, too small, deadline, error
                continue
            m = obj.amodal_mask  # mono8, 255 = object pixel, visible or hidden
            rows = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)
            ys, xs = np.nonzero(rows[:, : m.width])
            if len(xs):
                centre = (float(xs.mean()), float(ys.mean()))
                self.targets[obj.object_id] = (
                    centre,
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
