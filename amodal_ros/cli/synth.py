"""`amodal-ros synth OUT`: synthetic amodal video clips with full ground truth, to disk.

Usage:
    amodal-ros synth data/synth --split train --clips 1000
    amodal-ros synth data/synth --split test --clips 100 --bags   # also a rosbag2 per clip

Each clip goes to OUT/<split>_<seed>/ in the folder format of amodal_ros.data.scenes (RGB,
depth, instance labels, amodal masks, full appearance, meta.json); with --bags also to
OUT/<split>_<seed>_bag/ as the camera topics `amodal-ros replay` reads. The test split's seeds
are fixed (from 1000000), so every machine evaluates on the same clips.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amodal_ros.core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (clips are added to it)")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--clips", type=int, default=10, help="number of clips")
    parser.add_argument("--start", type=int, default=0, help="first clip index of the split")
    parser.add_argument("--frames", type=int, default=25, help="frames per clip")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--bags", action="store_true", help="also write a rosbag2 per clip")
    parser.add_argument("--fps", type=float, default=8.0, help="camera rate of the bags")
    parser.add_argument("--no-progress", action="store_true")


def run(ns: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from amodal_ros.data.scenes import make_scene, split_seeds, write_clip_folder

    if ns.clips < 1:
        raise ValueError(f"--clips must be >= 1, got {ns.clips}")
    written = []
    for seed in tqdm(
        split_seeds(ns.split, ns.clips, ns.start),
        desc=ns.split,
        unit="clip",
        disable=ns.no_progress,
    ):
        name = f"{ns.split}_{seed}"
        folder = ns.out / name
        if folder.exists():
            raise InputError(f"{folder} exists; choose another OUT or --start")
        clip = make_scene(seed, num_frames=ns.frames, height=ns.height, width=ns.width)
        write_clip_folder(clip, folder)
        if ns.bags:
            from amodal_ros.bags.demo_bag import write_clip_bag

            write_clip_bag(clip.rgb, clip.depth, clip.labels, ns.out / f"{name}_bag", ns.fps)
        written.append(name)
    print(f"wrote {len(written)} {ns.split} clip(s) to {ns.out}: {written[0]} .. {written[-1]}")
    return {"out": str(ns.out), "clips": written}
