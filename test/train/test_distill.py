"""`amodal-ros distill`: a few-step student from a teacher's samples or the ground truth, run
with preset realtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from amodal_ros.cli.main import main
from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.types import ObjectTrack
from amodal_ros.pipeline import AmodalSegmenter
from amodal_ros.train.distill import STUDENT_STEPS, TargetStore
from amodal_ros.train.loop import TrainConfig, train

FRAMES = 4
REALTIME = InferenceConfig(preset="realtime", num_frames=FRAMES)


def _config(out, **extra) -> TrainConfig:
    settings = dict(
        stage="distill",
        init="tiny",
        trainable="all",
        out=str(out),
        num_frames=FRAMES,
        distill_windows=2,
        steps=2,
        lr=1e-3,
        save_every=100,
        log_every=1,
        render_scale=2,
        progress=False,
    )
    return TrainConfig(**{**settings, **extra})


def _student_error(student_dir, store: TargetStore) -> float:
    """Mean squared distance of the 1-step student's samples to the teacher's, over the
    collected windows (their recorded noise), through the pipeline's own sampler."""
    from amodal_ros.accel.backends import EagerUNet
    from amodal_ros.models.layout import load_components
    from amodal_ros.pipeline.sampling import cross_attention_context, denoise

    student = load_components(student_dir)
    data = store.load()
    context = cross_attention_context(data["clip"], "consistent", guided=False)
    ids = torch.tensor(store.meta["time_ids"])
    with torch.no_grad():
        sample = denoise(
            EagerUNet(student.unet),
            student.scheduler_config,
            data["noise"],
            data["cond"],
            context,
            ids,
            1,
            None,
        )
    return float(torch.mean((sample - data["teacher"]) ** 2))


def test_a_student_learns_the_teachers_samples_and_runs_with_preset_realtime(tmp_path):
    out = tmp_path / "student"
    train(_config(out, steps=1))
    store = TargetStore(out / "targets")
    assert store.windows == 2 and store.meta["teacher"] == "tiny"
    data = store.load()
    assert data["teacher"].shape[:2] == (2, FRAMES) and bool(data["has_truth"].all())
    before = _student_error(out / "final", store)
    shard_mtime = store.shards()[0].stat().st_mtime_ns

    # a rerun continues from step 1 without sampling the teacher again, and overfits its two
    # windows: the gradients flow through the student's own 1- and 2-step samples
    train(_config(out, steps=40))
    assert store.shards()[0].stat().st_mtime_ns == shard_mtime
    after = _student_error(out / "final", store)
    assert after < 0.5 * before, (before, after)

    # the folder says it is a student, with its own few-step schedule
    index = json.loads((out / "final" / "model_index.json").read_text())["amodal_ros"]
    assert index["student"]["teacher"] == "tiny" and index["student"]["steps"] == [1, 2]
    schedule = json.loads((out / "final" / "scheduler" / "scheduler_config.json").read_text())
    assert schedule["sigma_min"] == 1.0

    # it runs under preset realtime (1 step) and in 2 steps; masks include the visible part
    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    depth = np.ones((FRAMES, 32, 64), np.float32)
    for steps in STUDENT_STEPS:
        config = InferenceConfig(preset="realtime", num_frames=FRAMES).replace(num_steps=steps)
        seg = AmodalSegmenter.from_pretrained(out / "final", config)
        assert seg.config.student and seg.config.num_steps == steps
        result = seg([ObjectTrack(1, masks)], depth)[0]
        assert not (masks & ~result.amodal).any()

    # ... and not under the full schedule, which it was not made for
    with pytest.raises(InputError, match="distilled student.*preset realtime"):
        AmodalSegmenter.from_pretrained(out / "final", InferenceConfig(num_frames=FRAMES))


