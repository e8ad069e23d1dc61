"""`amodal-ros distill`: a few-step student from a teacher's samples or the ground truth, run
with preset realtime."""

from __future__ import annotations

import json
import shutil

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


def test_a_collection_stopped_half_way_keeps_no_window_twice(tmp_path):
    """Shards count once meta.json lists them: a stop between a source's shard and the meta
    update leaves a shard that is not loaded, and the source is redone in its place."""
    import shutil

    def items(value: float, n: int) -> list[dict]:
        return [{"teacher": torch.full((2, 3), value), "truth": torch.zeros(2, 3)}] * n

    source = {"data": "bags", "num_frames": 2, "size": [3, 1], "render_scale": 1}
    store = TargetStore(tmp_path / "targets")
    store.start("tiny", "mode", [1.0, 2.0, 3.0], source)
    store.add(items(1.0, 3), source="bag_a")
    shutil.copy(store.shards()[0], store.folder / "shard-00001.safetensors")  # bag_b's, stopped
    store = TargetStore(store.folder)
    with pytest.raises(InputError, match=r"num_frames 2 -> 3"):  # another kind of window
        store.start("tiny", "mode", [1.0, 2.0, 3.0], {**source, "num_frames": 3})
    store.start("tiny", "mode", [1.0, 2.0, 3.0], source)
    assert store.windows == 3 and store.meta["sources_done"] == ["bag_a"]
    assert len(store.load()["teacher"]) == 3
    store.add(items(2.0, 2), source="bag_b")  # redone: its shard replaces the stopped one
    data = TargetStore(store.folder).load()
    assert data["teacher"][:, 0, 0].tolist() == [1.0] * 3 + [2.0] * 2
    assert TargetStore(store.folder).meta["sources_done"] == ["bag_a", "bag_b"]


