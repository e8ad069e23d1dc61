"""Metrics on hand-computed examples, and the baselines on cases they must get right."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.data.scenes import make_scene
from amodal_ros.eval.baselines import convex_hull, interpolate_visible_shape, modal_as_amodal
from amodal_ros.eval.metrics import (
    WindowScores,
    completion_errors,
    completion_scores,
    erosion_size,
    frame_iou,
    mean_scores,
    occluded_region,
    pooled_psnr_ssim,
    psnr_ssim_in_region,
    score_window,
    stray_pixels,
)


def test_frame_iou_by_hand():
    gt = np.zeros((3, 2, 4), bool)
    pred = np.zeros_like(gt)
    gt[0, :, :2] = True  # 4 px
    pred[0, :, 1:3] = True  # 4 px, 2 shared -> 2 / 6
    gt[1] = pred[1] = True  # identical -> 1
    # frame 2: both empty -> NaN (left out)
    iou = frame_iou(pred, gt)
    assert iou[0] == pytest.approx(2 / 6) and iou[1] == 1.0 and np.isnan(iou[2])


def test_occluded_region_is_eroded_as_the_reference_erodes_at_800_rows():
    """The reference's 5x5 erosion at 800 rows is a 2-px rim; at 128 rows (the clips here)
    the same share of the object is under a pixel: nothing is eroded, thin hidden parts count."""
    assert [erosion_size(h) for h in (128, 256, 400, 600, 800, 1600)] == [1, 3, 3, 5, 5, 9]
    modal = np.zeros((1, 800, 800), bool)
    amodal = np.zeros_like(modal)
    amodal[0, 100:700, 100:700] = True
    modal[0, 100:700, 100:690] = True  # a 10-px strip hidden: a 2-px rim of it eroded
    assert occluded_region(modal, amodal)[0].sum() == 6 * 596
    small_modal, small_amodal = modal[:, ::8, ::8], amodal[:, ::8, ::8]  # 100 rows
    thin = occluded_region(small_modal, small_amodal)  # a 1-px hidden strip stays
    assert thin[0].sum() == (small_amodal & ~small_modal).sum() > 0


def test_a_perfect_completion_scores_ssim_1_whatever_lies_outside_the_object():
    """Completions are white outside the object, the true appearance black: SSIM's window
    must not see that; and a perfect window adds no error to the pooled PSNR."""
    rng = np.random.default_rng(0)
    amodal = np.zeros((2, 32, 32), bool)
    amodal[:, 8:24, 8:24] = True
    hidden = amodal.copy()
    hidden[:, :, :16] = False
    truth = np.where(amodal[..., None], rng.integers(0, 256, (2, 32, 32, 3)), 0).astype(np.uint8)
    done = np.where(amodal[..., None], truth, 255).astype(np.uint8)
    assert psnr_ssim_in_region(done, truth, hidden, amodal) == (float("inf"), 1.0)
    worse = done.copy()
    worse[hidden] = 255 - worse[hidden]
    one = completion_errors(worse, truth, hidden, amodal)
    perfect = completion_errors(done, truth, hidden, amodal)
    psnr, ssim = pooled_psnr_ssim([one, perfect])
    assert psnr == pytest.approx(pooled_psnr_ssim([one])[0] + 10 * np.log10(2))
    assert ssim == pytest.approx((pooled_psnr_ssim([one])[1] + 1.0) / 2)


def test_ssim_of_flat_patches_is_the_luminance_term_with_the_standard_constants():
    """Two flat grey patches (100 and 50): contrast and structure agree, so SSIM is
    (2 x y + C1) / (x^2 + y^2 + C1) with C1 = (0.01 * 255)^2 (Wang et al. 2004)."""
    inside = np.ones((1, 24, 24), bool)
    pred, truth = (np.full((1, 24, 24, 3), v, np.uint8) for v in (100, 50))
    _, ssim_sum, pixels = completion_errors(pred, truth, inside, inside)
    c1 = (0.01 * 255) ** 2
    assert ssim_sum / pixels == pytest.approx((2 * 100 * 50 + c1) / (100**2 + 50**2 + c1))


def test_a_completion_is_scored_as_shown_white_where_its_mask_is_not():
    from amodal_ros.eval.metrics import as_shown

    rgba = np.zeros((1, 2, 2, 4), np.uint8)
    rgba[..., :3] = 40  # painted everywhere, the decoder's way
    rgba[0, 0, 0, 3] = 255  # one pixel inside the predicted mask
    shown = as_shown(rgba)
    assert shown[0, 0, 0].tolist() == [40] * 3 and (shown[0].reshape(-1, 3)[1:] == 255).all()


def test_completion_scores_keep_stage_2s_painting_apart_from_stage_1s_coverage():
    """A mask that covers half the hidden part and paints it exactly: the PSNR over every
    hidden pixel carries the white half (what a user sees), the PSNR over covered pixels is
    perfect, and the coverage says half."""
    amodal = np.zeros((1, 16, 16), bool)
    amodal[:, 4:12, 4:12] = True
    hidden = amodal.copy()
    hidden[:, :, :8] = False  # 8 x 4 hidden pixels
    predicted = amodal.copy()
    predicted[:, 4:8, :] = False  # covers the lower 4 of the 8 hidden rows
    truth = np.where(amodal[..., None], np.full(3, 55), 0).astype(np.uint8)
    done = np.where(predicted[..., None], truth, 255).astype(np.uint8)  # white where missed
    every = completion_errors(done, truth, hidden, amodal)
    found = completion_errors(done, truth, hidden & predicted, amodal)
    scores = completion_scores([(every, found), (every, None)])
    assert scores["completion_coverage"] == pytest.approx(25.0)  # 16 of 32, then 0 of 32
    assert scores["completion_psnr_found_db"] == float("inf")
    # half the hidden pixels of each window are 200 off in R, G and B: PSNR is per value
    missed_mse = 200.0**2 / 2
    assert scores["completion_psnr_db"] == pytest.approx(10 * np.log10(255.0**2 / missed_mse))
    # the painting was exact, so the missed pixels' bound is the pooled PSNR itself ...
    assert scores["completion_psnr_coverage_bound_db"] == pytest.approx(
        scores["completion_psnr_db"]
    )
    # ... and a worse painting lowers the pooled PSNR, not the bound
    tinted = np.where(predicted[..., None], truth + 20, 255).astype(np.uint8)
    worse = completion_scores(
        [
            (
                completion_errors(tinted, truth, hidden, amodal),
                completion_errors(tinted, truth, hidden & predicted, amodal),
            ),
            (every, None),
        ]
    )
    assert worse["completion_psnr_db"] < scores["completion_psnr_db"]
    assert worse["completion_psnr_coverage_bound_db"] == pytest.approx(
        scores["completion_psnr_coverage_bound_db"]
    )


def test_a_missed_label_is_not_a_hidden_frame():
    """The occluded region and the fully hidden frames come from the exact visible part, not
    the noisy label the method was given: a frame whose label missed a visible object is
    neither occluded nor hidden, and a truly hidden frame stays hidden under a spurious blob."""
    t, h, w = 3, 12, 12
    gt = np.zeros((t, h, w), bool)
    gt[:, 1:11, 1:11] = True
    visible = gt.copy()
    visible[2] = False  # frame 2: fully hidden
    modal = visible.copy()
    modal[1] = False  # frame 1: the segmenter missed the (fully visible) object
    modal[2, 0, 0] = True  # frame 2: a one-pixel spurious blob
    pred = np.zeros_like(gt)
    s = score_window(pred, gt, modal, visible)
    assert np.isnan(s.iou_occ_all[:2]).all() and s.iou_occ_all[2] == 0.0
    assert np.isnan(s.iou_hidden[:2]).all() and s.iou_hidden[2] == 0.0
    assert s.iou[1] == 0.0  # the missed object still costs its whole mask
    labels_only = score_window(pred, gt, modal)  # what scoring against the label said
    assert labels_only.iou_occ_all[1] == 0.0 and np.isnan(labels_only.iou_hidden[2])


def test_score_window_counts_occluded_frames_only():
    t, h, w = 3, 12, 12
    gt = np.zeros((t, h, w), bool)
    gt[:, 1:11, 1:11] = True
    modal = gt.copy()
    modal[1:, :, 6:] = False  # frames 1-2 are half hidden, frame 0 fully visible
    pred = modal.copy()
    pred[1] = gt[1]  # frame 1 predicted perfectly, frame 2 not completed at all
    s = score_window(pred, gt, modal)
    assert s.iou[0] == 1.0 and s.iou[1] == 1.0 and s.iou[2] == pytest.approx(50 / 100)
    # frame 0 has no occlusion and frame 2 an IoU of 0: both are left out of mIoU_occ
    assert np.isnan(s.iou_occ[0]) and s.iou_occ[1] == 1.0 and np.isnan(s.iou_occ[2])
    scores = mean_scores([s])
    assert scores["mIoU"] == pytest.approx(100 * (1 + 1 + 0.5) / 3)
    assert scores["mIoU_occ"] == 100.0 and scores["frames_occ"] == 1
    # the strict variant counts the missed frame 2 as 0
    assert s.iou_occ_all[1] == 1.0 and s.iou_occ_all[2] == 0.0 and np.isnan(s.iou_occ_all[0])
    assert scores["mIoU_occ_all"] == 50.0 and scores["frames_occ_all"] == 2


def test_paper_keys_come_first_and_keep_their_values():
    """The added metrics leave the paper's keys, their order and values alone."""
    t, h, w = 3, 12, 12
    gt = np.zeros((t, h, w), bool)
    gt[:, 1:11, 1:11] = True
    modal = gt.copy()
    modal[1:, :, 6:] = False
    pred = modal.copy()
    pred[1] = gt[1]
    scores = mean_scores([score_window(pred, gt, modal)])
    paper = ["mIoU", "mIoU_occ", "mIoU_occ_all", "frames", "frames_occ", "frames_occ_all"]
    assert list(scores)[:6] == paper
    assert [scores[k] for k in paper] == pytest.approx([250 / 3, 100.0, 50.0, 3, 1, 2])
    # windows scored by older code (no new fields) still average
    old = WindowScores(np.array([0.5]), np.array([np.nan]), np.array([np.nan]))
    mixed = mean_scores([old, score_window(pred, gt, modal)])
    assert mixed["frames"] == 4 and mixed["frames_hidden"] == 0
    assert np.isnan(mean_scores([])["area_ratio_median"])
    assert np.isnan(mean_scores([])["stray_share"])


