"""Stage 1 (modal -> amodal) behaviour on tiny real models."""

import numpy as np
import pytest
import torch
from conftest import T

from amodal_ros.core import InputError, ObjectTrack
from amodal_ros.pipeline import AmodalSegmenter
from amodal_ros.pipeline.runner import WindowSampler
from amodal_ros.pipeline.sampling import cross_attention_context, denoise


def test_amodal_contains_modal_and_has_input_resolution(
    components12, tiny_config, tracks, inverse_depth
):
    results = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    assert [r.object_id for r in results] == [1, 7]
    for track, r in zip(tracks, results):
        assert r.amodal.shape == track.masks.shape and r.amodal.dtype == bool
        assert (r.amodal >= track.masks).all()  # union with the modal mask
        assert r.soft.dtype == np.float32 and r.soft.min() >= 0 and r.soft.max() <= 1
        assert (r.soft[track.masks] == 1).all()
        assert r.samples is None and r.disagreement is None


def test_same_seed_same_result_other_seed_other_result(
    components12, tiny_config, tracks, inverse_depth
):
    a = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    b = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    c = AmodalSegmenter(components12, tiny_config.replace(seed=5))(tracks, inverse_depth)
    np.testing.assert_array_equal(a[0].soft, b[0].soft)
    assert not np.array_equal(a[0].soft, c[0].soft)


@pytest.mark.parametrize("mode", ["consistent", "reference"])
def test_batched_objects_equal_sequential(components12, tiny_config, tracks, inverse_depth, mode):
    cfg = tiny_config.replace(conditioning_mode=mode, max_batch_objects=2)
    batched = AmodalSegmenter(components12, cfg)(tracks, inverse_depth)
    for track, expected in zip(tracks, batched):
        alone = AmodalSegmenter(components12, cfg.replace(max_batch_objects=1))(
            [track], inverse_depth
        )[0]
        np.testing.assert_allclose(alone.soft, expected.soft, atol=2e-3)
        assert (alone.amodal != expected.amodal).mean() < 1e-3


def test_conditioning_modes_differ(components12, tiny_config, tracks, inverse_depth):
    consistent = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    reference = AmodalSegmenter(components12, tiny_config.replace(conditioning_mode="reference"))(
        tracks, inverse_depth
    )
    assert not np.allclose(consistent[0].soft, reference[0].soft)


def test_guidance_one_equals_the_unguided_path(components12, tiny_config):
    sampler = WindowSampler(components12, tiny_config)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(2, T, 4, 4, 8, generator=gen)
    cond = torch.randn(2, T, 8, 4, 8, generator=gen)
    clip = torch.randn(2, T, 32, generator=gen)
    args = (sampler.predict, components12.scheduler_config, noise, cond)
    kwargs = dict(time_ids=sampler.time_ids(), num_steps=2)
    guided = denoise(
        *args, cross_attention_context(clip, "consistent", True), guidance=torch.ones(T), **kwargs
    )
    unguided = denoise(
        *args, cross_attention_context(clip, "consistent", False), guidance=None, **kwargs
    )
    torch.testing.assert_close(guided, unguided, atol=1e-3, rtol=1e-3)
    stronger = denoise(
        *args,
        cross_attention_context(clip, "consistent", True),
        guidance=torch.full((T,), 3.0),
        **kwargs,
    )
    assert not torch.allclose(stronger, unguided, atol=1e-3)


def test_guidance_config_of_one_runs_no_unconditional_branch(
    components12, tiny_config, tracks, inverse_depth
):
    calls = []
    hook = components12.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        AmodalSegmenter(components12, tiny_config.replace(min_guidance=1.0, max_guidance=1.0))(
            tracks, inverse_depth
        )
        AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    finally:
        hook.remove()
    steps = tiny_config.num_steps
    assert calls == [2] * steps + [4] * steps  # batch of 2 objects; doubled under guidance


def test_batch_size_is_bounded_by_config(components12, tiny_config, tracks, inverse_depth):
    calls = []
    hook = components12.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        AmodalSegmenter(components12, tiny_config.replace(max_batch_objects=1, num_samples=3))(
            tracks, inverse_depth
        )
    finally:
        hook.remove()
    assert set(calls) == {2} and len(calls) == 6 * tiny_config.num_steps  # 6 windows, 1 per call


