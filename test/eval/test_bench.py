"""`amodal-ros bench`: the scenarios run side by side, and the reference pattern really is the
per-frame, uncached one (counted model calls; no timing is asserted)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from amodal_ros.cli.main import main
from amodal_ros.core import InferenceConfig
from amodal_ros.core.config import StreamConfig
from amodal_ros.eval.speed import BenchArgs, run_bench, table

FRAMES, STRIDE = 8, 4
PARTIALS: list[dict] = []  # what the fixture's run handed on after each round


@pytest.fixture(scope="module")
def result():
    config = InferenceConfig(
        height=32,
        width=64,
        num_frames=FRAMES,
        num_steps=2,
        decode_chunk_size=4,
        max_batch_objects=4,
    )
    stream = StreamConfig(checkpoint="tiny", completion_checkpoint="tiny", stride=STRIDE)
    args = BenchArgs(stream=stream, inference=config, windows=2, progress=False)
    PARTIALS.clear()  # this run's rounds only: a module fixture may be set up twice in a worker
    return run_bench(args, log=lambda line: None, on_round=PARTIALS.append)


def test_a_run_cut_short_keeps_the_windows_it_timed(result):
    """A GPU session's step that runs out of time lost everything: the JSON was written at
    the end only. Every timed round hands on the result so far, the last one too (the floor
    comes after it: the GPU check's one timed window was saved by no round)."""
    ends = [p["partial"] for p in PARTIALS if "scenarios)" not in p["partial"]]
    assert ends == ["1 of 2 windows", "2 of 2 windows"]  # each round's end
    first = [p for p in PARTIALS if p["partial"].startswith("1 of 2 windows (")]
    assert first and len(first[0]["scenarios"]) == 1  # saved after the first scenario alone
    assert all(p["floor"] is None for p in PARTIALS)
    assert set(PARTIALS[-1]["scenarios"]) == set(result["scenarios"])
    assert "partial" not in result
    assert all(s["failed_windows"] == 0 for s in result["scenarios"].values())


def test_a_scenario_whose_windows_fail_says_so_instead_of_timing_the_fallback(monkeypatch):
    """A failed window is passed through as the visible masks, fast: a scenario that broke
    on every window (fp8 on an untried GPU) read as a large speed-up."""
    from amodal_ros.pipeline.processor import WindowProcessor

    def broken(self, window):
        raise RuntimeError("no kernel for this GPU")

    monkeypatch.setattr(WindowProcessor, "_run", broken)
    config = InferenceConfig(height=32, width=64, num_frames=FRAMES, num_steps=1)
    stream = StreamConfig(checkpoint="tiny", stride=STRIDE)
    args = BenchArgs(stream=stream, inference=config, windows=1, progress=False)
    args = replace(args, skip=["reference", "floor", *args.skip])
    scenarios = run_bench(args, log=lambda line: None)["scenarios"]
    # both windows, the untimed first one too
    assert scenarios and all(s["failed_windows"] == 2 for s in scenarios.values())
    assert all(s["note"].startswith("FAILED 2 window(s)") for s in scenarios.values())


def test_a_compiled_or_fp8_unet_has_no_share_of_the_eager_floor():
    """The floor is the eager UNet: a compiled one's share read 103 %."""
    from types import SimpleNamespace

    from amodal_ros.eval.speed import _floor_share

    floor = {"step_s": {"guided": 0.1, "unguided": 0.05}}
    summary = {"steps_per_window": 2, "window_p50_s": 1.0}
    for config, share in (
        (InferenceConfig(unet_backend="compile"), None),
        (InferenceConfig(quantize="fp8"), None),
        (InferenceConfig(), 0.2),
    ):
        scenario = SimpleNamespace(config=config.for_model({}))
        assert _floor_share(scenario, floor, summary) == pytest.approx(share)


def test_every_scenario_is_measured_against_the_reference(result):
    scenarios = result["scenarios"]
    presets = {"preset balanced", "preset fast", "preset realtime"}
    assert {"reference", "default", *presets} <= set(scenarios)
    # realtime times the (untrained) student of the same architecture: one UNet call per window
    assert scenarios["preset realtime"]["steps_per_window"] == 1
    assert scenarios["default"]["steps_per_window"] == 2
    # the floor: the bare UNet step timed in the same run, with its FLOPs and the matmul peak
    floor = result["floor"]
    assert floor["step_tflop"]["guided"] == pytest.approx(2 * floor["step_tflop"]["unguided"])
    assert floor["matmul_peak_tflops"] > 0 and floor["share_of_peak"]["guided"] > 0
    # each scenario's share is its steps x the floor step of its own kind (guided or not) over
    # its window; an exact relation of the reported figures, not a timing bound (which a busy
    # CPU breaks)
    guided, unguided = floor["step_s"]["guided"], floor["step_s"]["unguided"]
    for name, step in (("default", guided), ("preset fast", unguided)):
        s = scenarios[name]
        assert s["floor_share"] == pytest.approx(s["steps_per_window"] * step / s["window_p50_s"])
    for name, s in scenarios.items():
        # two UNets, or an fp8 one (the floor is the eager UNet): no share of the floor
        if name in ("preset realtime + completions", "UNet fp8"):
            assert s["floor_share"] is None
        else:
            assert s["floor_share"] > 0
    assert "floor: bare UNet step" in table(result)
    timed = result["setup"]["timed_windows"]  # a p95 of a few windows is said to be so
    assert f"{timed} timed window" in table(result) and "p95 is about the slowest" in table(result)
    assert scenarios["reference"]["speedup_vs_reference"] == pytest.approx(1.0)
    for s in scenarios.values():
        assert s["window_p50_s"] > 0 and s["window_p95_s"] >= s["window_p50_s"]
        assert s["speedup_vs_reference"] > 0
    assert "CUDA device" in result["skipped"]["UNet tensorrt"]
    # compile was not asked for: left out with how to ask, not compiled for minutes
    assert "pass --compile" in result["skipped"]["UNet compile"]
    assert "UNet compile" not in scenarios
    assert result["device"].startswith("CPU")
    assert "| reference |" in table(result) and "UNet tensorrt: not run" in table(result)


def test_completions_are_a_scenario_of_their_own_and_only_there(result):
    """With a completion checkpoint the realtime window is also timed with stage 2's student:
    both UNets' evaluations, stage 2's stage times in the breakdown; every other scenario
    stays stage 1 only, comparable with the reference."""
    scenarios = result["scenarios"]
    both, masks = scenarios["preset realtime + completions"], scenarios["preset realtime"]
    assert both["steps_per_window"] == 2 and masks["steps_per_window"] == 1
    # stage 2 encodes the visible colours and the amodal masks, and decodes its own frames
    assert both["calls_per_window"]["encode"] > masks["calls_per_window"]["encode"]
    assert both["calls_per_window"]["decode"] > masks["calls_per_window"]["decode"]
    assert both["floor_share"] is None and "| preset realtime + completions |" in table(result)
    assert scenarios["default"]["steps_per_window"] == 2  # stage 1's 2 steps, no stage 2


def test_a_wider_student_is_measured_against_its_own_floor():
    """The embedded student is a UNet twice as wide as stage 1's: realtime's floor share is its
    own bare step's, not stage 1's (which made its window look mostly overhead)."""
    others = ["reference", "default", "default, 4 objects per call", "preset balanced"]
    others += ["preset fast", "UNet onnxruntime", "UNet fp8"]
    args = BenchArgs(stream=StreamConfig(checkpoint="embedded"), windows=1, progress=False)
    result = run_bench(replace(args, skip=others), log=lambda line: None)
    floor, realtime = result["floor"], result["scenarios"]["preset realtime"]
    assert floor["student"]["step_tflop"]["unguided"] > 2 * floor["step_tflop"]["unguided"]
    own_step = floor["student"]["step_s"]["unguided"]
    # its model runs each window twice (the mirror ensemble); the one-view scenario shows the cost
    one_view = result["scenarios"]["preset realtime, one view"]
    assert realtime["floor_share"] == pytest.approx(2 * own_step / realtime["window_p50_s"])
    assert one_view["floor_share"] == pytest.approx(own_step / one_view["window_p50_s"])
    assert realtime["calls_per_window"]["clip"] == 2 * one_view["calls_per_window"]["clip"]
    assert "the student's own UNet: unguided" in table(result)


def test_the_configured_backend_is_timed_once_and_eager_beside_it():
    """With unet_backend onnxruntime the default scenario runs onnxruntime: the backend rows
    time eager instead (they skipped auto's choice, eager, and timed onnxruntime twice)."""
    from amodal_ros.accel.backends import unavailable_reason

    if unavailable_reason("onnxruntime", __import__("torch").device("cpu")):
        pytest.skip("onnxruntime is not installed")
    config = InferenceConfig(height=32, width=64, num_frames=FRAMES, num_steps=1)
    args = BenchArgs(
        stream=StreamConfig(checkpoint="tiny", stride=STRIDE),
        inference=replace(config, unet_backend="onnxruntime"),
        windows=1,
        progress=False,
    )
    others = ["default, 4 objects per call", "preset balanced", "preset fast", "UNet fp8"]
    others += ["preset realtime", "preset realtime, one view", "UNet compile"]
    ran = run_bench(replace(args, skip=others), log=lambda line: None)
    assert "UNet eager" in ran["scenarios"] and "UNet onnxruntime" not in ran["scenarios"]


def test_reference_loops_per_frame_and_default_encodes_only_new_frames(result):
    objects = result["setup"]["objects"]
    ref = result["scenarios"]["reference"]["calls_per_window"]
    default = result["scenarios"]["default"]["calls_per_window"]
    # reference: one CLIP call per frame and object; one VAE call per frame for mask and depth
    assert ref["clip"] == objects * FRAMES
    assert ref["encode"] == objects * FRAMES * 2
    assert ref["decode"] == objects  # the whole window, per object
    # default: one batched call per object (new frames only), depth once for all objects
    assert default["clip"] == objects and default["encode"] == objects + 1
    assert default["decode"] == 1  # all objects in one call, only the published chunk


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--checkpoint",
            "tiny",
            "--steps",
            "1",
            "--num-frames",
            "6",
            "--windows",
            "1",
            "--height",
            "32",
            "--width",
            "64",
            "--skip",
            "preset balanced",
            "preset fast",
            "preset realtime",
            "UNet onnxruntime",
            "UNet fp8",
            "default, 4 objects per call",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "default vs reference, per window (p50)" in printed
    saved = json.loads(out.read_text())
    assert set(saved["scenarios"]) == {"reference", "default"}


def test_bench_refuses_a_folder_as_out_before_timing_and_keeps_it(tmp_path, capsys):
    """A file written for --out replaced the folder, and deleted everything in it."""
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["bench", "--checkpoint", "tiny", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"--out {tmp_path} is a folder; bench writes one JSON file" in captured.err
    assert "reference" not in captured.out  # nothing was timed
    assert (tmp_path / "notes.txt").read_text() == "mine"
    # nor a file: without --overwrite, and with it any but an earlier result
    notes = tmp_path / "notes.txt"
    assert main(["bench", "--checkpoint", "tiny", "--out", str(notes)]) == 2
    assert "notes.txt exists; pass --overwrite" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", "tiny", "--out", str(notes), "--overwrite"]) == 2
    assert "notes.txt is not one (no 'scenarios')" in capsys.readouterr().err
    assert notes.read_text() == "mine"


def test_an_unknown_scenario_to_skip_is_refused_with_the_names():
    """A typo'd --skip name was ignored: the scenario meant to be left out was timed."""
    from amodal_ros.core.errors import InputError

    args = BenchArgs(stream=StreamConfig(checkpoint="tiny"), windows=1, progress=False)
    said = []
    with pytest.raises(InputError, match="--skip 'preset realtme': no such scenario") as err:
        run_bench(replace(args, skip=["preset realtme"]), log=said.append)
    assert "'preset realtime'" in str(err.value) and "'floor'" in str(err.value)
    assert not [line for line in said if line.startswith("preparing")]  # refused before builds


def test_the_reference_decodes_with_an_fp16_copy_leaving_the_shared_vae_as_it_was():
    """diffusers decodes a force_upcast VAE in fp16: casting the shared one and back left every
    other scenario's VAE with fp16-rounded weights."""
    from types import SimpleNamespace

    import torch

    from amodal_ros.eval.scenarios import ReferenceScenario
    from amodal_ros.models.architectures import build_components

    components = build_components("tiny", 0, 12)
    components.vae.register_to_config(force_upcast=True)
    before = {k: v.clone() for k, v in components.vae.state_dict().items()}
    scenario = SimpleNamespace(c=components, _half_vae=None)
    assert ReferenceScenario._decoder(scenario, torch.float32) is components.vae
    half = ReferenceScenario._decoder(scenario, torch.float16)
    assert half.dtype == torch.float16 and half is not components.vae
    assert ReferenceScenario._decoder(scenario, torch.float16) is half  # made once
    after = components.vae.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_measurement_summarises_its_timed_windows_as_the_table_reports_them():
    """bench's per-scenario figures from its timed windows: the median and the 95th
    percentile window, the cost per published frame, the depth cost per estimated frame, the
    denoising cost per Euler step, the untimed first window apart, and no peak memory on a CPU
    (NaN: scenarios sharing one process cannot be told apart) rather than a number."""
    from amodal_ros.eval.scenarios import Measurement

    m = Measurement(
        "default",
        windows=[1.0, 2.0, 3.0, 4.0, 10.0],
        stages={"depth": 0.8, "denoise": 0.6},
        calls={"clip": 2.0},
        steps_per_window=1.0,
        published_frames=4,
        depth_frames=4,
        first_window_s=7.0,
    )
    s = m.summary()
    assert s["window_p50_s"] == 3.0 and s["window_p95_s"] == pytest.approx(8.8)
    assert s["per_published_frame_s"] == pytest.approx(0.75)
    assert s["depth_per_frame_s"] == pytest.approx(0.2)
    assert s["denoise_per_step_s"] == pytest.approx(0.6)
    assert s["first_window_s"] == 7.0 and s["steps_per_window"] == 1.0
    assert s["stages_s"] == {
        "depth": 0.8,
        "clip": 0.0,
        "encode": 0.0,
        "denoise": 0.6,
        "decode": 0.0,
    }
    assert s["calls_per_window"]["clip"] == 2.0 and s["calls_per_window"]["decode"] == 0.0
    assert s["peak_memory_mb"] is None and s["failed_windows"] == 0 and s["note"] == ""
    m.peak_memory_mb = 512.0  # a GPU's
    assert m.summary()["peak_memory_mb"] == 512.0


def test_the_stream_runs_windows_of_the_stride_over_the_targets_visible_in_them():
    """Every scenario runs the stream's windows: the first one's frames all new, each later one
    the stride's; only the targets visible in a window (as the node runs them; a hidden one's
    window would be time no node spends); a scene too short for the timed windows is refused
    rather than timed on short windows."""
    from amodal_ros.data.scenes import make_scene
    from amodal_ros.eval.scenarios import Stream

    scene = make_scene(1_000_013, num_frames=8, height=32, width=64)  # target 1 leaves
    with pytest.raises(ValueError, match="needs 9 frames, it has 8"):
        Stream(scene, 3, 2, 3)
    stream = Stream(scene, 3, 2, 2)
    assert stream.starts == [0, 2, 4]
    for first in stream.starts:
        window = stream.window(first)
        assert window.frames == tuple(stream.frames[first : first + 3])
        assert window.new_frames == (3 if first == 0 else 2)
        visible = [i for i in scene.target_ids if scene.modal(i)[first : first + 3].any()]
        assert list(window.object_ids) == visible
        assert [track.object_id for track in stream.tracks(first)] == visible
    assert stream.window(4).object_ids == (2, 3) and scene.target_ids == [1, 2, 3]
