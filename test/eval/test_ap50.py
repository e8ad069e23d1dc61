"""AP50 on amodal boxes (TAO-Amodal's metric) against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.eval.metrics import average_precision, box_detections, box_iou, mask_box


def test_mask_box_and_box_iou():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True
    assert mask_box(mask) == (3, 2, 7, 5) and mask_box(np.zeros((4, 4), bool)) is None
    assert box_iou((0, 0, 4, 4), (2, 0, 6, 4)) == pytest.approx(8 / 24)
    assert box_iou((0, 0, 2, 2), (3, 3, 5, 5)) == 0.0


def test_average_precision_by_hand():
    # all hits ranked first: perfect
    assert average_precision([0.9, 0.8], [True, True], 2) == pytest.approx(1.0)
    # half the ground truth found, no false positive: precision 1 up to recall 0.5 -> 51/101
    assert average_precision([0.9], [True], 2) == pytest.approx(51 / 101)
    # a false positive ranked above the only hit: precision 1/2 at recall 1
    assert average_precision([0.9, 0.5], [False, True], 1) == pytest.approx(0.5)
    # the same detections without a confidence are one operating point: also 1/2
    assert average_precision([1.0, 1.0], [True, False], 1) == pytest.approx(0.5)
    # ranking matters when scores differ: the hit first gives precision 1 at recall 1
    assert average_precision([0.9, 0.5], [True, False], 1) == pytest.approx(1.0)
    assert average_precision([0.2, 0.9], [False, True], 1) == pytest.approx(1.0)  # any order
    assert np.isnan(average_precision([], [], 0))


def test_box_detections_count_frames_and_hits():
    gt = np.zeros((3, 8, 8), bool)
    gt[0, 0:4, 0:4] = gt[1, 0:4, 0:4] = True  # frame 2: object outside the image
    pred = np.zeros_like(gt)
    pred[0, 0:4, 0:3] = True  # IoU 0.75: a hit
    pred[1, 4:8, 4:8] = True  # no overlap: a miss
    pred[2, 0:2, 0:2] = True  # no ground truth: a false positive
    scores, hits, num_gt = box_detections(pred, gt)
    assert (scores, hits, num_gt) == ([1.0, 1.0, 1.0], [True, False, False], 2)
    assert average_precision(scores, hits, num_gt) == pytest.approx((1 / 3) * 51 / 101)


def test_a_box_overlapping_at_exactly_iou_half_is_a_hit():
    gt = np.zeros((1, 8, 8), bool)
    gt[0, 0:2, 0:2] = True
    pred = np.zeros_like(gt)
    pred[0, 0:1, 0:2] = True  # half the box: IoU 0.5
    assert box_detections(pred, gt)[1] == [True]