def test_several_samples_give_mean_disagreement_and_sample_masks(
    components12, tiny_config, tracks, inverse_depth
):
    r = AmodalSegmenter(components12, tiny_config.replace(num_samples=3))(tracks, inverse_depth)[0]
    assert r.samples.shape == (3, *tracks[0].masks.shape)
    np.testing.assert_allclose(r.soft, r.samples.mean(0), atol=1e-6)
    p = r.samples.mean(0)
    np.testing.assert_allclose(r.disagreement, 1 - np.abs(2 * p - 1), atol=1e-6)
    assert (r.amodal == (p >= 0.5)).all()
    assert (r.disagreement[tracks[0].masks] == 0).all()  # every sample keeps the visible part


def test_depth_is_required_by_depth_models_and_refused_by_mask_only(
    components12, components8, tiny_config, tracks, inverse_depth
):
    with pytest.raises(InputError, match="mask\\+depth model"):
        AmodalSegmenter(components12, tiny_config)(tracks)
    with pytest.raises(InputError, match="mask-only"):
        AmodalSegmenter(components8, tiny_config)(tracks, inverse_depth)


def test_bad_inputs_get_clear_errors(components12, tiny_config, tracks, inverse_depth):
    seg = AmodalSegmenter(components12, tiny_config)
    empty = ObjectTrack(3, np.zeros_like(tracks[0].masks))
    with pytest.raises(InputError, match="object 3: modal mask is empty in all 4 frames"):
        seg([tracks[0], empty], inverse_depth)
    with pytest.raises(InputError, match="differs from"):
        seg([tracks[0], ObjectTrack(3, tracks[1].masks[:, :20])], inverse_depth)
    with pytest.raises(InputError, match="depth has shape"):
        seg(tracks, inverse_depth[:2])
    with pytest.raises(InputError, match="unique"):
        seg([tracks[0], ObjectTrack(1, tracks[1].masks)], inverse_depth)
    with pytest.raises(InputError, match="boolean"):
        seg([ObjectTrack(1, tracks[0].masks.astype(np.uint8) * 255)], inverse_depth)
    with pytest.raises(InputError, match="NaN"):
        seg(tracks, np.full_like(inverse_depth, np.nan))
    with pytest.raises(InputError, match="no objects"):
        seg([], inverse_depth)
    with pytest.raises(
        InputError, match=r"object 1: masks must be a \[T, H, W\] array, got \(40, 72\)"
    ):
        seg([ObjectTrack(1, tracks[0].masks[0])], inverse_depth)
    keyed = ObjectTrack(1, tracks[0].masks, frame_keys=[0, 1])
    with pytest.raises(InputError, match="object 1: 2 frame keys for 4 frames"):
        seg([keyed], inverse_depth)
    # 0/1 masks (a segmenter's uint8) are taken, as booleans
    ones = ObjectTrack(1, tracks[0].masks.astype(np.uint8))
    assert seg([ones], inverse_depth)[0].modal.dtype == bool and ones.masks.dtype == bool


def test_any_working_resolution_the_model_supports(
    components12, tiny_config, tracks, inverse_depth
):
    r = AmodalSegmenter(components12, tiny_config.replace(height=48, width=40))(
        tracks, inverse_depth
    )
    assert r[0].amodal.shape == tracks[0].masks.shape


