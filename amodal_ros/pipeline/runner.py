"""Batched sampling of conditioned windows, shared by both stages."""

from __future__ import annotations

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.models.loading import VasComponents
from amodal_ros.pipeline.encoding import ConditionEncoder
from amodal_ros.pipeline.sampling import cross_attention_context, decode, denoise, guidance_ramp


class WindowSampler:
    """Runs (conditioning latents, CLIP, seed) jobs through the UNet in bounded batches."""

    def __init__(self, components: VasComponents, config: InferenceConfig):
        self.c = components
        self.config = config
        self.device = torch.device(config.device)
        self.dtype = components.unet.dtype
        self.encoder = ConditionEncoder(components, config, self.device, self.dtype)

    @property
    def latent_shape(self) -> tuple[int, int]:
        f = self.c.vae_scale_factor
        return self.config.height // f, self.config.width // f

    def time_ids(self) -> torch.Tensor:
        cfg = self.config
        # [fps id, motion bucket, noise aug]; fps id = fps (consistent) or fps - 1 (reference)
        return torch.tensor([cfg.fps_id, cfg.motion_bucket_id, cfg.noise_aug_strength])

    def run(self, jobs: list, progress: bool = False) -> torch.Tensor:
        """jobs: [((cond latents [T, C, h, w], clip [T, D]), seed)] -> [N, T, 3, H, W], [-1, 1]."""
        cfg = self.config
        guided = cfg.uses_guidance
        outputs = []
        for start in range(0, len(jobs), cfg.max_batch_objects):
            batch = jobs[start : start + cfg.max_batch_objects]
            cond = torch.stack([job[0][0] for job in batch])  # [B, T, C, h, w]
            clip = torch.stack([job[0][1] for job in batch])  # [B, T, D]
            t = cond.shape[1]
            noise = torch.stack([self._noise(t, seed) for _, seed in batch]).to(
                self.device, self.dtype
            )
            latents = denoise(
                self.c.unet,
                self.c.scheduler_config,
                noise,
                cond,
                cross_attention_context(clip, cfg.conditioning_mode, guided),
                self.time_ids(),
                cfg.num_steps,
                guidance_ramp(cfg.min_guidance, cfg.max_guidance, t) if guided else None,
                progress=progress,
            )
            outputs.append(decode(self.c.vae, latents, cfg.decode_chunk_size).cpu())
        return torch.cat(outputs)

    def _noise(self, num_frames: int, seed: int) -> torch.Tensor:
        # Generated on the CPU so a seed gives the same noise on every device.
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((num_frames, 4, *self.latent_shape), generator=generator)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[..., 3, H, W] in [-1, 1] -> [..., H, W, 3] uint8 (rounded, as diffusers' postprocess)."""
    x = ((frames / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def to_masks(frames: torch.Tensor, rgb_sum_threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded frames [..., 3, H, W] -> (mask where R+G+B > threshold, score (R+G+B)/765)."""
    rgb_sum = to_uint8(frames).astype(np.int32).sum(-1)
    return rgb_sum > rgb_sum_threshold, (rgb_sum / 765.0).astype(np.float32)
