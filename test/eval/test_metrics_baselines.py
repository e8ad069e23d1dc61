"""Metrics on hand-computed examples, and the baselines on cases they must get right."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.data.scenes import make_scene
from amodal_ros.eval.baselines import convex_hull, interpolate_visible_shape, modal_as_amodal
from amodal_ros.eval.metrics import frame_iou, mean_scores, occluded_region, score_window


def test_frame_iou_by_hand():
    gt = np.zeros((3, 2, 4), bool)
    pred = np.zeros_like(gt)
    gt[0, :, :2] = True  # 4 px
    pred[0, :, 1:3] = True  # 4 px, 2 shared -> 2 / 6
    gt[1] = pred[1] = True  # identical -> 1
    # frame 2: both empty -> NaN (left out)
    iou = frame_iou(pred, gt)
    assert iou[0] == pytest.approx(2 / 6) and iou[1] == 1.0 and np.isnan(iou[2])


def test_occluded_region_erodes_the_thin_rim():
    modal = np.zeros((1, 12, 12), bool)
    amodal = np.zeros_like(modal)
    amodal[0, 1:11, 1:11] = True
    modal[0, 1:11, 1:6] = True  # hidden: columns 6-10 (5 wide)
    region = occluded_region(modal, amodal)
    # a 5x5 erosion keeps only the centre column of the 5-wide hidden strip, rows 3-8
    assert region[0].sum() == 6 and region[0][:, 8].sum() == 6
    thin = modal.copy()
    thin[0, 1:11, 1:10] = True  # a 1-pixel rim hidden: nothing left after erosion
    assert not occluded_region(thin, amodal).any()


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
    """Modal-as-amodal never overlaps a hidden region (no frame counts for mIoU_occ); the
    interpolation baseline does reach into hidden parts; both others contain the modal mask."""
    windows = {"modal": [], "hull": [], "interp": []}
    for seed in range(4):
        clip = make_scene(seed, num_frames=16, height=64, width=128)
        for i in clip.target_ids:
            modal, gt = clip.modal(i), clip.amodal[i]
            windows["modal"].append(score_window(modal_as_amodal(modal), gt, modal))
            windows["hull"].append(score_window(convex_hull(modal), gt, modal))
            windows["interp"].append(score_window(interpolate_visible_shape(modal), gt, modal))
    scores = {k: mean_scores(v) for k, v in windows.items()}
    assert scores["modal"]["frames_occ"] == 0  # never any overlap with the hidden region
    assert scores["interp"]["frames_occ"] > 0 and scores["hull"]["frames_occ"] > 0
    assert scores["modal"]["mIoU_occ_all"] == 0.0 and scores["modal"]["frames_occ_all"] > 0
    assert scores["interp"]["mIoU_occ_all"] > 0 and scores["hull"]["mIoU_occ_all"] > 0