def test_mask_threshold_and_resizing_follow_the_config(components12, tiny_config, tracks):
    """'nearest' upsampling is the reference's postprocess: R+G+B > threshold at the working
    size, then nearest-neighbour to the input size (OR the modal mask); 'smooth' thresholds the
    bilinearly upsampled score instead. 'area' resizes the input masks softly."""
    import cv2

    from amodal_ros.pipeline import preprocess

    depth = np.ones((T, *tracks[0].masks.shape[1:]), np.float32)
    cfg = tiny_config.replace(rgb_sum_threshold=300, mask_upsample="nearest")
    seg = AmodalSegmenter(components12, cfg)
    seg.sampler.run = _keep_decoded(seg.sampler.run)
    result = seg(tracks[:1], depth)[0]
    sums = seg.sampler.kept[0][0]  # [t, h', w'] R+G+B of the decoded frames
    small = (sums > 300).numpy()
    h, w = tracks[0].masks.shape[1:]
    expected = np.stack(
        [cv2.resize(s.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) for s in small]
    ).astype(bool)
    np.testing.assert_array_equal(result.amodal, expected | tracks[0].masks)
    smooth = AmodalSegmenter(components12, cfg.replace(mask_upsample="smooth"))
    smoothed = smooth(tracks[:1], depth)[0]
    np.testing.assert_array_equal(smoothed.amodal, (smoothed.soft * 765 > 300.5) | tracks[0].masks)
    soft = preprocess.mask_pixels(tracks[0].masks, 8, 16, "area")
    binary = preprocess.mask_pixels(tracks[0].masks, 8, 16, "nearest")
    assert set(np.unique(binary)) <= {-1.0, 1.0} and len(np.unique(soft)) > 2  # soft edges


def test_area_resizing_keeps_the_share_of_thin_parts_of_a_wide_image():
    """A 240x1280 mask of 1-px lines every 5 px (20 %) to 256x512: taller, but narrower, so
    area resizing must still average each working pixel's share; so must a lone 1-px pole
    wherever it stands (OpenCV's area resizing interpolated when one side grew: a pole at
    column 104 vanished, others kept 0.2 to 0.8 of their share), also from a square camera."""
    from amodal_ros.pipeline import preprocess

    lines = np.zeros((1, 240, 1280), bool)
    lines[..., ::5] = True
    share = (preprocess.mask_pixels(lines, 256, 512, "area") + 1) / 2
    assert share.mean() == pytest.approx(0.2, abs=0.005)
    for size in ((240, 1280), (480, 480)):
        for column in range(100, 110):
            pole = np.zeros((1, *size), bool)
            pole[..., column] = True
            share = (preprocess.mask_pixels(pole, 256, 512, "area")[0, 0] + 1) / 2
            assert share.sum(1).mean() == pytest.approx(512 / size[1], rel=0.05), (size, column)


def test_a_camera_smaller_than_the_working_size_grows_smoothly():
    """Depth and RGB grow linearly (a ramp stays a ramp; OpenCV's area mode copies pixels
    when it grows, steps of 4 working pixels here), masks nearest (they stay binary)."""
    from amodal_ros.pipeline import preprocess

    ramp = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (1, 8, 1))  # [1, 8, 16]
    grown = preprocess.resize_stack(ramp, 32, 64, nearest=False)[0, 0]
    assert len(np.unique(grown.round(5))) > 32 and (np.diff(grown) >= 0).all()
    mask = preprocess.resize_stack((ramp > 0.5).astype(np.uint8), 32, 64, nearest=True)
    assert set(np.unique(mask)) == {0, 1} and mask.mean() == 0.5


@pytest.mark.parametrize("mode", ["nearest", "area"])
def test_a_mask_keeps_its_place_through_the_working_size_and_back(mode):
    """480x640 -> 64x128 -> 480x640: the mask's centroid stays within half a source pixel
    (nearest sampling at floor(i * s) moved it 3.3 px down and 2 px right)."""
    from amodal_ros.pipeline import preprocess

    rng = np.random.default_rng(0)
    shifts = []
    for _ in range(20):  # boxes at every offset from the working grid
        y0, x0 = rng.integers(50, 200), rng.integers(50, 300)
        box = np.zeros((1, 480, 640), bool)
        box[0, y0 : y0 + 151, x0 : x0 + 203] = True
        small = (preprocess.mask_pixels(box, 64, 128, mode)[:, 0] + 1) / 2  # [1, 64, 128]
        back = preprocess.resize_stack(small, 480, 640, nearest=mode == "nearest") > 0.5
        ys, xs = np.nonzero(back[0])
        shifts.append((ys.mean() - (y0 + 75), xs.mean() - (x0 + 101)))
    dy, dx = np.mean(shifts, axis=0)
    assert abs(dy) <= 0.5 and abs(dx) <= 0.5


