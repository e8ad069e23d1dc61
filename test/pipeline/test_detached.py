"""Small detached parts of an amodal mask: removed as specks, the object's parts kept."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.core.types import AmodalResult
from amodal_ros.pipeline.detached import detached_specks, drop_detached


def frame(*boxes) -> np.ndarray:
    mask = np.zeros((40, 60), bool)
    for y0, y1, x0, x1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


BODY = (5, 25, 5, 25)  # 400 px
SPECK = (30, 33, 50, 53)  # 9 px: 2 % of the frame's 409
HALF = (5, 25, 40, 50)  # 200 px: a third of 600


def test_a_speck_goes_and_the_body_stays():
    specks = detached_specks(frame(BODY, SPECK), 0.2)
    assert specks is not None and specks.sum() == 9
    assert (specks == frame(SPECK)).all()


def test_large_parts_and_the_largest_stay():
    assert detached_specks(frame(BODY, HALF), 0.2) is None  # 200 of 600 >= 0.2
    assert (detached_specks(frame(BODY, HALF), 0.4) == frame(HALF)).all()  # 200 of 600 < 0.4
    assert detached_specks(frame(BODY), 0.9) is None  # one part
    assert detached_specks(frame(), 0.2) is None  # empty
    assert detached_specks(frame(BODY, SPECK), 0.0) is None  # off
    assert (detached_specks(frame(BODY, HALF), 1.0) == frame(HALF)).all()  # all but one
    # the largest part is kept however many equal specks there are
    many = frame(*[(2 * k, 2 * k + 1, 0, 1) for k in range(20)] + [(0, 2, 10, 11)])
    assert detached_specks(many, 0.5).sum() == 20


def test_an_object_seen_through_a_fence_keeps_its_equal_parts():
    """Six equal parts are a sixth of the area each: all but one went (0.83 of the object)."""
    slats = [(5, 25, 2 + 9 * k, 8 + 9 * k) for k in range(6)]
    assert detached_specks(frame(*slats), 0.2) is None
    assert detached_specks(frame(*slats, SPECK), 0.2).sum() == 9  # a speck beside them goes


@pytest.mark.parametrize("share", [0.1, 0.2, 0.3])
def test_two_parts_follow_the_share_of_the_area_as_before(share):
    """The bound on the largest part is the share's own for two parts: nothing changed there."""
    for width in range(1, 30):
        part = (30, 35, 30, 30 + width)  # 5 * width px beside the 400 px body
        removed = detached_specks(frame(BODY, part), share) is not None
        assert removed == (5 * width < share * (400 + 5 * width)), width


def test_diagonal_neighbours_are_one_part():
    mask = frame(BODY)
    mask[25, 25] = mask[26, 26] = True  # 8-connected to the body's corner
    assert detached_specks(mask, 0.2) is None


@pytest.mark.parametrize("samples", [False, True])
def test_drop_detached_clears_every_output_of_decoded_frames_only(samples):
    amodal = np.stack([frame(BODY, SPECK)] * 3)
    modal = amodal.copy()  # a segmenter's spurious blob: the speck is "visible"
    result = AmodalResult(
        "obj",
        amodal=amodal,
        soft=amodal.astype(np.float32),
        modal=modal.copy(),
        disagreement=np.ones(amodal.shape, np.float32) if samples else None,
        samples=np.stack([amodal, amodal]) if samples else None,
        decoded=np.array([True, False, True]),
    )
    assert drop_detached(result, 0.2) == 2 * 9
    speck = frame(SPECK)
    for t, cleared in enumerate([True, False, True]):
        assert result.amodal[t][speck].any() != cleared
        assert result.soft[t][speck].any() != cleared
        assert result.amodal[t][frame(BODY)].all()
        if samples:
            assert result.disagreement[t][speck].any() != cleared
            assert result.samples[:, t][:, speck].any() != cleared
    assert (result.modal == modal).all()  # the input stays as it came
