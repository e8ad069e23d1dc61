"""Benchmark of DDS transport alone (not a test): how many camera messages a subscriber that
does nothing else receives, per QoS reliability of the subscription.

A publisher process sends what a RealSense-like driver sends (bgr8 640x480 RGB, 16UC1 depth,
mono16 labels, one stamp, reliable QoS, 30 Hz); a subscriber process only counts, subscribed
best-effort, then reliable. This is why the node's `input_reliability` defaults to 'auto'
(reliable unless the publisher offers only best effort).

Usage:
    scripts/with_env.sh python bench/bench_transport.py [--seconds 10] [--fps 30]
"""

from __future__ import annotations

import argparse
import array
import json
import subprocess
import sys
import time

TOPICS = {"image": ("bgr8", 3), "depth": ("16UC1", 2), "masks": ("mono16", 2)}


def publish(seconds: float, fps: float) -> None:
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init(args=[])
    node = rclpy.create_node("camera")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pubs, msgs = {}, {}
    for topic, (encoding, size) in TOPICS.items():
        pubs[topic] = node.create_publisher(Image, topic, qos)
        msg = Image(height=480, width=640, encoding=encoding, step=640 * size)
        msg.data = array.array("B", np.random.default_rng(0).bytes(640 * 480 * size))
        msgs[topic] = msg
    time.sleep(2.0)  # discovery
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        time.sleep(max(0.0, start + sent / fps - time.monotonic()))
        for topic in TOPICS:
            pubs[topic].publish(msgs[topic])
        sent += 1
    print(json.dumps({"published": sent}), flush=True)
    time.sleep(1.0)


def count(reliability: str, seconds: float) -> None:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init(args=[])
    node = rclpy.create_node("counter")
    policy = (
        ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    )
    counts = dict.fromkeys(TOPICS, 0)
    for topic in TOPICS:
        node.create_subscription(
            Image,
            topic,
            lambda msg, topic=topic: counts.__setitem__(topic, counts[topic] + 1),
            QoSProfile(depth=10, reliability=policy),
        )
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(counts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument(
        "--role", choices=["publish", "best_effort", "reliable"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.role == "publish":
        return publish(args.seconds, args.fps)
    if args.role:
        return count(args.role, args.seconds + 6.0)
    me = [sys.executable, __file__, "--seconds", str(args.seconds), "--fps", str(args.fps)]
    for reliability in ("best_effort", "reliable"):
        counter = subprocess.Popen([*me, "--role", reliability], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        sent = json.loads(
            subprocess.run([*me, "--role", "publish"], capture_output=True, text=True).stdout
        )
        got = json.loads(counter.communicate()[0])
        shares = {
            t: f"{got[t]}/{sent['published']} ({100 * got[t] / sent['published']:.0f} %)"
            for t in TOPICS
        }
        print(f"subscription {reliability:11s}: received {shares}")


if __name__ == "__main__":
    main()