def test_stage_2s_modal_rgb_has_hard_edges_for_a_nearest_model_and_blends_for_an_area_one():
    """The reference composites its stage-2 input at the working size on the binary mask; it
    was composited at camera size and shrunk for every model (673 red-white edge blends on a
    disc's 30118 pixels at 256x512, never seen by the published stage 2)."""
    from amodal_ros.pipeline import preprocess

    v, u = np.mgrid[:480, :640]
    disc = ((v - 240) ** 2 + (u - 320) ** 2 < 150**2)[None]  # [1, 480, 640]
    red = np.zeros((1, 480, 640, 3), np.uint8)
    red[..., 0] = 255
    colours = {}
    for mode in ("nearest", "area"):
        pixels = preprocess.modal_rgb_pixels(red, disc, 256, 512, mode)  # [1, 3, 256, 512]
        rgb = np.round((pixels[0].transpose(1, 2, 0) + 1) * 127.5).astype(int).reshape(-1, 3)
        colours[mode] = {tuple(c) for c in rgb}
    assert colours["nearest"] == {(255, 0, 0), (255, 255, 255)}  # red or white, nothing else
    assert len(colours["area"]) > 2  # shares of the disc at its edge
    inside = preprocess.mask_pixels(disc, 256, 512, "nearest")[0, 0] > 0
    hard = preprocess.modal_rgb_pixels(red, disc, 256, 512, "nearest")[0]
    assert (hard[1][inside] == -1).all() and (hard[1][~inside] == 1).all()  # where the mask is


def _keep_decoded(run):
    """`WindowSampler.run` that also keeps its (reduced decoded frames, indices) on the
    sampler."""

    def kept_run(jobs, frames=None, progress=False, *, reduce):
        out = run(jobs, frames, progress, reduce=reduce)
        run.__self__.kept = out
        return out

    return kept_run


