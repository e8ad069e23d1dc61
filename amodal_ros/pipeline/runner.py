"""Batched sampling of conditioned windows, shared by both stages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.errors import InputError
from amodal_ros.models.components import VasComponents
from amodal_ros.pipeline.encoding import ConditionEncoder
from amodal_ros.pipeline.sampling import (
    cross_attention_context,
    decode,
    denoise,
    guidance_ramp,
    warm_start_step,
)
from amodal_ros.pipeline.timing import StageTimes

log = logging.getLogger("amodal_ros.runner")


@dataclass
class SamplingJob:
    """One window to sample: its conditioning, its noise seed, and optionally a warm start.

    cond: [T, C, h, w] conditioning latents; clip: [T, D] CLIP embeddings.
    init: [T, 4, h, w] clean latents to start from (the previous window's result, aligned to
    this window's frames), or None for a cold start from noise.
    """

    cond: torch.Tensor
    clip: torch.Tensor
    seed: int
    init: torch.Tensor | None = None


class WindowSampler:
    """Runs SamplingJobs through the UNet in bounded batches and decodes the result.

    `config` fields left to the model (working size, conditioning mode) are filled from the
    model's defaults here, the one place where a config meets its model.
    """

    def __init__(self, components: VasComponents, config: InferenceConfig):
        from amodal_ros.accel.artifacts import ArtifactCache, cache_dir
        from amodal_ros.accel.backends import EagerUNet, quantized, unet_predictor

        self.c = components
        self.config = config = config.for_model(components.defaults)
        check_student(components, config)
        self.device = torch.device(config.device)
        self.dtype = components.unet.dtype
        self.times = StageTimes()
        self.encoder = ConditionEncoder(components, config, self.device, self.dtype, self.times)
        self.artifacts = ArtifactCache(cache_dir(config.engine_cache))
        backend = config.unet_backend
        if config.quantize:  # fp8 runs in torch: auto means eager
            if backend in ("onnxruntime", "tensorrt"):
                raise InputError(
                    f"quantize {config.quantize!r} runs on the torch backends (eager, compile); "
                    f"unet_backend {backend!r} would export the unquantized UNet"
                )
            backend = "eager" if backend == "auto" else backend
        unet = quantized(components.unet, config.quantize, self.device)
        step = 2 if config.uses_guidance else 1  # both branches of a guided window
        self.predict = unet_predictor(
            unet, self.unet_spec(), backend, self.device, self.artifacts, step
        )
        # a clip shorter than a window (`infer` runs the model on what there is): exported
        # engines and compiled graphs are built for num_frames frames
        self.predict_short = EagerUNet(unet)
        # the last run's jobs and their sampled [T, 4, h, w] latents (warm starts, distillation)
        self.last_jobs: list[SamplingJob] = []
        self.last_latents: list[torch.Tensor] = []

    def record_into(self, times: StageTimes) -> None:
        """Add this sampler's stage times to `times` from now on (stage 2's to stage 1's, so
        that a window's stages are one breakdown)."""
        self.times = self.encoder.times = times

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(h, w) of the latents at the working size."""
        f = self.c.vae_scale_factor
        return self.config.height // f, self.config.width // f

    def unet_spec(self):
        """Static shapes of this configuration's UNet calls (for ONNX/TensorRT)."""
        from amodal_ros.accel.onnx_export import UNetSpec

        cfg = self.config
        unet = self.c.unet.config
        return UNetSpec(
            frames=cfg.num_frames,
            in_channels=unet.in_channels,
            latent_height=self.latent_shape[0],
            latent_width=self.latent_shape[1],
            tokens=cfg.num_frames if cfg.conditioning_mode == "consistent" else 1,
            context_dim=unet.cross_attention_dim,
            max_batch=cfg.objects_per_call * (2 if cfg.uses_guidance else 1),
        )

    def time_ids(self) -> torch.Tensor:
        """The UNet's added time ids [fps id, motion bucket, noise augmentation]."""
        return torch.tensor(self.config.time_ids)

    def run(
        self,
        jobs: Sequence[SamplingJob],
        frames: Sequence[int] | None = None,
        progress=False,
        *,
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, list[int]]:
        """Sample and decode every job.

        Args:
            frames: window frames whose output is needed (None = all). Only the temporal
                decoder's chunks holding one of them are decoded; chunks decode independently,
                so those frames come out exactly as in a full decode.
            reduce: what the decoded frames [N, t, 3, H, W] (float32 in [-1, 1]) become on
                the device before their one copy to the host: `to_uint8` (images) or
                `rgb_sum` (stage 1's mask scores, a third of the bytes).

        Returns:
            (reduce(decoded frames) on the CPU, decoded frame indices).
        """
        cfg = self.config
        # which decoder chunks: decided (and `frames` checked) before any denoising
        chunks = _chunks_needed(len(jobs[0].cond), cfg.decode_chunk_size, frames) if jobs else []
        latents: list[torch.Tensor | None] = [None] * len(jobs)
        start = warm_start_step(cfg.num_steps, cfg.warm_start)
        warm = [i for i, job in enumerate(jobs) if job.init is not None and start > 0]
        cold = [i for i in range(len(jobs)) if i not in warm]
        for indices, step in ((cold, 0), (warm, start)):
            for first in range(0, len(indices), cfg.objects_per_call):
                batch = indices[first : first + cfg.objects_per_call]
                out = self._denoise([jobs[i] for i in batch], step, progress)
                for i, x in zip(batch, out):
                    latents[i] = x
        self.last_jobs, self.last_latents = list(jobs), latents
        stacked = torch.stack(latents)  # [N, T, 4, h, w]
        self._check_finite(stacked)  # also of frames not decoded (warm starts, distillation)
        outputs = []
        with self.times("decode"), torch.no_grad():
            for first in range(0, len(jobs), cfg.objects_per_call):
                part = stacked[first : first + cfg.objects_per_call]
                pieces = [
                    decode(self.c.vae, part[:, a:b], cfg.decode_chunk_size) for a, b in chunks
                ]
                whole = torch.cat(pieces, dim=1)
                self._check_finite(whole)
                outputs.append(reduce(whole).cpu())
        decoded = [i for a, b in chunks for i in range(a, b)]
        return torch.cat(outputs), decoded

    def _check_finite(self, values: torch.Tensor) -> None:
        """Raise on NaN or inf in latents or decoded frames: thresholds read NaN as background
        and inf as the object, so an overflowing model's window would pass for a result (the
        caller answers it as failed)."""
        if not bool(torch.isfinite(values).all()):
            halves = torch.float16 in (self.dtype, self.c.vae.dtype)
            raise FloatingPointError(
                "the models' output holds NaN or inf "
                + ("(float16 overflows past 65504: try dtype bfloat16)" if halves else
                   "(weights damaged or trained to diverge? check the checkpoint)")
            )  # fmt: skip

    def _denoise(self, batch: list[SamplingJob], start_step: int, progress) -> torch.Tensor:
        cfg = self.config
        guided = cfg.uses_guidance
        cond = torch.stack([job.cond for job in batch])  # [B, T, C, h, w]
        clip = torch.stack([job.clip for job in batch])  # [B, T, D]
        t = cond.shape[1]
        predict = self.predict
        name = getattr(predict, "name", "eager")
        if t != cfg.num_frames and name != "eager":
            log.info(
                "a window of %d frames, shorter than the model's %d: its UNet runs eager (the "
                "%s UNet is built for %d frames)",
                t,
                cfg.num_frames,
                name,
                cfg.num_frames,
            )
            predict = self.predict_short
        noise = torch.stack([self.noise(t, job.seed) for job in batch]).to(self.device, self.dtype)
        init = None
        if start_step:
            init = torch.stack([job.init for job in batch]).to(self.device, self.dtype)
        with self.times("denoise"), torch.no_grad():
            return denoise(
                predict,
                self.c.scheduler_config,
                noise,
                cond,
                cross_attention_context(clip, cfg.conditioning_mode, guided),
                self.time_ids(),
                cfg.num_steps,
                guidance_ramp(cfg.min_guidance, cfg.max_guidance, t) if guided else None,
                progress=progress,
                init=init,
                start_step=start_step,
            )

    def noise(self, num_frames: int, seed: int) -> torch.Tensor:
        """[T, C, h, w] unit noise of a job's seed (C: the latent channels), drawn on the CPU
        so a seed gives the same noise on every device; zeros (its mean) for a student
        trained from them."""
        shape = (num_frames, self.c.latent_channels, *self.latent_shape)
        if self.config.initial_noise == "zeros":
            return torch.zeros(shape)
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(shape, generator=generator)


class StagePipeline:
    """What both stages share: their models, their config (fields left to the model filled
    from the model's defaults) and a WindowSampler. Subclasses set STAGE (1 or 2)."""

    STAGE = 1

    def __init__(self, components: VasComponents, config: InferenceConfig | None = None):
        self.components = components
        self.sampler = WindowSampler(components, config or InferenceConfig())
        self.config = self.sampler.config

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path, config: InferenceConfig | None = None):
        """Load a checkpoint folder (or a model name of amodal_ros.models.registry) of this
        stage onto config.device / config.dtype."""
        from amodal_ros.models import registry

        config = config or InferenceConfig()
        components = registry.components(str(checkpoint), stage=cls.STAGE, student=config.student)
        return cls(components.to(config.device, getattr(torch, config.dtype)), config)


