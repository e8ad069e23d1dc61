"""From a mask-only stage-1 UNet (8 input channels) to mask+depth (12), without changing it."""

from __future__ import annotations

import torch


def add_depth_channels(unet, extra: int = 4):
    """A copy of `unet` whose input convolution takes `extra` more channels (the depth
    latents), zero-initialised: the new model computes exactly what the old one did until
    training moves those weights (diffusion-vas: weights copied for the first channels, zero
    for the new ones, bias copied).
    """
    old = unet.conv_in
    config = dict(unet.config)
    config["in_channels"] = old.in_channels + extra
    new_unet = type(unet).from_config(config)
    state = unet.state_dict()
    weight = torch.zeros(
        old.out_channels, old.in_channels + extra, *old.kernel_size, dtype=old.weight.dtype
    )
    weight[:, : old.in_channels] = old.weight.detach()
    state["conv_in.weight"] = weight
    new_unet.load_state_dict(state)
    return new_unet.to(device=old.weight.device, dtype=old.weight.dtype)
