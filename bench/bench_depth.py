"""Benchmark (not a test): Depth Anything V2 per frame, eager against torch.compile (CUDA graphs
on a GPU), at the sizes and batches the node runs: batch 1 and the batches of a slide.

Times the network call the node makes (`DepthAnythingDepth.prepare(...)` on ready pixel
values), after warm-up calls, median of `--repeats`; prints one JSON line per case and writes
them all with `--out`.

Usage:
    scripts/with_env.sh python bench/bench_depth.py --device cuda --dtype float16 \
        [--sizes vits vitl] [--batches 1 8] [--backends eager compile] [--out depth.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--sizes", nargs="+", default=["vits"])
    parser.add_argument("--inputs", nargs="+", default=["518x518", "518x1036"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--backends", nargs="+", default=["eager", "compile"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from amodal_ros.depth.depth_anything import DepthAnythingDepth
    from amodal_ros.models.registry import depth_model

    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    rows = []
    for size in args.sizes:
        model = depth_model(size)
        for backend in args.backends:
            for shape in args.inputs:
                h, w = (int(v) for v in shape.split("x"))  # network input, multiples of 14
                depth = DepthAnythingDepth(  # its batch: the largest timed (8 on a GPU anyway)
                    model,
                    min(h, w),
                    device=args.device,
                    dtype=dtype,
                    batch=max(args.batches),
                    backend=backend,
                )
                run = depth.prepare(h, w)  # a camera of h x w gets exactly that input
                for batch in args.batches:
                    x = torch.randn(batch, 3, h, w, device=device, dtype=dtype)
                    seconds = _median(lambda x=x, run=run: run(x), device, args.repeats)
                    row = {
                        "size": size,
                        "backend": backend,
                        "input": shape,
                        "batch": batch,
                        "ms_per_call": 1000 * seconds,
                        "ms_per_frame": 1000 * seconds / batch,
                        # a compiled model is called at its full batch, padded (one graph)
                        "frames_computed": depth.batch if backend == "compile" else batch,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.out:
                        with open(args.out, "w") as f:
                            json.dump(rows, f, indent=2)


@torch.no_grad()
def _median(call, device: torch.device, repeats: int) -> float:
    for _ in range(3):  # warm-up: compiles, captures graphs, picks kernels
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    main()
