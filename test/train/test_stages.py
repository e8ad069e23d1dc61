"""The embedded model's recipe on a tiny run: vae -> masks only -> mask + depth, and stage 2
on self-supervised pairs, each stage starting from the previous one's checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import fit_fixed_batch

from amodal_ros.models.layout import load_components
from amodal_ros.train.batches import Batches
from amodal_ros.train.loop import TrainConfig, _starting_components, train
from amodal_ros.train.windows import WindowRenderer

SMALL = dict(steps=2, num_frames=4, height=32, width=64, lr=1e-3, save_every=2, progress=False)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stages") / "vae"
    train(TrainConfig(stage="vae", out=str(out), **SMALL))
    return out / "final"


def test_vae_stage_fits_the_latent_scaling_factor(vae_run):
    """Mask latents are scaled to unit variance, as SVD's 0.18215 was fitted to its VAE."""
    components = load_components(vae_run)
    factor = components.vae.config.scaling_factor
    assert factor != pytest.approx(0.18215)
    batches = Batches(components, TrainConfig(**SMALL), "cpu")
    rng = np.random.default_rng(5)
    windows = [batches.render.window(rng)[1] for _ in range(6)]
    latents = torch.cat([mean for mean, _ in batches._encode(windows)])
    assert float((latents * factor).std()) == pytest.approx(1.0, rel=0.35)


def test_masks_only_then_depth_starts_from_the_same_function(vae_run, tmp_path):
    masks_out = tmp_path / "masks"
    cfg = dict(SMALL, init=str(vae_run), fresh_unet=True, trainable="all")
    train(TrainConfig(stage="amodal", depth=False, out=str(masks_out), **cfg))
    mask_only = load_components(masks_out / "final")
    assert mask_only.unet.config.in_channels == 8 and mask_only.num_conditions == 1
    # the VAE and image encoder are the pretrained ones, untouched by stage 1
    vae_before = load_components(vae_run).vae.state_dict()
    assert all(torch.equal(v, mask_only.vae.state_dict()[k]) for k, v in vae_before.items())

    depth_cfg = TrainConfig(stage="amodal", depth=True, init=str(masks_out / "final"), **SMALL)
    with_depth = _starting_components(depth_cfg)
    assert with_depth.unet.config.in_channels == 12
    torch.manual_seed(0)
    x8 = torch.randn(1, 4, 8, 4, 8)
    x12 = torch.cat([x8, torch.randn(1, 4, 4, 4, 8)], dim=2)  # any depth latents
    context, ids = torch.randn(4, 4, 32), torch.tensor([[8.0, 127.0, 0.02]])
    with torch.no_grad():
        before = mask_only.unet(x8, torch.tensor([0.3]), context, ids).sample
        after = with_depth.unet(x12, torch.tensor([0.3]), context, ids).sample
    torch.testing.assert_close(after, before)


def test_a_mask_only_checkpoint_cannot_start_stage_2(vae_run, tmp_path):
    masks_out = tmp_path / "masks"
    cfg = dict(SMALL, init=str(vae_run), fresh_unet=True)
    train(TrainConfig(stage="amodal", depth=False, out=str(masks_out), **cfg))
    # a stage's checkpoint records its stage (inference refuses it for the other one), an
    # autoencoder run's none (either stage may start from it); training takes any
    index = json.loads((masks_out / "final" / "model_index.json").read_text())
    assert index["amodal_ros"]["stage"] == 1
    assert "stage" not in json.loads((vae_run / "model_index.json").read_text()).get(
        "amodal_ros", {}
    )
    bad = TrainConfig(stage="completion", init=str(masks_out / "final"), **SMALL)
    with pytest.raises(ValueError, match="takes 8 input channels; stage 'completion' needs 12"):
        _starting_components(bad)


def test_completion_pairs_hide_part_of_a_whole_object(vae_run):
    """Stage-2 batches: the condition is the object's visible RGB on white, the target the whole
    object on white; pasting hid enough of it (modal/amodal IoU < 0.7), and what is visible in
    the condition is the target's appearance there."""
    config = TrainConfig(stage="completion", **dict(SMALL, num_frames=6))
    render = WindowRenderer(config)
    rng = np.random.default_rng(3)
    for _ in range(3):
        target, (modal_rgb, amodal), clip_input, _ = render.completion_window(rng)
        assert clip_input is modal_rgb
        target, modal_rgb = target.transpose(0, 2, 3, 1), modal_rgb.transpose(0, 2, 3, 1)
        whole = amodal[:, 0] > 0  # [F, h, w] amodal mask (+1 inside)
        visible = (modal_rgb < 0.99).any(-1)  # not white: the object's visible pixels
        assert (target[~whole] > 0.99).all()  # whole object on white
        assert not (visible & ~whole).any()
        assert visible.sum() / whole.sum() < 0.75  # hidden enough (resizing blurs edges)
        inner = visible & whole
        assert np.abs(modal_rgb[inner] - target[inner]).mean() < 0.1  # sensor noise only