def test_area_ratio_median_by_hand():
    gt = np.zeros((4, 10, 10), bool)
    gt[:3, :, :5] = True  # 50 px in frames 0-2, frame 3 empty (left out)
    modal = np.zeros_like(gt)
    pred = np.zeros_like(gt)
    pred[0, :5, :5] = True  # 25 px -> 0.5
    pred[1, :, :] = True  # 100 px -> 2.0
    modal[2, :, :3] = True  # nothing predicted, but OR-ed with the modal 30 px -> 0.6
    pred[3, :2, :2] = True  # no true mask: no ratio
    s = score_window(pred, gt, modal)
    np.testing.assert_allclose(s.area_ratio[:3], [0.5, 2.0, 0.6])
    assert np.isnan(s.area_ratio[3])
    assert mean_scores([s])["area_ratio_median"] == pytest.approx(0.6)
    # pooled over windows: the median of all counted frames, [0.5, 0.6, 1.0, 2.0, 3.0]
    other = np.zeros((2, 10, 10), bool)
    other[:, :, :2] = True  # 20 px
    pred2 = other.copy()
    pred2[1, :, :6] = True  # 60 px -> 3.0; frame 0 exact -> 1.0
    s2 = score_window(pred2, other, np.zeros_like(other))
    assert mean_scores([s, s2])["area_ratio_median"] == pytest.approx(1.0)


