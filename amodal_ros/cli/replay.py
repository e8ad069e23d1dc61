"""`amodal-ros replay IN_BAG --out OUT_BAG`: a recorded bag through the node's pipeline, offline
and deterministic, into a rosbag2 of results (see amodal_ros.bags.replay for what is written).

Usage:
    amodal-ros demo-bag demo_bag && amodal-ros replay demo_bag --out demo_results
    amodal-ros replay recording --out results --checkpoint diffusion-vas-amodal-segmentation \
        --rgb-topic /camera/color/image_raw --depth-topic /camera/depth/image_rect_raw \
        --mask-topic /segmentation/labels --storage mcap --copy-inputs

Without --checkpoint the embedded model runs (at 32x64): a small Diffusion-VAS trained on
synthetic scenes only (amodal_ros/models/embedded/MODEL_CARD.md); real cameras need the
published weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amodal_ros.bags import topics
from amodal_ros.bags.output import STORAGES
from amodal_ros.cli.infer import add_config_arguments, sized_config_from
from amodal_ros.core.config import (
    DEPTH_SOURCES,
    PUBLISH_POLICIES,
    StreamConfig,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stream = StreamConfig()
    parser.add_argument(
        "bag", type=Path, help="input bag: rosbag2 folder (sqlite3 or MCAP) or ROS 1 .bag file"
    )
    parser.add_argument("--out", type=Path, required=True, help="output rosbag2 folder")
    parser.add_argument("--storage", default="sqlite3", choices=STORAGES, help="output storage")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument(
        "--copy-inputs", action="store_true", help="also write the input topics to --out"
    )
    parser.add_argument("--rgb-topic", default=topics.RGB_TOPIC)
    parser.add_argument("--depth-topic", default=topics.DEPTH_TOPIC)
    parser.add_argument("--mask-topic", default=topics.MASK_TOPIC)
    parser.add_argument(
        "--camera-info-topic",
        default=topics.CAMERA_INFO_TOPIC,
        help="passed through to /amodal/camera_info; '' to skip",
    )
    parser.add_argument(
        "--compressed",
        action="store_true",
        help="RGB is sensor_msgs/CompressedImage (also detected from the topic's type)",
    )
    parser.add_argument("--start", type=float, help="seconds after the bag's first message")
    parser.add_argument("--end", type=float, help="seconds after the bag's first message")
    parser.add_argument(
        "--frame-rate", type=float, default=stream.frame_rate, help="model frame rate, frames/s"
    )
    parser.add_argument(
        "--stride", type=int, default=stream.stride, help="run a window every N sampled frames"
    )
    parser.add_argument(
        "--publish-frames",
        default="new",
        choices=PUBLISH_POLICIES,
        help="'new': a result for every sampled frame (default); 'latest': one per window",
    )
    parser.add_argument(
        "--sync-tolerance",
        type=float,
        default=stream.sync_tolerance,
        help="largest stamp difference of RGB, depth and mask of one frame, s",
    )
    parser.add_argument(
        "--checkpoint",
        default="embedded",
        help="stage-1 checkpoint folder (default: 'embedded', the shipped synthetic-trained one)",
    )
    parser.add_argument(
        "--completion-checkpoint", default="", help="stage-2 checkpoint folder or 'embedded'"
    )
    parser.add_argument("--depth-source", default=stream.depth_source, choices=DEPTH_SOURCES)
    parser.add_argument("--depth-model", type=Path, help="Depth Anything V2 folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--video", type=Path, help="also write the overlays as VIDEO.mp4 (+ VIDEO.gif if short)"
    )
    add_config_arguments(parser)
    # Working size and window default by model: 32x64 for the embedded one, else the published.
    parser.set_defaults(height=None, width=None, window=None)


def args_from(ns: argparse.Namespace):
    """ReplayArgs of parsed command-line arguments."""
    from amodal_ros.bags.replay import ReplayArgs

    stream = StreamConfig(
        checkpoint=str(ns.checkpoint),
        completion_checkpoint=str(ns.completion_checkpoint),
        depth_model=str(ns.depth_model or ""),
        depth_source=ns.depth_source,
        frame_rate=ns.frame_rate,
        stride=ns.stride,
        publish_frames=ns.publish_frames,
        sync_tolerance=ns.sync_tolerance,
    )
    return ReplayArgs(
        bag=ns.bag,
        out=ns.out,
        stream=stream,
        inference=sized_config_from(ns, ns.checkpoint),
        rgb_topic=ns.rgb_topic,
        depth_topic=ns.depth_topic,
        mask_topic=ns.mask_topic,
        camera_info_topic=ns.camera_info_topic,
        compressed=ns.compressed,
        start=ns.start,
        end=ns.end,
        storage=ns.storage,
        copy_inputs=ns.copy_inputs,
        overwrite=ns.overwrite,
        progress=not ns.no_progress,
        video=ns.video,
    )


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.bags import replay

    return replay.run(args_from(ns))