def test_the_hidden_share_is_the_whole_object_less_what_shows(vae_run):
    """A student's `hidden_weight` map: zero outside the object and where it shows, the
    hidden area in all; in latents each cell takes its pixels' largest share."""
    import torch.nn.functional as F

    from amodal_ros.train.windows import hidden_share

    components = load_components(vae_run)
    config = TrainConfig(stage="completion", **dict(SMALL, num_frames=6))
    batches = Batches(components, config, "cpu")
    rng = np.random.default_rng(5)
    _, (_, amodal), _, visible = batches.render.completion_window(rng)
    share = hidden_share(amodal, visible)[:, 0]  # [F, h, w]
    whole, shows = (amodal[:, 0] + 1) / 2, (visible[:, 0] + 1) / 2
    assert (share[whole == 0] == 0).all() and (share[shows == 1] == 0).all()
    assert share.sum() == pytest.approx(whole.sum() - shows.sum(), rel=1e-4)
    assert share.sum() > 0.3 * whole.sum()  # pairs hide at least 30 % of the object
    # the same window as a training item: its latent cells carry their pixels' largest share
    target, _, _, _, hidden = batches._item(0, 0, np.random.default_rng(5), torch.Generator())
    assert hidden.shape == (6, 1, *target.shape[-2:])
    pooled = F.adaptive_max_pool2d(torch.from_numpy(share)[:, None], target.shape[-2:])
    assert torch.equal(hidden, pooled)


def test_completion_training_lowers_the_loss_on_a_fixed_batch(vae_run):
    from amodal_ros.train.edm import edm_loss, set_trainable

    config = TrainConfig(stage="completion", init=str(vae_run), fresh_unet=True, **SMALL)
    components = _starting_components(config)
    batches = Batches(components, config, "cpu")
    target, cond, context, ids, sigmas, noise = batches.sample(0, range(1))
    unet = components.unet.train()
    params = set_trainable(unet, everything=True)
    losses = fit_fixed_batch(
        lambda: edm_loss(unet, target, cond, context, ids, sigmas, noise), params, 16, 1e-3
    )
    assert losses[-1] < 0.7 * losses[0], losses


def test_encoded_windows_are_reused_only_when_asked(vae_run):
    components = load_components(vae_run)
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    fresh = Batches(components, TrainConfig(**SMALL, depth=True), "cpu")
    fresh._pooled(0, 0, rng, generator)
    assert fresh.pools[0] == []  # sample_reuse 1: every window is new, nothing is kept
    reused = Batches(components, TrainConfig(**SMALL, depth=True, sample_reuse=100), "cpu")
    reused.pools[0] = [reused._item(0, 0, rng, generator)] * reused.pool_size  # a full pool
    item = reused._pooled(0, 0, rng, generator)
    assert item is reused.pools[0][0]  # 99 % of draws: an encoded window from the pool
    batch = reused.sample(0, range(1))
    assert batch[0].shape[0] == 1 and reused.pools.keys() == {0}


def test_a_batch_item_is_the_same_whichever_process_draws_it(vae_run):
    """Items are seeded by (seed, step, position): two processes drawing positions 0 and 1
    get exactly the halves of the batch one process draws, noise and dropout included."""
    components = load_components(vae_run)
    config = TrainConfig(**SMALL, depth=True, batch_size=2)
    whole = Batches(components, config, "cpu").sample(3, range(2))
    first = Batches(components, config, "cpu").sample(3, range(0, 1))
    second = Batches(components, config, "cpu").sample(3, range(1, 2))
    frames = config.num_frames
    for i, (a, b, c) in enumerate(zip(whole, first, second)):
        split = frames if i == 2 else 1  # context is [B * F, F, D]
        assert torch.equal(a[:split], b) and torch.equal(a[split:], c), i
    other_step = Batches(components, config, "cpu").sample(4, range(2))
    assert not torch.equal(whole[0], other_step[0])


def test_a_decoder_fine_tune_keeps_the_latents_every_model_was_trained_in(vae_run, tmp_path):
    """trainable decoder: the encoder, its latents and the scaling factor stay bit for bit,
    so stages and students trained in them stay valid; only the decoder learns."""
    out = tmp_path / "decoder"
    train(TrainConfig(stage="vae", init=str(vae_run), trainable="decoder", out=str(out), **SMALL))
    before, after = load_components(vae_run).vae, load_components(out / "final").vae
    old, new = before.state_dict(), after.state_dict()
    decoder = [k for k in old if k.startswith("decoder.")]
    assert any(not torch.equal(old[k], new[k]) for k in decoder)
    assert all(torch.equal(old[k], new[k]) for k in old if k not in decoder)
    assert after.config.scaling_factor == before.config.scaling_factor


def _looks_like(frames: torch.Tensor) -> str:
    """'appearance' for an object's RGB on white (white background, colour), else 'other'
    (masks at -1 outside the object, depth in grey)."""
    white = bool(frames.median() == 1.0)
    colour = bool((frames[:, 0] != frames[:, 1]).any())
    return "appearance" if white and colour else "other"


