"""`amodal-ros bench`: the reference call pattern against amodal_ros, side by side, on the same
model and inputs in one run.

Scenarios (each over the same sliding windows of one synthetic scene, after one untimed window):
  reference   REFERENCE.md's inference as the reference demo calls it: one object at a time,
              CLIP and VAE encoding in per-frame loops, fp32 encoders, no cache across windows
              (every window re-encodes all its frames, each object's pipeline call re-encodes
              the depth frames), depth estimated frame by frame once per window, the same
              steps and guidance (25 and 1.5 by default), the whole window decoded; on a GPU
              models are moved to it for their call and back to the CPU after (the
              reference's model offloading).
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
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from amodal_ros.core.config import PRESETS, InferenceConfig
from amodal_ros.core.types import ObjectTrack
from amodal_ros.depth.normalize import normalize_window
from amodal_ros.pipeline import preprocess
from amodal_ros.pipeline.cache import FrameEncodingCache, stable_seed
from amodal_ros.pipeline.sampling import cross_attention_context, decode, denoise, guidance_ramp
from amodal_ros.pipeline.timing import StageTimes

STAGES = ("depth", "clip", "encode", "denoise", "decode")


@dataclass
class Measurement:
    """Times of the timed windows of one scenario."""

    name: str
    windows: list[float] = field(default_factory=list)  # seconds per window
    stages: dict[str, float] = field(default_factory=dict)  # seconds per window, mean
    calls: dict[str, float] = field(default_factory=dict)  # model calls per window, mean
    steps_per_window: float = 0.0  # Euler steps per window (each step covers all objects)
    published_frames: int = 1
    depth_frames: int = 1  # frames whose depth a window estimates
    peak_memory_mb: float = 0.0
    note: str = ""

    def summary(self) -> dict:
        w = np.array(self.windows)
        return {
            "window_p50_s": float(np.percentile(w, 50)),
            "window_p95_s": float(np.percentile(w, 95)),
            "per_published_frame_s": float(np.median(w) / self.published_frames),
            "depth_per_frame_s": self.stages.get("depth", 0.0) / self.depth_frames,
            "denoise_per_step_s": self.stages.get("denoise", 0.0) / max(self.steps_per_window, 1),
            "stages_s": {k: self.stages.get(k, 0.0) for k in STAGES},
            "calls_per_window": {k: self.calls.get(k, 0.0) for k in STAGES},
            "peak_memory_mb": self.peak_memory_mb,
            "note": self.note,
        }


class Stream:
    """The sliding windows every scenario runs: object tracks (stamped) and RGB per window."""

    def __init__(self, scene, num_frames: int, stride: int, windows: int):
        needed = num_frames + stride * windows
        if len(scene.rgb) < needed:
            raise ValueError(f"the scene needs {needed} frames, it has {len(scene.rgb)}")
        self.scene = scene
        self.num_frames = num_frames
        self.stride = stride
        self.starts = [stride * k for k in range(windows + 1)]  # first one untimed

    def window(self, first: int):
        frames = slice(first, first + self.num_frames)
        keys = list(range(first, first + self.num_frames))
        tracks = [
            ObjectTrack(i, self.scene.modal(i)[frames], frame_keys=keys)
            for i in self.scene.target_ids
            if self.scene.modal(i)[frames].any()
        ]
        return tracks, self.scene.rgb[frames], keys


def run_default(name, components, config, stream: Stream, depth=None, publish="latest"):
    """amodal_ros's own path (AmodalSegmenter + cached, batched depth), as the node runs it."""
    from amodal_ros.pipeline import AmodalSegmenter

    segmenter = AmodalSegmenter(components, config)
    times = segmenter.sampler.times
    times.sync = config.device.startswith("cuda")
    cache = FrameEncodingCache()
    published = _published(stream, publish)
    m = Measurement(name, published_frames=len(published), note=_backend_note(segmenter, depth))
    m.depth_frames = stream.stride  # after the first window only the new frames are estimated
    steps_before = 0
    for k, first in enumerate(stream.starts):
        tracks, rgb, keys = stream.window(first)
        if k == 1:
            times.reset()
            _reset_peak(config.device)
            steps_before = 0
        cache.forget_frames_before(first)
        started = time.perf_counter()
        inverse_depth = None
        if segmenter.needs_depth:
            with times("depth"):
                inverse_depth = _cached_depth(depth, rgb, keys, cache, stream.scene, first)
        segmenter(tracks, inverse_depth, cache=cache, frames=published)
        times._synchronize()
        if k > 0:
            m.windows.append(time.perf_counter() - started)
            steps_before += _steps_run(config)
    m.stages = {k: v / len(m.windows) for k, v in times.seconds.items()}
    m.calls = {k: v / len(m.windows) for k, v in times.calls.items()}
    m.steps_per_window = steps_before / len(m.windows)
    m.peak_memory_mb = _peak_mb(config.device)
    return m


