"""`amodal-ros bench`: the reference call pattern against amodal_ros, side by side, on the same
model and inputs in one run.

Scenarios (each over the same sliding windows of one synthetic scene, after one untimed
window; interleaved window by window, so a machine whose speed drifts slows all alike):
  reference   REFERENCE.md's inference as the reference demo calls it: one object at a time,
              CLIP and VAE encoding in per-frame loops, fp32 encoders, no cache across windows
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
  presets     default with each preset (balanced, fast).
  backends    default with each other UNet backend that can run here (and depth backends).
"""

from __future__ import annotations

import platform
import resource
from dataclasses import dataclass, field

import numpy as np
import torch

from amodal_ros.core.config import PRESETS, InferenceConfig
from amodal_ros.eval.scenarios import (
    STAGES,
    DefaultScenario,
    ReferenceScenario,
    Scenario,
    Stream,
)


def preset_configs(config: InferenceConfig) -> dict[str, InferenceConfig]:
    return {f"preset {name}": config.replace(preset=name) for name in PRESETS if name != "quality"}


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads"


@dataclass
class BenchArgs:
    checkpoint: str = "embedded"  # 'embedded', a folder, 'tiny' or 'random-full-size'
    config: InferenceConfig = field(default_factory=InferenceConfig)
    depth_model: str = ""  # '', a folder, or 'tiny' / 'vits' / 'vitb' / 'vitl' (random)
    windows: int = 3
    stride: int = 5
    publish: str = "latest"
    scene_seed: int = 1000002
    compile: bool = False  # torch.compile takes minutes to compile: only on request
    skip: tuple[str, ...] = ()
    progress: bool = True


def run_bench(args: BenchArgs, log=print) -> dict:
    """Run every scenario; returns {"device", "setup", "scenarios": {name: summary}}."""
    from amodal_ros.accel.backends import AUTO_ORDER, unavailable_reason
    from amodal_ros.data.scenes import make_scene

    cfg = args.config
    if cfg.preset:
        raise ValueError("the benchmark runs every preset itself: leave out --preset")
    components = _components(args.checkpoint, cfg)
    depth = _depth_model(args.depth_model, cfg) if components.num_conditions == 2 else None
    camera = (max(cfg.height, 128), max(cfg.width, 256))
    scene = make_scene(
        args.scene_seed,
        num_frames=cfg.num_frames + args.stride * args.windows,
        height=camera[0],
        width=camera[1],
    )
    stream = Stream(scene, cfg.num_frames, args.stride, args.windows)
    device = device_name(cfg.device)
    log(
        f"device: {device}; model {args.checkpoint} at {cfg.height}x{cfg.width}, "
        f"{cfg.num_frames} frames, {len(stream.window(0)[0])} objects, stride {args.stride}"
    )
    scenarios: list[Scenario] = []
    skipped: dict[str, str] = {}

    def add(name, build):
        if name not in args.skip:
            log(f"preparing {name} ...")
            scenarios.append(build())

    # the reference runs its depth model in torch, whatever auto picks for the default
    ref_depth = depth if depth is None else _depth_model(args.depth_model, cfg, "eager")
    add("reference", lambda: ReferenceScenario(components, cfg, stream, ref_depth, args.publish))
    base = cfg  # the same steps and guidance as the reference (25 and 1.5 from the CLI)
    add(
        "default",
        lambda: DefaultScenario("default", components, base, stream, depth, args.publish),
    )
    # the other side of the device's batching choice (auto: 1 object per call on a CPU)
    other = 4 if base.objects_per_call == 1 else 1
    name = f"default, {other} object{'s' if other > 1 else ''} per call"
    add(
        name,
        lambda: DefaultScenario(
            name, components, base.replace(max_batch_objects=other), stream, depth, args.publish
        ),
    )
    for name, config in preset_configs(base).items():
        add(
            name,
            lambda c=config, n=name: DefaultScenario(
                n, components, c, stream, depth, args.publish
            ),
        )
    device_type = "cuda" if cfg.device.startswith("cuda") else "cpu"
    auto = next(
        b
        for b in (*AUTO_ORDER["UNet"][device_type], "eager")
        if unavailable_reason(b, torch.device(cfg.device)) is None
    )
    for backend in ("eager", "onnxruntime", "compile", "tensorrt"):
        if backend == auto:
            continue
        reason = unavailable_reason(backend, torch.device(cfg.device))
        if backend == "compile" and not args.compile:
            reason = "off by default (compiles for minutes); pass --compile"
        if reason:
            skipped[f"UNet {backend}"] = reason
            continue
        config = base.replace(unet_backend=backend)
        add(
            f"UNet {backend}",
            lambda c=config, n=backend: DefaultScenario(
                f"UNet {n}", components, c, stream, depth, args.publish
            ),
        )
    if depth is not None:
        for backend in ("eager", "onnxruntime", "tensorrt"):
            if backend == depth.backend:  # auto's choice: the default scenario runs it
                continue
            reason = unavailable_reason(backend, torch.device(cfg.device))
            if reason:
                skipped[f"depth {backend}"] = reason
                continue
            other = _depth_model(args.depth_model, cfg, backend)
            add(
                f"depth {backend}",
                lambda d=other, n=backend: DefaultScenario(
                    f"depth {n}", components, base, stream, d, args.publish
                ),
            )
    from tqdm.auto import tqdm

    # interleaved: window k of every scenario before window k + 1 of any
    for k in tqdm(range(len(stream.starts)), desc="bench windows", disable=not args.progress):
        for scenario in scenarios:
            scenario.run_window(k)
    results = {s.m.name: s.result() for s in scenarios}
    summaries = {name: m.summary() for name, m in results.items()}
    if "reference" in summaries:
        ref = summaries["reference"]["window_p50_s"]
        for s in summaries.values():
            s["speedup_vs_reference"] = ref / s["window_p50_s"]
    return {
        "device": device,
        "setup": {
            "checkpoint": args.checkpoint,
            "working_size": [cfg.height, cfg.width],
            "camera_size": list(camera),
            "frames": cfg.num_frames,
            "objects": len(stream.window(0)[0]),
            "stride": args.stride,
            "publish": args.publish,
            "timed_windows": args.windows,
            "depth": args.depth_model or "camera depth of the scene",
            "dtype": cfg.dtype,
            "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "steps": cfg.num_steps,
            "guidance": cfg.max_guidance,
        },
        "scenarios": summaries,
        "skipped": skipped,
    }


