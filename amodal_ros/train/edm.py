"""The reference's EDM training objective for the SVD UNet (diffusion-vas).

Noise level sigma ~ log-normal(0.7, 1.6); noisy = x0 + sigma * eps; the UNet sees the noisy
latents scaled by c_in = 1 / sqrt(sigma^2 + 1), concatenated with the conditioning latents, at
timestep c_noise = 0.25 ln sigma (the SVD scheduler's continuous timesteps, so sampling with
`EulerDiscreteScheduler` matches); denoised = c_out * F + c_skip * noisy with
c_out = -sigma / sqrt(sigma^2 + 1), c_skip = 1 / (sigma^2 + 1); loss = mean of
(1 + sigma^2) / sigma^2 * (denoised - x0)^2.
"""

from __future__ import annotations

import torch

P_MEAN, P_STD = 0.7, 1.6  # training noise-level distribution (log-normal)
COND_P_MEAN, COND_P_STD = -3.0, 0.5  # conditioning-augmentation noise level (log-normal)
DROPOUT_P = 0.1  # conditioning dropout (InstructPix2Pix scheme)


def sample_sigmas(
    batch: int, generator: torch.Generator | None = None, mean: float = P_MEAN, std: float = P_STD
) -> torch.Tensor:
    """[B] noise levels, log-normal(mean, std), on the CPU (move them with the batch)."""
    return torch.exp(mean + std * torch.randn(batch, generator=generator))


def edm_loss(
    unet,
    target: torch.Tensor,
    cond_latents: torch.Tensor,
    context: torch.Tensor,
    added_time_ids: torch.Tensor,
    sigmas: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """The weighted EDM denoising loss of one batch.

    Args:
        unet: a PerFrameUNet (in_channels = 4 + conditioning channels).
        target: [B, F, 4, h, w] clean latents x0 (amodal-mask latents x the VAE scaling factor).
        cond_latents: [B, F, C, h, w] raw conditioning latents (masks, depth).
        context: [B*F, tokens, dim] per-frame CLIP context.
        added_time_ids: [B, 3] (fps, motion bucket, conditioning noise level).
        sigmas: [B] noise levels (`sample_sigmas`).
        noise: [B, F, 4, h, w] standard normal noise.

    Returns:
        a scalar tensor.
    """
    sigma = sigmas.to(target)[:, None, None, None, None]  # [B] -> [B, 1, 1, 1, 1]
    noisy = target + sigma * noise
    c_in = 1.0 / torch.sqrt(sigma**2 + 1.0)
    c_out = -sigma / torch.sqrt(sigma**2 + 1.0)
    c_skip = 1.0 / (sigma**2 + 1.0)
    c_noise = 0.25 * torch.log(sigmas.to(target))  # [B]
    model_in = torch.cat([noisy * c_in, cond_latents.to(target)], dim=2)  # [B, F, 4 + C, h, w]
    pred = unet(model_in, c_noise, context, added_time_ids, return_dict=False)[0]
    denoised = c_out * pred + c_skip * noisy
    weight = (1.0 + sigma**2) / sigma**2
    return torch.mean(weight * (denoised - target) ** 2)


def conditioning_dropout(
    context: torch.Tensor,
    cond_latents: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = DROPOUT_P,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the CLIP context of a sample when r < 2p, its conditioning latents when
    p <= r < 3p (r uniform per sample): both are dropped for p <= r < 2p, as the reference
    does, so the model learns the unconditional branch classifier-free guidance needs.

    Args:
        context: [B*F, tokens, dim]; cond_latents: [B, F, C, h, w].
    """
    b, f = cond_latents.shape[:2]
    r = torch.rand(b, generator=generator)
    keep_context = (r >= 2 * p).to(context)[:, None, None, None]  # [B, 1, 1, 1]
    keep_cond = ~((r >= p) & (r < 3 * p))
    context = (context.reshape(b, f, *context.shape[1:]) * keep_context).flatten(0, 1)
    cond_latents = cond_latents * keep_cond.to(cond_latents)[:, None, None, None, None]
    return context, cond_latents


def set_trainable(unet, everything: bool = False) -> list[torch.nn.Parameter]:
    """Freeze all but the temporal transformer blocks, the input convolution (the reference
    trains only those, not the temporal resnets; `everything` for a UNet trained from scratch)
    and a space-time attention (new weights, which mix frames too); returns the trainable
    ones."""
    params = []
    for name, p in unet.named_parameters():
        train = (
            everything
            or "temporal_transformer_block" in name
            or name.startswith(("conv_in.", "space_time."))
        )
        p.requires_grad_(train)
        if train:
            params.append(p)
    return params
