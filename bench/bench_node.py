"""Benchmark of the live node (not a test): latency and drops at a real camera rate.

Starts `amodal_node` in-process with the tiny untrained model, plays the synthetic RGB-D scene
into it over DDS in real time (stamps = wall clock, like a camera driver) and reports what a
subscriber sees: full windows answered, windows dropped, and window latency (arrival of a
window's newest frame -> publication) p50/p95. It runs twice in one invocation, with torch on
all cores and with the node's default `torch_threads: 0` (auto: cores - 1 on a CPU device),
and prints the latency ratio. Absolute times are for the stated device.

Usage:
    scripts/with_env.sh python bench/bench_node.py [--seconds 40] [--camera-fps 15]
        [--steps 4] [--stride 10] [--window 25]
"""

from __future__ import annotations

import argparse
import array
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from amodal_ros.data.scenes import make_scene
from amodal_ros.interface.convert import image_fields
from amodal_ros.models.architectures import build_components
from amodal_ros.models.layout import save_published_layout
from amodal_ros.msg import AmodalObjectArray
from amodal_ros.ros.node import AmodalNode


def image(a: np.ndarray, encoding: str, stamp: Time) -> Image:
    f = image_fields(a, encoding)
    f["data"] = array.array("B", f["data"].tobytes())
    return Image(header=Header(stamp=stamp, frame_id="camera"), **f)


def run(args, torch_threads: int) -> dict:
    """One live session with the given `torch_threads` parameter; what a subscriber saw."""
    context = Context()
    rclpy.init(context=context)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_published_layout(build_components("tiny"), Path(tmp) / "tiny")
        params = dict(
            checkpoint=str(ckpt),
            height=64,
            width=128,
            num_frames=args.window,
            num_steps=args.steps,
            stride=args.stride,
            publish_frames="latest",
            torch_threads=torch_threads,
        )
        node = AmodalNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
    client = rclpy.create_node("bench_client", context=context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    pubs = {t: client.create_publisher(Image, t, qos) for t in ("image", "masks", "depth")}
    results: list[tuple[bool, float]] = []  # (from a full window, latency)
    client.create_subscription(
        AmodalObjectArray,
        "amodal/objects",
        lambda m: results.append((m.window_frames == args.window, m.latency)),
        10,
    )
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()
    time.sleep(2.0)  # discovery

    clip = make_scene(0, num_frames=50, height=128, width=256, max_targets=2)
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < args.seconds:
        i = sent % len(clip.rgb)
        stamp = client.get_clock().now().to_msg()
        pubs["masks"].publish(image(clip.labels[i], "mono16", stamp))
        pubs["depth"].publish(image(clip.depth[i], "32FC1", stamp))
        pubs["image"].publish(image(clip.rgb[i], "rgb8", stamp))
        sent += 1
        time.sleep(max(0.0, started + sent / args.camera_fps - time.monotonic()))
    time.sleep(2.0)
    full = [lat for is_full, lat in results if is_full]
    out = dict(
        threads=torch.get_num_threads(),
        sent=sent,
        full=len(full),
        dropped=node.queue.dropped,
        results=len(results),
        p50=float(np.percentile(full, 50)) if full else float("nan"),
        p95=float(np.percentile(full, 95)) if full else float("nan"),
    )
    executor.shutdown(timeout_sec=5)
    node.destroy_node()
    client.destroy_node()
    rclpy.try_shutdown(context=context)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--camera-fps", type=float, default=15.0)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--stride", type=int, default=10)
    p.add_argument("--window", type=int, default=25)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"device: CPU ({cores} cores); tiny untrained model 64x128, {args.window}-frame window, "
        f"{args.steps} steps, guidance 1.5; camera {args.camera_fps:g} fps for {args.seconds:g} s "
        f"-> model 8 fps, stride {args.stride} (a window due every {args.stride / 8:.2f} s), "
        "publish 'latest'"
    )
    runs = {}
    for label, threads in (("torch on all cores", cores), ("torch_threads auto", 0)):
        r = runs[label] = run(args, threads)
        print(
            f"{label} ({r['threads']} thread(s)): full windows {r['full']}, dropped "
            f"{r['dropped']}, results {r['results']} of {r['sent']} camera frames; window "
            f"latency p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s"
        )
    a, b = runs["torch on all cores"], runs["torch_threads auto"]
    print(f"latency p50 all cores / auto = {a['p50'] / b['p50']:.2f}x")


if __name__ == "__main__":
    main()