class WarmStarts:
    """Each object's last sampled latents, to start its next overlapping window from
    (`InferenceConfig.warm_start`); state of one stream, kept apart from the encodings."""

    def __init__(self):
        self._last: dict[tuple[Hashable, Hashable], tuple[list, torch.Tensor]] = {}

    def init(self, object_id: Hashable, sample: Hashable, keys: Sequence[Hashable]):
        """The previous latents of (object, sample) aligned to this window's frame `keys`, or
        None when there are none or too few frames are shared. `sample` names one sampled
        window of the object (stage 1: its sample index and view)."""
        previous = self._last.get((object_id, sample))
        return None if previous is None else align_previous(*previous, keys)

    def remember(self, object_id: Hashable, sample: Hashable, keys, latents: torch.Tensor) -> None:
        """Keep [T, 4, h, w] `latents` sampled for the frames `keys`."""
        self._last[(object_id, sample)] = (list(keys), latents)

    def forget_object(self, object_id: Hashable) -> None:
        """Drop an object's latents (e.g. when the stream loses it)."""
        for key in [k for k in self._last if k[0] == object_id]:
            del self._last[key]

    def keep_only(self, object_ids) -> None:
        """Drop the latents of every object but `object_ids`."""
        keep = set(object_ids)
        for key in [k for k in self._last if k[0] not in keep]:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)

    def reset(self) -> None:
        """Forget everything (the stream started over)."""
        self._last.clear()


