"""Benchmark of the inference core (not a test): batching and per-frame caching.

Prints seconds per 25-frame window for the tiny seeded model on this machine's CPU:
1 and 4 objects, batched vs sequential, and cached vs uncached encoding for a window sliding
by one frame. Ratios are measured within this one run.

Usage:
    scripts/with_env.sh python bench/bench_core.py [--steps 25] [--device cpu] [--repeats 2]
    # full-size SVD architecture (random weights) on a GPU:
    scripts/with_env.sh python bench/bench_core.py --full-size --device cuda --dtype float16
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from amodal_ros.core import InferenceConfig, ObjectTrack
from amodal_ros.models.architectures import build_components
from amodal_ros.pipeline import AmodalSegmenter, FrameEncodingCache

FRAMES = 25


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def make_tracks(n_objects: int, h: int, w: int, total: int, start: int = 0) -> list[ObjectTrack]:
    tracks = []
    for k in range(n_objects):
        masks = np.zeros((total, h, w), bool)
        for t in range(total):
            y, x = 10 + 20 * k, (5 + 4 * t + 30 * k) % (w - 40)
            masks[t, y : y + 30, x : x + 40] = True
        keys = list(range(start, start + FRAMES))
        tracks.append(ObjectTrack(k + 1, masks[start : start + FRAMES], frame_keys=keys))
    return tracks


def timed(fn, repeats: int, sync) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()

    size = dict(height=256, width=512) if args.full_size else dict(height=64, width=128)
    config = InferenceConfig(
        num_steps=args.steps, device=args.device, dtype=args.dtype, max_batch_objects=4, **size
    )
    components = build_components("full" if args.full_size else "tiny")
    components.to(args.device, getattr(torch, args.dtype))
    seg = AmodalSegmenter(components, config)
    h, w = 2 * size["height"], 2 * size["width"]  # camera resolution
    depth = np.random.default_rng(0).uniform(0.5, 3.0, (FRAMES + 1, h, w)).astype(np.float32)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    print(
        f"device: {device_name(args.device)}; model: {components.source}, "
        f"{config.height}x{config.width}, {FRAMES} frames, {args.steps} steps, "
        f"guidance {config.max_guidance}, dtype {args.dtype}"
    )
    seg(make_tracks(1, h, w, FRAMES + 1), depth[:FRAMES])  # warm-up

    for n in (1, 4):
        tracks = make_tracks(n, h, w, FRAMES + 1)
        batched = timed(lambda t=tracks: seg(t, depth[:FRAMES]), args.repeats, sync)
        sequential = timed(
            lambda t=tracks: [seg([x], depth[:FRAMES]) for x in t], args.repeats, sync
        )
        print(
            f"{n} object(s): batched {batched:.2f} s/window, sequential {sequential:.2f} s/window,"
            f" sequential/batched = {sequential / batched:.2f}x"
        )

    # Sliding by one frame: a warm cache encodes only the new frame of each object.
    n = 4
    first, slid = make_tracks(n, h, w, FRAMES + 1, 0), make_tracks(n, h, w, FRAMES + 1, 1)
    inv = depth.copy()
    inv[:, 0, 0], inv[:, 0, 1] = 0.4, 3.2  # a fixed depth range (as a saturating sensor)
    cold = slide_once(seg, first, slid, inv, warm=False, sync=sync, repeats=args.repeats)
    warm = slide_once(seg, first, slid, inv, warm=True, sync=sync, repeats=args.repeats)
    print(
        f"slide by 1 frame, {n} objects: frames encoded uncached {cold[2]}, cached {warm[2]}; "
        f"encoding uncached {cold[1]:.3f} s, cached {warm[1]:.3f} s "
        f"({cold[1] / warm[1]:.1f}x); whole window uncached {cold[0]:.2f} s, "
        f"cached {warm[0]:.2f} s ({cold[0] / warm[0]:.2f}x)"
    )
    if args.device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def slide_once(seg, first, slid, inv, warm: bool, sync, repeats: int) -> tuple[float, float, int]:
    """Best-of-`repeats` (window seconds, encoding seconds, frames encoded) of the slid window."""
    encoder = seg.sampler.encoder
    original = encoder.encode
    best = (float("inf"), float("inf"), 0)
    for _ in range(repeats):
        cache = FrameEncodingCache()
        if warm:
            seg(first, inv[:FRAMES], cache=cache)
        encoded_before = sum(cache.encoded.values())
        spent = []

        def timed_encode(*a, _spent=spent, **k):
            sync()
            t0 = time.perf_counter()
            out = original(*a, **k)
            sync()
            _spent.append(time.perf_counter() - t0)
            return out

        encoder.encode = timed_encode
        try:
            sync()
            t0 = time.perf_counter()
            seg(slid, inv[1:], cache=cache)
            sync()
            total = time.perf_counter() - t0
        finally:
            encoder.encode = original
        frames = sum(cache.encoded.values()) - encoded_before
        best = min(best, (total, sum(spent), frames))
    return best


if __name__ == "__main__":
    main()
