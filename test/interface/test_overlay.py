"""The overlay a person looks at: each object's colour by its id, the visible part tinted,
the hidden part shaded, and a one-pixel outline around the whole object (not its holes)."""

from __future__ import annotations

import numpy as np

from amodal_ros.interface.overlay import PALETTE, color_for, draw_overlay


def test_colours_cycle_through_the_whole_palette():
    colours = {tuple(color_for(i)) for i in range(len(PALETTE))}
    assert len(colours) == len(PALETTE) == 10
    assert tuple(color_for(len(PALETTE) + 3)) == tuple(color_for(3))


def test_overlay_tints_the_visible_part_shades_the_hidden_and_outlines_the_outside():
    rgb = np.full((12, 12, 3), 100, np.uint8)
    amodal = np.zeros((12, 12), bool)
    amodal[2:10, 2:10] = True
    amodal[5:7, 5:7] = False  # a hole: a ring-shaped object (a roll of tape)
    modal = amodal.copy()
    modal[:, 6:] = False  # its right part hidden
    out = draw_overlay(rgb, [(modal, amodal)], ids=[13])  # the colour follows the id
    colour = color_for(13)
    grey = np.float32(100)
    tinted = (0.75 * grey + 0.25 * colour.astype(np.float32)).astype(np.uint8)
    shaded = (0.35 * grey + 0.65 * colour.astype(np.float32)).astype(np.uint8)
    np.testing.assert_array_equal(out[4, 3], tinted)  # visible, inside
    np.testing.assert_array_equal(out[4, 8], shaded)  # hidden, inside
    np.testing.assert_array_equal(out[3, 3], tinted)  # beside the outline: one pixel wide
    np.testing.assert_array_equal(out[4, 5], tinted)  # the hole's edge is not outlined
    outline = np.zeros((12, 12), bool)
    outline[2:10, 2:10] = True
    outline[3:9, 3:9] = False
    assert (out[outline] == colour).all()
    np.testing.assert_array_equal(out[~amodal & ~outline], rgb[~amodal & ~outline])
    # without ids, colours go by position
    by_position = draw_overlay(rgb, [(modal, amodal)])
    assert (by_position[outline] == color_for(0)).all()
