"""`amodal-ros demo-bag OUT_BAG`: a synthetic RGB-D rosbag2 to try `amodal-ros replay` on.

Usage:
    amodal-ros demo-bag demo_bag [--frames 50] [--camera-fps 15] [--scene-seed 0]
        [--image-height 128 --image-width 256]
        [--storage sqlite3|mcap]
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path

from amodal_ros.bags.output import STORAGES
from amodal_ros.core.config import MAX_IMAGE_SIDE, param


@dataclass
class Args:
    """The demo bag's scene and camera."""

    out: Path = param(MISSING, "output rosbag2 folder", positional=True)
    frames: int = param(50, "camera frames", 1)
    camera_fps: float = param(15.0, "camera rate, frames/s (the model runs at 8)", 0.01, 1000.0)
    scene_seed: int = param(0, "scene seed (of the held-out test split)")
    image_height: int = param(128, "image height, pixels", 16, MAX_IMAGE_SIDE)
    image_width: int = param(256, "image width, pixels", 16, MAX_IMAGE_SIDE)
    storage: str = param("sqlite3", "output storage", choices=STORAGES)
    overwrite: bool = param(False, "replace an existing bag")


def run(args: Args) -> dict:
    """Write the bag; prints and returns its summary."""
    from amodal_ros.bags.demo_bag import write_demo_bag

    summary = write_demo_bag(
        args.out,
        frames=args.frames,
        fps=args.camera_fps,
        seed=args.scene_seed,
        height=args.image_height,
        width=args.image_width,
        storage=args.storage,
        overwrite=args.overwrite,
    )
    counts = ", ".join(f"{topic} {n}" for topic, n in summary["topics"].items())
    print(
        f"wrote {summary['out']}: {summary['frames']} frames at {summary['fps']:g} fps; {counts}"
    )
    return summary
