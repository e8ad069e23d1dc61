"""`amodal-ros demo-bag OUT_BAG`: a synthetic RGB-D rosbag2 to try `amodal-ros replay` on.

Usage:
    amodal-ros demo-bag demo_bag [--frames 50] [--fps 15] [--seed 0] [--height 128 --width 256]
        [--storage sqlite3|mcap]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amodal_ros.bags.output import STORAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output rosbag2 folder")
    parser.add_argument("--frames", type=int, default=50, help="camera frames")
    parser.add_argument(
        "--fps", type=float, default=15.0, help="camera rate, frames/s (the model runs at 8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="scene seed")
    parser.add_argument("--height", type=int, default=128, help="image height, pixels")
    parser.add_argument("--width", type=int, default=256, help="image width, pixels")
    parser.add_argument("--storage", default="sqlite3", choices=STORAGES)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.bags.demo_bag import write_demo_bag

    summary = write_demo_bag(
        ns.out,
        frames=ns.frames,
        fps=ns.fps,
        seed=ns.seed,
        height=ns.height,
        width=ns.width,
        storage=ns.storage,
        overwrite=ns.overwrite,
    )
    counts = ", ".join(f"{topic} {n}" for topic, n in summary["topics"].items())
    print(
        f"wrote {summary['out']}: {summary['frames']} frames at {summary['fps']:g} fps; {counts}"
    )
    return summary
