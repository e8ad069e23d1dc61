"""Free space: predicted hidden pixels where the depth camera sees past the object go."""

from __future__ import annotations

import copy

import numpy as np

from amodal_ros.core.types import AmodalResult
from amodal_ros.pipeline import free_space
from amodal_ros.pipeline.free_space import keep_band, object_depth

T, H, W = 3, 20, 40
OBJECT, BAR, BACKGROUND = 2.0, 1.0, 4.0  # m


def scene(samples: bool = False):
    """An object (2 m) visible at columns 5-14, a bar (1 m) in front of columns 15-19 and the
    background (4 m) beyond; the model predicts the object across columns 5-29."""
    modal = np.zeros((T, H, W), bool)
    modal[:, 5:15, 5:15] = True
    depth = np.full((T, H, W), BACKGROUND, np.float32)
    depth[modal] = OBJECT
    depth[:, :, 15:20] = BAR
    amodal = np.zeros((T, H, W), bool)
    amodal[:, 5:15, 5:30] = True
    soft = np.where(amodal, np.float32(0.8), np.float32(0.0))
    soft[:, 5:15, 30:35] = 0.1  # faint, under the threshold
    soft[modal] = 1.0
    if not samples:
        return AmodalResult(1, amodal, soft, modal), list(depth)
    disagreement = np.full((T, H, W), 0.5, np.float32)
    result = AmodalResult(1, amodal, soft, modal, disagreement, np.stack([amodal, amodal]))
    return result, list(depth)


def carve(result, depth, margin, keep_px):
    """A carved copy of `result` (carve works in place), or `result` when nothing went."""
    out = copy.deepcopy(result)
    removed = free_space.carve(out, depth, margin, keep_px)
    assert removed == int((result.amodal | (result.soft > 0)).sum() - (out.soft > 0).sum())
    return out if removed else result


def test_keeps_what_a_nearer_surface_hides_and_removes_what_would_be_seen():
    result, depth = scene()
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert out.amodal[:, 5:15, 5:20].all()  # visible, and hidden behind the bar
    assert not out.amodal[:, :, 20:].any()  # over the farther background: it would be seen
    assert (out.soft[:, :, 20:] == 0).all()  # the faint part too: at any threshold
    assert (out.soft[:, :, :20] == result.soft[:, :, :20]).all()


def test_nothing_near_the_visible_mask_or_without_valid_depth_is_removed():
    result, depth = scene()
    for t in range(T):
        depth[t][:, 15:20] = BACKGROUND  # no bar
        depth[t][:, 22:26] = (0.0, np.nan, -np.inf, np.inf)  # no return: unknown; too far
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert out.amodal[:, 5:15, 5:17].all()  # 2 px beyond the visible edge are kept
    assert not out.amodal[:, :, 17:22].any() and not out.amodal[:, :, 25:].any()
    assert out.amodal[:, 5:15, 22:25].all()  # +inf (REP 117: nothing within range) is free


def test_the_margin_says_how_much_farther_a_surface_must_be():
    result, depth = scene()
    for t in range(T):
        depth[t][:, 20:] = OBJECT * 1.05  # just behind the object
        depth[t][:, :5] = OBJECT
    assert carve(result, depth, margin=0.1, keep_px=2) is result  # nothing removed
    assert not carve(result, depth, margin=0.02, keep_px=2).amodal[:, :, 20:].any()


def test_a_fully_hidden_frame_takes_the_depth_of_the_nearest_frame_it_was_seen_in():
    result, depth = scene()
    result.modal[2] = False  # hidden in frame 2 (behind the bar, say): its prediction stays
    depth[2][:, 5:15] = BAR
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert out.amodal[2, 5:15, 5:20].all() and not out.amodal[2, :, 20:].any()
    assert object_depth(depth, result.modal, 2) == OBJECT
    result.modal[:] = False  # seen nowhere: nothing to compare with
    assert carve(result, depth, margin=0.1, keep_px=2) is result


def test_a_surface_exactly_the_margin_farther_stays_and_the_nearest_seen_frame_decides():
    result, depth = scene()
    for t in range(T):
        depth[t][:, 20:] = OBJECT * 1.5
    assert carve(result, depth, margin=0.5, keep_px=2) is result  # not beyond the margin
    modal = np.zeros((4, 2, 2), bool)
    modal[0] = modal[3] = True
    seen = [np.full((2, 2), z, np.float32) for z in (2.0, 9.0, 9.0, 4.0)]
    assert object_depth(seen, modal, 2) == 4.0  # frame 3 is nearer frame 2 than frame 0


def test_the_band_around_the_visible_mask_holds_below_it_too():
    """The visible part below the hidden one (the existing scenes have it left and above)."""
    modal = np.zeros((1, 20, 10), bool)
    modal[0, 10:15, 2:8] = True
    amodal = np.zeros_like(modal)
    amodal[0, 4:15, 2:8] = True
    depth = np.where(modal[0], 2.0, 10.0).astype(np.float32)
    result = AmodalResult(1, amodal.copy(), amodal.astype(np.float32), modal)
    assert free_space.carve(result, [depth], margin=0.1, keep_px=2) == 4 * 6
    assert result.amodal[0, 8:15, 2:8].all() and not result.amodal[0, :8].any()


def test_samples_and_disagreement_lose_the_same_pixels():
    result, depth = scene(samples=True)
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert (out.samples == out.amodal[None]).all()
    removed = out.soft != result.soft
    assert (result.amodal & removed).any() and (out.disagreement[removed] == 0).all()
    assert (out.disagreement[~removed] == 0.5).all()


def test_object_depth_is_the_median_of_valid_visible_depth():
    modal = np.zeros((1, 4, 4), bool)
    modal[0, :2, :2] = True
    depth = [np.array([[1.0, 2.0, 9, 9], [3.0, 0.0, 9, 9], [9] * 4, [9] * 4], np.float32)]
    assert object_depth(depth, modal, 0) == 2.0  # 0 is no return
    depth[0][1, 1] = 0.004  # nor a glint's 4 mm (as the extents and the model's depth read it)
    assert object_depth(depth, modal, 0) == 2.0


def test_keep_band_is_half_a_working_cell():
    assert keep_band((128, 256), (32, 64)) == 2
    assert keep_band((480, 640), (32, 64)) == 8
    assert keep_band((160, 320), (32, 64)) == 3  # 2.5 px: rounded up, never down


def test_the_band_around_the_visible_mask_is_round():
    """A 2 px band keeps what lies within about 2 px: below the visible corner it keeps the
    pixel 2 px straight down, not the one 2 px down and 2 px across (2.8 px away)."""
    result, depth = scene()
    result.amodal[:, 15:17, 5:17] = True  # predicted below the visible part, over background
    result.soft[:, 15:17, 5:17] = 0.8
    for t in range(T):
        depth[t][:, 15:20] = BACKGROUND  # no bar
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert out.amodal[:, 16, 14].all() and not out.amodal[:, 16, 16].any()


def test_a_mask_bleeding_onto_the_background_does_not_push_the_object_back():
    """A segmenter's mask spilling onto the background (3 of the object's 10 columns read
    4 m): the object's depth is its visible pixels' median, 2 m, so a surface at 2.5 m is
    free space behind it (their mean, 2.6 m, took the object to lie behind that surface)."""
    result, depth = scene()
    for t in range(T):
        depth[t][5:15, 5:8] = BACKGROUND  # the spill, inside the visible mask
        depth[t][:, 20:] = 2.5
    out = carve(result, depth, margin=0.1, keep_px=2)
    assert not out.amodal[:, :, 20:].any()
