"""The scenarios `amodal-ros bench` compares (see amodal_ros/eval/speed.py): the reference
demo's call pattern and amodal_ros's own path, each run window by window on one stream."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.types import ObjectTrack
from amodal_ros.depth.normalize import normalize_window
from amodal_ros.pipeline import preprocess
from amodal_ros.pipeline.cache import stable_seed
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
    peak_memory_mb: float = float("nan")
    first_window_s: float = float("nan")  # the untimed first window: loading, compiling
    note: str = ""
    failed_windows: int = 0  # windows the pipeline failed: their times are not the model's

    def summary(self) -> dict:
        """Percentiles, per-stage means and per-frame cost of the timed windows."""
        w = np.array(self.windows)
        return {
            "window_p50_s": float(np.percentile(w, 50)),
            "window_p95_s": float(np.percentile(w, 95)),
            "per_published_frame_s": float(np.median(w) / self.published_frames),
            "depth_per_frame_s": self.stages.get("depth", 0.0) / self.depth_frames,
            "denoise_per_step_s": self.stages.get("denoise", 0.0) / max(self.steps_per_window, 1),
            "steps_per_window": self.steps_per_window,
            "first_window_s": self.first_window_s,
            "stages_s": {k: self.stages.get(k, 0.0) for k in STAGES},
            "calls_per_window": {k: self.calls.get(k, 0.0) for k in STAGES},
            "peak_memory_mb": (
                float(self.peak_memory_mb) if np.isfinite(self.peak_memory_mb) else None
            ),
            "failed_windows": self.failed_windows,
            "note": (
                f"FAILED {self.failed_windows} window(s), see the log: not the model's times; "
                if self.failed_windows
                else ""
            )
            + self.note,
        }


class Stream:
    """The sliding windows every scenario runs, of one synthetic scene (camera depth in m)."""

    def __init__(self, scene, num_frames: int, stride: int, windows: int):
        from amodal_ros.core.frames import frames_from_arrays

        needed = num_frames + stride * windows
        if len(scene.rgb) < needed:
            raise ValueError(f"the scene needs {needed} frames, it has {len(scene.rgb)}")
        self.scene = scene
        self.num_frames = num_frames
        self.stride = stride
        self.starts = [stride * k for k in range(windows + 1)]  # first one untimed
        self.frames = frames_from_arrays(scene.rgb, scene.labels, scene.depth, "32FC1")

    def objects(self, first: int) -> list[int]:
        """Targets visible in the window starting at `first`."""
        span = slice(first, first + self.num_frames)
        return [i for i in self.scene.target_ids if self.scene.modal(i)[span].any()]

    def tracks(self, first: int) -> list[ObjectTrack]:
        """Modal tracks (stamped) of the window starting at `first`."""
        span = slice(first, first + self.num_frames)
        keys = list(range(first, first + self.num_frames))
        return [
            ObjectTrack(i, self.scene.modal(i)[span], frame_keys=keys) for i in self.objects(first)
        ]

    def window(self, first: int):
        """The stream's Window starting at `first` (its new frames: the stride's)."""
        from amodal_ros.pipeline.window import Window

        frames = tuple(self.frames[first : first + self.num_frames])
        new = self.stride if first else self.num_frames
        return Window(frames, tuple(self.objects(first)), new_frames=new, full=True)


class Scenario:
    """One way of running the stream's windows. `run_window(k)` runs window k; windows from
    k = 1 are timed. run_bench interleaves the scenarios window by window, so a machine whose
    speed drifts during the run slows all of them alike."""

    def __init__(self, name, stream: Stream, device: str, times: StageTimes, published: int):
        self.stream = stream
        self.device = device
        self.times = times
        self.times.sync = device.startswith("cuda")
        self.m = Measurement(name, published_frames=published)
        self.steps = 0

    @property
    def completes(self) -> bool:
        """Whether its windows also run stage 2 (completions); only the node's path can."""
        return False

    def run_window(self, k: int) -> None:
        """Run window k (timed from k = 1)."""
        first = self.stream.starts[k]
        self._before_window()
        if k == 1:
            self.times.reset()
        _reset_peak(self.device)
        self.times.synchronize()  # work queued before (the last window's cleanup) is not ours
        started = time.perf_counter()
        steps = self._window(first)
        self.times.synchronize()
        if k == 0:
            self.m.first_window_s = time.perf_counter() - started
        else:
            self.m.windows.append(time.perf_counter() - started)
            self.steps += steps
            self.m.peak_memory_mb = np.fmax(self.m.peak_memory_mb, _peak_mb(self.device))
        self._after_window()

    def result(self) -> Measurement:
        """The measurement with stage times and calls averaged over the timed windows."""
        n = len(self.m.windows)
        self.m.stages = {k: v / n for k, v in self.times.seconds.items()}
        self.m.calls = {k: v / n for k, v in self.times.calls.items()}
        self.m.steps_per_window = self.steps / n
        return self.m

    def _before_window(self) -> None:
        pass

    def _after_window(self) -> None:
        pass

    def _window(self, first: int) -> int:
        raise NotImplementedError