def run_reference(
    components, config: InferenceConfig, stream: Stream, depth=None, publish="latest"
):
    """The reference demo's call pattern (see the module docstring), on the same model."""
    cfg = config.replace(conditioning_mode="reference")
    device = torch.device(cfg.device)
    offload = device.type == "cuda"
    times = StageTimes(sync=offload)
    unet = components.unet
    m = Measurement("reference", published_frames=len(_published(stream, publish)))
    m.depth_frames = stream.num_frames
    for k, first in enumerate(stream.starts):
        tracks, rgb, _ = stream.window(first)
        if k == 1:
            times.reset()
            _reset_peak(cfg.device)
        started = time.perf_counter()
        if components.num_conditions == 2:
            with times("depth"):  # once per window for all objects, frame by frame, no cache
                nearness = np.stack(
                    [
                        _depth_frames(depth, rgb[t : t + 1], stream.scene, first + t)[0]
                        for t in range(len(rgb))
                    ]
                )
            depth_px = preprocess.depth_pixels(normalize_window(nearness), cfg.height, cfg.width)
        for track in tracks:  # one object per pipeline call
            cond = []
            mask_px = preprocess.mask_pixels(track.masks, cfg.height, cfg.width)
            with _on(components.image_encoder, device, offload):
                clip = torch.cat([_clip(components, cfg, px[None], times) for px in mask_px])
            with _on(components.vae, device, offload):
                cond.append(_encode_loop(components, cfg, mask_px, track.object_id, times))
                if components.num_conditions == 2:
                    cond.append(_encode_loop(components, cfg, depth_px, "depth", times))
            cond_latents = torch.cat(cond, dim=1)[None].to(unet.dtype)  # [1, T, C, h, w]
            noise = torch.randn(
                cond_latents.shape[:2] + (4, *cond_latents.shape[3:]),
                generator=torch.Generator().manual_seed(stable_seed(cfg.seed, track.object_id)),
            ).to(device, unet.dtype)
            t = cond_latents.shape[1]
            with times("denoise"), _on(unet, device, offload):
                latents = denoise(
                    lambda *a: unet(*a, return_dict=False)[0],
                    components.scheduler_config,
                    noise,
                    cond_latents.to(device),
                    cross_attention_context(clip[None].to(device, unet.dtype), "reference", True),
                    torch.tensor([cfg.fps_id, cfg.motion_bucket_id, cfg.noise_aug_strength]),
                    cfg.num_steps,
                    guidance_ramp(cfg.min_guidance, cfg.max_guidance, t),
                )
            with times("decode"), _on(components.vae, device, offload):
                decode(components.vae, latents, cfg.decode_chunk_size).cpu()
        times._synchronize()
        if k > 0:
            m.windows.append(time.perf_counter() - started)
            m.steps_per_window += cfg.num_steps
    m.steps_per_window /= len(m.windows)
    m.stages = {k: v / len(m.windows) for k, v in times.seconds.items()}
    m.calls = {k: v / len(m.windows) for k, v in times.calls.items()}
    m.peak_memory_mb = _peak_mb(cfg.device)
    return m


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


# -- helpers ------------------------------------------------------------------------------


def _published(stream: Stream, publish: str) -> list[int]:
    t = stream.num_frames
    return [t - 1] if publish == "latest" else list(range(t - stream.stride, t))