def test_stray_share_by_hand():
    gt = np.zeros((2, 3, 10), bool)
    gt[0, :, :2] = True  # columns 0-1
    pred = np.zeros_like(gt)
    # column 4 is 3 px from the mask (kept), column 5 is 4 px away (stray)
    pred[0, :, [0, 1, 4, 5]] = True
    pred[1, 0, :4] = True  # frame 1 has no true mask: all 4 px are strays
    np.testing.assert_array_equal(stray_pixels(pred, gt), [3, 4])
    s = score_window(pred, gt, np.zeros_like(gt))
    np.testing.assert_array_equal(s.pred_pixels, [12, 4])
    assert mean_scores([s])["stray_share"] == pytest.approx(100 * 7 / 16)
    # pooled over windows by pixels, not averaged per window
    exact = score_window(gt[:1], gt[:1], np.zeros_like(gt[:1]))  # 6 px, no stray
    assert mean_scores([s, exact])["stray_share"] == pytest.approx(100 * 7 / 22)
    # diagonal distances are Euclidean: (3, 2) away is 3.6 px -> stray; (2, 2) is 2.8 -> not
    one = np.zeros((1, 8, 8), bool)
    one[0, 0, 0] = True
    far, near = one.copy(), one.copy()
    far[0, 2, 3], near[0, 2, 2] = True, True
    assert stray_pixels(far, one)[0] == 1 and stray_pixels(near, one)[0] == 0


