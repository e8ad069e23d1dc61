"""`amodal-ros demo`: the product end to end on a synthetic RGB-D scene, no downloads needed.

Writes a demo rosbag2 (a 15 fps RGB-D camera, instance masks, objects passing behind an
occluder), replays it through the node's streaming pipeline (sync, 8 fps sampling, 25-frame
windows, stride 5) into a results bag, and writes the overlay video:

    OUT/demo_bag/      the input bag (try `ros2 bag play` or `amodal-ros replay` on it)
    OUT/results/       AmodalObjectArray, overlay and completion topics (rosbag2)
    OUT/overlay.mp4    amodal outlines over the RGB, hidden parts shaded (+ overlay.gif)
    OUT/summary.json   the replay summary

By default it runs the embedded model (amodal_ros/models/embedded): a small Diffusion-VAS,
stage 1 (mask + depth) and stage 2 (completion), trained on synthetic scenes on a CPU. The demo
scene is from the held-out test split. Real cameras need the published weights (--checkpoint).

Usage:
    amodal-ros demo --out demo_out
"""

from __future__ import annotations

import argparse
import json
import shutil
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
        "--checkpoint", default="embedded", help="stage-1 checkpoint folder (default: embedded)"
    )
    parser.add_argument(
        "--completion-checkpoint",
        default=None,
        help="stage-2 checkpoint folder ('' = none; default: embedded with the embedded stage 1)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (a previous demo's output is always replaced)",
    )


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.bags import replay
    from amodal_ros.bags.demo_bag import write_demo_bag
    from amodal_ros.models import embedded

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
    stage2 = ns.completion_checkpoint
    if stage2 is None:  # the embedded stage 2 goes with the embedded stage 1
        stage2 = embedded.NAME if ns.checkpoint == embedded.NAME else ""
    write_demo_bag(out / "demo_bag", frames=ns.frames)
    summary = replay.run(
        replay.ReplayArgs(
            bag=out / "demo_bag",
            out=out / "results",
            stream=StreamConfig(
                checkpoint=str(ns.checkpoint),
                completion_checkpoint=str(stage2),
                stride=ns.stride,
                publish_frames="new",
            ),
            inference=InferenceConfig(
                num_steps=ns.steps, device=ns.device, **embedded.settings_for(ns.checkpoint)
            ),
            video=out / "overlay",
        )
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
