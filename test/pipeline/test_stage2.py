"""Stage 2 (content completion) on tiny real models."""

import shutil

import numpy as np
import pytest
from conftest import H, T, W

from amodal_ros.core import CheckpointError, InputError
from amodal_ros.models.architectures import build_components
from amodal_ros.models.layout import load_components, save_published_layout
from amodal_ros.pipeline import AmodalSegmenter, ContentCompleter


def with_hidden_parts(results):
    """Stage-1 results whose amodal masks reach 3 px further down than the visible ones (the
    tiny seeded model's amodal masks are its modal ones)."""
    from dataclasses import replace

    grown = []
    for r in results:
        amodal = r.modal.copy()
        for shift in (1, 2, 3):
            amodal[:, shift:] |= r.modal[:, :-shift]
        grown.append(replace(r, amodal=amodal))
    return grown


@pytest.fixture(scope="module")
def completer(tiny_config):
    return ContentCompleter(build_components("tiny", seed=3), tiny_config)


def test_completion_outputs_rgb_and_rgba_with_amodal_alpha(
    components12, completer, tiny_config, tracks, inverse_depth
):
    amodal = with_hidden_parts(AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth))
    rgb = np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    out = completer(rgb, amodal)
    assert [c.object_id for c in out] == [1, 7]
    for c, a in zip(out, amodal):
        assert c.rgb.shape == (T, H, W, 3) and c.rgb.dtype == np.uint8
        assert c.rgba.shape == (T, H, W, 4)
        np.testing.assert_array_equal(c.rgba[..., :3], c.rgb)
        np.testing.assert_array_equal(c.rgba[..., 3] == 255, a.amodal)
        # the visible part is the camera's own pixels, not the model's repainting of them
        np.testing.assert_array_equal(c.rgb[a.modal], rgb[a.modal])
        assert (c.rgb[a.amodal & ~a.modal] != rgb[a.amodal & ~a.modal]).any()
    again = completer(rgb, amodal)
    np.testing.assert_array_equal(again[0].rgb, out[0].rgb)


def test_completion_depends_on_the_visible_rgb(
    components12, completer, tiny_config, tracks, inverse_depth
):
    amodal = with_hidden_parts(AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth))
    dark = np.zeros((T, H, W, 3), np.uint8)
    bright = np.full((T, H, W, 3), 200, np.uint8)
    hidden = amodal[0].amodal & ~amodal[0].modal  # what the model paints
    assert hidden.any()
    painted = [completer(rgb, amodal)[0].rgb[hidden] for rgb in (dark, bright)]
    assert not np.array_equal(*painted)


def test_completion_rejects_bad_rgb_and_mask_only_models(
    components12, components8, completer, tiny_config, tracks, inverse_depth
):
    amodal = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    with pytest.raises(InputError, match="rgb has shape"):
        completer(np.zeros((T, H, W + 1, 3), np.uint8), amodal)
    with pytest.raises(InputError, match="uint8"):
        completer(np.zeros((T, H, W, 3), np.float32), amodal)
    with pytest.raises(CheckpointError, match="12 input channels"):
        ContentCompleter(components8, tiny_config)


def test_a_wider_latent_completes_the_same_after_a_save_and_load(
    components12, tiny_config, tracks, inverse_depth, tmp_path
):
    """Stage 2 on 8-channel latents (a VAE of its own keeps more appearance): the UNet reads
    the noisy latent and both conditions at that width, and its folder round-trips."""
    wide = build_components("tiny", seed=3, in_channels=24, latent_channels=8)
    assert wide.unet.config.in_channels == 24 and wide.num_conditions == 2
    save_published_layout(wide, tmp_path / "wide")
    amodal = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    rgb = np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    direct = ContentCompleter(wide, tiny_config)(rgb, amodal)
    loaded = ContentCompleter(load_components(tmp_path / "wide"), tiny_config)(rgb, amodal)
    for a, b in zip(direct, loaded):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    # a folder whose VAE and UNet come from different models is refused when it loads
    save_published_layout(build_components("tiny", seed=3), tmp_path / "narrow")
    shutil.rmtree(tmp_path / "wide" / "vae")
    shutil.copytree(tmp_path / "narrow" / "vae", tmp_path / "wide" / "vae")
    with pytest.raises(CheckpointError, match="encodes 4 latent channels but its UNet predicts 8"):
        load_components(tmp_path / "wide")


def test_completing_only_published_frames_gives_the_full_results(
    components12, tiny_config, tracks, inverse_depth
):
    config = tiny_config.replace(decode_chunk_size=2)
    amodal = AmodalSegmenter(components12, config)(tracks, inverse_depth)
    rgb = np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    completer = ContentCompleter(build_components("tiny", seed=3), config)
    full = completer(rgb, amodal)
    part = completer(rgb, amodal, frames=[T - 1])
    for a, b in zip(full, part):
        np.testing.assert_array_equal(a.rgba[2:], b.rgba[2:])  # the chunk of frame T-1
        assert (b.rgb[:2] == 255).all() and (b.rgba[:2, ..., 3] == 0).all()  # not decoded
    # stage 1 decoded only the newest chunk: its other frames' masks are not the amodal ones
    newest = AmodalSegmenter(components12, config)(tracks, inverse_depth, frames=[T - 1])
    with pytest.raises(InputError, match="stage 1 decoded only some frames of objects"):
        completer(rgb, newest)


