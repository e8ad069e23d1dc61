"""Object families: every outline renders a sensible silhouette, alone and in a clip."""

from __future__ import annotations

import pytest

from amodal_ros.data.scenes import FAMILIES, HELD_OUT_FAMILIES, family_mask


@pytest.mark.parametrize("family", FAMILIES + HELD_OUT_FAMILIES)
def test_every_family_renders_a_sensible_mask(family, small):
    for extent in (12, 48):
        for seed in range(4):
            mask = family_mask(family, extent, seed)
            assert mask.shape == (extent, extent)
            # not a speck, not the whole canvas; the outline fits in the canvas
            assert 0.05 < mask.mean() < 0.85, (family, extent, seed, mask.mean())
    clip = small(3, families=(family,))
    assert set(clip.families.values()) == {family}
    for i in clip.target_ids:
        area = clip.amodal[i].reshape(len(clip.rgb), -1).sum(1) / (64 * 128)
        assert area.max() > 0.003 and area.max() < 0.3, (family, i, area.max())


def test_unknown_families_are_named():
    with pytest.raises(ValueError, match="spaceship"):
        family_mask("spaceship", 16)