def test_a_detached_blob_raises_stray_share_but_not_iou_much():
    gt = np.zeros((5, 32, 64), bool)
    gt[:, 8:24, 8:24] = True  # 256 px
    modal = gt.copy()
    modal[:, :, 16:] = False  # half hidden
    clean = score_window(gt, gt, modal)
    blob = gt.copy()
    blob[:, 10:14, 50:54] = True  # 16 px, 26 px away from the object
    rim = gt.copy()
    rim[:, 8:24, 24:26] = True  # a 2-px rim: close to the object, not stray
    with_blob = mean_scores([score_window(blob, gt, modal)])
    assert mean_scores([clean])["stray_share"] == 0.0
    assert mean_scores([score_window(rim, gt, modal)])["stray_share"] == 0.0
    assert with_blob["stray_share"] == pytest.approx(100 * 16 / (256 + 16))
    assert with_blob["area_ratio_median"] == pytest.approx((256 + 16) / 256)
    assert with_blob["mIoU"] > 90  # IoU barely notices what a user would see at once


def test_miou_hidden_by_hand():
    gt = np.zeros((4, 6, 6), bool)
    gt[:3, :, :2] = True  # 12 px in frames 0-2, frame 3 empty
    modal = np.zeros_like(gt)
    modal[0] = gt[0]  # frame 0 visible: not a hidden frame
    pred = np.zeros_like(gt)
    pred[1, :3, :2] = True  # frame 1 hidden, 6 of 12 px found -> 0.5
    # frame 2 hidden, nothing predicted -> 0; frame 3 nothing to find (nothing visible
    # either, a stray pixel predicted) -> left out: no hidden frame
    pred[3, 0, 0] = True
    s = score_window(pred, gt, modal)
    assert np.isnan(s.iou_hidden[0]) and np.isnan(s.iou_hidden[3])
    np.testing.assert_allclose(s.iou_hidden[1:3], [0.5, 0.0])
    scores = mean_scores([s])
    assert scores["mIoU_hidden"] == pytest.approx(25.0) and scores["frames_hidden"] == 2


def test_a_frame_with_nothing_hidden_is_no_occluded_frame_whatever_is_predicted():
    gt = np.zeros((1, 16, 16), bool)
    gt[0, 2:10, 2:10] = True
    pred = gt.copy()
    pred[0, 2:10, 10:14] = True  # reaches beyond a fully visible object
    scores = mean_scores([score_window(pred, gt, gt.copy())])
    assert scores["frames_occ_all"] == 0 and np.isnan(scores["mIoU_occ_all"])


def test_newest_frame_scores_take_each_windows_last_frame():
    gt = np.zeros((3, 16, 16), bool)
    gt[:, :, :12] = True  # the right two thirds hidden in every frame
    modal = np.zeros_like(gt)
    modal[:, :, :4] = True
    pred = gt.copy()
    pred[2, :, 4:] = False  # the newest frame: the hidden part missed
    good, bad = score_window(gt, gt, modal), score_window(pred, gt, modal)
    scores = mean_scores([good, bad])
    assert scores["mIoU_newest"] == pytest.approx(100 * (1 + 1 / 3) / 2)
    assert scores["mIoU_occ_all_newest"] == pytest.approx(50.0)  # 1.0 and 0.0
    assert scores["mIoU"] == pytest.approx(100 * (5 + 1 / 3) / 6)  # every frame of both


def test_prediction_is_ored_with_the_modal_mask():
    gt = np.ones((1, 4, 4), bool)
    modal = gt.copy()
    assert score_window(np.zeros_like(gt), gt, modal).iou[0] == 1.0


def test_convex_hull_fills_a_cut_corner():
    modal = np.zeros((1, 10, 10), bool)
    modal[0, 2:8, 2:8] = True
    modal[0, 2:5, 5:8] = False  # an L: the hull restores the missing corner's diagonal half
    out = convex_hull(modal)
    assert not (modal & ~out).any() and out.sum() > modal.sum()
    assert out[0, 4, 6]  # inside the hull of the L
    assert not out[0, 2, 7]  # the far corner stays outside the hull


def test_interpolation_recovers_a_square_hidden_behind_a_bar():
    t, h, w = 9, 20, 40
    gt = np.zeros((t, h, w), bool)
    for i in range(t):
        gt[i, 6:12, 2 + 3 * i : 8 + 3 * i] = True  # a 6x6 square moving 3 px per frame
    modal = gt.copy()
    modal[:, :, 14:24] = False  # a 10-px bar: frames 3-6 partly or fully hidden
    out = interpolate_visible_shape(modal)
    np.testing.assert_array_equal(out, gt)
    assert np.array_equal(modal_as_amodal(modal), modal)


