"""Clip folders are checked whole when opened, and read one frame at a time."""

import tracemalloc

import numpy as np

from amodal_ros.cli import io
from amodal_ros.cli.folders import open_clip


def test_a_clip_is_read_frame_by_frame_never_held_whole(tmp_path):
    """Opening a 30-frame clip and reading every frame holds a few frames at most (infer held
    the whole clip: ~2.7 MB a frame at 640x480), and each frame comes back as written."""
    t_count, h, w = 30, 240, 320
    for t in range(t_count):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.full((h, w, 3), t, np.uint8))
        labels = np.zeros((h, w), np.uint16)
        labels[10:50, 10 + t : 60 + t] = 3
        io.write_png(tmp_path / "labels" / f"{t:04d}.png", labels)
        io.write_png(tmp_path / "depth" / f"{t:04d}.png", np.full((h, w), 1000 + t, np.uint16))
    folders = (tmp_path / "rgb", tmp_path / "labels", tmp_path / "depth")
    open_clip(*folders)  # imports done before measuring
    frame_bytes = h * w * (3 + 4 + 2)  # RGB, int32 labels, uint16 depth
    tracemalloc.start()
    try:
        clip = open_clip(*folders)
        for t in range(t_count):
            frame = clip.frame(t)
            assert frame.rgb[0, 0].tolist() == [t] * 3 and frame.depth[0, 0] == 1000 + t
            assert (frame.labels == 3).sum() == 40 * 50 and frame.labels[10, 10 + t] == 3
            assert frame.stamp_ns == t * 125_000_000  # the model's 8 fps
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.ids == [3] and clip.depth.encoding == "16UC1"
    assert peak < 6 * frame_bytes, f"{peak / frame_bytes:.1f} frames held at once"


def test_folders_of_one_naming_scheme_shifted_by_a_frame_are_refused(tmp_path):
    """Equal counts were enough: labels 0001..0004 beside rgb 0000..0003 paired every mask with
    the frame before it, silently."""
    import pytest

    from amodal_ros.core.errors import InputError

    h, w = 16, 24
    labels = np.zeros((h, w), np.uint16)
    labels[4:10, 4:12] = 1
    for t in range(4):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.zeros((h, w, 3), np.uint8))
        io.write_png(tmp_path / "labels" / f"{t + 1:04d}.png", labels)
        io.write_png(tmp_path / "depth" / f"{t:04d}.png", np.full((h, w), 1000, np.uint16))
        io.write_png(tmp_path / "later" / f"{t + 1:04d}.png", np.full((h, w), 1000, np.uint16))
        io.write_png(tmp_path / "masks" / f"mask_{t:04d}.png", labels)  # another scheme: fine
    rgb = tmp_path / "rgb"
    with pytest.raises(InputError, match="paired in name order, .* frame 0000 has no mask"):
        open_clip(rgb, tmp_path / "labels")
    with pytest.raises(InputError, match="frame 0000 has no depth image of its name"):
        open_clip(rgb, tmp_path / "masks", tmp_path / "later")
    assert open_clip(rgb, tmp_path / "masks", tmp_path / "depth").ids == [1]
    (tmp_path / "depth" / "0002.png").unlink()  # one missing: named (was a bare shape)
    with pytest.raises(InputError, match="3 depth images in .*frame 0002 has no depth image"):
        open_clip(rgb, tmp_path / "masks", tmp_path / "depth")
    for t in range(4):
        io.write_png(tmp_path / "small" / f"{t:04d}.png", np.full((8, 12), 1000, np.uint16))
    with pytest.raises(InputError, match="frames are 16x24 .*, depth images in .*small are 8x12"):
        open_clip(rgb, tmp_path / "masks", tmp_path / "small")
    for t in range(8, 12):  # frame_8 .. frame_11 beside frame_08 .. frame_11: the same frames
        io.write_png(tmp_path / "rgb2" / f"frame_{t}.png", np.zeros((h, w, 3), np.uint8))
        io.write_png(tmp_path / "padded" / f"frame_{t:02d}.png", labels)
    assert open_clip(tmp_path / "rgb2", tmp_path / "padded").ids == [1]