def test_a_run_asking_fewer_windows_than_stored_trains_on_that_many(tmp_path):
    """A store collected for a larger run serves a smaller one: distill_windows is what the
    student trains on (and what its record says), not every stored window."""
    from amodal_ros.train.distill import Distillation

    store = TargetStore(tmp_path / "targets")
    store.start("tiny", "mode", [1.0, 2.0, 3.0], {"data": "synth"})
    store.add(
        [{"teacher": torch.full((2, 3), float(i)), "truth": torch.zeros(2, 3)} for i in range(5)]
    )
    used = Distillation(TargetStore(store.folder), _config(tmp_path, distill_windows=3), "cpu")
    assert used.data["teacher"][:, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert set(used.data) == {"teacher", "truth", "has_truth"}
    every = Distillation(TargetStore(store.folder), _config(tmp_path, distill_windows=9), "cpu")
    assert len(every.data["has_truth"]) == 5


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


def test_distill_from_a_bag_learns_from_the_teachers_replay(tmp_path, capsys):
    """The deployment-domain path: unlabeled recordings on the robot's own topics, replayed
    through the teacher."""
    from amodal_ros.bags import topics
    from amodal_ros.bags.demo_bag import write_demo_bag

    pytest.importorskip("rosbags")
    bags = tmp_path / "recordings"
    write_demo_bag(tmp_path / "demo", frames=12, fps=8.0, height=64, width=128)
    ours = {
        topics.RGB_TOPIC: "/zed/rgb/image_rect_color",
        topics.DEPTH_TOPIC: "/zed/depth/depth_registered",
        topics.MASK_TOPIC: "/segmenter/labels",
    }
    _copy_renamed(tmp_path / "demo", bags / "kitchen", ours)
    out = tmp_path / "student"
    argv = ["distill", "--teacher", "tiny", "--data", str(bags), "--out", str(out)]
    argv += ["--steps", "2", "--distill-windows", "50", "--no-progress", "--num-frames", "4"]
    # on the default topics: refused, naming the bag's topics and the option to choose them
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert f"rgb topic {topics.RGB_TOPIC} is not in" in err
    assert "/zed/rgb/image_rect_color (sensor_msgs/msg/Image" in err and "--rgb-topic" in err
    assert not (out / "final").exists()
    argv += ["--rgb-topic", ours[topics.RGB_TOPIC], "--mask-topic", ours[topics.MASK_TOPIC]]
    assert main(argv) != 0  # the teacher reads the camera's depth, on its own topic
    assert f"depth topic {topics.DEPTH_TOPIC} is not in" in capsys.readouterr().err
    assert main([*argv, "--depth-topic", ours[topics.DEPTH_TOPIC]]) == 0
    store = TargetStore(out / "targets")
    assert store.windows > 0 and store.meta["sources_done"] == [str((bags / "kitchen").resolve())]
    data = store.load()
    assert not bool(data["has_truth"].any())  # recordings have no ground truth
    assert (out / "targets" / "replays" / "kitchen" / "metadata.yaml").is_file()
    assert (out / "final" / "model_index.json").is_file()
    # topics name bags: with synthetic data they would be ignored, so they are refused
    with pytest.raises(ValueError, match="data synth has no bags"):
        _config(out, mask_topic="/segmenter/labels")

    # this run's settings are its own: another objective is refused in its folder, and
    # starts in another one (with the teacher's samples copied)
    with pytest.raises(InputError, match="distill_target 'teacher' -> 'mix'"):
        train(_config(out, data=str(bags), distill_target="mix", steps=3))
    shutil.copytree(out / "targets", tmp_path / "mix" / "targets")
    # ground-truth targets need ground truth: a mix over the teacher's windows needs it in
    # each, and truth alone trains on fresh synthetic windows only
    with pytest.raises(InputError, match="needs ground truth"):
        train(_config(tmp_path / "mix", data=str(bags), distill_target="mix", steps=3))
    with pytest.raises(ValueError, match="fresh synthetic windows"):
        _config(out, data=str(bags), distill_target="truth")


def _copy_renamed(source, target, names: dict[str, str]) -> None:
    """A copy of a rosbag2 with its topics renamed (`names`: old -> new), as another robot
    would have recorded it."""
    from rosbags.highlevel import AnyReader

    from amodal_ros.bags.output import staged_bag
    from amodal_ros.bags.typestore import amodal_typestore

    store = amodal_typestore()
    with AnyReader([source]) as reader, staged_bag(target) as writer:
        conns = {
            c.id: writer.add_connection(names.get(c.topic, c.topic), c.msgtype, typestore=store)
            for c in reader.connections
        }
        for conn, stamp, raw in reader.messages():
            writer.write(conns[conn.id], stamp, raw)


def _truth_error(student_dir, config: TrainConfig) -> float:
    """The student's loss (1 and 2 steps, ground truth) on fixed windows no training step
    draws: the same items for every student of `config`."""
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.batches import Batches, data_config
    from amodal_ros.train.distill import student_loss

    student = load_components(student_dir)
    batches = Batches(student, data_config(config, student), torch.device("cpu"))
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


def test_the_teacher_records_one_pass_per_window(components12):
    """Its recorded samples pair with the windows' truths one to one: a mirrored or reversed
    pass of an ensemble would pair a window's truth with another view's sample."""
    from amodal_ros.train.distill import TeacherRecorder

    for ensemble in ("mirror_ensemble", "reverse_ensemble"):
        config = InferenceConfig(num_frames=FRAMES, height=32, width=64, **{ensemble: "on"})
        with pytest.raises(ValueError, match="ensembles off"):
            TeacherRecorder(components12, config)
    TeacherRecorder(components12, InferenceConfig(num_frames=FRAMES, height=32, width=64))


def test_each_recorded_window_has_noise_of_its_own(components12):
    """The pipeline's noise follows the object id: recorded as is, a store of synthetic
    scenes (ids 1-4) held four noises. A window's noise is seeded by its masks instead, so
    the same window draws the same noise and another window of the same id another."""
    from amodal_ros.train.distill import TeacherRecorder

    config = InferenceConfig(num_frames=FRAMES, height=32, width=64, num_steps=1)
    teacher = TeacherRecorder(components12, config)
    depth = np.ones((FRAMES, 32, 64), np.float32)
    for x in (10, 20, 10):  # object 1 twice in one place, once in another
        masks = np.zeros((FRAMES, 32, 64), bool)
        masks[:, 8:20, x : x + 20] = True
        teacher([ObjectTrack(1, masks)], depth)
    first, moved, again = (item["noise"] for item in teacher.items)
    assert torch.equal(first, again) and not torch.equal(first, moved)


@pytest.mark.parametrize("teacher, fps_id", [("tiny", 8.0), ("published", 7.0)])
def test_a_ground_truth_student_learns_with_the_fps_id_it_will_run_with(
    published_folder, tmp_path, teacher, fps_id
):
    """A student inherits its teacher's conditioning: a published (reference-mode) teacher's
    students run with fps id 7 (the reference passes fps - 1), so they learn with it."""
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.batches import Batches, data_config
    from amodal_ros.train.loop import _starting_components

    init = "tiny"
    if teacher == "published":  # conditioned as the published weights are
        init = tmp_path / "reference"
        shutil.copytree(published_folder, init)
        index = json.loads((init / "model_index.json").read_text())
        index["amodal_ros"]["defaults"]["conditioning_mode"] = "reference"
        (init / "model_index.json").write_text(json.dumps(index))
    config = _config(tmp_path / "student", distill_target="truth", init=str(init))
    components = _starting_components(config)
    batches = Batches(components, data_config(config, components), "cpu")
    assert batches.truth(0, range(2))[3][:, 0].tolist() == [fps_id, fps_id]
    batches.close()
    if teacher == "published":
        train(config.replace(steps=1))
        student = load_components(tmp_path / "student" / "final")
        assert InferenceConfig(**student.defaults).fps_id == fps_id


def test_a_pixel_space_student_fine_tunes_a_student_and_its_decoder_end_to_end(tmp_path):
    """distill_space pixels: a student's decoded samples meet the true frames, and the decoder
    learns with it; a run resumes with the decoder's state; the result runs under realtime."""
    from amodal_ros.models.layout import load_components
    from amodal_ros.pipeline.factory import build
    from amodal_ros.train.batches import Batches, data_config
    from amodal_ros.train.distill import student_loss

    latent = _config(tmp_path / "latent", distill_target="truth", steps=2)
    train(latent)
    # a student samples in 1-2 steps: it is no teacher, only a start for the ground truth
    with pytest.raises(ValueError, match="student is fine-tuned.*only with distill_target truth"):
        train(_config(tmp_path / "again", init=str(tmp_path / "latent/final")))
    hidden = tmp_path / "hidden"
    train(
        _config(
            hidden,
            distill_target="truth",
            hidden_weight=4.0,
            newest_weight=2.0,
            ema_decay=0.9,
            init=str(tmp_path / "latent/final"),
            steps=1,
        )
    )
    record = json.loads((hidden / "final" / "model_index.json").read_text())["amodal_ros"]
    assert record["student"]["space"] == "latents" and record["student"]["hidden_weight"] == 4
    assert record["student"]["newest_weight"] == 2 and record["student"]["ema_decay"] == 0.9
    assert "ema_decay" not in record["student"]["before"]  # that run kept no average
    assert record["student"]["fine_tuned_from"] == str(tmp_path / "latent/final")
    config = _config(
        tmp_path / "pixels",
        distill_target="truth",
        distill_space="pixels",
        init=str(tmp_path / "latent" / "final"),
        steps=1,
        save_every=1,
    )

    def pixel_error(folder) -> float:  # decoded 1-2-step samples vs true frames, fixed windows
        student = load_components(folder)
        batches = Batches(student, data_config(config, student), torch.device("cpu"))
        with torch.no_grad():
            return float(
                torch.stack(
                    [
                        student_loss(
                            student.unet,
                            student.scheduler_config,
                            *batches.truth(step, range(1)),
                            decoder=batches.decoder,
                        )
                        for step in (10_000, 10_001)
                    ]
                ).mean()
            )

    train(config)
    first = load_components(tmp_path / "pixels" / "final")
    start = load_components(tmp_path / "latent" / "final")
    moved = [
        float((a - b).abs().max())
        for a, b in zip(first.vae.decoder.parameters(), start.vae.decoder.parameters())
    ]
    assert max(moved) > 0  # the decoder trains
    assert all(  # the encoder does not: the conditions stay what the UNet learned
        torch.equal(a, b)
        for a, b in zip(first.vae.encoder.parameters(), start.vae.encoder.parameters())
    )
    state = tmp_path / "pixels" / "state"
    assert not list(state.glob("custom_checkpoint_*"))  # the decoder is never pickled
    # the decoder resumes with the run: a run continued from a state whose decoder says 7
    # everywhere in one bias ends near 7
    from safetensors.torch import load_file, save_file

    shutil.copytree(tmp_path / "pixels", tmp_path / "resumed")
    saved = load_file(state / "decoder.safetensors")
    bias = next(k for k in saved if k.endswith("conv_out.bias"))
    saved[bias] = torch.full_like(saved[bias], 7.0)
    save_file(saved, tmp_path / "resumed" / "state" / "decoder.safetensors")
    train(config.replace(out=str(tmp_path / "resumed"), steps=2))
    resumed = load_components(tmp_path / "resumed" / "final").vae.decoder.state_dict()[bias]
    assert torch.allclose(resumed, torch.full_like(resumed, 7.0), atol=0.05)
    before = pixel_error(tmp_path / "pixels" / "final")
    train(config.replace(steps=30, save_every=100))
    after = pixel_error(tmp_path / "pixels" / "final")
    assert after < 0.7 * before, (before, after)
    record = json.loads((tmp_path / "pixels" / "final" / "model_index.json").read_text())
    student = record["amodal_ros"]["student"]
    assert student["space"] == "pixels" and student["teacher"] == "tiny"
    assert student["fine_tuned_from"] == str(tmp_path / "latent" / "final")
    assert student["before"]["space"] == "latents"
    pipelines = build(StreamConfig(checkpoint=str(tmp_path / "pixels" / "final")), REALTIME)
    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    out = pipelines.segmenter([ObjectTrack(1, masks)], np.ones((FRAMES, 32, 64), np.float32))
    assert out[0].amodal.shape == (FRAMES, 32, 64)


def test_a_new_unet_of_another_width_learns_the_ground_truth_with_no_teacher(tmp_path):
    """fresh_unet with target truth: a new UNet (here twice the embedded width) trains in the
    init's latent space; its record names no teacher, and it runs under realtime."""
    out = tmp_path / "new"
    train(_config(out, distill_target="truth", fresh_unet=True, unet_width=64, steps=1))
    index = json.loads((out / "final" / "model_index.json").read_text())
    record = index["amodal_ros"]["student"]
    assert record["teacher"] is None and record["new_unet"] == {"width": 64, "vae": "tiny"}
    unet = json.loads((out / "final" / "unet" / "config.json").read_text())
    assert unet["block_out_channels"] == [64, 128]
    segmenter = AmodalSegmenter.from_pretrained(str(out / "final"), REALTIME)
    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    amodal = segmenter([ObjectTrack(1, masks)], np.ones((FRAMES, 32, 64), np.float32))
    assert amodal[0].amodal.shape == (FRAMES, 32, 64)
    with pytest.raises(ValueError, match="new UNet trained, only with distill_target truth"):
        train(_config(tmp_path / "taught", fresh_unet=True))
    with pytest.raises(ValueError, match="multiple of 32"):
        _config(tmp_path / "odd", unet_width=48)
    with pytest.raises(ValueError, match="add fresh_unet"):  # it would be ignored
        _config(tmp_path / "kept", distill_target="truth", unet_width=64)


def test_space_time_attention_joins_a_trained_student_and_trains_with_it(tmp_path):
    """space_time_heads on a student's fine-tune: the saved UNet carries the block (its
    output projection moved off zero), loads and runs under realtime; a run cannot change
    the number of heads of a UNet that has one."""
    first = tmp_path / "first"
    train(_config(first, distill_target="truth", steps=1))
    grown = tmp_path / "grown"
    train(_config(grown, init=str(first / "final"), distill_target="truth", space_time_heads=2))
    unet = json.loads((grown / "final" / "unet" / "config.json").read_text())
    assert unet["space_time_heads"] == 2
    segmenter = AmodalSegmenter.from_pretrained(str(grown / "final"), REALTIME)
    assert segmenter.components.unet.space_time.attention.to_out[0].weight.abs().sum() > 0
    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    amodal = segmenter([ObjectTrack(1, masks)], np.ones((FRAMES, 32, 64), np.float32))
    assert amodal[0].amodal.shape == (FRAMES, 32, 64)
    with pytest.raises(ValueError, match="has space-time attention with 2 heads, not 4"):
        config = _config(tmp_path / "x", distill_target="truth", space_time_heads=4)
        train(config.replace(init=str(grown / "final")))


def test_a_trained_space_time_student_is_made_causal_with_its_weights(tmp_path):
    """space_time_causal on a student that has the attention: the same weights (one step at
    lr 0 changes nothing), saved as causal, and a later run without the flag keeps it
    causal; the flag on a UNet without the attention, and no heads asked, is refused."""
    grown = tmp_path / "grown"
    train(_config(grown, distill_target="truth", steps=1, space_time_heads=2))
    causal = tmp_path / "causal"
    train(
        _config(
            causal,
            init=str(grown / "final"),
            distill_target="truth",
            lr=0.0,
            steps=1,
            space_time_causal=True,
        )
    )
    unet = json.loads((causal / "final" / "unet" / "config.json").read_text())
    assert unet["space_time_heads"] == 2 and unet["space_time_causal"] is True
    from safetensors.torch import load_file

    def weights(run):
        return load_file(run / "final" / "unet" / "diffusion_pytorch_model.safetensors")

    before, after = weights(grown), weights(causal)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    kept = tmp_path / "kept"
    train(_config(kept, init=str(causal / "final"), distill_target="truth", steps=1))
    assert json.loads((kept / "final" / "unet" / "config.json").read_text())["space_time_causal"]
    with pytest.raises(ValueError, match="space_time_causal needs space-time attention"):
        train(_config(tmp_path / "x", distill_target="truth", space_time_causal=True))


def test_pixel_space_and_hidden_weights_need_the_ground_truth(tmp_path):
    with pytest.raises(ValueError, match="distill_target truth"):
        _config(tmp_path, distill_space="pixels")
    for weight in ("hidden_weight", "newest_weight"):
        with pytest.raises(ValueError, match="weight the ground truth's cells"):
            _config(tmp_path, **{weight: 4.0})


def test_newest_weight_ramps_the_loss_toward_the_window_s_newest_frame():
    """newest_weight 3 over 4 frames: frame weights 1, 2, 3, 4 (the newest counts 4x the
    oldest), times the hidden weight cell by cell; 0 and 0 weight nothing."""
    from amodal_ros.train.batches import loss_weights

    hidden = torch.zeros(4, 1, 1, 2)
    hidden[..., 1] = 1.0  # the second cell of every frame hidden
    weights = loss_weights(hidden, hidden_weight=4.0, newest_weight=3.0)
    assert weights[:, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert weights[:, 0, 0, 1].tolist() == [5.0, 10.0, 15.0, 20.0]
    assert torch.equal(loss_weights(hidden, 0.0, 0.0), torch.ones_like(hidden))
    assert loss_weights(hidden[:1], 0.0, 3.0).flatten().tolist() == [4.0, 4.0]


def test_a_hidden_cell_of_weight_5_counts_five_times_a_visible_one():
    """hidden_weight 4: the same error costs 5x in a hidden cell, and the weights are
    normalised, so an unweighted loss keeps its value."""
    from amodal_ros.train.distill import weighted_mse

    target = torch.zeros(1, 1, 1, 1, 2)
    weights = torch.tensor([1.0, 5.0]).view(1, 1, 1, 1, 2)  # a visible cell, a hidden one
    miss_hidden = torch.tensor([0.0, 1.0]).view_as(target)
    miss_visible = torch.tensor([1.0, 0.0]).view_as(target)
    assert float(weighted_mse(miss_hidden, target, weights)) == pytest.approx(5 / 6)
    assert float(weighted_mse(miss_visible, target, weights)) == pytest.approx(1 / 6)
    assert float(weighted_mse(miss_hidden, target)) == pytest.approx(0.5)
    assert float(weighted_mse(miss_hidden, target, torch.ones_like(weights))) == 0.5


def test_the_soft_iou_loss_rewards_committing_to_the_hidden_shape():
    """Half the frame is the object: a faint guess (the per-pixel mean of an uncertain hidden
    part) is half wrong, the shape itself right, an empty guess all wrong."""
    from amodal_ros.train.distill import soft_iou_loss

    target = -torch.ones(1, 2, 3, 8, 8)
    target[..., :4] = 1.0
    faint = torch.where(target > 0, torch.zeros_like(target), target)  # p = 0.5 on the object
    assert float(soft_iou_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_iou_loss(faint, target)) == pytest.approx(0.5, abs=0.02)
    empty = -torch.ones_like(target)
    assert float(soft_iou_loss(empty, empty)) == pytest.approx(0.0)  # an empty frame left empty
    assert float(soft_iou_loss(empty, target)) == pytest.approx(1.0, abs=0.04)


def test_a_student_trained_from_zero_noise_answers_the_same_whatever_its_seed(tmp_path):
    """`initial_noise zeros`: the student trains and runs from the noise's mean, so its folder
    says so, inference follows it, and the seed no longer changes the answer (without the
    conditioning's noise augmentation, which it also seeds); the refusals name what is wrong."""
    out = tmp_path / "zeros"
    train(_config(out, distill_target="truth", initial_noise="zeros"))
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.batches import Batches, data_config

    config = _config(out, distill_target="truth", initial_noise="zeros")
    student = load_components(out / "final")
    batches = Batches(student, data_config(config, student), torch.device("cpu"))
    noise, cond = batches.truth(0, range(2))[:2]
    assert not noise.any() and cond.any()  # trained from zeros, on real windows
    index = json.loads((out / "final" / "model_index.json").read_text())["amodal_ros"]
    assert index["defaults"]["initial_noise"] == "zeros"
    assert index["student"]["initial_noise"] == "zeros"

    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    depth = np.ones((FRAMES, 32, 64), np.float32)

    def soft(**fields):
        config = REALTIME.replace(noise_aug_strength=0.0, **fields)
        segmenter = AmodalSegmenter.from_pretrained(out / "final", config)
        return segmenter([ObjectTrack(1, masks)], depth)[0].soft, segmenter.config

    zeros, config = soft(seed=1)
    assert config.initial_noise == "zeros"  # the model's choice ('auto')
    np.testing.assert_array_equal(zeros, soft(seed=2)[0])
    noisy = [soft(seed=s, initial_noise="gaussian")[0] for s in (1, 2)]
    assert not np.array_equal(noisy[0], noisy[1])  # with noise the seed matters
    with pytest.raises(InputError, match="one answer repeated"):
        soft(num_samples=2)
    with pytest.raises(InputError, match="diffusion model"):
        AmodalSegmenter.from_pretrained("tiny", InferenceConfig(initial_noise="zeros"))
    with pytest.raises(ValueError, match="initial_noise zeros"):
        _config(tmp_path, initial_noise="zeros")  # the teacher's samples need their noise


def test_a_student_of_its_own_working_size_trains_and_runs_there(tmp_path):
    """`working_size`: a student of the ground truth learns at a size of its own (its teacher
    at another), its folder records it and inference runs there; a size that is not
    HEIGHTxWIDTH in multiples of 8, or a student of the teacher's samples, is refused."""
    from amodal_ros.cli import distill
    from amodal_ros.cli.main import build_parser
    from amodal_ros.cli.options import from_namespace

    out = tmp_path / "small"
    config = _config(out, distill_target="truth", working_size="16x32")
    argv = ["distill", "--distill-target", "truth", "--working-size", "16x32"]
    parsed = from_namespace(distill.Args, build_parser().parse_args(argv)).training
    assert parsed.student_size == config.student_size == {"height": 16, "width": 32}
    train(config)
    from amodal_ros.models import registry
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.batches import Batches, data_config

    teacher = registry.components("tiny", stage=1)
    assert (teacher.defaults.get("height"), teacher.defaults.get("width")) != (16, 32)
    student = load_components(out / "final")
    assert (student.defaults["height"], student.defaults["width"]) == (16, 32)
    drawn = data_config(config, teacher)  # what training drew its windows with
    assert (drawn.height, drawn.width) == (16, 32)
    batches = Batches(teacher, drawn, torch.device("cpu"))
    assert batches.render.config.height == 16  # what data workers are handed, too
    noise, cond = batches.truth(0, range(1))[:2]
    assert noise.shape[-2:] == cond.shape[-2:] == (2, 4)  # 16x32 through the VAE's 8x

    masks = np.zeros((FRAMES, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    segmenter = AmodalSegmenter.from_pretrained(out / "final", REALTIME)
    assert (segmenter.config.height, segmenter.config.width) == (16, 32)
    result = segmenter([ObjectTrack(1, masks)], np.ones((FRAMES, 32, 64), np.float32))[0]
    assert result.soft.shape == masks.shape  # answered at the camera's size
    for wrong in ("64x100", "8x64", "64x", "tallxwide"):
        with pytest.raises(ValueError, match="multiples of 8 from 16"):
            _config(tmp_path, distill_target="truth", working_size=wrong)
    with pytest.raises(ValueError, match="own working size"):
        _config(tmp_path, working_size="64x128")  # the teacher's samples are at its size


def test_a_data_folder_that_is_missing_is_refused_before_the_run_folder_is_written(
    tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["distill", "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "is not a folder: pass 'synth'" in capsys.readouterr().err
    assert not out.exists()  # before: train_config.json and targets/meta.json were left
    # nor is a missing teacher (it left train_config.json naming it), said in distill's words
    assert main(["distill", "--teacher", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "name the teacher with --teacher" in capsys.readouterr().err
    assert not out.exists()


def test_distill_leaves_out_the_clip_folders_of_held_out_splits(tmp_path, caplog):
    """Train and test clips synthesised into one folder (`synth --bags`): distilling on the
    test clips' ground truth, or on their recordings, would leak them into the test scores;
    a train clip's recording would be its second copy. A user's own recording stays."""
    from amodal_ros.bags.demo_bag import write_clip_bag, write_demo_bag
    from amodal_ros.data.clip_folder import write_clip_folder
    from amodal_ros.data.scenes import make_scene
    from amodal_ros.train.distill import _sources

    for name, seed in (("train_0", 0), ("test_1000000", 10**6), ("val_2000000", 2 * 10**6)):
        clip = make_scene(seed, num_frames=2, height=16, width=16)
        write_clip_folder(clip, tmp_path / name)
        write_clip_bag(clip.rgb, clip.depth, clip.labels, tmp_path / f"{name}_bag", 8.0)
    write_demo_bag(tmp_path / "robot_run", frames=2, height=16, width=16)
    with caplog.at_level("WARNING", logger="amodal_ros.distill"):
        clips, bags = _sources(tmp_path)
    assert [p.name for p in clips] == ["train_0"]
    assert [p.name for p in bags] == ["robot_run"]
    assert "left out 1 test, 1 val clip folders of held-out splits" in caplog.text
    (tmp_path / "train_0" / "meta.json").write_text('{"seed": 5,')  # damaged: named
    with pytest.raises(InputError, match="train_0/meta.json is not readable JSON"):
        _sources(tmp_path)


def test_a_time_budget_shortens_the_run_so_its_schedule_ends_and_final_is_published(
    tmp_path, monkeypatch, capfd
):
    """`minutes` stops a run as its cosine ends: already spent at the plan (after the first
    steps), the run ends there with `final` published and the learning rate at the cosine's
    floor; killing it at a deadline (`timeout`) left it at about the peak, without `final`."""
    from amodal_ros.train import budget

    PACE_STEPS = 2  # noqa: N806 (the plan after two steps: a short test)
    monkeypatch.setattr(budget, "PACE_STEPS", PACE_STEPS)
    out = tmp_path / "run"
    config = _config(
        out, distill_target="truth", steps=1000, lr_schedule="cosine", minutes=1e-6, lr=1e-3
    )
    result = train(config.replace(progress=True))
    assert result["steps"] == PACE_STEPS and (out / "final" / "model_index.json").is_file()
    assert f"| {PACE_STEPS}/{PACE_STEPS} [" in capfd.readouterr().err  # the bar ends full
    assert json.loads((out / "train_config.json").read_text())["steps"] == PACE_STEPS
    last = (out / "loss.csv").read_text().splitlines()[-1]
    assert last.startswith(f"{PACE_STEPS},")
    saved = torch.load(out / "state" / "scheduler.bin", weights_only=True)
    assert saved["_last_lr"][0] == pytest.approx(1e-4)  # 10 % of lr: the cosine's end
    # the same call again keeps its plan: finished (a new plan would start a second cosine)
    made = (out / "final" / "model_index.json").stat().st_mtime_ns
    assert train(config)["steps"] == PACE_STEPS and not (out / "checkpoint-2").exists()
    assert (out / "final" / "model_index.json").stat().st_mtime_ns == made
    # without a budget, more steps train it further, as any finished run
    assert train(config.replace(minutes=0.0, steps=PACE_STEPS + 1))["steps"] == PACE_STEPS + 1
    assert (out / f"checkpoint-{PACE_STEPS}").is_dir()


def test_a_time_budget_plans_the_steps_that_fit_at_the_pace_of_the_first_ones():
    from amodal_ros.train.budget import MARGIN, PACE_STEPS, TimeBudget

    budget = TimeBudget(minutes=1.0, start=100, began=0.0)
    assert budget.plan(101, 1000, now=10.0) is None  # loading and the first step: untimed
    assert budget.plan(105, 1000, now=14.0) is None
    done = 100 + PACE_STEPS
    # a step a second from 10 s on: 60 s less 19 s spent leave 41 steps, less the margin
    assert budget.plan(done, 1000, now=10.0 + PACE_STEPS - 1) == done + int(MARGIN * 41)
    assert TimeBudget(1.0, 100, 0.0).plan(101, 1000, 10.0) is None
    fast = TimeBudget(60.0, 0, 0.0)
    fast.plan(1, 50, 1.0)
    assert fast.plan(PACE_STEPS, 50, 1.1) == 50  # never past the configured steps