def test_rgb_sums_on_the_device_equal_the_sums_of_the_uint8_image():
    """Stage 1 reduces decoded frames to R+G+B where they are (one small copy per window);
    the sums are exactly those of the uint8 image diffusers' postprocess would give."""
    import torch

    from amodal_ros.pipeline.runner import rgb_sum, to_uint8

    frames = torch.rand(2, 5, 3, 16, 24, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    sums = rgb_sum(frames)
    assert sums.dtype == torch.int16 and sums.shape == (2, 5, 16, 24)
    torch.testing.assert_close(sums.long(), to_uint8(frames).long().sum(-1))


def test_mirror_ensemble_answers_a_mirrored_window_with_the_mirrored_answer(
    components12, tiny_config, tracks, inverse_depth
):
    """'on' averages each window's scores with those of its mirror image (flipped back), so,
    without noise augmentation (the views' only other difference), mirroring the input
    mirrors the answer; one pass alone does not (the UNet's kernels are not symmetric). Area
    and bilinear resizing are mirror-symmetric at any size ratio (nearest is not)."""

    def flip(a):
        return np.ascontiguousarray(a[..., ::-1])

    mirrored = [ObjectTrack(t.object_id, flip(t.masks)) for t in tracks]
    answers = {}
    for mode in ("on", "off"):
        cfg = tiny_config.replace(
            noise_aug_strength=0.0,
            mirror_ensemble=mode,
            mask_resize="area",
            mask_upsample="smooth",
        )
        seg = AmodalSegmenter(components12, cfg)
        seen, of_mirror = seg(tracks, inverse_depth), seg(mirrored, flip(inverse_depth))
        answers[mode] = seen
        worst = max(np.abs(flip(a.soft) - b.soft).max() for a, b in zip(seen, of_mirror))
        assert (worst < 2e-3) == (mode == "on"), (mode, worst)
        for a, b in zip(seen, of_mirror):
            assert (flip(a.amodal) != b.amodal).mean() < (1e-3 if mode == "on" else 1.0)
    assert not np.allclose(answers["on"][0].soft, answers["off"][0].soft)


def test_the_ensembles_are_the_models_choice_unless_set():
    from amodal_ros.core.config import InferenceConfig

    assert InferenceConfig().for_model({}).reverse_ensemble == "off"
    assert InferenceConfig().for_model({"reverse_ensemble": "on"}).ensemble_views == 2
    both = InferenceConfig().for_model({"reverse_ensemble": "on", "mirror_ensemble": "on"})
    assert both.ensemble_views == 4
    with pytest.raises(ValueError, match="reverse_ensemble"):
        InferenceConfig(reverse_ensemble="yes")

    assert InferenceConfig().for_model({}).mirror_ensemble == "off"  # published checkpoints
    assert InferenceConfig().for_model({"mirror_ensemble": "on"}).mirror_ensemble == "on"
    chosen = InferenceConfig(mirror_ensemble="off").for_model({"mirror_ensemble": "on"})
    assert chosen.mirror_ensemble == "off"
    with pytest.raises(ValueError, match="mirror_ensemble"):
        InferenceConfig(mirror_ensemble="yes")


def test_average_views_rounds_as_the_smooth_threshold():
    from amodal_ros.pipeline.stage1 import average_views

    views = torch.tensor([[[[700, 0, 351]], [[0, 1, 350]]]], dtype=torch.int16)  # [1, 2, 1, 3]
    averaged = average_views(views)
    assert averaged.dtype == torch.int16 and averaged.shape == (1, 1, 3)
    # 350.5 passes threshold 350 only as the smooth path compares (> 350 + 0.5): not at all
    assert averaged.tolist() == [[[350, 0, 350]]]
    # four views: a mean of 400.75 passes 400 + 0.5 and must pass 400; 400.5 must not
    four = torch.tensor([[[[403, 402]], [[400] * 2], [[400] * 2], [[400] * 2]]], dtype=torch.int16)
    assert average_views(four).tolist() == [[[401, 400]]]


def test_reverse_ensemble_answers_a_reversed_window_with_the_reversed_answer(
    components12, tiny_config, tracks, inverse_depth
):
    """'on' averages each window's scores with those of the window played backwards (turned
    back), so, without noise augmentation, reversing the input reverses the answer, mirrored
    views included; one direction alone does not (the temporal kernels are not symmetric)."""

    def backwards(a):
        return np.ascontiguousarray(a[::-1])

    reversed_tracks = [ObjectTrack(t.object_id, backwards(t.masks)) for t in tracks]
    for mirror in ("off", "on"):
        for mode in ("on", "off"):
            cfg = tiny_config.replace(
                noise_aug_strength=0.0,
                reverse_ensemble=mode,
                mirror_ensemble=mirror,
                mask_resize="area",
                mask_upsample="smooth",
            )
            seg = AmodalSegmenter(components12, cfg)
            seen = seg(tracks, inverse_depth)
            of_reversed = seg(reversed_tracks, backwards(inverse_depth))
            worst = max(
                np.abs(backwards(a.soft) - b.soft).max() for a, b in zip(seen, of_reversed)
            )
            assert (worst < 2e-3) == (mode == "on"), (mirror, mode, worst)


def test_reverse_ensemble_decodes_the_frames_asked_for_as_a_full_window(
    components12, tiny_config, tracks, inverse_depth
):
    """The reversed pass decodes its own chunks (the asked frames' places in reverse order):
    the newest frame alone comes out as in the whole window's answer."""
    cfg = tiny_config.replace(reverse_ensemble="on", mirror_ensemble="on", decode_chunk_size=2)
    seg = AmodalSegmenter(components12, cfg)
    whole = seg(tracks, inverse_depth)
    newest = seg(tracks, inverse_depth, frames=[len(inverse_depth) - 1])
    for a, b in zip(whole, newest):
        assert b.decoded is not None and b.decoded[-1] and not b.decoded[0]
        np.testing.assert_allclose(a.soft[-1], b.soft[-1], atol=1e-6)
        np.testing.assert_array_equal(a.amodal[-1], b.amodal[-1])


def _svd_pipeline_loop(predict, scheduler_config, noise, cond, context, ids, steps, ramp):
    """The sampling loop of diffusers' StableVideoDiffusionPipeline.__call__, which the
    reference's pipeline keeps, written out step by step: latents from the scheduler's first
    sigma, the unconditional branch with zeroed conditioning latents, the guidance ramp
    broadcast over frames, one Euler step per timestep."""
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps)
    latents = noise * scheduler.init_noise_sigma
    image_latents = torch.cat([torch.zeros_like(cond), cond])
    guidance_scale = ramp[None, :, None, None, None]
    added = ids[None].repeat(2 * noise.shape[0], 1)
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        noise_pred = predict(torch.cat([model_in, image_latents], dim=2), t, context, added)
        uncond, conditioned = noise_pred.chunk(2)
        noise_pred = uncond + guidance_scale * (conditioned - uncond)
        latents = scheduler.step(noise_pred, t, latents).prev_sample
    return latents