def check_student(components: VasComponents, config: InferenceConfig) -> None:
    """Refuse a distilled student under the full schedule, a full model under `student` or
    from zero noise, and several samples from zero noise: each would sample as the model was
    not made to, or repeat one answer."""
    source = components.source
    if config.student and not components.is_student:
        raise InputError(
            f"{source} is not a distilled student, so it cannot run with student: true "
            f"(preset realtime): make one with `amodal-ros distill --teacher {source} --out "
            "STUDENT` (add --distill-stage 2 --distill-target truth for a completion model) "
            "and pass it as the checkpoint, or choose another preset"
        )
    if components.is_student and not config.student:
        raise InputError(
            f"{source} is a distilled student (1 or 2 steps, no guidance): run it with "
            "--preset realtime, or --student --steps 2 --guidance 1"
        )
    if config.initial_noise == "zeros" and not components.is_student:
        raise InputError(
            f"{source} is a diffusion model: it samples from gaussian noise; initial_noise "
            "zeros is for a student distilled from zero noise (distill --initial-noise zeros)"
        )
    if config.initial_noise == "zeros" and config.num_samples > 1:
        raise InputError(
            f"initial_noise zeros makes {source} deterministic: its {config.num_samples} "
            "samples would be one answer repeated; use --samples 1, or initial_noise gaussian"
        )


def _chunks_needed(t: int, chunk: int, frames: Sequence[int] | None) -> list[tuple[int, int]]:
    """[(first, end)] of the decoder chunks (aligned at frame 0) holding a needed frame."""
    bounds = [(a, min(a + chunk, t)) for a in range(0, t, chunk)]
    if frames is None:
        return bounds
    wanted = set(frames)
    if not wanted or min(wanted) < 0 or max(wanted) >= t:
        raise InputError(
            f"frames must name some of the window's {t} frames (0 to {t - 1}), got "
            f"{sorted(wanted)}; None asks for all"
        )
    return [(a, b) for a, b in bounds if wanted & set(range(a, b))]


def align_previous(
    previous_keys: Sequence[Hashable], previous: torch.Tensor, keys: Sequence[Hashable]
) -> torch.Tensor | None:
    """The previous window's latents [T, 4, h, w] laid onto this window's frame keys: shared
    frames take their latents, frames new since then repeat the newest shared one. None when
    fewer than half of the frames are shared (too little overlap to be worth starting from)."""
    index = {k: i for i, k in enumerate(previous_keys)}
    shared = [index.get(k) for k in keys]
    if sum(i is not None for i in shared) * 2 < len(keys):
        return None
    rows, last = [], None
    for i in shared:
        last = i if i is not None else last
        rows.append(last if last is not None else next(j for j in shared if j is not None))
    return previous[rows]


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> [..., H, W, 3] uint8 (rounded, as diffusers' postprocess),
    on the frames' device."""
    x = ((frames / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    return x.movedim(-3, -1)


def rgb_sum(frames: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> [..., H, W] int16 R+G+B (0..765) of the uint8 image that
    `to_uint8` gives, on the frames' device (exact: sums of integers in float32)."""
    return ((frames / 2 + 0.5).clamp(0, 1) * 255).round().sum(-3).to(torch.int16)


def to_masks(rgb_sums: torch.Tensor, rgb_sum_threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """R+G+B sums [..., H, W] (`rgb_sum`) -> (mask where the sum > threshold, score sum/765)."""
    sums = rgb_sums.cpu().numpy().astype(np.int32)
    return sums > rgb_sum_threshold, (sums / 765.0).astype(np.float32)
