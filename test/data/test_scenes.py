"""The synthetic amodal video generator: determinism and ground-truth consistency."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.data.scenes import (
    TEST_SEED_OFFSET,
    make_scene,
    read_clip_folder,
    split_seeds,
    write_clip_folder,
)

SEEDS = range(12)


@pytest.fixture(scope="module")
def clips():
    return [make_scene(seed, num_frames=16, height=64, width=128) for seed in SEEDS]


def _fields(clip):
    return [clip.rgb, clip.depth, clip.labels, *clip.amodal.values(), *clip.appearance.values()]


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = make_scene(5), make_scene(5), make_scene(6)
    assert all(np.array_equal(x, y) for x, y in zip(_fields(a), _fields(b), strict=True))
    assert a.target_depth == b.target_depth and a.occluder_ids == b.occluder_ids
    assert not np.array_equal(a.rgb, c.rgb)


def test_modal_is_inside_amodal_and_labels_name_only_known_ids(clips):
    for clip in clips:
        known = set(clip.target_ids) | set(clip.occluder_ids) | {0}
        assert set(np.unique(clip.labels).tolist()) <= known
        for i in clip.target_ids:
            assert not (clip.modal(i) & ~clip.amodal[i]).any(), (clip.seed, i)


def test_hidden_parts_are_covered_by_something_nearer(clips):
    """The occlusion ratio follows the depth order: every hidden pixel of a target shows a
    surface nearer than the target, every visible pixel shows the target's own depth."""
    for clip in clips:
        for i in clip.target_ids:
            hidden = clip.amodal[i] & ~clip.modal(i)
            assert (clip.depth[hidden] < clip.target_depth[i]).all(), (clip.seed, i)
            assert np.allclose(clip.depth[clip.modal(i)], clip.target_depth[i])
            covering = np.unique(clip.labels[hidden])
            nearer = {j for j, d in clip.target_depth.items() if d < clip.target_depth[i]}
            assert set(covering.tolist()) <= nearer | set(clip.occluder_ids)
            ratio = clip.occlusion_ratio(i)
            area = clip.amodal[i].reshape(len(ratio), -1).sum(1)
            np.testing.assert_allclose(
                ratio[area > 0], hidden.reshape(len(ratio), -1).sum(1)[area > 0] / area[area > 0]
            )
        occluder_depths = [clip.depth[clip.labels == j] for j in clip.occluder_ids]
        for d in occluder_depths:
            assert d.size == 0 or d.max() < min(clip.target_depth.values())


def test_appearance_is_the_unoccluded_object(clips):
    for clip in clips:
        for i in clip.target_ids:
            app = clip.appearance[i]
            assert np.array_equal(app[..., 3] == 255, clip.amodal[i])
            assert (app[~clip.amodal[i]] == 0).all()
            visible = clip.modal(i)
            diff = np.abs(app[..., :3][visible].astype(int) - clip.rgb[visible].astype(int))
            assert diff.mean() < 6 and np.percentile(diff, 99) <= 16  # sensor noise only


def test_clips_cover_the_hard_cases(clips):
    fully_hidden, partly_hidden, partly_outside, counts = 0, 0, 0, set()
    for clip in clips:
        counts.add(len(clip.target_ids))
        for i in clip.target_ids:
            inside = clip.amodal[i].reshape(len(clip.rgb), -1).any(1)
            seen = clip.modal(i).reshape(len(clip.rgb), -1).any(1)
            gone = inside & ~seen  # in the image but completely hidden
            runs = np.diff(np.flatnonzero(np.diff(np.r_[0, gone.astype(int), 0])))[::2]
            fully_hidden += bool(len(runs) and runs.max() >= 2)
            partly_hidden += bool(((clip.occlusion_ratio(i) > 0.2) & seen).any())
            border = clip.amodal[i][:, :, [0, -1]].any()
            partly_outside += bool(border)
    assert fully_hidden >= 2, "objects fully hidden for several frames"
    assert partly_hidden >= 6 and partly_outside >= 6
    assert len(counts) >= 3 and counts <= {1, 2, 3, 4}


def test_splits_are_fixed_and_disjoint():
    train, test = split_seeds("train", 50), split_seeds("test", 50)
    assert train == list(range(50)) and test[0] == TEST_SEED_OFFSET
    assert not set(train) & set(test) and split_seeds("test", 50) == test
    with pytest.raises(ValueError, match="split"):
        split_seeds("val", 3)


def test_folder_round_trip(tmp_path, clips):
    clip = clips[1]
    back = read_clip_folder(write_clip_folder(clip, tmp_path / "clip"))
    assert np.array_equal(back.rgb, clip.rgb) and np.array_equal(back.labels, clip.labels)
    assert np.abs(back.depth - clip.depth).max() <= 0.0005 + 1e-6  # millimetre PNGs
    for i in clip.target_ids:
        assert np.array_equal(back.amodal[i], clip.amodal[i])
        assert np.array_equal(back.appearance[i], clip.appearance[i])
    assert (back.target_depth, back.occluder_ids, back.seed) == (
        clip.target_depth,
        clip.occluder_ids,
        clip.seed,
    )
    with pytest.raises(FileNotFoundError, match="meta.json"):
        read_clip_folder(tmp_path)


@pytest.mark.parametrize(
    "kwargs", [dict(num_frames=0), dict(height=8), dict(max_targets=5), dict(max_occluders=-1)]
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        make_scene(0, **kwargs)


def test_synth_command_writes_folders_and_bags(tmp_path, capsys):
    from rosbags.highlevel import AnyReader

    from amodal_ros.cli.main import main

    out = tmp_path / "synth"
    args = ["synth", str(out), "--split", "test", "--clips", "2", "--frames", "6"]
    sizes = ["--image-height", "32", "--image-width", "48"]
    assert main([*args, *sizes, "--bags", "--no-progress"]) == 0
    names = sorted(p.name for p in out.iterdir())
    seeds = split_seeds("test", 2)
    assert names == sorted([f"test_{s}" for s in seeds] + [f"test_{s}_bag" for s in seeds])
    clip = read_clip_folder(out / f"test_{seeds[1]}")
    expected = make_scene(seeds[1], num_frames=6, height=32, width=48)
    assert np.array_equal(clip.labels, expected.labels)
    with AnyReader([out / f"test_{seeds[1]}_bag"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert set(counts.values()) == {6} and len(counts) == 4
    # the same clips again are refused (nothing is overwritten)
    assert main([*args, "--no-progress"]) == 2
    assert "exists" in capsys.readouterr().err