def _steps_run(config: InferenceConfig) -> int:
    """Euler steps of a window after the first (fewer when warm-started)."""
    from amodal_ros.pipeline.sampling import warm_start_step

    return config.num_steps - warm_start_step(config.num_steps, config.warm_start)


def _cached_depth(depth, rgb, keys, cache, scene, first):
    out = [cache.get(("bench_depth", None, k, None)) for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:  # only the new frames, in one batched call
        new = _depth_frames(
            depth, rgb[todo], scene, first + todo[0], frames=[first + i for i in todo]
        )
        for i, v in zip(todo, new):
            out[i] = v
            cache.put(("bench_depth", None, keys[i], None), v)
    return np.stack(out)


def _depth_frames(depth, rgb, scene, first, frames=None):
    """Inverse depth of RGB frames: the depth model when given, else the scene's camera depth."""
    if depth is not None:
        return depth.inverse_depth(rgb)
    from amodal_ros.depth.camera import inverse_depth_from_camera

    frames = frames or range(first, first + len(rgb))
    return inverse_depth_from_camera(scene.depth[list(frames)], "32FC1")


def _clip(components, cfg, pixels, times):
    from amodal_ros.pipeline.encoding import ConditionEncoder

    encoder = ConditionEncoder(components, cfg, components.image_encoder.device, torch.float32)
    with times("clip"):
        return encoder._clip_embed(pixels)


def _encode_loop(components, cfg, pixels, key, times):
    from amodal_ros.pipeline.encoding import ConditionEncoder

    encoder = ConditionEncoder(components, cfg, components.vae.device, torch.float32)
    out = []
    for t in range(len(pixels)):  # one VAE call per frame, as the reference's loop
        with times("encode"):
            out.append(encoder._vae_encode("bench", key, [t], pixels[t : t + 1]))
    return torch.cat(out)


class _on:
    """Model offloading as the reference: on the GPU for its call, back on the CPU after."""

    def __init__(self, module, device, offload: bool):
        self.module, self.device, self.offload = module, device, offload

    def __enter__(self):
        if self.offload:
            self.module.to(self.device)

    def __exit__(self, *exc):
        if self.offload:
            self.module.to("cpu")
            torch.cuda.empty_cache()
        return False


def _backend_note(segmenter, depth) -> str:
    note = f"UNet {segmenter.sampler.predict.name}"
    if depth is not None:
        note += f", depth {depth.backend}"
    return note


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


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
    results: dict[str, Measurement] = {}
    skipped: dict[str, str] = {}

    def run(name, fn):
        if name in args.skip:
            return
        log(f"running {name} ...")
        results[name] = fn()

    run("reference", lambda: run_reference(components, cfg, stream, depth, args.publish))
    components.to(cfg.device, getattr(torch, cfg.dtype))  # the reference offloads to the CPU
    base = cfg  # the same steps and guidance as the reference (25 and 1.5 from the CLI)
    run("default", lambda: run_default("default", components, base, stream, depth, args.publish))
    for name, config in preset_configs(base).items():
        run(
            name,
            lambda c=config, n=name: run_default(n, components, c, stream, depth, args.publish),
        )
    device_type = "cuda" if cfg.device.startswith("cuda") else "cpu"
    auto = next(
        b
        for b in (*AUTO_ORDER[device_type], "eager")
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
        run(
            f"UNet {backend}",
            lambda c=config, n=backend: run_default(
                f"UNet {n}", components, c, stream, depth, args.publish
            ),
        )
    if depth is not None:
        for backend in ("onnxruntime", "tensorrt"):
            reason = unavailable_reason(backend, torch.device(cfg.device))
            if reason:
                skipped[f"depth {backend}"] = reason
                continue
            other = _depth_model(args.depth_model, cfg, backend)
            run(
                f"depth {backend}",
                lambda d=other, n=backend: run_default(
                    f"depth {n}", components, base, stream, d, args.publish
                ),
            )
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
                    f"{s['peak_memory_mb']:.0f}",
                    f"{s.get('speedup_vs_reference', float('nan')):.2f}",
                    s["note"] or "eager",
                ]
            )
            + " |"
        )
    for name, reason in result["skipped"].items():
        lines.append(f"\n{name}: not run ({reason})")
    return "\n".join(lines)


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
