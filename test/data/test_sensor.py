"""What the sensor models do to the clean render: segmenter errors in the labels only, depth
with holes and noise like an active stereo camera."""

from __future__ import annotations

import cv2
import numpy as np


def test_labels_carry_segmenter_errors_the_ground_truth_does_not(small):
    missed = spurious = 0
    for seed in range(10):
        noisy, exact = small(seed), small(seed, label_errors=0.0)
        # everything but the labels is the same clip
        for name in ("rgb", "depth", "camera", "amodal", "visible", "appearance"):
            x, y = getattr(noisy, name), getattr(exact, name)
            if isinstance(x, dict):
                assert x.keys() == y.keys(), name
                x, y = [x[i] for i in sorted(x)], [y[i] for i in sorted(y)]
            assert all(np.array_equal(a, b) for a, b in zip(x, y, strict=True)), name
        assert not np.array_equal(noisy.labels, exact.labels)
        known = set(noisy.target_ids) | set(noisy.occluder_ids) | {0}
        assert set(np.unique(noisy.labels).tolist()) <= known
        for i in exact.target_ids:
            assert np.array_equal(exact.modal(i), exact.visible[i])
            seen, modal = noisy.visible[i], noisy.modal(i)
            # the visible ground truth is exact: inside the amodal mask, equal to the clean
            # label image, and the depth there is the object's own
            assert not (seen & ~noisy.amodal[i]).any()
            # slivers at 64x128 lose most of their pixels; missed frames are counted below
            big = (seen.sum((1, 2)) >= 100) & modal.any((1, 2))
            inter, union = (seen & modal)[big].sum(), (seen | modal)[big].sum()
            assert union == 0 or inter / union > 0.75, (seed, i)  # small errors, not other masks
            missed += int((seen.reshape(len(seen), -1).sum(1) > 20)[~modal.any((1, 2))].sum())
            far = np.stack(
                [cv2.dilate(a.astype(np.uint8), np.ones((9, 9), np.uint8)) for a in seen]
            )
            spurious += int((modal & (far == 0)).any())
    assert missed >= 1, "a target's labels go missing in some frame"
    assert spurious >= 1, "spurious blobs away from the object"


def test_depth_has_holes_and_noise_like_a_depth_camera(clips, exact_clips, small):
    zeros_at_edges = zeros_elsewhere = edge_px = other_px = 0
    for clip, exact in zip(clips, exact_clips, strict=True):
        assert np.isfinite(clip.depth).all() and (clip.depth >= 0).all()
        invalid = clip.depth == 0
        assert 0 < invalid.mean() < 0.25, (clip.seed, invalid.mean())
        assert (small(clip.seed, depth_holes=0.0).depth > 0).all()
        z = exact.depth
        valid = ~invalid
        # noise that grows with depth, millimetre steps
        err = np.abs(clip.depth[valid] - z[valid])
        assert 0 < err.mean() < 0.2
        np.testing.assert_allclose(clip.depth[valid] * 1000, np.round(clip.depth[valid] * 1000))
        near, far = valid & (z < 6.1), valid & (z > 7.5)  # objects, the wall
        assert np.abs(clip.depth - z)[near].mean() < np.abs(clip.depth - z)[far].mean()
        # holes gather beside depth steps (the stereo shadow of near objects)
        step = np.stack(
            [cv2.dilate(f, np.ones((3, 3))) - cv2.erode(f, np.ones((3, 3))) for f in z]
        )
        edge = step > 0.3
        zeros_at_edges += (invalid & edge).sum()
        zeros_elsewhere += (invalid & ~edge).sum()
        edge_px, other_px = edge_px + edge.sum(), other_px + (~edge).sum()
    assert zeros_at_edges / edge_px > 3 * zeros_elsewhere / other_px
