"""Benchmark (not a test): does the inference thread starve the node's callbacks of the GIL?

The node runs its model on a worker thread and its DDS callbacks on the executor's thread.
Every callback must take the GIL; if the worker held it for long stretches, callbacks would
wait up to the interpreter's switch interval (5 ms) each, and a 30 Hz RGB-D-labels stream
(90 callbacks/s) would fall behind. This measures the wait directly: a probe thread sleeps
2 ms (releasing the GIL) and records how late it gets it back, first with nothing else
running, then while the embedded model runs windows on another thread (torch on one thread,
as the node's `torch_threads: 0` gives on a 2-core CPU).

Usage:
    scripts/with_env.sh python bench/bench_gil.py [--seconds 10] [--steps 8] [--objects 2]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.types import ObjectTrack
from amodal_ros.data.scenes import make_scene, split_seeds
from amodal_ros.depth.camera import inverse_depth_from_camera
from amodal_ros.pipeline import AmodalSegmenter

SLEEP_S = 0.002


def probe(seconds: float) -> np.ndarray:
    """How late (ms) a 2 ms sleep returns, over `seconds`: the wait for the GIL plus the OS."""
    late = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        time.sleep(SLEEP_S)
        late.append(time.perf_counter() - start - SLEEP_S)
    return np.array(late) * 1000


def spread(late: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(late, [50, 95, 99])
    return f"p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f}  max {late.max():.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--objects", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clip = make_scene(split_seeds("test", 1)[0], num_frames=25)
    model = AmodalSegmenter.from_pretrained("embedded", InferenceConfig(num_steps=args.steps))
    depth = inverse_depth_from_camera(clip.depth, "32FC1")
    tracks = [ObjectTrack(i, clip.modal(i)) for i in sorted(clip.amodal)[: args.objects]]

    print(f"nothing else running      : {spread(probe(args.seconds))}", flush=True)
    stop, windows = threading.Event(), []

    def work() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            model(tracks, depth)
            windows.append(time.perf_counter() - started)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(1.0)
    busy = probe(args.seconds)
    stop.set()
    worker.join()
    print(f"model windows on a thread : {spread(busy)}")
    print(
        f"({len(windows)} windows of {len(tracks)} objects, {args.steps} steps, "
        f"{np.median(windows):.2f} s each; at 90 callbacks/s the p95 wait costs "
        f"{90 * np.percentile(busy, 95) / 10:.2f} % of a second)"
    )


if __name__ == "__main__":
    main()