def test_a_sliding_window_named_by_stamps_encodes_only_its_new_frames(
    components12, completer, tiny_config, tracks, inverse_depth
):
    """The node names frames by their stamps: a window sliding by one frame encodes (VAE and
    CLIP) the visible colours of its one new frame per object, and answers as a fresh call."""
    from amodal_ros.core.types import AmodalResult
    from amodal_ros.pipeline.cache import FrameEncodingCache

    first = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    rgb = np.random.default_rng(1).integers(0, 255, (T + 1, H, W, 3), dtype=np.uint8)

    def window(start):  # frames start..start+T-1 of a stream whose last frame repeats
        def take(a):
            return np.concatenate([a, a[-1:]])[start : start + T]

        return [
            AmodalResult(r.object_id, take(r.amodal), take(r.soft), take(r.modal)) for r in first
        ]

    stamps = list(range(100, 100 + T + 1))
    cache = FrameEncodingCache()
    completer(rgb[:T], window(0), cache=cache, frame_keys=stamps[:T])
    assert cache.encoded["rgb"] == 2 * T  # two objects
    slid = completer(rgb[1:], window(1), cache=cache, frame_keys=stamps[1:])
    assert cache.encoded["rgb"] == 2 * (T + 1)  # one new frame each
    fresh = completer(rgb[1:], window(1), frame_keys=stamps[1:])
    for a, b in zip(slid, fresh):  # (encoding 1 frame or 4 in a batch rounds differently)
        np.testing.assert_allclose(a.rgba, b.rgba, atol=2)
    with pytest.raises(InputError, match="frame_keys"):
        completer(rgb[:T], window(0), frame_keys=stamps)


def test_a_painting_grows_to_the_camera_size_without_the_white_past_its_edge():
    """Stage 2 paints on white; grown bilinearly, the white past the object's edge bled into
    its edge pixels (a white halo and white specks along the mask in the completion image)."""
    from amodal_ros.pipeline.preprocess import extend_inside, resize_stack

    painted = np.full((2, 8, 8, 3), 255, np.uint8)
    inside = np.zeros((2, 8, 8), bool)
    inside[0, :, :3] = True  # a red object on the left, a blue one on the right
    painted[0, :, :3] = (200, 0, 0)
    inside[0, :, 6:] = True
    painted[0, :, 6:] = (0, 0, 200)
    extended = extend_inside(painted, inside)
    np.testing.assert_array_equal(extended[0, :, :5], np.broadcast_to((200, 0, 0), (8, 5, 3)))
    np.testing.assert_array_equal(extended[0, :, 5:], np.broadcast_to((0, 0, 200), (8, 3, 3)))
    np.testing.assert_array_equal(extended[1], painted[1])  # nothing inside: kept
    grown = resize_stack(extended, 32, 32, nearest=False)[0]
    edge = grown[:, 8:12]  # the camera's pixels over the object's edge
    assert edge.max() == 200 and (edge[..., 1] == 0).all()


def test_only_working_pixels_the_mask_wholly_covers_are_painted_by_the_model():
    """The model paints on white, so its pixels on the mask's edge are part white: those are
    repainted from inside. A wholly covered pixel counts as covered though area resizing sums
    in float32 (shares of 0.9999999 at odd camera sizes), a pixel 8/9 covered does not."""
    from amodal_ros.pipeline.stage2 import _covered

    odd = _covered(np.ones((1, 41, 73), bool), (32, 64))  # camera size -> working size
    assert odd.all()
    edge = np.zeros((1, 40, 72), bool)
    edge[:, :, :37] = True  # column 32 of the working size is 8/9 covered
    covered = _covered(edge, (32, 64))
    assert covered[0, :, :32].all() and not covered[0, :, 32:].any()


def test_each_object_is_painted_from_its_own_noise(
    components12, completer, tiny_config, tracks, inverse_depth
):
    """Objects with the same visible colours and masks are sampled apart, as the reference's
    one pipeline call per object would (one shared draw would paint them alike)."""
    from dataclasses import replace

    amodal = with_hidden_parts(AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth))
    twins = [amodal[0], replace(amodal[0], object_id=amodal[1].object_id)]
    rgb = np.random.default_rng(2).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    quiet = ContentCompleter(completer.components, tiny_config.replace(noise_aug_strength=0.0))
    first, second = quiet(rgb, twins)
    hidden = twins[0].amodal & ~twins[0].modal
    assert not np.array_equal(first.rgb[hidden], second.rgb[hidden])
