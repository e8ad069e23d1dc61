"""`amodal-ros bench`: the reference call pattern against amodal_ros, side by side, on the same
model and inputs in one run.

Scenarios (each over the same sliding windows of one synthetic scene, after one untimed
window; interleaved window by window, so a machine whose speed drifts slows all alike):
  reference   diffusion-vas's inference as its demo calls it: one object at a time,
              CLIP and VAE encoding in per-frame loops (a force_upcast VAE encodes in fp32 and
              decodes in the UNet's fp16, as diffusers casts it), no cache across windows
              (every window re-encodes all its frames, each object's pipeline call re-encodes
              the depth frames), depth estimated frame by frame once per window, the same
              steps and guidance (25 and 1.5 by default), the whole window decoded; on a GPU
              models are moved to it for their call and back to the CPU after (the
              reference's model offloading). Both scenarios use the configured conditioning
              mode (`--mode`), so they compute the same masks: the demo's one-token
              'reference' mode is another model function (cheaper cross-attention).
  default     amodal_ros as configured by default: objects batched in one UNet call, encoders
              batched over frames, per-frame encodings and depth cached across windows (a
              slide encodes only its new frames), only published frames decoded; same 25 steps
              with guidance, so the same model function.
  presets     default with each preset (balanced, fast, realtime: the distilled student in
              one step; for 'tiny' / 'random-full-size' an untrained student of the same
              architecture, so its cost is the real one). With --completion-checkpoint also
              'preset realtime + completions': the node's window with stage 2's student too
              (every frame of stage 1 decoded for it; no floor share: two UNets).
  backends    default with each other UNet backend that can run here (and depth backends),
              and the UNet in fp8 (`quantize: fp8`, with torchao installed).
"""

from __future__ import annotations

import copy
import platform
import resource
import time
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from pathlib import Path

import numpy as np

from amodal_ros.core.config import (
    OFFLINE_DEFAULT_CHECKPOINT,
    PRESETS,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)

BACKENDS = ("eager", "onnxruntime", "compile", "tensorrt")
DEPTH_BACKENDS = ("eager", "onnxruntime", "compile", "tensorrt")


def bench_stream() -> StreamConfig:
    """The benchmark's stream: the embedded model, stride 5, the newest frame published."""
    return StreamConfig(checkpoint=OFFLINE_DEFAULT_CHECKPOINT)


@dataclass
class BenchArgs:
    """What `amodal-ros bench` runs. `stream.checkpoint` may also be 'tiny' or
    'random-full-size' (untrained, the real cost), `stream.depth_model` an untrained size."""

    stream: StreamConfig = group(
        bench_stream,
        only=("checkpoint", "completion_checkpoint", "depth_model", "stride", "publish_frames"),
    )
    inference: InferenceConfig = group(InferenceConfig, exclude=("preset",))
    windows: int = param(3, "timed windows per scenario", 1)
    scene_seed: int = param(1000002, "synthetic scene (held-out test split)", 0)
    student_checkpoint: str = param(
        "",
        "the distilled student timed by preset realtime; '' = the checkpoint's own (embedded "
        "and the untrained names have one)",
    )
    compile: bool = param(False, "also time torch.compile (compiles for minutes)")
    skip: list[str] = field(default_factory=list, metadata={"help": "scenario names to leave out"})
    out: Path | None = param(None, "write the results as JSON here")
    overwrite: bool = param(False, "replace an earlier bench result at --out")
    progress: bool = param(True, "progress bar")


def preset_configs(config: InferenceConfig) -> dict[str, InferenceConfig]:
    """Every preset but quality (the default scenario) on top of `config`."""
    return {f"preset {name}": config.replace(preset=name) for name in PRESETS if name != "quality"}


