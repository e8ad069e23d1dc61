"""The mask threshold is chosen on validation clips from one run of the model."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.core.config import InferenceConfig, StreamConfig  # noqa: E402
from amodal_ros.data.scenes import make_scene, split_seeds  # noqa: E402
from amodal_ros.eval.calibrate import best_threshold, sweep_thresholds  # noqa: E402


def test_the_sweep_scores_every_threshold_and_the_best_is_the_highest_miou(published_folder):
    clips = [make_scene(s, num_frames=4, height=32, width=64) for s in split_seeds("val", 2)]
    scores = sweep_thresholds(
        StreamConfig(checkpoint=str(published_folder)),
        InferenceConfig(num_frames=4, num_steps=1),
        clips,
        thresholds=(100, 400, 700),
    )
    assert set(scores) == {100, 400, 700}
    # a lower threshold marks more pixels: never a smaller predicted area
    ratios = [scores[t]["area_ratio_median"] for t in (100, 400, 700)]
    assert ratios[0] >= ratios[1] >= ratios[2]
    best = best_threshold(scores)
    assert scores[best]["mIoU"] == max(s["mIoU"] for s in scores.values())