def test_the_autoencoders_whole_object_frames_are_its_appearance_not_its_occluders(monkeypatch):
    """Stage 2's target is the object unoccluded; the scene's own pixels inside the amodal
    outline show whatever hides it (a hand, a pole) there instead."""
    from amodal_ros.pipeline.preprocess import modal_rgb_pixels
    from amodal_ros.train import batches as batching

    monkeypatch.setitem(batching.FRAME_KINDS, "appearance", (0.0, 0.0, 0.0, 0.0, 1.0))  # whole
    config = TrainConfig(stage="vae", vae_frames="appearance", **SMALL)
    batches = Batches(_starting_components(config), config, "cpu")
    hidden_parts = 0
    for seed in range(6):
        frames = batches.frames(np.random.default_rng(seed)).numpy()
        rng = np.random.default_rng(seed)  # the same draws: the kind, the scene, the object
        rng.choice(5, p=batching.FRAME_KINDS["appearance"])
        clip = batches.render.scene(rng)
        i = clip.target_ids[int(rng.integers(len(clip.target_ids)))]
        size = config.height, config.width
        look = modal_rgb_pixels(clip.appearance[i][..., :3], clip.amodal[i], *size)
        np.testing.assert_array_equal(frames, look)
        hidden_parts += not np.array_equal(look, modal_rgb_pixels(clip.rgb, clip.amodal[i], *size))
    assert hidden_parts > 0  # the scene differs from the appearance where the object is hidden


def test_stage_2s_own_autoencoder_learns_appearance_in_a_wider_latent(tmp_path):
    config = TrainConfig(
        stage="vae", vae_frames="appearance", latent_channels=8, out=str(tmp_path / "vae"), **SMALL
    )
    components = _starting_components(config)
    assert components.latent_channels == 8 and components.unet.config.in_channels == 24
    drawn = {
        what: {
            _looks_like(Batches(components, c, "cpu").frames(np.random.default_rng(s)))
            for s in range(12)
        }
        for what, c in (("appearance", config), ("all", config.replace(vae_frames="all")))
    }
    assert drawn == {"appearance": {"appearance"}, "all": {"appearance", "other"}}
    train(config)
    # its scaling factor brings stage 2's targets (whole objects on white) to unit variance,
    # not amodal masks, which it never learns
    vae = load_components(tmp_path / "vae" / "final")
    batches = Batches(vae, config, "cpu")
    rng = np.random.default_rng(config.seed)  # the draws the fit made
    whole = [batches.pixels(rng, 4) for _ in range(8)]
    latents = torch.cat([mean for mean, _ in batches._encode(whole)])
    assert vae.vae.config.scaling_factor == pytest.approx(float(1 / latents.std()), rel=1e-5)
    stage2 = TrainConfig(
        stage="completion",
        init=str(tmp_path / "vae" / "final"),
        fresh_unet=True,
        out=str(tmp_path / "stage2"),
        **SMALL,
    )
    train(stage2)
    trained = load_components(tmp_path / "stage2" / "final")
    assert trained.latent_channels == 8 and trained.num_conditions == 2
    assert trained.unet.config.out_channels == 8


@pytest.mark.parametrize(
    "settings, refusal",
    [
        (dict(stage="vae", init="x", latent_channels=8), "leave latent_channels at 4"),
        (dict(stage="completion", vae_frames="appearance"), "chooses what an autoencoder learns"),
    ],
)
def test_a_latent_width_and_frame_choice_apply_where_they_mean_something(settings, refusal):
    with pytest.raises(ValueError, match=refusal):
        TrainConfig(**settings)


@pytest.mark.parametrize("extra", [dict(stage="amodal", init="x"), dict(stage="vae", init="")])
def test_only_a_trained_autoencoder_fine_tunes_its_decoder(extra):
    with pytest.raises(ValueError, match="trainable decoder .* needs stage vae and init"):
        TrainConfig(trainable="decoder", **extra)


def test_a_missing_init_says_which_run_comes_first(tmp_path):
    """The checkpoint loader's advice (download a published checkpoint) is not the fix for a
    stage whose autoencoder run was never made."""
    from amodal_ros.core.errors import InputError

    config = TrainConfig(stage="amodal", init=str(tmp_path / "vae" / "final"), **SMALL)
    with pytest.raises(InputError, match="config/train_vae.yaml --out train_out/vae first"):
        _starting_components(config)


def test_nearest_resize_targets_have_no_dark_rim():
    """mask_resize 'nearest' shrank an object's appearance (black beyond its mask) before
    putting it on white: every edge pixel of stage 2's target averaged in black (33 of 255
    darker at 128x256 -> 32x64), which no camera image shows."""
    from amodal_ros.data.scenes import make_scene
    from amodal_ros.pipeline.preprocess import WHITE, modal_rgb_pixels
    from amodal_ros.train.windows import object_on_white

    clip = make_scene(11, height=128, width=256)
    i = clip.target_ids[0]
    amodal, look = clip.amodal[i], clip.appearance[i][..., :3]
    on_white = np.where(amodal[..., None], look, np.uint8(WHITE))
    expected = modal_rgb_pixels(on_white, amodal, 32, 64, "nearest")
    np.testing.assert_array_equal(object_on_white(clip, i, True, 32, 64, "nearest"), expected)