def table(result: dict) -> str:
    """The benchmark as a markdown table (seconds; peak memory in MiB)."""
    head = (
        "scenario",
        "window p50",
        "p95",
        "per published frame",
        *STAGES,
        "per step",
        "depth/frame",
        "peak MiB",
        "x vs reference",
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
                    f"{s['depth_per_frame_s']:.4f}",
                    _mb(s["peak_memory_mb"]),
                    f"{s.get('speedup_vs_reference', float('nan')):.2f}",
                    s["note"] or "eager",
                ]
            )
            + " |"
        )
    for name, reason in result["skipped"].items():
        lines.append(f"\n{name}: not run ({reason})")
    return "\n".join(lines)


def _mb(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.0f}"


def _components(checkpoint: str, cfg: InferenceConfig):
    from amodal_ros.models import embedded
    from amodal_ros.models.loading import load_components

    if checkpoint == "tiny":
        from amodal_ros.models.tiny import build_tiny_components

        components = build_tiny_components()
    elif checkpoint == "random-full-size":
        from amodal_ros.models.architectures import build_random_svd_components

        components = build_random_svd_components()
    else:
        components = load_components(embedded.resolve(checkpoint))
    return components.to(cfg.device, getattr(torch, cfg.dtype))


def _depth_model(name: str, cfg: InferenceConfig, backend: str = "auto"):
    if not name:
        return None
    from amodal_ros.depth.depth_anything import DepthAnythingDepth

    kwargs = dict(
        device=cfg.device,
        dtype=getattr(torch, cfg.dtype),
        backend=backend,
        engine_cache=cfg.engine_cache,
    )
    if name in ("tiny", "vits", "vitb", "vitl"):
        from amodal_ros.models.architectures import build_random_depth_anything

        return DepthAnythingDepth(build_random_depth_anything(name), **kwargs)
    return DepthAnythingDepth.from_pretrained(name, **kwargs)
