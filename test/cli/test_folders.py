"""Clip folders are checked whole when opened, and read one frame at a time."""

import os
import struct
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest

from amodal_ros.cli import io
from amodal_ros.cli.folders import (
    MAX_OBJECTS,
    list_images,
    open_clip,
    open_depth,
    open_masks,
    open_rgb,
)
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


def test_frames_read_as_rgb_of_three_channels_however_they_were_saved(tmp_path):
    """The model takes [H, W, 3] uint8 RGB: a red frame stays red (OpenCV reads BGR), and grey,
    RGBA (exports with alpha) or 16-bit frames come back as three 8-bit colour channels."""
    io.write_png(tmp_path / "rgb" / "0000.png", np.full((4, 6, 3), (255, 0, 0), np.uint8))
    io.write_png(tmp_path / "rgb" / "0001.png", np.full((4, 6), 90, np.uint8))  # grey
    io.write_png(tmp_path / "rgb" / "0002.png", np.full((4, 6, 4), (0, 200, 0, 128), np.uint8))
    io.write_png(tmp_path / "rgb" / "0003.png", np.full((4, 6, 3), (0, 0, 65535), np.uint16))
    rgb = open_rgb(tmp_path / "rgb")
    frames = [rgb.read(t) for t in range(4)]
    assert [(f.shape, f.dtype) for f in frames] == [((4, 6, 3), np.uint8)] * 4
    colours = [f[0, 0].tolist() for f in frames]
    assert colours == [[255, 0, 0], [90, 90, 90], [0, 200, 0], [0, 0, 255]]


def test_tiff_bmp_and_jpeg_files_are_frames_masks_and_depth(tmp_path):
    """Every suffix the docs list is read: .tif/.tiff/.bmp/.jpeg frames, lossless .tif/.tiff/
    .bmp masks, float .tif/.tiff depth in metres; a left-out suffix was "no images" or a
    frame count mismatch."""
    mask = _box(4, 6, 2, at=(slice(1, 3), slice(1, 4)))
    suffixes = [(".tiff", ".tiff", ".tiff"), (".tif", ".tif", ".tif"), (".jpeg", ".bmp", ".tiff")]
    for t, (frame, labels, depth) in enumerate([*suffixes, (".bmp", ".png", ".tiff")]):
        for folder, suffix, image in [
            ("rgb", frame, np.full((4, 6, 3), 100, np.uint8)),
            ("labels", labels, mask),
            ("depth", depth, np.full((4, 6), 1.5, np.float32)),
        ]:
            (tmp_path / folder).mkdir(exist_ok=True)
            assert cv2.imwrite(str(tmp_path / folder / f"{t:04d}{suffix}"), image)
    clip = open_clip(tmp_path / "rgb", tmp_path / "labels", tmp_path / "depth")
    assert clip.names == ["0000", "0001", "0002", "0003"] and clip.ids == [2]
    assert clip.depth.encoding == "32FC1" and clip.frame(2).depth[0, 0] == 1.5
    assert (clip.frame(3).labels == 2).sum() == 6


def test_frames_carry_their_depths_unit_and_float64_npy_is_metres(tmp_path):
    """16-bit PNG depth reaches the pipeline as uint16 millimetres marked 16UC1 (marked 32FC1
    it would be read as metres, 1000x too far); np.save's default float64 is metres too, read
    as float32; a clip without depth has none."""
    for t in range(2):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.zeros((4, 6, 3), np.uint8))
        io.write_png(tmp_path / "masks" / f"{t:04d}.png", _box(4, 6, 1))
        io.write_png(tmp_path / "mm" / f"{t:04d}.png", np.full((4, 6), 1500, np.uint16))
        (tmp_path / "m").mkdir(exist_ok=True)
        np.save(tmp_path / "m" / f"{t:04d}.npy", np.full((4, 6), 1.5))  # float64
    frames, masks = tmp_path / "rgb", tmp_path / "masks"
    mm = open_clip(frames, masks, tmp_path / "mm").frame(1)
    assert mm.depth_encoding == "16UC1" and mm.depth.dtype == np.uint16 and mm.depth[0, 0] == 1500
    metres = open_clip(frames, masks, tmp_path / "m").frame(1)
    assert metres.depth_encoding == "32FC1" and metres.depth.dtype == np.float32
    assert metres.depth[0, 0] == 1.5
    bare = open_clip(frames, masks).frame(1)
    assert bare.depth is None and bare.depth_encoding == "32FC1"