def test_denoise_is_the_svd_pipelines_guided_euler_loop(components12, tiny_config):
    sampler = WindowSampler(components12, tiny_config)
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(2, T, 4, 4, 8, generator=gen)
    cond = torch.randn(2, T, 8, 4, 8, generator=gen)
    context = cross_attention_context(torch.randn(2, T, 32, generator=gen), "consistent", True)
    ids, ramp = sampler.time_ids(), torch.linspace(1.0, 3.0, T)  # min to max: first to last
    config = components12.scheduler_config
    ours = denoise(sampler.predict, config, noise, cond, context, ids, 3, ramp)
    theirs = _svd_pipeline_loop(sampler.predict, config, noise, cond, context, ids, 3, ramp)
    torch.testing.assert_close(ours, theirs)
    from amodal_ros.pipeline.sampling import guidance_ramp

    torch.testing.assert_close(guidance_ramp(1.0, 3.0, T), ramp)


@pytest.mark.parametrize("chunk", [2, T])
def test_decode_unscales_and_decodes_each_chunk_of_frames_as_its_own_video(components12, chunk):
    """As the SVD pipeline's decode_latents: latents / scaling_factor, `decode_chunk_size`
    frames per temporal-decoder call."""
    from amodal_ros.pipeline.sampling import decode

    vae = components12.vae
    latents = torch.randn(2, T, 4, 4, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = decode(vae, latents, chunk)
        scaled = latents / vae.config.scaling_factor
        theirs = [
            vae.decode(scaled[b, s : s + chunk], num_frames=min(chunk, T - s)).sample
            for b in range(2)
            for s in range(0, T, chunk)
        ]
    torch.testing.assert_close(ours.flatten(0, 1), torch.cat(theirs))


def test_a_warm_start_at_step_0_is_a_cold_start(components12, tiny_config):
    """`warm_start_step` gives 0 for a share of 0 or 1: the window's earlier latents are then
    not used at all, as if none were cached."""
    sampler = WindowSampler(components12, tiny_config)
    gen = torch.Generator().manual_seed(3)
    noise, init = torch.randn(2, 1, T, 4, 4, 8, generator=gen)
    cond = torch.randn(1, T, 8, 4, 8, generator=gen)
    context = cross_attention_context(torch.randn(1, T, 32, generator=gen), "consistent", False)
    args = (sampler.predict, components12.scheduler_config, noise, cond, context)
    cold = denoise(*args, sampler.time_ids(), 2, None)
    torch.testing.assert_close(denoise(*args, sampler.time_ids(), 2, None, init=init), cold)


def test_a_warm_start_renoises_its_init_to_its_steps_sigma_and_runs_the_rest():
    """With a prediction whose denoised estimate is its input (for SVD's v-prediction at
    t = log(sigma) / 4: v = -e^(4t) x) every Euler step keeps the latents, so the sampler
    returns where it started: the init re-noised at the sigma of `start_step`."""
    from diffusers import EulerDiscreteScheduler

    from amodal_ros.models.architectures import SVD_SCHEDULER_CONFIG

    steps = []

    def still(x, t, context, ids):
        steps.append(float(t))
        return -torch.exp(4 * t) * x[:, :, :4]

    gen = torch.Generator().manual_seed(4)
    noise, cond, init = torch.randn(3, 1, 3, 4, 2, 2, generator=gen)
    scheduler = EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG)
    scheduler.set_timesteps(4)
    args = (still, SVD_SCHEDULER_CONFIG, noise, cond, None, torch.zeros(3), 4, None)
    torch.testing.assert_close(denoise(*args), noise * scheduler.init_noise_sigma)
    steps.clear()
    warm = denoise(*args, init=init, start_step=2)
    torch.testing.assert_close(warm, init + noise * scheduler.sigmas[2])
    assert steps == [float(t) for t in scheduler.timesteps[2:]]
