"""A real rclpy harness for node tests: the node, a client node that plays a synthetic RGB-D +
instance-mask stream and records every output, and a multi-threaded executor spinning both."""

from __future__ import annotations

import array
import threading
import time
from collections import defaultdict

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from amodal_ros.data.scenes import make_scene
from amodal_ros.interface.convert import image_fields

PERIOD_NS = 125_000_000  # 8 fps stamps: every frame is a model frame
FRAME_ID = "test_camera_optical_frame"


def image_msg(a: np.ndarray, encoding: str, stamp: int, frame_id: str = FRAME_ID) -> Image:
    f = image_fields(a, encoding)
    f["data"] = array.array("B", f["data"].tobytes())
    header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=frame_id)
    return Image(header=header, **f)


def camera_info(height: int, width: int) -> CameraInfo:
    """Calibrated pinhole intrinsics of the synthetic camera: f = width px (53 degrees wide),
    principal point at the image centre; the header is set by the caller."""
    f, cx, cy = float(width), (width - 1) / 2, (height - 1) / 2
    return CameraInfo(height=height, width=width, k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0])


class NodeHarness:
    def __init__(
        self,
        overrides: dict,
        input_qos: tuple[str, str, str] = ("reliable", "reliable", "reliable"),
        subscribe: bool = True,
    ):
        """`input_qos`: reliability offered by the rgb, masks and depth publishers."""
        from amodal_ros.ros.node import AmodalNode

        self.context = Context()
        rclpy.init(context=self.context)
        params = [Parameter(k, value=v) for k, v in overrides.items()]
        self.node = AmodalNode(context=self.context, parameter_overrides=params)
        self.client = rclpy.create_node("amodal_test_client", context=self.context)
        policies = {
            "reliable": ReliabilityPolicy.RELIABLE,
            "best_effort": ReliabilityPolicy.BEST_EFFORT,
        }
        topics = (("rgb", "image"), ("masks", "masks"), ("depth", "depth"))
        self.pubs = {
            name: self.client.create_publisher(
                Image, topic, QoSProfile(depth=100, reliability=policies[reliability])
            )
            for (name, topic), reliability in zip(topics, input_qos, strict=True)
        }
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.info_pub = self.client.create_publisher(CameraInfo, "camera_info", qos)
        self.received = defaultdict(list)
        self._lock = threading.Lock()
        if subscribe:
            self.listen("amodal/objects")
            self.listen("amodal/overlay", Image)
            self.listen("amodal/camera_info", CameraInfo)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        """The executor's spin, stoppable between two spin_once calls: `close` ends it before
        shutting the executor down (shut down under a running spin_once, its guard condition
        raised InvalidHandle in this thread, a warning in CI)."""
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def listen(self, topic: str, msg_type=None, qos_depth: int = 200):
        if msg_type is None:
            from amodal_ros.msg import AmodalObjectArray

            msg_type = AmodalObjectArray
        if topic == "/diagnostics":
            from diagnostic_msgs.msg import DiagnosticArray

            msg_type = DiagnosticArray

        def store(msg, topic=topic):
            with self._lock:
                self.received[topic].append(msg)

        return self.client.create_subscription(msg_type, topic, store, qos_depth)

    def messages(self, topic: str) -> list:
        with self._lock:
            return list(self.received[topic])

    def wait_for_subscribers(self, timeout: float = 10.0) -> None:
        subscribed = lambda: all(p.get_subscription_count() for p in self.pubs.values())  # noqa: E731
        assert self.wait(subscribed, timeout), "the node never subscribed to every input"

    def wait_for_camera_info(self, clip, timeout: float = 10.0) -> None:
        """Until the node has received a CameraInfo (a publisher that sees the subscription
        may still lose messages while discovery settles): probes stamped 0."""
        info = camera_info(clip.rgb.shape[1], clip.rgb.shape[2])
        info.header = Header(stamp=Time(sec=0, nanosec=0), frame_id=FRAME_ID)

        def received() -> bool:
            self.info_pub.publish(info)
            return bool(self.node._camera_infos)

        assert self.wait(received, timeout, interval=0.1), "the node got no CameraInfo"

    def publish_clip(
        self,
        clip,
        start: int = 0,
        count: int | None = None,
        pace: float = 0.0,
        with_depth: bool = True,
        stamp0: int = 10**9,
    ) -> list[int]:
        stamps = []
        count = len(clip.rgb) if count is None else count
        for t in range(start, start + count):
            stamp = stamp0 + t * PERIOD_NS
            i = t % len(clip.rgb)
            info = camera_info(clip.rgb.shape[1], clip.rgb.shape[2])
            info.header = image_msg(clip.labels[i], "mono16", stamp).header
            self.info_pub.publish(info)
            # masks first, depth last: arrival order must not matter
            self.pubs["masks"].publish(image_msg(clip.labels[i], "mono16", stamp))
            self.pubs["rgb"].publish(image_msg(clip.rgb[i], "rgb8", stamp))
            if with_depth:
                self.pubs["depth"].publish(image_msg(clip.depth[i], "32FC1", stamp))
            stamps.append(stamp)
            if pace:
                time.sleep(pace)
        return stamps

    @staticmethod
    def wait(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)  # its last spin_once would touch the destroyed nodes
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        self.client.destroy_node()
        rclpy.try_shutdown(context=self.context)


def small_clip(num_frames: int = 12, seed: int = 0):
    return make_scene(seed, num_frames=num_frames, height=40, width=72, max_targets=2)
