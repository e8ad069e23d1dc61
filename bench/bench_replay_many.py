"""Benchmark of `amodal-ros replay-many` (not a test): wall time of the same bags with 1 and 2
Ray workers, as ratios from one run, on the machine it runs on (printed).

Writes `--bags` synthetic demo bags (different scenes, `--frames` camera frames at 15 fps:
50 frames = 25 model frames, one full window of the embedded model per bag), then replays
them all with each layout, every layout starting its own local Ray (start-up and model loads
included: what a user waits for):

    1 worker  x 1 CPU   (one bag at a time, one torch thread)
    1 worker  x all CPUs (one bag at a time, all threads)
    N workers x 1 CPU   (N bags at a time)

Usage:
    scripts/with_env.sh python bench/bench_replay_many.py [--bags 8] [--frames 50]
        [--json out.json] [--address auto]   # --address: a running Ray cluster instead
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from amodal_ros.bags.demo_bag import write_demo_bag
from amodal_ros.bags.fleet import ReplayManyArgs, run


def layouts(cpus: int) -> list[tuple[int, float]]:
    """(workers, CPUs per bag) to compare."""
    return [(1, 1.0), (1, float(cpus)), (cpus, 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bags", type=int, default=8)
    parser.add_argument("--frames", type=int, default=50, help="camera frames per bag (15 fps)")
    parser.add_argument("--address", default="", help="Ray cluster address; '' = local")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    cpus = os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="bench_replay_many_"))
    for i in range(ns.bags):
        write_demo_bag(root / "bags" / f"bag{i}", frames=ns.frames, seed=i)
    runs = []
    for workers, cpus_per_bag in layouts(cpus):
        args = ReplayManyArgs(
            bag=[str(root / "bags")],
            out=root / f"out_{workers}x{cpus_per_bag:g}",
            workers=workers,
            cpus_per_bag=cpus_per_bag,
            address=ns.address,
            progress=False,
        )
        t0 = time.perf_counter()
        result = run(args)
        seconds = time.perf_counter() - t0
        runs.append(
            {
                "workers": workers,
                "cpus_per_bag": cpus_per_bag,
                "seconds": round(seconds, 1),
                "frames": result["totals"]["frames"],
                "windows": result["totals"]["windows"],
            }
        )
        print(f"{workers} worker(s) x {cpus_per_bag:g} CPU: {seconds:.1f} s", flush=True)
    base = runs[0]["seconds"]
    for r in runs:
        r["speedup_vs_1x1"] = round(base / r["seconds"], 2)
    summary = {
        "machine": f"{platform.machine()}, {cpus} cores",
        "model": "embedded (default preset)",
        "bags": ns.bags,
        "camera_frames_per_bag": ns.frames,
        "runs": runs,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if ns.json:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
