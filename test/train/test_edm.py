"""The training objective and the depth-channel expansion, on tiny real UNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import fit_fixed_batch

from amodal_ros.models.architectures import SVD_SCHEDULER_CONFIG, unet_config
from amodal_ros.models.unet import PerFrameUNet
from amodal_ros.train.depth_channels import add_depth_channels
from amodal_ros.train.edm import conditioning_dropout, edm_loss, sample_sigmas, set_trainable

B, F, H, W = 2, 4, 8, 16  # batch, frames, latent size


def _unet(in_channels: int, seed: int = 0) -> PerFrameUNet:
    torch.manual_seed(seed)
    return PerFrameUNet(**unet_config("tiny", in_channels))


def _batch(cond_channels: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(B, F, 4, H, W, generator=g)
    cond = torch.randn(B, F, cond_channels, H, W, generator=g)
    context = torch.randn(B * F, 1, 32, generator=g)
    ids = torch.tensor([[8.0, 127.0, 0.02]] * B)
    return target, cond, context, ids


def test_depth_channels_start_as_the_mask_only_model():
    unet8 = _unet(8).eval()
    unet12 = add_depth_channels(unet8).eval()
    assert unet12.config.in_channels == 12
    assert (unet12.conv_in.weight[:, 8:] == 0).all()
    assert torch.equal(unet12.conv_in.bias, unet8.conv_in.bias)
    _, cond, context, ids = _batch(4)
    noisy = torch.randn(B, F, 4, H, W)
    with torch.no_grad():
        before = unet8(torch.cat([noisy, cond], 2), 1.0, context, ids).sample
        for depth_seed in (1, 2):  # whatever the depth latents are
            depth = torch.randn(B, F, 4, H, W, generator=torch.Generator().manual_seed(depth_seed))
            after = unet12(torch.cat([noisy, cond, depth], 2), 1.0, context, ids).sample
            torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_c_noise_is_the_schedulers_timestep():
    """Training's timestep for a sigma is what the SVD Euler scheduler feeds the UNet, so a
    model trained here samples correctly with the inference pipeline."""
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG)
    scheduler.set_timesteps(5)
    sigmas = scheduler.sigmas[:-1]
    torch.testing.assert_close(scheduler.timesteps.float(), 0.25 * torch.log(sigmas.float()))


def test_sigmas_follow_the_log_normal():
    s = sample_sigmas(20000, torch.Generator().manual_seed(0))
    assert abs(float(torch.log(s).mean()) - 0.7) < 0.05
    assert abs(float(torch.log(s).std()) - 1.6) < 0.05


def test_conditioning_dropout_follows_the_reference_scheme():
    b = 4000
    context = torch.ones(b * 1, 1, 2)
    cond = torch.ones(b, 1, 4, 2, 2)
    g = torch.Generator().manual_seed(0)
    r = torch.rand(b, generator=torch.Generator().manual_seed(0))
    ctx_out, cond_out = conditioning_dropout(context, cond, g, p=0.1)
    ctx_dropped = ctx_out.reshape(b, -1).sum(1) == 0
    cond_dropped = cond_out.reshape(b, -1).sum(1) == 0
    assert torch.equal(ctx_dropped, r < 0.2)
    assert torch.equal(cond_dropped, (r >= 0.1) & (r < 0.3))
    both = ctx_dropped & cond_dropped
    assert abs(float(both.float().mean()) - 0.1) < 0.02  # p <= r < 2p: fully unconditional


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    unet = _unet(12).train()
    frozen_before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    params = set_trainable(unet)
    trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert "conv_in.weight" in trainable and any("temporal_transformer" in n for n in trainable)
    assert not any("temporal_res_block" in n for n in trainable)  # as the reference: frozen
    assert not any(n.startswith("down_blocks.0.resnets.0.spatial") for n in trainable)
    target, cond, context, ids = _batch(8)
    sigmas = torch.tensor([0.5, 2.0])
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
    losses = fit_fixed_batch(
        lambda: edm_loss(unet, target, cond, context, ids, sigmas, noise), params, 15, 3e-3
    )
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses
    for n, p in unet.named_parameters():
        if n not in trainable:
            assert torch.equal(p, frozen_before[n]), n


def test_loss_weighting_by_hand():
    """With a UNet that outputs zeros, denoised = c_skip * noisy and the loss is known."""

    class Zero(torch.nn.Module):
        def forward(self, sample, timestep, context, ids, return_dict=False):
            return (torch.zeros_like(sample[:, :, :4]),)

    target = torch.ones(1, 1, 4, 1, 1)
    noise = torch.zeros_like(target)
    sigma = torch.tensor([1.0])
    # noisy = 1; c_skip = 1/2 -> denoised = 0.5; weight = 2 -> loss = 2 * 0.25 = 0.5
    loss = edm_loss(Zero(), target, torch.zeros(1, 1, 0, 1, 1), None, None, sigma, noise)
    assert float(loss) == pytest.approx(0.5)
