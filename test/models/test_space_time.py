"""Attention across space and time at the UNet's coarsest level (`space_time_heads`)."""

from __future__ import annotations

import pytest
import torch

from amodal_ros.models.architectures import unet_config
from amodal_ros.models.layout import load_unet
from amodal_ros.models.unet import PerFrameUNet, SpaceTimeAttention, positions, with_space_time

FRAMES = 4


def _inputs(unet):
    torch.manual_seed(1)
    sample = torch.randn(1, FRAMES, unet.config.in_channels, 8, 16)
    context = torch.randn(FRAMES, 1, unet.config.cross_attention_dim)
    return sample, torch.tensor(1.0), context, torch.zeros(1, 3)


def test_added_to_a_trained_unet_it_changes_nothing_until_it_trains(tmp_path):
    torch.manual_seed(0)
    unet = PerFrameUNet(**unet_config("tiny", 12, width=64)).eval()
    grown = with_space_time(unet, 4).eval()
    assert grown.config.space_time_heads == 4 and unet.space_time is None
    with torch.no_grad():
        assert torch.equal(unet(*_inputs(unet)).sample, grown(*_inputs(unet)).sample)
    # it trains: its output projection gets a gradient from the first step
    grown(*_inputs(unet)).sample.square().mean().backward()
    assert grown.space_time.attention.to_out[0].weight.grad.abs().sum() > 0
    # saved and loaded as every UNet is (the config key and the block's weights)
    with torch.no_grad():
        grown.space_time.attention.to_out[0].weight.normal_()
    grown.save_pretrained(tmp_path / "unet", safe_serialization=True)
    loaded = load_unet(tmp_path / "unet").eval()
    with torch.no_grad():  # float32 rounding, not equality: on AMD EPYC the two differ by 1e-6
        torch.testing.assert_close(
            loaded(*_inputs(unet)).sample, grown(*_inputs(unet)).sample, rtol=1e-4, atol=1e-5
        )
    with pytest.raises(ValueError, match="already has"):
        with_space_time(grown, 4)
    with pytest.raises(ValueError, match="already has"):
        with_space_time(grown, 2, causal=True)


def test_every_position_sees_every_other_across_frames():
    """Unlike SVD's temporal attention (one position over time), a change at one frame and
    position reaches another frame at another position."""
    torch.manual_seed(0)
    block = SpaceTimeAttention(64, heads=2).eval()
    with torch.no_grad():
        block.attention.to_out[0].weight.normal_()
    hidden = torch.randn(FRAMES, 64, 4, 8)  # [B*F, C, h, w], one window
    moved = hidden.clone()
    moved[3, :, 0, 0] += 5.0  # the last frame, top-left
    with torch.no_grad():
        a, b = block(hidden, FRAMES), block(moved, FRAMES)
    assert (a[0, :, 3, 7] - b[0, :, 3, 7]).abs().max() > 1e-3  # the first frame, bottom-right


def test_positions_tell_every_frame_row_and_column_apart():
    codes = positions(FRAMES, 4, 8, 64)
    assert codes.shape == (FRAMES * 4 * 8, 64)
    assert len(torch.unique(codes, dim=0)) == FRAMES * 4 * 8


def test_causal_attention_sees_the_past_only():
    """Causal: a change at a window's last frame reaches none of its earlier frames, a change
    at its first frame reaches the last; windows of a batch stay apart. Made causal, a UNet
    keeps its weights and saves the key."""
    torch.manual_seed(0)
    block = SpaceTimeAttention(64, heads=2, causal=True).eval()
    with torch.no_grad():
        block.attention.to_out[0].weight.normal_()
    hidden = torch.randn(2 * FRAMES, 64, 4, 8)  # two windows
    moved = hidden.clone()
    moved[FRAMES - 1, :, 0, 0] += 5.0  # window 0's last frame
    moved[FRAMES, :, 0, 0] += 5.0  # window 1's first frame
    with torch.no_grad():
        change = (block(hidden, FRAMES) - block(moved, FRAMES)).abs().amax(dim=(1, 2, 3))
    assert change[: FRAMES - 1].max() == 0 and change[FRAMES - 1] > 1e-3
    assert change[FRAMES:].min() > 1e-3

    unet = with_space_time(PerFrameUNet(**unet_config("tiny", 12, width=64)), 4)
    causal = with_space_time(unet, 4, causal=True)
    assert causal.config.space_time_causal and causal.space_time.causal
    assert all(
        torch.equal(a, b) for a, b in zip(unet.state_dict().values(), causal.state_dict().values())
    )
