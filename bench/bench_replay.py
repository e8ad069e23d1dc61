"""Benchmark of `amodal-ros replay` (not a test): throughput and where a window's time goes.

Writes a synthetic demo bag (default 100 frames at 15 fps, 128x256), replays it with the
embedded model (32x64, 25-frame windows, stride 5, 25 steps) and prints replay throughput
(input and sampled frames/s) and the mean time per model window, split into

    encode   VAE + CLIP encoding of the conditioning frames (ConditionEncoder.encode)
    denoise  the Euler sampling loop over the UNet (sampling.denoise)
    decode   the temporal VAE decode (sampling.decode)
    other    the rest of the window: depth conditioning, pre/post-processing, result assembly
    publish  building + CDR-serialising the output messages of the window's results
    write    writing them to the output bag

The split comes from timing wrappers installed by this script only (no library change);
(replay runs the processor on a constant clock, so its own clock cannot time it).

Usage:
    scripts/with_env.sh python bench/bench_replay.py [--frames 100] [--steps 25] [--window 25]
        [--stride 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

import amodal_ros.pipeline.runner as runner
from amodal_ros.bags import replay
from amodal_ros.bags.demo_bag import write_demo_bag
from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.pipeline.encoding import ConditionEncoder
from amodal_ros.pipeline.processor import WindowProcessor

TIMES: Counter[str] = Counter()
COUNTS: Counter[str] = Counter()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({torch.get_num_threads()} threads)"


def install_timers(sync) -> None:
    """Wrap the stage-1 calls and WindowProcessor.process with accumulating timers."""

    def timed(name, fn, count_if=None):
        def wrapper(*args, **kwargs):
            sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            if count_if is None or count_if(*args, **kwargs):
                TIMES[name] += time.perf_counter() - t0
                COUNTS[name] += 1
            return out

        return wrapper

    ConditionEncoder.encode = timed("encode", ConditionEncoder.encode)
    # WindowSampler.run calls the names it imported into runner's namespace.
    runner.denoise = timed("denoise", runner.denoise)
    runner.decode = timed("decode", runner.decode)
    WindowProcessor.process = timed(
        "window", WindowProcessor.process, count_if=lambda self, window: window.full
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="camera frames in the bag")
    parser.add_argument("--fps", type=float, default=15.0, help="camera rate of the bag")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--window", type=int, default=25)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sync = torch.cuda.synchronize if ns.device.startswith("cuda") else (lambda: None)
    install_timers(sync)

    with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
        bag = Path(tmp) / "demo_bag"
        write_demo_bag(bag, frames=ns.frames, fps=ns.fps, height=128, width=256)
        args = replay.ReplayArgs(
            bag=bag,
            out=Path(tmp) / "results",
            stream=StreamConfig(checkpoint="embedded", stride=ns.stride, publish_frames="new"),
            inference=InferenceConfig(num_frames=ns.window, num_steps=ns.steps, device=ns.device),
            progress=False,
        )
        summary = replay.run(args)

    windows = summary["windows_model"]
    size = "x".join(str(v) for v in summary["working_size_hw"])
    per = {k: TIMES[k] / max(1, windows) for k in ("encode", "denoise", "decode", "window")}
    per["other"] = per["window"] - per["encode"] - per["denoise"] - per["decode"]
    timing = summary["timing"]
    per["publish"] = timing.get("publish", 0.0) / max(1, windows)
    per["write"] = timing.get("write", 0.0) / max(1, windows)
    print()
    print(
        f"device: {device_name(ns.device)}; torch {torch.__version__}; embedded model "
        f"{size}, {ns.window}-frame window, stride {ns.stride}, {ns.steps} steps"
    )
    print(
        f"bag: {ns.frames} frames at {ns.fps:g} fps, 128x256 -> {summary['frames_sampled']} "
        f"sampled at 8 fps; {summary['windows']} windows ({windows} through the model); "
        f"{summary['results_written']} results"
    )
    print(
        f"replay: {summary['seconds']:.1f} s = {summary['frames_per_s']:.2f} input frames/s, "
        f"{summary['sampled_frames_per_s']:.2f} sampled frames/s"
    )
    print("per model window (mean over windows; publish/write: all results / model windows):")
    total = per["window"] + per["publish"] + per["write"]
    for name in ("encode", "denoise", "decode", "other", "publish", "write"):
        print(f"  {name:8s} {per[name]:7.3f} s  {100 * per[name] / total:5.1f} %")
    print(f"  {'total':8s} {total:7.3f} s")
    print(
        f"calls: encode {COUNTS['encode']}, denoise {COUNTS['denoise']}, decode "
        f"{COUNTS['decode']} (encode calls = per object and depth; cached frames are not "
        "re-encoded)"
    )


if __name__ == "__main__":
    main()