def test_baselines_on_synthetic_clips():
    """Scored as eval scores them (hidden regions from the exact visible masks): the exact
    visible mask never overlaps a hidden region, the segmenter-noisy label only where its
    pixels reach over an occluder; the interpolation baseline reaches into hidden parts; both
    others contain the modal mask. (Without `visible` the label was taken for the visible
    part, and the modal row's 4.84 mIoU_occ in the README could not be told.)"""
    windows = {"modal": [], "hull": [], "interp": [], "exact": []}
    for seed in range(8):
        clip = make_scene(seed, num_frames=25, height=64, width=128)
        for i in clip.target_ids:
            modal, gt, visible = clip.modal(i), clip.amodal[i], clip.visible[i]
            windows["modal"].append(score_window(modal_as_amodal(modal), gt, modal, visible))
            windows["hull"].append(score_window(convex_hull(modal), gt, modal, visible))
            shape = interpolate_visible_shape(modal)
            windows["interp"].append(score_window(shape, gt, modal, visible))
            windows["exact"].append(score_window(visible, gt, visible, visible))
    scores = {k: mean_scores(v) for k, v in windows.items()}
    assert scores["exact"]["frames_occ"] == 0  # never any overlap with the hidden region
    assert 0 < scores["modal"]["mIoU_occ_all"] < 5  # label pixels over an occluder only
    assert scores["interp"]["frames_occ"] > 0 and scores["hull"]["frames_occ"] > 0
    assert scores["exact"]["mIoU_occ_all"] == 0.0 and scores["modal"]["frames_occ_all"] > 0
    assert scores["interp"]["mIoU_occ_all"] > 0 and scores["hull"]["mIoU_occ_all"] > 0
    # fully hidden frames: the modal mask has nothing there, interpolation carries the shape
    assert scores["modal"]["frames_hidden"] > 0 and scores["modal"]["mIoU_hidden"] == 0.0
    assert scores["interp"]["mIoU_hidden"] > 0
    assert scores["modal"]["area_ratio_median"] <= 1.05  # the visible part, a few label errors
    assert scores["hull"]["area_ratio_median"] >= scores["modal"]["area_ratio_median"]


def test_the_mask_as_published_is_scored_beside_the_reference_s_or_with_the_modal_input():
    """The reference ORs a prediction with its modal input; the node publishes its mask
    without the label pixels it removed as a detached part, which that OR would hide."""
    gt = np.zeros((1, 8, 8), bool)
    gt[0, 2:6, 2:6] = True
    modal = gt.copy()
    modal[0, 2:6, 4:6] = False
    modal[0, 0, 0] = True  # a segmenter's stray label pixel, removed from the published mask
    published = gt & ~modal
    scores = score_window(published, gt, modal)
    assert scores.iou[0] == pytest.approx(16 / 17)  # OR-ed: the stray pixel counts against
    assert scores.iou_as_published[0] == pytest.approx(8 / 16)  # the visible half is missing
    assert mean_scores([scores])["mIoU_as_published"] == pytest.approx(50.0)


def test_the_mean_colour_fill_paints_the_hidden_part_with_the_visible_colour():
    from amodal_ros.eval.baselines import mean_colour_fill

    rgb = np.zeros((2, 4, 6, 3), np.uint8)
    rgb[0, :, :3] = (200, 100, 0)  # frame 0: the object's visible half
    rgb[0, 0, 0] = (100, 50, 0)  # one darker visible pixel
    modal = np.zeros((2, 4, 6), bool)
    modal[0, :, :3] = True  # frame 1: not visible at all
    amodal = np.zeros((2, 4, 6), bool)
    amodal[:, :, :5] = True
    fill = mean_colour_fill(rgb, modal, amodal)
    assert (fill[..., 3] == np.where(amodal, 255, 0)).all()
    np.testing.assert_array_equal(fill[0][modal[0]][:, :3], rgb[0][modal[0]])  # seen: as seen
    mean = np.round(rgb[0][modal[0]].mean(axis=0))
    hidden = amodal[0] & ~modal[0]
    assert (fill[0][hidden][:, :3] == mean).all()
    assert (fill[1][amodal[1]][:, :3] == mean).all()  # unseen frame: the window's colour
    assert not fill[..., :3][~amodal].any()
