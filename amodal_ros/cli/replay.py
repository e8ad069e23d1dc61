r"""`amodal-ros replay IN_BAG --out OUT_BAG`: a recorded bag through the node's pipeline, offline
and deterministic, into a rosbag2 of results (see amodal_ros.bags.replay for what is written).

Usage:
    amodal-ros demo-bag demo_bag && amodal-ros replay demo_bag --out demo_results
    amodal-ros replay recording --out results --checkpoint diffusion-vas-amodal-segmentation \
        --rgb-topic /camera/color/image_raw \
        --depth-topic /camera/aligned_depth_to_color/image_raw \
        --mask-topic /segmentation/labels --storage mcap --copy-inputs

Without --checkpoint the embedded model runs: a small Diffusion-VAS trained on synthetic scenes
only (amodal_ros/models/embedded/MODEL_CARD.md); real cameras need the published weights.
Exit code 1 when model windows failed: the bag is written, their frames flagged REASON_ERROR.
"""

from __future__ import annotations

from amodal_ros.bags import replay
from amodal_ros.bags.replay import ReplayArgs as Args

__all__ = ["Args", "run"]


def run(args: Args) -> dict:
    """`replay.run`, and exit code 1 for a bag whose model windows failed: a script sees it."""
    summary = replay.run(args)
    replay.check_windows(summary)
    return summary
