"""Per-frame cross-attention context in both conditioning modes, and the ported UNet forward."""

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from amodal_ros.models.architectures import unet_config
from amodal_ros.models.unet import PerFrameUNet
from amodal_ros.pipeline.sampling import cross_attention_context

F, D = 5, 3


def embeddings(b=1):
    return torch.arange(1, b * F * D + 1, dtype=torch.float32).reshape(b, F, D)


def test_consistent_mode_gives_every_frame_the_whole_window_and_zeros_unconditional():
    clip = embeddings(b=2)
    ctx = cross_attention_context(clip, "consistent", guided=True)
    assert ctx.shape == (2 * 2 * F, F, D)  # [uncond B*F, cond B*F] rows, F tokens each
    assert torch.count_nonzero(ctx[: 2 * F]) == 0
    for b in range(2):
        for f in range(F):
            assert torch.equal(ctx[2 * F + b * F + f], clip[b])
    unguided = cross_attention_context(clip, "consistent", guided=False)
    assert torch.equal(unguided, ctx[2 * F :])


def test_an_unknown_conditioning_mode_is_refused():
    with pytest.raises(ValueError, match="'consistent' or 'reference', got 'bogus'"):
        cross_attention_context(embeddings(), "bogus", guided=True)


def test_reference_mode_reproduces_the_reference_scrambled_pairing():
    clip = embeddings()
    # The reference: per frame [zeros, emb_f], concatenated over frames -> [z, e0, z, e1, ...]
    per_frame = [torch.cat([torch.zeros(1, 1, D), clip[0, f].view(1, 1, D)]) for f in range(F)]
    reference = torch.cat(per_frame)  # [2F, 1, D], fed against [uncond f0.., cond f0..]
    ctx = cross_attention_context(clip, "reference", guided=True)
    assert torch.equal(ctx, reference)
    # i.e. unconditional frame 1 sees e0, and conditional frame 0 (row F = 5) sees e2
    assert torch.equal(ctx[1, 0], clip[0, 0]) and torch.equal(ctx[F, 0], clip[0, 2])
    assert torch.equal(cross_attention_context(clip, "reference", guided=False)[:, 0], clip[0])


def test_reference_mode_scrambles_each_object_of_a_batch_like_a_single_run():
    clip = embeddings(b=3)
    batched = cross_attention_context(clip, "reference", guided=True)
    for b in range(3):
        single = cross_attention_context(clip[b : b + 1], "reference", guided=True)
        assert torch.equal(batched[b * F : (b + 1) * F], single[:F])  # unconditional rows
        assert torch.equal(batched[3 * F + b * F : 3 * F + (b + 1) * F], single[F:])


def test_per_frame_unet_equals_stock_unet_for_a_shared_context():
    torch.manual_seed(0)
    config = unet_config("tiny", in_channels=12)
    stock = UNetSpatioTemporalConditionModel(**config).eval()
    ours = PerFrameUNet(**config).eval()
    ours.load_state_dict(stock.state_dict())
    x = torch.randn(2, 3, 12, 8, 16)
    ctx = torch.randn(2, 4, 32)
    ids = torch.tensor([[8.0, 127.0, 0.02]] * 2)
    with torch.no_grad():
        expected = stock(x, 0.5, ctx, ids).sample
        shared = ours(x, 0.5, ctx, ids).sample
        per_frame = ours(x, 0.5, ctx.repeat_interleave(3, dim=0), ids).sample
        ctx_changed = ctx.repeat_interleave(3, dim=0).clone()
        ctx_changed[4] += 1.0  # only frame 1 of video 1 gets another context
        changed = ours(x, 0.5, ctx_changed, ids).sample
    torch.testing.assert_close(shared, expected)
    torch.testing.assert_close(per_frame, expected)
    assert not torch.allclose(changed[1, 1], expected[1, 1])
    torch.testing.assert_close(changed[0], expected[0])  # other videos are untouched
