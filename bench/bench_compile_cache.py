"""Benchmark (not a test): time to the first window with the compiled UNet, cold and warm cache.

A node that compiles its UNet (`unet_backend: compile`) pays for the compilation at its first
window. Inductor's caches live in the engine cache (ENGINE_CACHE/inductor), so the next start
loads the compiled kernels instead. This runs the same first window in two fresh processes
sharing one new cache folder, and prints each one's first-window and second-window time,
Inductor's FX-graph cache hits and misses, and the graphs Dynamo compiled at the first window
and later (windows of fewer objects, which must compile nothing: accel/buckets.py):

    cold   first start: compiles, fills the cache
    warm   second start: the same process setup, finds the cache

Usage:
    scripts/with_env.sh python bench/bench_compile_cache.py [--checkpoint embedded]
        [--device cpu] [--dtype float32] [--objects 2] [--max-batch-objects 0]
        [--out results.json]

`--child CACHE` is the per-process step (one window after loading, as a node's warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def child(args) -> dict:
    """Load, then run two windows of one synthetic scene; the first one compiles."""
    import numpy as np
    import torch
    from torch._dynamo.utils import counters

    from amodal_ros.core.config import InferenceConfig, StreamConfig
    from amodal_ros.data.scenes import make_scene
    from amodal_ros.eval.run import clip_window
    from amodal_ros.pipeline.processor import WindowProcessor

    started = time.perf_counter()
    config = InferenceConfig(
        unet_backend="compile",
        device=args.device,
        dtype=args.dtype,
        engine_cache=args.child,
        num_steps=args.steps,
        num_frames=args.frames,
        max_batch_objects=args.max_batch_objects,
    )
    processor = WindowProcessor.from_config(StreamConfig(checkpoint=args.checkpoint), config)
    cfg = processor.segmenter.config
    loaded = time.perf_counter() - started
    clip = make_scene(1_000_002, cfg.num_frames, max(128, cfg.height), max(256, cfg.width))
    # every labelled object, as `amodal-ros bench` runs them (the targets alone are 2: a
    # request for 4 ran 2, silently)
    labelled = [int(i) for i in np.unique(clip.labels) if i > 0]
    if args.objects > len(labelled):
        raise SystemExit(f"--objects {args.objects}: the bench scene labels {len(labelled)}")
    window = clip_window(clip, labelled[: args.objects])
    # two windows of `objects` objects, then one of each smaller count: those compile nothing
    windows = [window] * 2 + [clip_window(clip, labelled[:n]) for n in range(1, args.objects)]
    seconds, graphs = [], []
    for each in windows:
        t0 = time.perf_counter()
        processor.process(each)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
        if len(seconds) == 1:  # what a node's start waits for: imports, load, first window
            start_to_first = time.time() - args.launched
        graphs.append(counters["stats"]["unique_graphs"])
    if processor.errors:
        raise SystemExit("a window failed (see the log)")
    return {
        "start_to_first_window_s": start_to_first,
        "load_s": loaded,
        "first_window_s": seconds[0],
        "second_window_s": seconds[1],
        "graphs_at_first_window": graphs[0],
        "graphs_compiled_later": graphs[-1] - graphs[0],
        "slowest_later_window_s": max(seconds[1:]),
        "fxgraph_cache_hit": counters["inductor"]["fxgraph_cache_hit"],
        "fxgraph_cache_miss": counters["inductor"]["fxgraph_cache_miss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="embedded")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument(
        "--max-batch-objects", type=int, default=0, help="objects per UNet call (0: auto)"
    )
    parser.add_argument("--out", default="")
    parser.add_argument("--cache", default="", help="cache folder (default: a new temporary one)")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    cache = args.cache or tempfile.mkdtemp(prefix="amodal_compile_cache_")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    argv = [sys.executable, __file__, "--child", cache] + [
        f"--{k.replace('_', '-')}={getattr(args, k)}"
        for k in (
            "checkpoint",
            "device",
            "dtype",
            "objects",
            "steps",
            "frames",
            "max_batch_objects",
        )
    ]
    import platform

    import torch

    results: dict = {  # what the figures are of: a results file read later
        "cache": cache,
        "device": args.device,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    for run in ("cold", "warm"):
        t0 = time.perf_counter()
        launched = [f"--launched={time.time()}"]
        done = subprocess.run(
            argv + launched, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"{run} start failed:\n{done.stderr[-3000:]}")
        results[run] = json.loads(done.stdout.strip().splitlines()[-1])
        results[run]["process_s"] = time.perf_counter() - t0  # every window and teardown too
        print(run, json.dumps(results[run]), flush=True)
        if args.out:  # after each start: a run cut short keeps the cold one
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