def device_name(device: str) -> str:
    """The device in words: GPU name and CUDA version, or CPU model and torch threads."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads"


def _backend_skip_reason(backend: str, device, dtype, compile_on: bool) -> str | None:
    """Why a backend scenario is left out (it cannot run here, or `compile` was not asked
    for), or None to run it."""
    from amodal_ros.accel.backends import unavailable_reason

    if backend == "compile" and not compile_on:
        return "off by default (compiles for minutes); pass --compile"
    return unavailable_reason(backend, device, dtype)


def run_bench(args: BenchArgs, log=print, on_round=None) -> dict:
    """Run every scenario; returns {"device", "setup", "scenarios": {name: summary}}.

    `on_round(result)`: called after every scenario's timed window, the last too, with the
    result so far
    (no floor; "partial" says how far), so a run cut short keeps what it measured."""
    import torch

    from amodal_ros.accel.backends import resolve
    from amodal_ros.core.imports import is_available
    from amodal_ros.data.scenes import make_scene
    from amodal_ros.eval.scenarios import DefaultScenario, ReferenceScenario, Scenario, Stream
    from amodal_ros.pipeline.factory import build, depth_estimator

    stream_cfg = args.stream
    if args.inference.preset:
        raise ValueError("the benchmark runs every preset itself: leave out --preset")
    # stage 1 only: completions are the one scenario below that adds them
    pipes = build(
        stream_cfg.replace(depth_source="auto", completion_checkpoint=""), args.inference
    )
    cfg = pipes.config  # the model's working size and conditioning mode filled in
    components = pipes.segmenter.components
    camera = (max(cfg.height, 128), max(cfg.width, 256))
    stride, publish = stream_cfg.stride, stream_cfg.publish_frames
    scene = make_scene(
        args.scene_seed,
        num_frames=cfg.num_frames + stride * args.windows,
        height=camera[0],
        width=camera[1],
    )
    stream = Stream(scene, cfg.num_frames, stride, args.windows)
    device = device_name(cfg.device)
    objects = len(stream.objects(0))
    log(
        f"device: {device}; model {stream_cfg.checkpoint} at {cfg.height}x{cfg.width} (HxW), "
        f"{cfg.num_frames} frames, {objects} objects, stride {stride}"
    )
    scenarios: list[Scenario] = []
    skipped: dict[str, str] = {}
    student_pipes = None  # realtime's student, whose UNet may differ from stage 1's

    # every scenario this run could time, to check --skip against; the batching variant's
    # name depends on the device, and a script run on either skips it by both
    named = {"floor", "default, 1 object per call", "default, 4 objects per call"}

    builds = []  # (name, builder): built once --skip is checked (a typo cost the builds)

    def add(name, build_scenario):
        named.add(name)
        if name not in args.skip:
            builds.append((name, build_scenario))

    # the reference runs its depth model in torch, whatever auto picks for the default
    ref_depth = None
    if pipes.depth is not None:
        ref_depth = depth_estimator(stream_cfg.depth_model, cfg, "eager")
    # on a GPU the reference offloads its models between calls: a copy of its own, so the
    # other scenarios' (a compiled UNet's CUDA graphs) keep their weights where they were
    add(
        "reference",
        lambda: ReferenceScenario(
            copy.deepcopy(components) if cfg.device.startswith("cuda") else components,
            cfg,
            stream,
            ref_depth,
            publish,
        ),
    )
    # the same steps and guidance as the reference (25 and 1.5 by default)
    add("default", lambda: DefaultScenario("default", pipes, stream, publish))
    # the other side of the device's batching choice (auto: 1 object per call on a CPU)
    other = 4 if cfg.objects_per_call == 1 else 1
    name = f"default, {other} object{'s' if other > 1 else ''} per call"
    variant = cfg.replace(max_batch_objects=other)
    add(name, lambda: DefaultScenario(name, pipes.with_config(variant), stream, publish))
    # from the configuration as given: what a preset's model decides (a student's threshold and
    # mirror ensemble) is its own, not stage 1's
    for name, config in preset_configs(args.inference).items():
        if config.student:
            named.update((name, f"{name}, one view", f"{name} + completions"))  # (below)
            if name in args.skip:  # neither load its student nor time that student's floor
                continue
            student = _student_pipelines(args, pipes, config)
            if isinstance(student, str):
                skipped[name] = student
                continue
            student_pipes = student
            add(name, lambda p=student, n=name: DefaultScenario(n, p, stream, publish))
            if student.config.ensembles:  # the model's choice: what it costs
                one_view = f"{name}, one view"
                single = config.replace(mirror_ensemble="off", reverse_ensemble="off")
                add(
                    one_view,
                    lambda p=student, c=single, n=one_view: DefaultScenario(
                        n, p.with_config(c), stream, publish
                    ),
                )
            if stream_cfg.completion_checkpoint:  # what the node adds to publish completions
                with_completions = f"{name} + completions"
                add(
                    with_completions,
                    lambda p=student, c=config, n=with_completions: DefaultScenario(
                        n, _with_completer(p, stream_cfg.completion_checkpoint, c), stream, publish
                    ),
                )
            continue
        add(
            name,
            lambda c=config, n=name: DefaultScenario(n, pipes.with_config(c), stream, publish),
        )
    torch_device, dtype = torch.device(cfg.device), getattr(torch, cfg.dtype)
    # the default scenario's backend (the configured one, or auto's choice) is timed there
    default = resolve("UNet", cfg.unet_backend, torch_device, dtype=dtype)
    for backend in BACKENDS:
        if backend == default:
            continue
        reason = _backend_skip_reason(backend, torch_device, dtype, args.compile)
        if reason:
            skipped[f"UNet {backend}"] = reason
            continue
        config = cfg.replace(unet_backend=backend)
        add(
            f"UNet {backend}",
            lambda c=config, n=backend: DefaultScenario(
                f"UNet {n}", pipes.with_config(c), stream, publish
            ),
        )
    if is_available("torchao"):  # fp8 linear layers (fp8 matmuls on Hopper/Ada)
        # fp8 runs in torch: an exported backend configured for the others would refuse it
        torch_backend = cfg.unet_backend if cfg.unet_backend in ("eager", "compile") else "auto"
        config = cfg.replace(quantize="fp8", unet_backend=torch_backend)
        add(
            "UNet fp8",
            lambda: DefaultScenario("UNet fp8", pipes.with_config(config), stream, publish),
        )
    else:
        skipped["UNet fp8"] = "torchao is not installed: pip install torchao==0.18.0"
    if pipes.depth is not None:
        for backend in DEPTH_BACKENDS:
            if backend == pipes.depth.backend:  # auto's choice: the default scenario runs it
                continue
            reason = _backend_skip_reason(backend, torch_device, dtype, args.compile)
            if reason:
                skipped[f"depth {backend}"] = reason
                continue
            other_depth = depth_estimator(stream_cfg.depth_model, cfg, backend)
            add(
                f"depth {backend}",
                lambda d=other_depth, n=backend: DefaultScenario(
                    f"depth {n}", replace_fields(pipes.with_config(cfg), depth=d), stream, publish
                ),
            )
    named.update(skipped)
    unknown = [name for name in args.skip if name not in named]
    if unknown:  # a typo would time what the user meant to leave out, for minutes
        from amodal_ros.core.errors import InputError

        raise InputError(
            f"--skip {', '.join(map(repr, unknown))}: no such scenario; the scenarios are "
            + ", ".join(map(repr, sorted(named)))
        )
    for name, build_scenario in builds:
        log(f"preparing {name} ...")
        scenarios.append(build_scenario())
    from tqdm.auto import tqdm

    def summarised(timed=scenarios) -> dict:
        return {s.m.name: s.result().summary() for s in timed}

    def result(summaries: dict, floor: dict | None) -> dict:
        if "reference" in summaries:
            ref = summaries["reference"]["window_p50_s"]
            for s in summaries.values():
                s["speedup_vs_reference"] = ref / s["window_p50_s"]
        return {
            "device": device,
            "setup": {
                "checkpoint": stream_cfg.checkpoint,
                "model": pipes.describe(),
                "working_size": [cfg.height, cfg.width],
                "camera_size": list(camera),
                "frames": cfg.num_frames,
                "objects": objects,
                "stride": stride,
                "publish": publish,
                "timed_windows": args.windows,
                "depth": stream_cfg.depth_model or "camera depth of the scene",
                "dtype": cfg.dtype,
                "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "steps": cfg.num_steps,
                "guidance": cfg.max_guidance,
                # what the figures are of, beside the device: a result file read later
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            },
            "scenarios": summaries,
            "floor": floor,
            "skipped": skipped,
        }

    # interleaved: window k of every scenario before window k + 1 of any
    rounds = len(stream.starts)
    for k in tqdm(range(rounds), desc="bench windows", disable=not args.progress):
        for i, scenario in enumerate(scenarios):
            scenario.run_window(k)
            if on_round is not None and k >= 1:  # window 0 is untimed; the floor comes after
                # after every scenario's window: a GPU step cut short in its first timed round
                # (minutes of full-size models) kept nothing
                timed = scenarios if k > 1 else scenarios[: i + 1]
                done = f"{k} of {rounds - 1} windows" + (
                    "" if i + 1 == len(scenarios) else f" ({i + 1} of {len(scenarios)} scenarios)"
                )
                on_round({**result(summarised(timed), None), "partial": done})
    summaries = summarised()
    floor = None
    if "floor" not in args.skip:  # the bare UNet step with every object in one call, same run
        from amodal_ros.eval.floor import unet_floor

        log("timing the floor (bare UNet step) ...")
        batches = {"guided": 2 * objects, "unguided": objects}
        floor = unet_floor(pipes.segmenter.sampler, batches)
        student_unet = student_pipes and student_pipes.segmenter.sampler.c.unet.config
        if student_unet and student_unet != pipes.segmenter.sampler.c.unet.config:
            floor["student"] = unet_floor(student_pipes.segmenter.sampler, {"unguided": objects})
        for s in scenarios:
            # with completions two UNets run, and a compiled or fp8 UNet is not the floor's
            # eager one: no floor step to compare with
            share = None if s.completes else _floor_share(s, floor, summaries[s.m.name])
            summaries[s.m.name]["floor_share"] = share
    return result(summaries, floor)


def _floor_share(scenario, floor: dict, summary: dict) -> float | None:
    """The share of a scenario's window that is bare UNet compute: its steps x the floor step
    (every object in one call) of its own UNet, times the ensemble's views (each object's
    window runs once per view); the rest of the window is overhead."""
    if scenario.config.quantize or scenario.config.unet_backend == "compile":
        return None  # the floor is the eager UNet in the run's dtype, not this one
    if scenario.config.student and "student" in floor:  # a student of another architecture
        floor = floor["student"]
    step = floor["step_s"]["guided" if scenario.config.uses_guidance else "unguided"]
    views = scenario.config.ensemble_views
    return summary["steps_per_window"] * views * step / summary["window_p50_s"]


def _floor_steps(floor: dict) -> str:
    return ", ".join(
        f"{k} {floor['step_s'][k]:.4f} s ({floor['step_tflop'][k]:.3g} TFLOP, "
        f"{100 * floor['share_of_peak'][k]:.0f} % of the matmul peak)"
        for k in floor["step_s"]
    )


def _student_pipelines(args: BenchArgs, pipes, config: InferenceConfig):
    """The pipelines of preset realtime (stage 1 of the student, the same depth), or why not."""
    from amodal_ros.core.errors import CheckpointError, InputError
    from amodal_ros.pipeline.factory import Pipelines
    from amodal_ros.pipeline.stage1 import AmodalSegmenter

    checkpoint = args.student_checkpoint or args.stream.checkpoint
    try:
        segmenter = AmodalSegmenter.from_pretrained(checkpoint, config)
    except (CheckpointError, InputError) as err:
        return f"{err} (pass --student-checkpoint)"
    return Pipelines(segmenter, None, pipes.depth, pipes.depth_source, checkpoint)


def _with_completer(pipes, checkpoint: str, config: InferenceConfig):
    """`pipes` with stage 2 of `checkpoint` under `config` (its student under `realtime`), on
    a stage 1 of its own, so that its stage times are not another scenario's."""
    from amodal_ros.pipeline.stage2 import ContentCompleter

    completer = ContentCompleter.from_pretrained(checkpoint, config)
    return replace_fields(pipes.with_config(config), completer=completer)