class DefaultScenario(Scenario):
    """amodal_ros's own path: the node's WindowProcessor over the stream's windows."""

    def __init__(self, name, pipelines, stream: Stream, publish="latest"):
        from amodal_ros.core.config import StreamConfig
        from amodal_ros.pipeline.processor import WindowProcessor

        self.processor = WindowProcessor(pipelines, StreamConfig(publish_frames=publish))
        published = 1 if publish == "latest" else stream.stride
        super().__init__(name, stream, pipelines.config.device, self.processor.times, published)
        self.m.note = _backend_note(pipelines)
        self.m.depth_frames = stream.stride  # after the first window only the new frames
        self.config = pipelines.config

    @property
    def completes(self) -> bool:
        """Whether its windows also run stage 2 (completions)."""
        return self.processor.completer is not None

    def _window(self, first: int) -> int:
        errors = self.processor.errors
        self.processor.process(self.stream.window(first))
        self.m.failed_windows += self.processor.errors > errors  # passed through, fast
        stage2 = _steps_run(self.processor.completer.config) if self.completes else 0
        return _steps_run(self.config) + stage2


class ReferenceScenario(Scenario):
    """The reference demo's call pattern (see the module docstring), on the same model."""

    def __init__(self, components, config: InferenceConfig, stream, depth=None, publish="latest"):
        # The configured conditioning mode, not forced to 'reference': both scenarios then
        # compute the same masks, and the comparison is of call patterns only. The reference
        # runs each window once (no mirror or reverse ensemble).
        self.config = config = config.replace(mirror_ensemble="off", reverse_ensemble="off")
        published = 1 if publish == "latest" else stream.stride
        super().__init__("reference", stream, config.device, StageTimes(), published)
        self.m.depth_frames = stream.num_frames
        self.c = components
        self.depth = depth
        self.offload = config.device.startswith("cuda")
        self._half_vae = None  # the fp16 copy it decodes with, when it does (`_decoder`)
        from amodal_ros.pipeline.encoding import ConditionEncoder

        # (models are on config.device whenever they run: `_Offloaded` moves them there first)
        self.encoder = ConditionEncoder(
            components, config, torch.device(config.device), torch.float32
        )

    def _before_window(self) -> None:
        if self.offload:  # its models wait on the CPU between calls (not timed)
            self.c.to("cpu", getattr(torch, self.config.dtype))

    def _after_window(self) -> None:
        if self.offload:  # back where the other scenarios expect them (not timed)
            self.c.to(self.config.device, getattr(torch, self.config.dtype))

    def _window(self, first: int) -> int:
        from amodal_ros.accel.backends import EagerUNet

        cfg, c, times = self.config, self.c, self.times
        device = torch.device(cfg.device)
        tracks = self.stream.tracks(first)
        rgb = self.stream.scene.rgb[first : first + self.stream.num_frames]
        if c.num_conditions == 2:
            with times("depth"):  # once per window for all objects, frame by frame, no cache
                nearness = np.stack(
                    [
                        _depth_frames(self.depth, rgb[t : t + 1], self.stream.scene, first + t)[0]
                        for t in range(len(rgb))
                    ]
                )
            depth_px = preprocess.depth_pixels(normalize_window(nearness), cfg.height, cfg.width)
        for track in tracks:  # one object per pipeline call
            cond = []
            mask_px = preprocess.mask_pixels(track.masks, cfg.height, cfg.width, cfg.mask_resize)
            with _Offloaded(c.image_encoder, device, self.offload):
                clip = self._clip_loop(mask_px)
            with _Offloaded(c.vae, device, self.offload):
                cond.append(self._encode_loop(mask_px, track.object_id))
                if c.num_conditions == 2:
                    cond.append(self._encode_loop(depth_px, "depth"))
            unet = c.unet
            cond_latents = torch.cat(cond, dim=1)[None].to(unet.dtype)  # [1, T, C, h, w]
            noise = torch.randn(
                cond_latents.shape[:2] + (4, *cond_latents.shape[3:]),
                generator=torch.Generator().manual_seed(
                    stable_seed(cfg.seed, "noise", track.object_id, 0)  # the default's noise
                ),
            )
            t = cond_latents.shape[1]
            with times("denoise"), _Offloaded(unet, device, self.offload):
                latents = denoise(
                    EagerUNet(unet),
                    c.scheduler_config,
                    noise.to(device, unet.dtype),
                    cond_latents.to(device),
                    cross_attention_context(
                        clip[None].to(device, unet.dtype), cfg.conditioning_mode, True
                    ),
                    torch.tensor(cfg.time_ids),
                    cfg.num_steps,
                    guidance_ramp(cfg.min_guidance, cfg.max_guidance, t),
                )
            vae = self._decoder(unet.dtype)
            with times("decode"), _Offloaded(vae, device, self.offload):
                decode(vae, latents, cfg.decode_chunk_size).cpu()
        return cfg.num_steps

    def _decoder(self, unet_dtype: torch.dtype):
        """The VAE the reference decodes with: diffusers' SVD pipeline upcasts a force_upcast
        VAE for encoding only and decodes in fp16. A copy of its own (casting the shared one
        and back would leave the other scenarios fp16-rounded weights); the reference's cast
        at every call is not timed."""
        vae = self.c.vae
        if unet_dtype != torch.float16 or not vae.config.get("force_upcast", False):
            return vae
        if self._half_vae is None:
            import copy

            self._half_vae = copy.deepcopy(vae).to(torch.float16)
        return self._half_vae

    def _clip_loop(self, pixels) -> torch.Tensor:
        out = []
        for frame in pixels:  # one CLIP call per frame, as the reference's loop
            with self.times("clip"):
                out.append(self.encoder.clip_embed(frame[None]))
        return torch.cat(out)

    def _encode_loop(self, pixels, key) -> torch.Tensor:
        out = []
        for t in range(len(pixels)):  # one VAE call per frame, fp32, as the reference's loop
            with self.times("encode"):
                out.append(self.encoder.vae_encode("bench", key, [t], pixels[t : t + 1]))
        return torch.cat(out)


# -- helpers ---------------------------------------------------------------------------


def _steps_run(config: InferenceConfig) -> int:
    """Euler steps of a window after the first (fewer when warm-started)."""
    from amodal_ros.pipeline.sampling import warm_start_step

    return config.num_steps - warm_start_step(config.num_steps, config.warm_start)


def _depth_frames(depth, rgb, scene, first, frames=None):
    """Inverse depth of RGB frames: the depth model when given, else the scene's camera depth."""
    if depth is not None:
        return depth.inverse_depth(rgb)
    from amodal_ros.depth.camera import inverse_depth_from_camera

    frames = frames or range(first, first + len(rgb))
    return inverse_depth_from_camera(scene.depth[list(frames)], "32FC1")


class _Offloaded:
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


def _backend_note(pipelines) -> str:
    note = f"UNet {pipelines.segmenter.sampler.predict.name}"
    if pipelines.depth is not None:
        note += f", depth {pipelines.depth.backend}"
    return note


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float:
    """Peak GPU memory since the last reset; NaN on a CPU, where scenarios sharing one process
    cannot be told apart (the setup reports the process's peak RSS instead)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return float("nan")
