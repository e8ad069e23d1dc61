"""The clip folder format: a clip comes back as written; older folders still read."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amodal_ros.core.errors import InputError
from amodal_ros.data.clip import CLIPS_VERSION
from amodal_ros.data.scenes import make_scene, read_clip_folder, write_clip_folder


def test_folder_round_trip(tmp_path, clips):
    clip = clips[1]  # a default clip: depth holes, segmenter errors in the labels
    back = read_clip_folder(write_clip_folder(clip, tmp_path / "clip"))
    assert np.array_equal(back.rgb, clip.rgb) and np.array_equal(back.labels, clip.labels)
    assert np.abs(back.depth - clip.depth).max() <= 0.0005 + 1e-6  # millimetre PNGs
    assert np.array_equal(back.depth == 0, clip.depth == 0)  # holes stay holes
    for i in clip.target_ids:
        assert np.array_equal(back.amodal[i], clip.amodal[i])
        assert np.array_equal(back.visible[i], clip.visible[i])
        assert np.array_equal(back.appearance[i], clip.appearance[i])
    assert (back.target_depth, back.occluder_ids, back.seed, back.families) == (
        clip.target_depth,
        clip.occluder_ids,
        clip.seed,
        clip.families,
    )
    np.testing.assert_array_equal(back.camera, clip.camera)
    assert back.clips_version == clip.clips_version == CLIPS_VERSION
    with pytest.raises(FileNotFoundError, match="meta.json"):
        read_clip_folder(tmp_path)
    meta = tmp_path / "clip" / "meta.json"  # damaged: named, not a KeyError
    record = json.loads(meta.read_text())
    del record["target_depth_m"]
    meta.write_text(json.dumps(record))
    with pytest.raises(InputError, match="meta.json lacks target_depth_m; regenerate"):
        read_clip_folder(tmp_path / "clip")
    meta.write_text("{'num_frames': 2}")
    with pytest.raises(InputError, match="meta.json is not readable JSON"):
        read_clip_folder(tmp_path / "clip")


def test_a_folder_missing_one_objects_visible_truth_is_refused(tmp_path, clips):
    """Not read as an older folder (the noisy labels standing in for every object's truth)."""
    clip = next(c for c in clips if len(c.target_ids) > 1)
    folder = write_clip_folder(clip, tmp_path / "clip")
    lost = clip.target_ids[-1]
    shutil.rmtree(folder / "visible" / f"obj_{lost}")
    with pytest.raises(InputError, match=f"visible/ lacks obj_{lost} "):
        read_clip_folder(folder)


def test_folders_without_the_new_fields_still_read(tmp_path):
    """Folders written before `visible`, families and camera existed: exact labels."""
    clip = make_scene(2, num_frames=3, height=32, width=64, label_errors=0.0)
    folder = write_clip_folder(clip, tmp_path / "old")
    shutil.rmtree(folder / "visible")
    meta = json.loads((folder / "meta.json").read_text())
    del meta["families"], meta["camera_shift_px"], meta["clips_version"]
    (folder / "meta.json").write_text(json.dumps(meta))
    back = read_clip_folder(folder)
    for i in clip.target_ids:
        assert np.array_equal(back.visible[i], back.labels == i)
    assert back.families == {} and not back.camera.any()
    assert back.clips_version == 1  # the clips of before 2026-12-06


@pytest.mark.parametrize(
    ("image", "change", "message"),
    [
        ("rgb/0001.png", lambda a: a[..., 0], r"1 channel\(s\), uint8; a clip's rgb images"),
        ("rgb/0000.png", lambda a: a[..., [0, 1, 2, 2]], "4 channel"),  # RGBA
        ("rgb/0002.png", lambda a: a[:20], r"is 20x64, .* are 32x64"),
        ("depth/0001.png", lambda a: (a // 256).astype(np.uint8), "uint8; a clip's depth"),
        ("labels/0000.png", lambda a: np.dstack([a, a, a]).astype(np.uint8), "3 channel"),
        ("amodal/obj_1/0000.png", lambda a: a[:, :40], "is 32x40"),
    ],
)
def test_an_image_of_the_wrong_kind_is_refused_naming_it(tmp_path, image, change, message):
    # a grayscale frame read as RGB came back mirrored, an 8-bit depth as 0.23 m at most, a
    # frame of another size as numpy's 'all input arrays must have the same shape'
    import cv2

    clip = make_scene(2, num_frames=3, height=32, width=64)
    folder = write_clip_folder(clip, tmp_path / "clip")
    path = folder / image
    cv2.imwrite(str(path), np.ascontiguousarray(change(cv2.imread(str(path), -1))))
    with pytest.raises(InputError, match=message) as err:
        read_clip_folder(folder)
    assert str(path) in str(err.value)


def test_a_meta_json_whose_frame_count_is_no_count_is_refused(tmp_path):
    folder = write_clip_folder(make_scene(2, num_frames=3, height=32, width=64), tmp_path / "c")
    meta = json.loads((folder / "meta.json").read_text())
    meta["num_frames"] = "3"
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="num_frames is '3', not a count"):
        read_clip_folder(folder)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("target_ids", 1, "target_ids is 1, not a list of object ids"),  # was a TypeError
        ("target_ids", [1.0], r"target_ids is \[1.0\], not a list of object ids"),
        ("occluder_ids", None, "occluder_ids is None, not a list of object ids"),
        (
            "target_depth_m",
            [1.0],
            r"target_depth_m is \[1.0\], not a mapping of object id to metres",
        ),
        (
            "families",
            ["a"],
            r"families is \['a'\], not a mapping of object id to family",
        ),  # was an AttributeError
        ("clips_version", None, "clips_version is None, not a whole number"),
    ],
)
def test_a_meta_json_value_of_the_wrong_type_is_named(tmp_path, key, value, message):
    folder = write_clip_folder(make_scene(2, num_frames=3, height=32, width=64), tmp_path / "c")
    meta = json.loads((folder / "meta.json").read_text())
    meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=f"meta.json: {message}; regenerate the clip"):
        read_clip_folder(folder)


def test_a_frame_count_past_the_frames_and_deep_nesting_are_named(tmp_path):
    """num_frames 10^12 listed 10^12 names before reading any (it never ended); JSON nested
    100000 deep raised a RecursionError."""
    folder = write_clip_folder(make_scene(2, num_frames=3, height=32, width=64), tmp_path / "c")
    meta = json.loads((folder / "meta.json").read_text())
    meta["num_frames"] = 5
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"says 5 frames, but .*rgb/0004.png is missing"):
        read_clip_folder(folder)
    (folder / "meta.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError, match="meta.json is not readable JSON"):
        read_clip_folder(folder)


@pytest.mark.timeout(30)
def test_a_fifo_named_like_a_frame_is_not_waited_on(tmp_path):
    """OpenCV opened it and waited for a writer forever."""
    import os

    folder = write_clip_folder(make_scene(2, num_frames=3, height=32, width=64), tmp_path / "c")
    (folder / "rgb" / "0001.png").unlink()
    os.mkfifo(folder / "rgb" / "0001.png")
    with pytest.raises(FileNotFoundError, match="missing or unreadable image .*rgb/0001.png"):
        read_clip_folder(folder)
