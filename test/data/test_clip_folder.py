"""The clip folder format: a clip comes back as written; older folders still read."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amodal_ros.core.errors import InputError
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


def test_folders_without_the_new_fields_still_read(tmp_path):
    """Folders written before `visible`, families and camera existed: exact labels."""
    clip = make_scene(2, num_frames=3, height=32, width=64, label_errors=0.0)
    folder = write_clip_folder(clip, tmp_path / "old")
    shutil.rmtree(folder / "visible")
    meta = json.loads((folder / "meta.json").read_text())
    del meta["families"], meta["camera_shift_px"]
    (folder / "meta.json").write_text(json.dumps(meta))
    back = read_clip_folder(folder)
    for i in clip.target_ids:
        assert np.array_equal(back.visible[i], back.labels == i)
    assert back.families == {} and not back.camera.any()
