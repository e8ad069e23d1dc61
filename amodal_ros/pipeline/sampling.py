"""EDM/Euler sampling of the SVD UNet with per-frame conditioning and classifier-free guidance."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import EulerDiscreteScheduler
from tqdm.auto import tqdm


def cross_attention_context(clip: torch.Tensor, mode: str, guided: bool) -> torch.Tensor:
    """Per-frame cross-attention context for a batch of windows.

    Args:
        clip: [B, F, D] per-frame CLIP embeddings of the conditioning frames.
        mode: "consistent" or "reference" (see InferenceConfig).
        guided: whether the UNet batch is [uncond B, cond B] (classifier-free guidance).

    Returns:
        [(2 if guided else 1) * B * F, tokens, D], rows in the UNet's batch*frame order.
    """
    b, f, d = clip.shape
    if mode == "consistent":
        # Training-consistent: every frame attends to all F embeddings of its window.
        cond = clip[:, None].expand(b, f, f, d).reshape(b * f, f, d)  # [B*F, F, D]
        return torch.cat([torch.zeros_like(cond), cond]) if guided else cond
    if mode != "reference":
        raise ValueError(f"conditioning mode must be 'consistent' or 'reference', got {mode!r}")
    tokens = clip.reshape(b, f, 1, d)  # one token per frame
    if not guided:
        return tokens.reshape(b * f, 1, d)
    # The reference builds [zeros, emb_f] per frame and concatenates over frames, giving
    # [z, e0, z, e1, ...] (2F rows) against a latent batch [uncond f0..fF-1, cond f0..fF-1]:
    # reproduced per window, so uncond frame i gets row i and cond frame i gets row F + i.
    pairs = torch.stack([torch.zeros_like(tokens), tokens], dim=2).reshape(b, 2 * f, 1, d)
    return torch.cat([pairs[:, :f].reshape(b * f, 1, d), pairs[:, f:].reshape(b * f, 1, d)])


def guidance_ramp(min_scale: float, max_scale: float, num_frames: int) -> torch.Tensor:
    """[F] guidance scales, linear from the first to the last frame (SVD's ramp)."""
    return torch.linspace(min_scale, max_scale, num_frames)


def warm_start_step(num_steps: int, share: float) -> int:
    """Index of the first step run by a warm start that runs `share` of `num_steps` (at least
    one step); 0 (a cold start) when share is 0 or 1."""
    if share <= 0.0 or share >= 1.0:
        return 0
    return num_steps - max(1, round(num_steps * share))


def denoise(
    predict: Callable[..., torch.Tensor],
    scheduler_config: dict,
    noise: torch.Tensor,
    cond_latents: torch.Tensor,
    context: torch.Tensor,
    time_ids: torch.Tensor,
    num_steps: int,
    guidance: torch.Tensor | None,
    progress: bool = False,
    init: torch.Tensor | None = None,
    start_step: int = 0,
) -> torch.Tensor:
    """Euler sampling from unit noise (or from `init` re-noised) to clean latents.

    Gradients flow when `predict` has trainable weights: distillation (train/distill.py)
    trains a student through this very sampler; inference calls it under no_grad.

    Args:
        predict: the UNet on some backend: (sample, timestep, context, time_ids) -> prediction.
        noise: [B, F, 4, h, w] standard normal (scaled by the scheduler's initial sigma here).
        cond_latents: [B, F, C, h, w] conditioning latents (C = 4 or 8), zeroed for the
            unconditional branch.
        context: cross-attention context from `cross_attention_context`, matching `guidance`.
        time_ids: [3] added time ids (fps id, motion bucket, noise augmentation).
        guidance: [F] per-frame scales, or None for the unguided path (conditional branch only).
        init, start_step: warm start. `init` [B, F, 4, h, w] clean latents get noise at the
            sigma of step `start_step` (EDM: x + sigma * eps) and only the remaining steps run.

    Returns:
        [B, F, 4, h, w] latents (scaled space; divide by the VAE scaling factor to decode).
    """
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(num_steps, device=noise.device)
    timesteps = scheduler.timesteps
    if init is not None and start_step > 0:
        scheduler.set_begin_index(start_step)
        latents = init + noise * scheduler.sigmas[start_step].to(noise.dtype)
        timesteps = timesteps[start_step:]
    else:
        latents = noise * scheduler.init_noise_sigma
    b = latents.shape[0]
    if guidance is not None:
        cond_latents = torch.cat([torch.zeros_like(cond_latents), cond_latents])
        scale = guidance.to(latents.device, latents.dtype).view(1, -1, 1, 1, 1)
    ids = time_ids.to(latents.device, latents.dtype).expand(cond_latents.shape[0], -1)
    for t in tqdm(timesteps, desc="denoise", leave=False, disable=not progress):
        model_in = torch.cat([latents] * 2) if guidance is not None else latents
        model_in = scheduler.scale_model_input(model_in, t)
        model_in = torch.cat([model_in, cond_latents], dim=2)  # [B', F, 4 + C, h, w]
        pred = predict(model_in, t, context, ids)
        if guidance is not None:
            uncond, cond = pred[:b], pred[b:]
            pred = uncond + scale * (cond - uncond)
        latents = scheduler.step(pred, t, latents).prev_sample
    return latents


def decode(vae, latents: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """[B, F, 4, h, w] -> [B, F, 3, H, W] float32 in about [-1, 1], temporal decoder in chunks.
    A pixel-space student trains through it; inference calls it under no_grad."""
    b = latents.shape[0]
    scaled = latents.to(vae.dtype) / vae.config.scaling_factor
    chunks = []
    # Chunks follow each window's own frames (a chunk never mixes two objects' windows, which
    # the temporal decoder would blend); all windows of a chunk decode in one batched call.
    for window in scaled.split(chunk_size, dim=1):  # [B, c, 4, h, w]
        c = window.shape[1]
        out = vae.decode(window.flatten(0, 1), num_frames=c).sample  # [B*c, 3, H, W]
        chunks.append(out.reshape(b, c, *out.shape[1:]))
    return torch.cat(chunks, dim=1).float()
