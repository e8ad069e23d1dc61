"""Sliding-window evaluation scores exactly the frames the node would publish."""

from __future__ import annotations

import pytest

from amodal_ros.core.errors import ProcessingError
from amodal_ros.data.scenes import make_scene
from amodal_ros.eval.sliding import evaluate_sliding
from amodal_ros.pipeline import AmodalSegmenter
from amodal_ros.pipeline.factory import Pipelines


def test_scores_the_new_frames_of_every_window_after_the_first(components12, tiny_config):
    clip = make_scene(15, num_frames=10, height=32, width=64, max_targets=2, enter_leave=1.0)
    segmenter = AmodalSegmenter(components12, tiny_config.replace(num_steps=1))
    # camera depth, as the node gets it: the mask+depth model runs on every window
    result = evaluate_sliding(Pipelines(segmenter, depth_source="camera"), [clip], stride=2)
    # windows start at 0, 2, 4, 6 (T = 4); the first is not scored; each scores its 2 new frames
    # for every object seen in the window, the frames where the object has a true or a given
    # (modal) mask: objects leave the image, and a frame with neither has nothing to score
    # (this tiny model marks nothing where the object is not)
    new = [
        (i, n)
        for first in (2, 4, 6)
        for i in clip.target_ids
        if clip.modal(i)[first : first + 4].any()
        for n in (first + 2, first + 3)
    ]
    expected = sum(bool(clip.amodal[i][n].any() or clip.modal(i)[n].any()) for i, n in new)
    assert expected < len(new)  # the clip has an object out of the image in a new frame
    assert result["windows"] == 3 and result["frames"] == expected
    assert 0.0 <= result["mIoU"] <= 100.0 and result["window_s_p50"] > 0


def test_clips_shorter_than_two_windows_are_refused(components12, tiny_config):
    clip = make_scene(7, num_frames=5, height=32, width=64)
    with pytest.raises(ValueError, match="clips need >= 6 frames"):
        evaluate_sliding(Pipelines(AmodalSegmenter(components12, tiny_config)), [clip], 2)


def test_a_window_the_model_cannot_run_is_an_error_not_a_modal_score(components12, tiny_config):
    clip = make_scene(7, num_frames=8, height=32, width=64, max_targets=2)
    segmenter = AmodalSegmenter(components12, tiny_config.replace(num_steps=1))
    # no depth source for a mask+depth model: every window fails, and the evaluation says so
    with pytest.raises(ProcessingError, match="window\\(s\\) failed"):
        evaluate_sliding(Pipelines(segmenter, depth_source="none"), [clip], stride=2)


def test_the_first_window_that_runs_is_the_cold_start_left_out(components12, tiny_config):
    """Nothing visible in frames 0-3: window 0 does not run, so window 2 is the cold start and
    only windows 4 and 6 are scored."""
    clip = make_scene(7, num_frames=10, height=32, width=64, max_targets=2)
    clip.labels[:4] = 0  # every object hidden in the first window
    assert not any(clip.modal(i)[:4].any() for i in clip.target_ids)
    assert all(clip.modal(i)[2:6].any() for i in clip.target_ids[:1])
    segmenter = AmodalSegmenter(components12, tiny_config.replace(num_steps=1))
    result = evaluate_sliding(Pipelines(segmenter, depth_source="camera"), [clip], stride=2)
    assert result["windows"] == 2
