"""What `eval` and `bench` measure is what the node ships: one window of a clip through the
node's stream (messages -> StreamFront -> WindowProcessor) and through eval's path gives the
same masks, and the benchmark's default scenario runs the same WindowProcessor."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.core.config import InferenceConfig, StreamConfig  # noqa: E402
from amodal_ros.core.frames import MODEL_PERIOD_NS, Frame  # noqa: E402
from amodal_ros.data.scenes import make_scene  # noqa: E402
from amodal_ros.eval.run import clip_window  # noqa: E402
from amodal_ros.pipeline.processor import WindowProcessor  # noqa: E402
from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB, StreamFront  # noqa: E402

FRAMES = 4


def test_one_window_through_the_node_stream_and_through_eval_gives_the_same_masks(
    published_folder,
):
    clip = make_scene(1_000_003, num_frames=FRAMES, height=32, width=64)
    stream = StreamConfig(checkpoint=str(published_folder), stride=1)
    inference = InferenceConfig(num_frames=FRAMES, num_steps=2, seed=5)
    # the node: raw per-topic messages, synchronised, sampled, windowed
    node = WindowProcessor.from_config(stream, inference)

    def to_frame(m: dict) -> Frame:
        return Frame(m["stamp_ns"], m[RGB], m[MASKS].astype(np.int64), m[DEPTH], "32FC1")

    front = StreamFront(stream, FRAMES, True, to_frame)
    windows = []
    for t in range(FRAMES):
        for name, array in ((MASKS, clip.labels), (DEPTH, clip.depth), (RGB, clip.rgb)):
            windows += front.add(name, t * MODEL_PERIOD_NS, array[t])
    full = [w for w in windows if w.full]
    assert len(full) == 1
    from_node = node.process(full[0])[-1]  # the node publishes the window's newest frame
    # eval: the clip as one window, every frame published
    evaluator = WindowProcessor.from_config(stream.replace(publish_frames="new"), inference)
    targets = [i for i in clip.target_ids if clip.modal(i).any()]
    from_eval = evaluator.process(clip_window(clip, targets))[-1]
    assert from_eval.frame.stamp_ns == from_node.frame.stamp_ns
    node_objects = {o.object_id: o for o in from_node.objects}  # (the node also runs occluders)
    ran = 0
    for o in from_eval.objects:
        theirs = node_objects[o.object_id]
        assert o.valid == theirs.valid and o.reason == theirs.reason
        np.testing.assert_array_equal(o.amodal, theirs.amodal)
        np.testing.assert_array_equal(o.soft, theirs.soft)
        ran += o.valid
    assert ran >= 1  # at least one object went through the model in both


def test_the_benchmark_default_scenario_is_the_node_processor():
    from amodal_ros.eval.scenarios import DefaultScenario, Stream
    from amodal_ros.pipeline.factory import build

    pipes = build(StreamConfig(checkpoint="tiny"), InferenceConfig(num_frames=FRAMES))
    scene = make_scene(1_000_002, num_frames=FRAMES + 2, height=32, width=64)
    scenario = DefaultScenario("default", pipes, Stream(scene, FRAMES, 2, 1))
    assert type(scenario.processor) is WindowProcessor
    assert scenario.processor.segmenter is pipes.segmenter