def test_float_depth_is_refused_only_when_no_frame_has_a_return(tmp_path):
    """A last frame without return (the camera covered) leaves the clip usable; depth with no
    return anywhere is refused with its unit and its largest value over all frames."""
    (tmp_path / "last").mkdir()
    np.save(tmp_path / "last" / "0000.npy", np.full((4, 6), 1.5, np.float32))
    np.save(tmp_path / "last" / "0001.npy", np.zeros((4, 6), np.float32))
    assert open_depth(tmp_path / "last").encoding == "32FC1"
    (tmp_path / "none").mkdir()
    np.save(tmp_path / "none" / "0000.npy", np.full((4, 6), 0.03, np.float32))
    np.save(tmp_path / "none" / "0001.npy", np.full((4, 6), 0.01, np.float32))
    with pytest.raises(InputError, match=r"read as metres \(float\), its largest value is 0.03 m"):
        open_depth(tmp_path / "none")


def test_a_clip_at_a_faster_cameras_rate_reads_only_the_frames_it_keeps(tmp_path):
    """`--input-fps 16` keeps every other frame: names, length and frame(t) are the kept
    frames', stamped at the model's 8 fps; the clip it came from is unchanged."""
    for t in range(6):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.full((4, 6, 3), t, np.uint8))
        io.write_png(tmp_path / "masks" / f"{t:04d}.png", _box(4, 6, 1))
    clip = open_clip(tmp_path / "rgb", tmp_path / "masks")
    sampled = clip.at_rate(16, 8)
    assert sampled.names == ["0000", "0002", "0004"] and len(sampled) == 3
    assert sampled.frame(1).rgb[0, 0, 0] == 2 and sampled.frame(1).stamp_ns == 125_000_000
    assert len(clip.at_rate(8, 8)) == 6 and len(clip) == 6 and clip.frame(1).rgb[0, 0, 0] == 1


def test_object_masks_in_colour_or_with_alpha_read_as_the_object(tmp_path):
    """A red or green mask is the object (its largest colour channel, not blue alone); an
    opaque alpha channel, as image editors save, is not (it read the whole frame as the
    object); JPEG object masks are refused as JPEG label images are."""
    box = _box() > 0
    saved = {
        "red": np.stack([box * 255, box * 0, box * 0], -1),
        "green": np.stack([box * 0, box * 255, box * 0], -1),
        "rgba": np.stack([box * 255] * 3 + [np.full(box.shape, 255)], -1),
    }
    for name, image in saved.items():
        io.write_png(tmp_path / name / name / "0000.png", image.astype(np.uint8))
        np.testing.assert_array_equal(open_masks(tmp_path / name).read(0) > 0, box)
    (tmp_path / "jpeg" / "obj_1").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "jpeg" / "obj_1" / "0000.jpg"), _box())
    with pytest.raises(InputError, match=r"object obj_1 folder .* holds JPEG images \(0000.jpg"):
        open_masks(tmp_path / "jpeg")


def test_object_masks_scale_by_the_clip_not_the_first_frame_and_half_is_the_object(
    tmp_path, caplog
):
    """An object that enters after frame 0, saved 0/1, reads as the object (its scale judged
    by the empty first frame read every frame empty); a pixel at exactly half the full scale
    (128 of 255, the reference's threshold) is the object, and no faint frame is warned of."""
    io.write_png(tmp_path / "late" / "obj_1" / "0000.png", _box(value=0))
    io.write_png(tmp_path / "late" / "obj_1" / "0001.png", _box(value=1))
    late = open_masks(tmp_path / "late")
    assert not late.read(0).any() and (late.read(1) == 1).sum() == 16
    io.write_png(tmp_path / "half" / "obj_1" / "0000.png", _box())
    io.write_png(tmp_path / "half" / "obj_1" / "0001.png", _box(value=128))
    with caplog.at_level("WARNING"):
        half = open_masks(tmp_path / "half")
    assert (half.read(1) == 1).sum() == 16 and "full scale" not in caplog.text


