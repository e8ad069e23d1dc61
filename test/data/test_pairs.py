"""Stage-2 self-supervised pairs: who qualifies, and how much gets hidden."""

from __future__ import annotations

import numpy as np

from amodal_ros.data.pairs import MAX_IOU, make_pair, visibility


def _track(t=3, h=10, w=12, x0=2, x1=8):
    m = np.zeros((t, h, w), bool)
    m[:, 2:8, x0:x1] = True
    return m


def test_visibility_by_hand():
    amodal = _track()
    modal = amodal.copy()
    modal[0, :, 2:5] = False  # frame 0: half visible
    assert visibility(modal, amodal) == (0.5 + 1 + 1) / 3
    assert visibility(modal, np.zeros_like(amodal)) == 0.0


def test_pair_hides_enough_of_the_object():
    rng = np.random.default_rng(0)
    amodal = _track()
    big = _track(x0=0, x1=6)  # covers 4 of the 6 object columns
    shown = make_pair(amodal.copy(), amodal, [big], rng)
    assert shown is not None
    assert visibility(shown, amodal) < MAX_IOU
    assert not (shown & big).any() and not (shown & ~amodal).any()
    assert shown[:, 2:8, 6:8].all()  # what the occluder leaves stays visible


def test_no_pair_for_occluded_objects_or_useless_occluders():
    rng = np.random.default_rng(0)
    amodal = _track()
    hidden = amodal.copy()
    hidden[:, :, 2:4] = False  # only 2/3 visible: not a clean target
    assert make_pair(hidden, amodal, [_track(x0=0, x1=6)], rng) is None
    far = _track(x0=10, x1=12)  # never overlaps the object
    assert make_pair(amodal.copy(), amodal, [far], rng) is None
    assert make_pair(amodal.copy(), amodal, [], rng) is None
