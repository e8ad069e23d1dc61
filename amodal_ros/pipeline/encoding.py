"""Conditioning encoders (VAE latents, CLIP embeddings), batched over frames, cached per frame."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
    _resize_with_antialiasing,
)

from amodal_ros.core.config import InferenceConfig
from amodal_ros.models.components import VasComponents
from amodal_ros.pipeline.cache import (
    CacheKey,
    FrameEncodingCache,
    cached_batch,
    digest,
    stable_seed,
)
from amodal_ros.pipeline.timing import StageTimes


class ConditionEncoder:
    """Encodes conditioning frames once; frames already in the cache are not encoded again."""

    def __init__(
        self, components: VasComponents, config: InferenceConfig, device, dtype, times=None
    ):
        self.c = components
        self.config = config
        self.device = device
        self.dtype = dtype
        self.times = times or StageTimes()

    def encode(
        self,
        kind: str,
        object_key: Hashable,
        frame_keys: Sequence[Hashable],
        pixels: np.ndarray,
        cache: FrameEncodingCache,
        with_clip: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents (and CLIP embeddings) of T conditioning frames.

        Args:
            kind: what the pixels are ("mask", "depth", "rgb", "amodal"); part of the cache key.
            object_key: the object the frames belong to (None for per-frame data like depth).
            frame_keys: T keys (stamps) naming the frames.
            pixels: [T, 3, h, w] float32 in [-1, 1] at working resolution.

        Returns:
            latents [T, 4, h/8, w/8] (raw, not scaled, as the reference), clip [T, D] or None.
        """
        keys = [CacheKey(kind, object_key, fk, digest(p)) for fk, p in zip(frame_keys, pixels)]

        def encode_new(todo: list[int]) -> list[tuple]:
            # all new frames in one batched call each (never a per-frame loop)
            with self.times("encode"):
                latents = self.vae_encode(
                    kind, object_key, [frame_keys[i] for i in todo], pixels[todo]
                )
            if not with_clip:
                return [(x, None) for x in latents]
            with self.times("clip"):
                clip = self.clip_embed(pixels[todo])
            return list(zip(latents, clip))

        cached = cached_batch(cache, keys, encode_new)
        latents = torch.stack([entry[0] for entry in cached])
        clip = torch.stack([entry[1] for entry in cached]) if with_clip else None
        return latents, clip

    @torch.no_grad()
    def vae_encode(
        self, kind: str, object_key: Hashable, frame_keys: Sequence[Hashable], pixels: np.ndarray
    ) -> torch.Tensor:
        """Conditioning latents of T frames in one call, uncached.

        Args:
            kind, object_key, frame_keys: name the frames; they seed each frame's noise
                augmentation, so a frame's latent does not depend on batching or caching.
            pixels: [T, 3, h, w] float32 in [-1, 1].

        Returns:
            [T, 4, h/s, w/s] posterior mode, not scaled (as the reference), in the UNet dtype.
        """
        vae = self.c.vae
        # Noise augmentation, seeded per frame so results do not depend on batching or caching.
        noise = np.stack(
            [
                _randn(
                    pixels.shape[1:], stable_seed(self.config.seed, "aug", kind, object_key, fk)
                )
                for fk in frame_keys
            ]
        )
        augmented = pixels + self.config.noise_aug_strength * noise
        x = torch.from_numpy(augmented).to(self.device, vae.dtype)
        # [T, 3, h, w] -> [T, 4, h/8, w/8]; posterior mode, not scaled (as the reference)
        return vae.encode(x).latent_dist.mode().to(self.dtype)

    @torch.no_grad()
    def clip_embed(self, pixels: np.ndarray) -> torch.Tensor:
        """CLIP image embeddings of T frames in one call, uncached: [T, 3, h, w] float32 in
        [-1, 1] -> [T, D] in the UNet dtype (resized and normalised as SVD's pipeline)."""
        size = self.c.clip_size
        x = torch.from_numpy(pixels).to(self.device, torch.float32)
        x = _resize_with_antialiasing(x, (size, size))  # on [-1, 1], as SVD's pipeline
        x = (x + 1.0) / 2.0
        mean = torch.tensor(self.c.clip_mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.c.clip_std, device=self.device).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(self.c.image_encoder.dtype)
        return self.c.image_encoder(x).image_embeds.to(self.dtype)  # [T, D]


def _randn(shape, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).numpy()