def table(result: dict) -> str:
    """The benchmark as a markdown table (seconds; peak memory in MiB)."""
    from amodal_ros.eval.scenarios import STAGES

    head = (
        "scenario",
        "window p50",
        "p95",
        "per published frame",
        *STAGES,
        "per step",
        "steps",
        "first window",
        "depth/frame",
        "peak MiB",
        "x vs reference",
        "floor share",
        "backends",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in result["scenarios"].items():
        stages = [f"{s['stages_s'][k]:.3f}" for k in STAGES]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{s['window_p50_s']:.3f}",
                    f"{s['window_p95_s']:.3f}",
                    f"{s['per_published_frame_s']:.3f}",
                    *stages,
                    f"{s['denoise_per_step_s']:.4f}",
                    f"{s['steps_per_window']:g}",
                    f"{s['first_window_s']:.2f}",
                    f"{s['depth_per_frame_s']:.4f}",
                    _mb(s["peak_memory_mb"]),
                    f"{s.get('speedup_vs_reference', float('nan')):.2f}",
                    _percent(s.get("floor_share")),
                    s["note"] or "eager",
                ]
            )
            + " |"
        )
    timed = result.get("setup", {}).get("timed_windows")
    if timed is not None:  # percentiles of a few windows are their slowest, not a tail
        lines.append(
            f"\n{timed} timed window{'s' if timed != 1 else ''} per scenario"
            + (": p95 is about the slowest of them" if timed < 20 else "")
        )
    floor = result.get("floor")
    if floor:
        own = floor.get("student")
        student = f"; the student's own UNet: {_floor_steps(own)}" if own else ""
        lines.append(
            f"\nfloor: bare UNet step, every object in one call: {_floor_steps(floor)}"
            f"{student}; matmul peak "
            f"{floor['matmul_peak_tflops']:.1f} TFLOP/s. floor share: the part of a window "
            "that is this compute (its steps x its UNet's floor step)"
        )
    for name, reason in result["skipped"].items():
        lines.append(f"\n{name}: not run ({reason})")
    return "\n".join(lines)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _mb(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.0f}"