def test_object_ids_come_from_names_ending_in_a_number_and_never_collide(tmp_path):
    """`7`, `car`, `dog`, `v2_lid`: the number ends the name (`v2_lid` is no object 2), and
    the named folders take 8, 9, 10 in name order (a second one took 7, merging two objects);
    folders without numbers are 1, 2, ..."""
    for name in ("7", "car", "dog", "v2_lid"):
        io.write_png(tmp_path / "a" / name / "0000.png", _box())
    masks = open_masks(tmp_path / "a")
    named = {files[0].parent.name: object_id for object_id, files in masks.objects.items()}
    assert named == {"7": 7, "car": 8, "dog": 9, "v2_lid": 10}
    for name in ("car", "dog"):
        io.write_png(tmp_path / "b" / name / "0000.png", _box())
    assert sorted(open_masks(tmp_path / "b").ids) == [1, 2]


def test_frames_of_two_sizes_in_one_folder_are_refused_naming_both(tmp_path):
    """A resized frame among the others is refused at open, naming both files (else the
    window holding it fails once the models have loaded)."""
    io.write_png(tmp_path / "rgb" / "0000.png", np.zeros((8, 8, 3), np.uint8))
    io.write_png(tmp_path / "rgb" / "0001.png", np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(InputError, match=r"0001.png is 8x10 \(HxW\), but 0000.png is 8x8; all"):
        open_rgb(tmp_path / "rgb")


def test_stamp_names_of_two_orders_name_the_first_pair_that_differs(tmp_path):
    """The refusal names the frames the two readings put first (.15 as a fraction, .2 as a
    whole number), not a pair both agree on."""
    for name in ("1690000000.1", "1690000000.15", "1690000000.2"):
        io.write_png(tmp_path / f"{name}.png", np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(InputError, match=r"\(1690000000.15.png first\) .*\(1690000000.2.png"):
        open_rgb(tmp_path)


def test_a_long_list_of_specks_is_cut_at_ten_ids(tmp_path, caplog):
    """The warning lists at most 10 speck ids, and says "..." only when there are more."""
    labels = np.zeros((16, 16), np.uint16)
    labels[8:, :] = 99  # an object
    for i in range(11):
        labels[0, i] = i + 1
    io.write_png(tmp_path / "eleven" / "0000.png", labels)
    labels[0, 10] = 0
    io.write_png(tmp_path / "ten" / "0000.png", labels)
    with caplog.at_level("WARNING"):
        open_masks(tmp_path / "eleven")
        open_masks(tmp_path / "ten")
    ten = ", ".join(map(str, range(1, 11)))
    assert f"11 ids never cover more than 16 pixels in a frame ({ten}, ...)" in caplog.text
    assert f"10 ids never cover more than 16 pixels in a frame ({ten});" in caplog.text


def test_a_corrupt_mask_png_is_named_as_a_corrupt_frame_is(tmp_path):
    """A truncated label PNG is one InputError naming the file, not PIL's own error."""
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "0000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InputError, match=r"cannot read image .*0000\.png \(corrupt"):
        open_masks(tmp_path / "masks")


def test_what_is_named_like_an_image_but_is_no_file_is_refused_not_read(tmp_path):
    """A FIFO named 0001.png made opening the folder wait for a writer forever; a folder or a
    broken link of that name was called a corrupt image."""
    for name, make in (
        ("fifo", os.mkfifo),
        ("folder", os.mkdir),
        ("link", lambda p: p.symlink_to(tmp_path / "gone.png")),
    ):
        folder = tmp_path / name
        io.write_png(folder / "0000.png", np.zeros((4, 6, 3), np.uint8))
        make(folder / "0001.png")
        with pytest.raises(InputError, match=f"{name}: 0001.png is an? .*, not an image file"):
            list_images(folder, "frames")


def test_an_image_claiming_more_pixels_than_any_camera_is_refused_before_decoding(tmp_path):
    """A 100-byte PNG claiming 30000 x 30000 made OpenCV allocate 2.7 GB; past 2^30 pixels it
    raised cv2.error, and a label PNG PIL's DecompressionBombError: tracebacks."""

    def claiming(width, height):
        def chunk(kind, data):
            crc = struct.pack(">I", zlib.crc32(kind + data))
            return struct.pack(">I", len(data)) + kind + data + crc

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")

    for size, shown in ((30000, "more than 178956970"), (9000, "81000000"), (40000, "more")):
        for what in ("rgb", "labels"):
            folder = tmp_path / f"{what}{size}"
            folder.mkdir()
            (folder / "0000.png").write_bytes(claiming(size, size))
            opener = open_rgb if what == "rgb" else open_masks
            with pytest.raises(InputError, match=f"0000.png claims {shown}.* pixels, more than"):
                opener(folder)


def test_label_ids_are_whole_numbers_an_int32_holds(tmp_path):
    """A float TIFF's ids 1.25 and 1.5 were both read as object 1, 1e12 wrapped in int32 to
    an object empty in every frame, and -1 became an object `obj_-1`."""
    for name, labels, said in (
        ("fraction", _box(value=1.25, dtype=np.float32), "is float32; instance labels are whole"),
        ("huge", _box(value=1e12, dtype=np.float64), "is float64"),
        ("negative", _box(value=-1, dtype=np.int32), "holds ids from -1 to 0; instance labels"),
    ):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "0000.tiff"), labels)
        with pytest.raises(InputError, match=said):
            open_masks(tmp_path / name)
    io.write_png(tmp_path / "ok" / "0000.png", _box(value=65535, dtype=np.uint16))
    assert open_masks(tmp_path / "ok").ids == [65535]


def test_every_object_folder_pairs_with_the_frames_by_name(tmp_path):
    """Only the first object's names were paired: obj_2 named a frame later than obj_1 had
    each of its masks given to the frame before, silently."""
    for t in range(3):
        io.write_png(tmp_path / "rgb" / f"{t:04d}.png", np.zeros((8, 8, 3), np.uint8))
        io.write_png(tmp_path / "objects" / "obj_1" / f"{t:04d}.png", _box())
        io.write_png(tmp_path / "objects" / "obj_2" / f"{t + 1:04d}.png", _box())
    with pytest.raises(InputError, match=r"rgb and .*obj_2 are paired .* frame 0000 has no mask"):
        open_clip(tmp_path / "rgb", tmp_path / "objects")


def test_an_object_folder_numbered_past_int32_is_refused_by_name(tmp_path):
    """`obj_3000000000` overflowed the int32 labels: an OverflowError traceback."""
    for name in ("obj_1", "obj_3000000000"):
        io.write_png(tmp_path / "objects" / name / "0000.png", _box())
    with pytest.raises(InputError, match="obj_3000000000: id 3000000000 is past 2147483647"):
        open_masks(tmp_path / "objects")


def test_one_frame_number_twice_is_refused_and_any_decimal_digits_read(tmp_path):
    """1.png beside 01.png: two frames whose order was the file system's; a '²' in a name
    (a digit to str.isdigit, not to int) raised int()'s ValueError."""
    for name in ("0", "01", "1", "2"):
        io.write_png(tmp_path / "twice" / f"{name}.png", np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(InputError, match="01.png and 1.png are one frame number twice"):
        list_images(tmp_path / "twice", "frames")
    for t in range(3):
        io.write_png(tmp_path / "sup" / f"a1²{t}.png", np.zeros((4, 6, 3), np.uint8))
    assert open_rgb(tmp_path / "sup").names == ["a1²0", "a1²1", "a1²2"]


def test_damaged_npy_depth_is_named_and_byte_order_is_no_kind(tmp_path):
    """An empty file (EOFError), an .npz under a .npy name (AttributeError) and a header
    claiming 100000 x 100000 (a 37 GB allocation) were tracebacks; big-endian float32 beside
    little-endian was refused as "mixes >f4, float32"."""
    depth = np.full((4, 6), 1.5, np.float32)
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (117 - 10 - len(header)) + "\n"
    claims = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    damaged = {
        "empty": (b"", "is not a numeric .npy array"),
        "npz": (None, r"is an .npz archive, not one .npy array"),
        "claims": (claims, "is not a numeric"),
    }
    for name, (data, said) in damaged.items():
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "0000.npy", depth)
        if data is None:
            np.savez(folder / "0001.npz", depth=depth)
            (folder / "0001.npz").rename(folder / "0001.npy")
        else:
            (folder / "0001.npy").write_bytes(data)
        with pytest.raises(InputError, match=f"depth file .*0001.npy {said}"):
            open_depth(folder)
    (tmp_path / "endian").mkdir()
    np.save(tmp_path / "endian" / "0000.npy", depth)
    np.save(tmp_path / "endian" / "0001.npy", depth.astype(">f4"))
    opened = open_depth(tmp_path / "endian")
    assert opened.encoding == "32FC1" and opened.read(1).dtype == np.float32
