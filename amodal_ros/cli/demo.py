"""`amodal-ros demo`: the product end to end on a synthetic RGB-D scene, no downloads needed.

Writes a demo rosbag2 (a 15 fps RGB-D camera, instance masks, objects passing behind an
occluder), replays it through the node's streaming pipeline (sync, 8 fps sampling, 25-frame
windows, stride 5) into a results bag, and writes the overlay video:

    OUT/demo_bag/      the input bag (try `ros2 bag play` or `amodal-ros replay` on it)
    OUT/results/       AmodalObjectArray, overlay and completion topics (rosbag2)
    OUT/overlay.mp4    amodal outlines over the RGB, hidden parts shaded (+ overlay.gif)
    OUT/summary.json   the replay summary

Until the trained embedded model ships this uses tiny *untrained* models with seeded random
weights: it shows the pipeline and the outputs, not the method's quality.

Usage:
    amodal-ros demo --out demo_out
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError

DEMO_OUTPUTS = ("demo_bag", "results", "overlay.mp4", "overlay.gif", "summary.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--frames", type=int, default=60, help="camera frames (15 fps)")
    parser.add_argument("--steps", type=int, default=25, help="sampling steps")
    parser.add_argument("--stride", type=int, default=5, help="window stride (model frames)")
    parser.add_argument(
        "--checkpoint", type=Path, help="stage-1 checkpoint (default: tiny untrained)"
    )
    parser.add_argument("--completion-checkpoint", type=Path, help="stage-2 checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (a previous demo's output is always replaced)",
    )


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.bags import replay
    from amodal_ros.bags.demo_bag import write_demo_bag

    out: Path = ns.out
    if out.exists() and any(out.iterdir()):
        previous_demo = (out / "summary.json").is_file() and (out / "demo_bag").is_dir()
        if not (previous_demo or ns.overwrite):
            raise InputError(
                f"{out} exists and is not an earlier demo's output; choose another --out or "
                "pass --overwrite"
            )
        for name in DEMO_OUTPUTS:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="amodal_demo_") as tmp:
        stage2 = ns.completion_checkpoint
        untrained = ns.checkpoint is None  # replay then runs its tiny untrained stage 1
        if untrained and stage2 is None:
            from amodal_ros.models.tiny import build_tiny_components, save_published_layout

            stage2 = save_published_layout(build_tiny_components(seed=1), Path(tmp) / "s2")
        write_demo_bag(out / "demo_bag", frames=ns.frames)
        size = replay.TINY_SIZE if untrained else {}
        summary = replay.run(
            replay.ReplayArgs(
                bag=out / "demo_bag",
                out=out / "results",
                stream=StreamConfig(
                    checkpoint=str(ns.checkpoint or ""),
                    completion_checkpoint=str(stage2 or ""),
                    stride=ns.stride,
                    publish_frames="new",
                ),
                inference=InferenceConfig(num_steps=ns.steps, device=ns.device, **size),
                video=out / "overlay",
            )
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