def test_realtime_refuses_a_model_that_is_not_a_student(published_folder):
    from amodal_ros.pipeline.factory import build

    with pytest.raises(InputError, match="not a distilled student.*amodal-ros distill"):
        AmodalSegmenter.from_pretrained(published_folder, InferenceConfig(preset="realtime"))
    # the untrained names stand for a student of their architecture (benchmarks), both stages
    untrained = build(StreamConfig(checkpoint="tiny", completion_checkpoint="tiny"), REALTIME)
    assert untrained.segmenter.components.is_student
    assert untrained.completer.components.is_student
    # a completion model that is not a student is refused, naming the stage-2 distillation
    stream = StreamConfig(checkpoint="tiny", completion_checkpoint=str(published_folder))
    with pytest.raises(InputError, match="not a distilled student.*--distill-stage 2"):
        build(stream, REALTIME)
    with pytest.raises(ValueError, match="1 or 2 steps without guidance"):
        InferenceConfig(student=True, num_steps=4, min_guidance=1.0, max_guidance=1.0)


def test_distill_from_a_bag_learns_from_the_teachers_replay(tmp_path):
    """The deployment-domain path: unlabeled recordings, replayed through the teacher."""
    from amodal_ros.bags.demo_bag import write_demo_bag

    pytest.importorskip("rosbags")
    bags = tmp_path / "recordings"
    write_demo_bag(bags / "kitchen", frames=12, fps=8.0, height=64, width=128)
    out = tmp_path / "student"
    argv = ["distill", "--teacher", "tiny", "--data", str(bags), "--out", str(out)]
    argv += ["--steps", "2", "--distill-windows", "50", "--no-progress", "--num-frames", "4"]
    assert main(argv) == 0
    store = TargetStore(out / "targets")
    assert store.windows > 0 and store.meta["sources_done"] == [str((bags / "kitchen").resolve())]
    data = store.load()
    assert not bool(data["has_truth"].any())  # recordings have no ground truth
    assert (out / "targets" / "replays" / "kitchen" / "metadata.yaml").is_file()
    assert (out / "final" / "model_index.json").is_file()

    # ground-truth targets need ground truth: a mix over the teacher's windows needs it in
    # each, and truth alone trains on fresh synthetic windows only
    with pytest.raises(InputError, match="needs ground truth"):
        train(_config(out, data=str(bags), distill_target="mix", steps=3))
    with pytest.raises(ValueError, match="fresh synthetic windows"):
        _config(out, data=str(bags), distill_target="truth")


def _truth_error(student_dir, config: TrainConfig) -> float:
    """The student's loss (1 and 2 steps, ground truth) on fixed windows no training step
    draws: the same items for every student of `config`."""
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.distill import student_loss
    from amodal_ros.train.loop import _Batches, _data_config

    student = load_components(student_dir)
    batches = _Batches(student, _data_config(config, student), torch.device("cpu"))
    with torch.no_grad():
        losses = [
            student_loss(student.unet, student.scheduler_config, *batches.truth(step, range(1)))
            for step in (10_000, 10_001)
        ]
    return float(torch.stack(losses).mean())


@pytest.mark.parametrize("stage", [1, 2])
def test_a_student_of_either_stage_learns_the_ground_truth_without_the_teacher(tmp_path, stage):
    """Ground-truth students draw fresh windows (stage 1's, or stage 2's completion pairs)
    every step and never sample the teacher; a stage-2 student completes under realtime."""
    from amodal_ros.pipeline.factory import build

    out = tmp_path / f"student{stage}"
    config = _config(out, distill_target="truth", distill_stage=stage, steps=1)
    train(config)
    assert not (out / "targets").exists()  # no teacher sampling
    before = _truth_error(out / "final", config)
    train(config.replace(steps=30))  # continues from step 1
    after = _truth_error(out / "final", config)
    assert after < 0.7 * before, (before, after)
    record = json.loads((out / "final" / "model_index.json").read_text())["amodal_ros"]
    assert record["student"]["stage"] == stage and record["student"]["targets"] == "truth"
    assert record["student"]["teacher_sampling"] is None
    if stage == 1:
        return
    # stage 2's student runs beside a stage-1 student under preset realtime
    stream = StreamConfig(checkpoint="tiny", completion_checkpoint=str(out / "final"))
    pipelines = build(stream, REALTIME)
    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    rgb = np.full((FRAMES, 32, 64, 3), 90, np.uint8)
    amodal = pipelines.segmenter([ObjectTrack(1, masks)], np.ones((FRAMES, 32, 64), np.float32))
    done = pipelines.completer(rgb, amodal)[0]
    assert done.rgb.shape == (FRAMES, 32, 64, 3) and pipelines.completer.config.num_steps == 1
