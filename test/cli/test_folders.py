"""Clip folders are checked whole when opened, and read one frame at a time."""

import tracemalloc

import cv2
import numpy as np
import pytest

from amodal_ros.cli import io
from amodal_ros.cli.folders import MAX_OBJECTS, list_images, open_clip, open_depth, open_masks
from amodal_ros.core.errors import InputError


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


def _box(h=8, w=8, value=255, dtype=np.uint8, at=(slice(2, 6), slice(2, 6))):
    mask = np.zeros((h, w), dtype)
    mask[at] = value
    return mask


def test_masks_of_another_width_only_are_refused(tmp_path):
    for t in range(2):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.zeros((16, 24, 3), np.uint8))
        io.write_png(tmp_path / "masks" / f"{t:04d}.png", _box(16, 20, 1))
    with pytest.raises(InputError, match=r"frames are 16x24 \(HxW\), masks .* are 16x20"):
        open_clip(tmp_path / "rgb", tmp_path / "masks")


def test_a_frame_past_the_last_mask_is_named(tmp_path):
    for t in range(7):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.zeros((8, 8, 3), np.uint8))
    for t in range(6):
        io.write_png(tmp_path / "masks" / f"{t:04d}.png", _box(value=1))
    with pytest.raises(InputError, match="7 frames .* 6 masks .*; frame 0006 has no mask"):
        open_clip(tmp_path / "rgb", tmp_path / "masks")


def test_hidden_files_are_no_frames_and_jpeg_masks_are_named(tmp_path):
    io.write_png(tmp_path / "rgb" / "0000.png", np.zeros((8, 8, 3), np.uint8))
    io.write_png(tmp_path / "rgb" / ".preview.png", np.zeros((8, 8, 3), np.uint8))  # a thumbnail
    assert [p.name for p in list_images(tmp_path / "rgb", "frames")] == ["0000.png"]
    jpeg = tmp_path / "masks" / "0000.jpeg"
    jpeg.parent.mkdir()
    cv2.imwrite(str(jpeg), _box())
    with pytest.raises(InputError, match=r"holds JPEG images \(0000.jpeg"):
        open_masks(tmp_path / "masks")


def test_object_folders_must_agree_in_frames_and_size(tmp_path):
    for t in range(3):
        io.write_png(tmp_path / "a" / "obj_1" / f"{t:04d}.png", _box())
        io.write_png(tmp_path / "a" / "obj_2" / f"{t:04d}.png", _box())
    io.write_png(tmp_path / "a" / "obj_2" / "0003.png", _box())
    with pytest.raises(InputError, match="different frame counts"):
        open_masks(tmp_path / "a")
    for t in range(3):
        io.write_png(tmp_path / "b" / "obj_1" / f"{t:04d}.png", _box())
        io.write_png(tmp_path / "b" / "obj_2" / f"{t:04d}.png", _box(8, 10))
    with pytest.raises(InputError, match="different image sizes"):
        open_masks(tmp_path / "b")


def test_an_object_absent_from_a_frame_is_not_faint_and_a_one_pixel_overlap_is_said(
    tmp_path, caplog
):
    io.write_png(tmp_path / "obj_1" / "0000.png", _box())
    io.write_png(tmp_path / "obj_1" / "0001.png", _box(value=0))  # fully hidden there
    io.write_png(tmp_path / "obj_2" / "0000.png", _box(at=(slice(5, 7), slice(5, 7))))
    io.write_png(tmp_path / "obj_2" / "0001.png", _box(at=(slice(0, 1), slice(0, 1))))
    with caplog.at_level("WARNING"):
        masks = open_masks(tmp_path)
    assert masks.ids == [1, 2] and "full scale" not in caplog.text
    assert "object 2's masks overlap earlier objects' in 1 pixels" in caplog.text


def test_the_most_ids_a_label_image_may_hold_and_specks_by_their_largest_frame(tmp_path, caplog):
    labels = np.zeros((32, 32), np.uint16)
    labels.flat[: MAX_OBJECTS * 2] = np.repeat(np.arange(1, MAX_OBJECTS + 1), 2)
    io.write_png(tmp_path / "many" / "0000.png", labels)
    assert len(open_masks(tmp_path / "many").ids) == MAX_OBJECTS  # the documented most
    labels.flat[MAX_OBJECTS * 2] = MAX_OBJECTS + 1
    io.write_png(tmp_path / "many" / "0000.png", labels)
    with pytest.raises(InputError, match=f"{MAX_OBJECTS + 1} ids, more than {MAX_OBJECTS}"):
        open_masks(tmp_path / "many")
    # three ids of 10 pixels in each of 6 frames: specks (60 pixels over the clip)
    specks = np.zeros((16, 16), np.uint16)
    specks[8:, :] = 9  # an object
    for i in (1, 2, 3):
        specks[i, :10] = i
    for t in range(6):
        io.write_png(tmp_path / "specks" / f"{t:04d}.png", specks)
    with caplog.at_level("WARNING"):
        open_masks(tmp_path / "specks")
    assert "3 ids never cover more than 16 pixels in a frame (1, 2, 3)" in caplog.text
    caplog.clear()
    for i in (1, 2, 3):
        specks[i, :16] = i  # exactly 16: still specks
    io.write_png(tmp_path / "specks" / "0000.png", specks)
    with caplog.at_level("WARNING"):
        open_masks(tmp_path / "specks")
    assert "3 ids never cover more than 16 pixels" in caplog.text


def test_float_depth_turning_to_millimetres_later_is_refused_at_that_frame(tmp_path):
    """Every frame is checked, not only up to the first usable one: metres at first, then
    millimetres saved as floats (a re-export halfway) read 1000x too far from frame 0002."""
    for t in range(4):
        np.save(tmp_path / f"{t:04d}.npy", np.full((8, 8), 1.5 if t < 2 else 1500.0, np.float32))
    with pytest.raises(InputError, match=r"depth .*0002\.npy is float, read as metres, and its "):
        open_depth(tmp_path)


def test_8_bit_depth_is_refused_not_read_as_millimetres(tmp_path):
    io.write_png(tmp_path / "depth" / "0000.png", np.full((8, 8), 200, np.uint8))
    with pytest.raises(InputError, match="depth in .* is uint8; use 16-bit PNG"):
        open_depth(tmp_path / "depth")
