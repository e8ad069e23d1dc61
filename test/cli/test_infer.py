"""`amodal-ros infer` end to end on a tiny model, and its errors for bad input."""

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.cli import io  # noqa: E402
from amodal_ros.cli.folders import open_depth, open_masks, open_rgb  # noqa: E402
from amodal_ros.cli.infer import Args, infer_stream, run  # noqa: E402
from amodal_ros.cli.main import main  # noqa: E402
from amodal_ros.core import InferenceConfig  # noqa: E402
from amodal_ros.core.errors import InputError  # noqa: E402
from amodal_ros.core.types import mask_bbox  # noqa: E402
from amodal_ros.data.scenes import make_scene  # noqa: E402
from amodal_ros.pipeline.window import window_starts  # noqa: E402


def write_clip(folder, num_frames: int, seed: int = 0):
    """A synthetic clip as the folders `infer` reads: rgb/, labels/ (16-bit), depth/ (mm)."""
    clip = make_scene(seed, num_frames=num_frames, height=128, width=256)
    for t in range(num_frames):
        io.write_png(folder / "rgb" / f"{t:04d}.png", clip.rgb[t])
        io.write_png(folder / "labels" / f"{t:04d}.png", clip.labels[t])
        io.write_png(folder / "depth" / f"{t:04d}.png", (clip.depth[t] * 1000).astype(np.uint16))
    return folder / "rgb", folder / "labels", folder / "depth"


FRAMES = 6


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip"), FRAMES)


def tiny_args(tmp_path, clip_dirs, ckpt, *extra):
    frames, masks, depth = clip_dirs
    return [
        "infer",
        "--frames",
        str(frames),
        "--masks",
        str(masks),
        "--depth",
        str(depth),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(tmp_path / "out"),
        "--steps",
        "2",
        "--height",
        "32",
        "--width",
        "64",
        "--num-frames",
        "4",
        "--stride",
        "2",
        *extra,
    ]


def test_infer_writes_masks_completions_overlays_and_summary(
    tmp_path, clip_dirs, published_folder, stage2_folder, capsys
):
    code = main(
        tiny_args(
            tmp_path, clip_dirs, published_folder, "--completion-checkpoint", str(stage2_folder)
        )
    )
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_frames"] == FRAMES and summary["windows"] == 2  # windows [0-3], [2-5]
    labels = np.stack(
        [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(clip_dirs[1].iterdir())]
    )
    ids = sorted(str(i) for i in np.unique(labels) if i)  # targets and occluders
    assert sorted(summary["objects"]) == ids and len(ids) >= 2
    assert summary["conditioning_mode"] == "consistent"  # the tiny model's own default
    for obj in ids:
        assert len(list((out / "amodal" / f"obj_{obj}").glob("*.png"))) == FRAMES
        rgba = cv2.imread(
            str(out / "completion" / f"obj_{obj}" / "0000.png"), cv2.IMREAD_UNCHANGED
        )
        amodal = cv2.imread(str(out / "amodal" / f"obj_{obj}" / "0000.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(rgba[..., 3], amodal)
    i = int(max(ids, key=lambda k: (labels[0] == int(k)).sum()))  # the most visible at frame 0
    amodal = cv2.imread(str(out / "amodal" / f"obj_{i}" / "0000.png"), cv2.IMREAD_UNCHANGED)
    assert (amodal[labels[0] == i] == 255).all()  # amodal contains the modal mask
    first = summary["objects"][str(i)]["frames"][0]
    whole, visible = amodal == 255, labels[0] == i
    assert first["occlusion_ratio"] == pytest.approx(
        (whole & ~visible).sum() / whole.sum(), abs=1e-4
    )
    assert first["amodal_bbox_xywh"] == mask_bbox(whole).tolist()
    frames = [f for o in summary["objects"].values() for f in o["frames"]]
    for f in frames:  # each occluder with its depth order (+1 in front, -1 behind, 0 unknown)
        assert f["occluder_depth_order"].keys() == f["occluders"].keys()
        assert set(f["occluder_depth_order"].values()) <= {-1, 0, 1}
    assert first["truncated"] == bool(whole[0].any() or whole[-1].any() or whole[:, [0, -1]].any())
    assert (
        len(list((out / "overlay").glob("*.png"))) == FRAMES
        and (out / "overlay.gif").stat().st_size > 0
    )
    assert not list(tmp_path.glob(".out.partial-*"))
    assert not (out / "uncertainty").exists()  # one sample: nothing to disagree
    assert summary["completion_checkpoint"] == str(stage2_folder)
    assert all(f["amodal_valid"] for f in frames if "reason" not in f)


def test_each_frame_is_answered_from_the_window_it_is_nearest_the_middle_of(
    tmp_path, clip_dirs, published_folder, capsys
):
    """As replay's offline stream: windows of 4 every frame hold back their newest frame, so
    frames 0-2 come from window 0-3, frame 3 from 1-4, frame 4 from 2-5, and frame 5, the
    clip's last, from 2-5 again at the end."""
    args = tiny_args(tmp_path, clip_dirs, published_folder)
    args[args.index("--stride") + 1] = "1"
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["windows"] == 4
    for frames in (f["frames"] for f in summary["objects"].values()):
        assert len(frames) == FRAMES
    args[args.index("--stride") + 1] = "5"  # longer than the window: frames never answered
    args += ["--overwrite"]
    capsys.readouterr()  # the first run's progress bar
    expect_error(capsys, args, "would never be answered; set --stride <= 4")  # infer's option


def test_window_starts_cover_the_clip():
    assert window_starts(3, 25) == [0]
    assert window_starts(50, 25) == [0, 25]
    assert window_starts(60, 25) == [0, 25, 35]


def expect_error(capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert pattern in err, err


def test_a_corrupt_frame_is_one_line_without_opencvs_own(
    tmp_path, clip_dirs, published_folder, capfd
):
    """OpenCV logged its own "[ERROR:0@...] readHeader ..." line before ours."""
    import shutil

    frames = tmp_path / "frames"
    shutil.copytree(clip_dirs[0], frames)
    broken = sorted(frames.iterdir())[1]
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    args = tiny_args(tmp_path, (frames, *clip_dirs[1:]), published_folder)
    assert main(args) == 2
    err = capfd.readouterr().err.strip()
    assert err.splitlines() == [
        f"amodal-ros infer: error: cannot read image {broken} (corrupt or unsupported format)"
    ], err


def test_bad_paths_and_missing_checkpoint(tmp_path, clip_dirs, published_folder, capsys):
    args = tiny_args(tmp_path, clip_dirs, published_folder)
    bad = list(args)
    bad[bad.index("--frames") + 1] = str(tmp_path / "missing")
    expect_error(capsys, bad, "frames folder")
    expect_error(capsys, tiny_args(tmp_path, clip_dirs, tmp_path / "nockpt"), "does not exist")
    not_ckpt = tmp_path / "not_ckpt"
    not_ckpt.mkdir()
    expect_error(
        capsys,
        tiny_args(tmp_path, clip_dirs, not_ckpt),
        "is not a Diffusion-VAS checkpoint folder",
    )
    weights = tmp_path / "model.pt"  # a weights file for the folder: not unpickled, named
    weights.write_bytes(b"\x80\x04pickle")
    expect_error(capsys, tiny_args(tmp_path, clip_dirs, weights), "model.pt is a file")
    assert not (tmp_path / "out").exists()


def test_mismatched_counts_sizes_and_empty_masks(tmp_path, clip_dirs, published_folder, capsys):
    frames, masks, depth = clip_dirs
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(frames.iterdir())[:3]:
        (few / p.name).write_bytes(p.read_bytes())
    args = tiny_args(tmp_path, (few, masks, depth), published_folder)
    expect_error(capsys, args, "frame count mismatch: 3 frames")
    (few / "0001.png").unlink()  # a frame missing in the middle: named, as the first unpaired
    args = tiny_args(tmp_path, (few, masks, depth), published_folder)
    expect_error(capsys, args, f"2 frames in {few}, {FRAMES} masks in {masks}; mask 0001 has no")

    small = tmp_path / "small"
    for p in sorted(frames.iterdir()):
        io.write_png(small / p.name, np.zeros((10, 12, 3), np.uint8))
    expect_error(
        capsys, tiny_args(tmp_path, (small, masks, depth), published_folder), "size mismatch"
    )

    empty = tmp_path / "empty"
    for p in sorted(masks.iterdir()):
        io.write_png(empty / p.name, np.zeros((128, 256), np.uint8))
    expect_error(capsys, tiny_args(tmp_path, (frames, empty, depth), published_folder), "empty")

    per_object = tmp_path / "objects"
    for p in sorted(masks.iterdir()):
        io.write_png(per_object / "5" / p.name, np.zeros((128, 256), np.uint8))
    expect_error(
        capsys,
        tiny_args(tmp_path, (frames, per_object, depth), published_folder),
        "masks of object 5 are empty in every frame",
    )

    rgb_labels = tmp_path / "rgb_labels"
    for p in sorted(masks.iterdir()):
        io.write_png(rgb_labels / p.name, np.zeros((128, 256, 3), np.uint8))
    expect_error(
        capsys,
        tiny_args(tmp_path, (frames, rgb_labels, depth), published_folder),
        "single-channel",
    )
    assert not (tmp_path / "out").exists()


def test_object_folders_get_distinct_ids_and_never_the_background(tmp_path):
    """`2/` and `car/`: car takes 3 (it took 2 and replaced object 2); `1/` with `01/`, and
    `0/`, are refused by name."""
    box = np.zeros((8, 8), np.uint8)
    box[2:5, 2:5] = 255

    def folders(root, *names):
        for name in names:
            io.write_png(root / name / "0000.png", box)
        return root

    objects = open_masks(folders(tmp_path / "a", "2", "car")).ids
    assert sorted(objects) == [2, 3]
    with pytest.raises(InputError, match="object folders 01 and 1 are both object 1"):
        open_masks(folders(tmp_path / "b", "1", "01"))
    with pytest.raises(InputError, match="id 0 is the background"):
        open_masks(folders(tmp_path / "c", "0", "1"))


def test_one_frame_name_twice_and_mixed_depth_kinds_are_refused(tmp_path):
    io.write_png(tmp_path / "rgb" / "0001.png", np.zeros((4, 4, 3), np.uint8))
    io.write_png(tmp_path / "rgb" / "0001.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="0001.jpg and 0001.png are one frame name twice"):
        open_rgb(tmp_path / "rgb")
    io.write_png(tmp_path / "depth" / "0000.png", np.full((4, 4), 1500, np.uint16))  # mm
    with open(tmp_path / "depth" / "0001.NPY", "wb") as f:  # np.save would append .npy
        np.save(f, np.full((4, 4), 1.5, np.float32))  # m
    with pytest.raises(InputError, match=r"mixes uint16 \(0000.png\), float32 \(0001.NPY\);"):
        open_depth(tmp_path / "depth")


def test_a_file_for_a_folder_and_a_depth_file_of_objects_are_named(tmp_path):
    io.write_png(tmp_path / "rgb" / "0000.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="0000.png is a file; pass the folder that holds"):
        open_rgb(tmp_path / "rgb" / "0000.png")
    with pytest.raises(InputError, match="masks .*0000.png is a file"):
        open_masks(tmp_path / "rgb" / "0000.png")
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "0000.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match=r"depth file .*0000.npy is not a numeric .npy"):
        open_depth(tmp_path / "depth")  # and it is never unpickled


def test_an_out_under_a_file_is_refused_before_the_models_load(
    tmp_path, clip_dirs, published_folder, capsys
):
    """It failed once the models had loaded, as "[Errno 17] File exists: ..."."""
    (tmp_path / "notes.txt").write_text("kept")
    argv = tiny_args(tmp_path, clip_dirs, published_folder)
    argv[argv.index("--out") + 1] = str(tmp_path / "notes.txt" / "out")
    expect_error(capsys, argv, f"{tmp_path / 'notes.txt'} is a file, not a folder; choose")
    assert (tmp_path / "notes.txt").read_text() == "kept"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_camera_depth_and_a_depth_model_together_are_refused(
    tmp_path, clip_dirs, published_folder, capsys
):
    argv = tiny_args(tmp_path, clip_dirs, published_folder, "--depth-model", str(tmp_path))
    expect_error(capsys, argv, "pass either --depth (camera depth) or --depth-model")


def test_a_stride_as_long_as_the_window_and_a_camera_at_the_models_rate(
    tmp_path, clip_dirs, published_folder, capsys
):
    argv = tiny_args(tmp_path, clip_dirs, published_folder, "--input-fps", "8")
    argv[argv.index("--stride") + 1] = "4"  # = --num-frames: every frame still answered
    assert main(argv) == 0, capsys.readouterr().err
    assert "6 of 6 frames at the model's 8 fps (from 8)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_frames"] == FRAMES


def test_missing_depth_for_a_depth_model(tmp_path, clip_dirs, published_folder, capsys):
    args = tiny_args(tmp_path, clip_dirs, published_folder)
    i = args.index("--depth")
    del args[i : i + 2]
    expect_error(capsys, args, "mask+depth model: pass --depth DIR or --depth-model DIR")


def test_existing_output_is_not_replaced_without_overwrite(
    tmp_path, clip_dirs, published_folder, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    expect_error(
        capsys, tiny_args(tmp_path, clip_dirs, published_folder), "exists and is not empty"
    )
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces an earlier output only, never a folder of other files
    expect_error(
        capsys,
        tiny_args(tmp_path, clip_dirs, published_folder) + ["--overwrite"],
        "replaces an earlier amodal-ros infer output",
    )
    assert (out / "keep.txt").read_text() == "mine"
    # another command's summary.json (demo, replay-many) does not make it an infer output
    (out / "summary.json").write_text('{"bag": "demo_bag"}')
    expect_error(
        capsys,
        tiny_args(tmp_path, clip_dirs, published_folder) + ["--overwrite"],
        "no summary.json written by `amodal-ros infer`",
    )
    assert (out / "keep.txt").read_text() == "mine"
    # an earlier infer output is what it replaces
    (out / "summary.json").unlink()
    (out / "keep.txt").unlink()
    assert main(tiny_args(tmp_path, clip_dirs, published_folder, "--no-progress")) == 0
    assert main(tiny_args(tmp_path, clip_dirs, published_folder) + ["--overwrite"]) == 0
    # a file is said to be one, not sent to --overwrite (which refused it next)
    capsys.readouterr()
    shutil.rmtree(out)
    out.write_text("mine")
    for more in ([], ["--overwrite"]):
        args = tiny_args(tmp_path, clip_dirs, published_folder) + more
        expect_error(capsys, args, f"--out {out} is a file; infer writes a folder")
    assert out.read_text() == "mine"


def test_failure_while_writing_leaves_no_half_written_output(
    tmp_path, clip_dirs, published_folder, monkeypatch
):
    calls = {"n": 0}
    real = io.write_png

    def failing_write(path, image):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        real(path, image)

    monkeypatch.setattr(io, "write_png", failing_write)
    frames, masks, depth = clip_dirs
    args = Args(
        frames=frames,
        masks=masks,
        depth=depth,
        out=tmp_path / "out",
        stream=infer_stream().replace(checkpoint=str(published_folder), stride=2),
        inference=InferenceConfig(num_frames=4, num_steps=1),
    )
    with pytest.raises(OSError, match="disk full"):
        run(args)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_frames_are_in_number_order_and_masks_read_as_users_save_them(tmp_path):
    """frame_10 after frame_2 (a text sort put it third and paired it with depth 0002);
    a label folder's hidden subfolder is no object; 0/1 masks, palette labels (DAVIS) and
    object folders named obj_10 read as meant; a JPEG's EXIF rotation is not applied to
    frames whose masks are stored unrotated."""
    from PIL import Image

    for i in range(12):
        io.write_png(tmp_path / "rgb" / f"frame_{i}.png", np.full((4, 6, 3), i, np.uint8))
    rgb = open_rgb(tmp_path / "rgb")
    assert rgb.names[:4] == ["frame_0", "frame_1", "frame_2", "frame_3"]
    assert [int(rgb.read(t)[0, 0, 0]) for t in range(12)] == list(range(12))

    labels = tmp_path / "labels"
    palette = Image.fromarray(np.array([[0, 7], [300 % 256, 0]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    labels.mkdir()
    palette.save(labels / "0000.png")
    (labels / ".ipynb_checkpoints").mkdir()
    objects = open_masks(labels).ids
    assert sorted(objects) == [7, 44]  # the indices, not the palette's colours
    (labels / "vis").mkdir()
    with pytest.raises(InputError, match="holds label images .* and folders"):
        open_masks(labels)

    box = np.zeros((8, 8), np.uint8)
    box[2:5, 2:5] = 1  # saved as 0/1
    for name in ("obj_2", "obj_10"):
        io.write_png(tmp_path / "objects" / name / "0000.png", box)
    masks = open_masks(tmp_path / "objects")
    assert sorted(masks.ids) == [2, 10] and (masks.read(0) == 2).sum() == 9  # 0/1 masks read

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif)
    _frames_of_decimal_stamps_and_masks_of_every_depth_and_colour(tmp_path)
    (tmp_path / "jpg").mkdir()
    (tmp_path / "r.jpg").rename(tmp_path / "jpg" / "0000.jpg")
    assert open_rgb(tmp_path / "jpg").read(0).shape == (4, 6, 3)

    io.write_png(tmp_path / "depth" / "0000.png", np.full((4, 6), 1500, np.uint16))
    io.write_png(tmp_path / "depth" / "0001.png", np.full((4, 6, 3), 1500, np.uint16))
    with pytest.raises(InputError, match="depth image .*0001.png has shape"):
        open_depth(tmp_path / "depth")


def _frames_of_decimal_stamps_and_masks_of_every_depth_and_colour(tmp_path):
    """Frame names whose order depends on reading the digits after a dot as a fraction
    (`str(stamp.to_sec())`: .15 before .2) or as a whole number (unpadded secs.nsecs: .2
    before .15) are refused, saying how to rename them (.15 was read as 15, after .2); padded
    ones read in time order. Object masks saved 16-bit, as a palette (DAVIS), in colour, or
    mixed grey and colour read as the object, not as empty (read 8-bit grey before)."""
    from PIL import Image

    names = ["1690000000.1", "1690000000.15", "1690000000.2", "1690000000.95", "1690000001.05"]
    for i, name in enumerate(reversed(names)):
        io.write_png(tmp_path / "stamps" / f"{name}.png", np.full((4, 6, 3), i, np.uint8))
    with pytest.raises(InputError, match="zero-pad the part after the dot"):
        open_rgb(tmp_path / "stamps")
    padded = ["1690000000.100", "1690000000.150", "1690000000.200", "1690000001.050"]
    for name in padded:
        io.write_png(tmp_path / "padded" / f"{name}.png", np.zeros((4, 6, 3), np.uint8))
    assert open_rgb(tmp_path / "padded").names == padded

    box = np.zeros((8, 8), bool)
    box[2:5, 2:5] = True
    saved = {
        "sixteen_bit_01": box.astype(np.uint16),
        "sixteen_bit_full": box.astype(np.uint16) * 65535,
        "sixteen_bit_255": box.astype(np.uint16) * 255,
        "blue_on_black": np.stack([box * 0, box * 0, box * 128], -1).astype(np.uint8),  # RGB
    }
    # each kind an object folder of its own: the binary masks read back as the box
    for name, image in saved.items():
        io.write_png(tmp_path / "kinds" / name / name / "0000.png", image)
        io.write_png(tmp_path / "kinds" / name / name / "0001.png", image)
    mixed = tmp_path / "kinds" / "mixed" / "mixed"
    io.write_png(mixed / "0000.png", box.astype(np.uint8) * 255)
    io.write_png(mixed / "0001.png", np.stack([box] * 3, -1).astype(np.uint8) * 255)
    palette = Image.fromarray(box.astype(np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0] * 128)
    (tmp_path / "kinds" / "palette" / "palette").mkdir(parents=True)
    palette.save(tmp_path / "kinds" / "palette" / "palette" / "0000.png")
    io.write_png(tmp_path / "kinds" / "palette" / "palette" / "0001.png", box.astype(np.uint8))
    for name in [*saved, "mixed", "palette"]:
        masks = open_masks(tmp_path / "kinds" / name)
        (object_id,) = masks.ids
        np.testing.assert_array_equal([masks.read(t) == object_id for t in range(2)], [box, box])


def test_frames_of_a_faster_camera_are_sampled_to_the_model_rate(
    tmp_path, clip_dirs, published_folder, capsys
):
    """--input-fps 16: every other frame, as the node samples a 16 fps camera to the model's 8
    (read as 8 fps, the model saw half its time span); only those frames are answered."""
    argv = tiny_args(tmp_path, clip_dirs, published_folder, "--input-fps", "16")
    assert main(argv) == 0, capsys.readouterr().err
    assert "3 of 6 frames at the model's 8 fps (from 16)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_frames"] == 3 and summary["input_frames"] == FRAMES
    for obj in summary["objects"]:
        written = sorted(p.stem for p in (tmp_path / "out" / "amodal" / f"obj_{obj}").iterdir())
        assert written == ["0000", "0002", "0004"]


def test_object_masks_saved_at_two_bit_depths_read_each_frame_at_its_own(tmp_path, caplog):
    """An 8-bit frame among 16-bit ones read empty (the clip's 65535 full scale); a 0/1 frame
    among 0/255 ones cannot be told from a faint edge, so it reads empty and is named."""
    box = np.zeros((8, 8), bool)
    box[2:5, 2:5] = True
    io.write_png(tmp_path / "deep" / "obj_1" / "0000.png", box.astype(np.uint16) * 65535)
    io.write_png(tmp_path / "deep" / "obj_1" / "0001.png", box.astype(np.uint8) * 255)
    masks = open_masks(tmp_path / "deep")
    np.testing.assert_array_equal([masks.read(t) == 1 for t in range(2)], [box, box])
    io.write_png(tmp_path / "ones" / "obj_1" / "0000.png", box.astype(np.uint8) * 255)
    io.write_png(tmp_path / "ones" / "obj_1" / "0001.png", box.astype(np.uint8))
    with caplog.at_level(logging.WARNING):
        masks = open_masks(tmp_path / "ones")
    assert (masks.read(0) == 1).sum() == 9 and not masks.read(1).any()
    assert "1 frame(s) (first 0001.png)" in caplog.text and "brightest 1 of 255" in caplog.text


def test_a_failed_window_keeps_every_frame_written_and_exits_1(
    tmp_path, clip_dirs, published_folder, capsys
):
    """A window that fails (here: its depth frames have no return, which a mask+depth model
    needs) used to throw away the whole clip's results; as replay, the frames are written
    with the visible masks, flagged, and the exit code says it."""
    frames, masks, depth = clip_dirs
    holes = tmp_path / "depth"
    shutil.copytree(depth, holes)
    for t in range(4):  # the first window's frames: no return
        io.write_png(holes / f"{t:04d}.png", np.zeros((128, 256), np.uint16))
    argv = tiny_args(tmp_path, (frames, masks, holes), published_folder)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "1 window(s) failed" in err and "their frames were written" in err
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows_failed"] == 1 and summary["num_frames"] == FRAMES
    entries = [e for o in summary["objects"].values() for e in o["frames"]]
    failed = {e["frame"] for e in entries if e.get("reason") == "pipeline error"}
    assert failed and failed <= {"0000", "0001", "0002", "0003"}  # the failed window's
    assert all(e["amodal_valid"] == ("reason" not in e) for e in entries)  # the flag users read
    assert summary["completion_checkpoint"] is None  # stage 1 only
    assert len(list((out / "overlay").glob("*.png"))) == FRAMES  # every frame written


def test_depth_in_the_wrong_unit_and_masks_that_are_no_instance_labels_are_named(tmp_path, caplog):
    for t in range(2):  # metres saved as 16-bit PNG: read as millimetres, nothing >= 5 cm
        io.write_png(tmp_path / "depth" / f"{t:04d}.png", np.full((4, 6), 2, np.uint16))
    with pytest.raises(InputError, match=r"no usable pixel: read as millimetres .* 0.002 m"):
        open_depth(tmp_path / "depth")
    (tmp_path / "mm").mkdir()  # millimetres saved as float .npy: read as metres, 1.5 km
    np.save(tmp_path / "mm" / "0000.npy", np.full((4, 6), 1500.0, np.float32))
    with pytest.raises(InputError, match=r"read as metres, and its median is 1500 m: milli"):
        open_depth(tmp_path / "mm")
    np.save(tmp_path / "mm" / "0000.npy", np.full((4, 6), 1.5, np.float32))
    assert open_depth(tmp_path / "mm").read(0)[0, 0] == 1.5
    (tmp_path / "jpeg").mkdir()
    cv2.imwrite(str(tmp_path / "jpeg" / "0000.jpg"), np.zeros((4, 6), np.uint8))
    with pytest.raises(InputError, match="holds JPEG images .* save them as PNG"):
        open_masks(tmp_path / "jpeg")
    many = np.arange(300 * 4, dtype=np.uint16).reshape(30, 40) % 300 + 1  # a semantic map?
    io.write_png(tmp_path / "many" / "0000.png", many)
    with pytest.raises(InputError, match="hold 300 ids, more than 256 objects"):
        open_masks(tmp_path / "many")
    labels = np.full((20, 20), 255, np.uint8)  # background 255, one object 1, three specks
    labels[5:15, 5:15] = 1
    labels[0, :3] = [7, 8, 9]
    io.write_png(tmp_path / "odd" / "0000.png", labels)
    (tmp_path / "odd" / "._0000.png").write_bytes(b"macOS resource fork")  # skipped
    with caplog.at_level("WARNING", logger="amodal_ros.io"):
        ids = open_masks(tmp_path / "odd").ids
    assert ids == [1, 7, 8, 9, 255]
    assert "no pixel of any frame is 0, the background; is it another value (255" in caplog.text
    assert "3 ids never cover more than 16 pixels in a frame (7, 8, 9)" in caplog.text


def test_a_folder_written_at_out_during_a_run_is_kept(tmp_path):
    """Checked at the start only, the run's rename deleted what another run wrote meanwhile."""
    out = tmp_path / "out"
    with (
        pytest.raises(InputError, match="exists and is not empty"),
        io.staged_output(out, overwrite=False) as stage,
    ):
        (stage / "summary.json").write_text('{"command": "infer"}')
        out.mkdir()
        (out / "theirs.txt").write_text("kept")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]


def test_frames_an_object_is_not_seen_in_are_listed_and_have_every_output(
    tmp_path, published_folder, stage2_folder
):
    """`frames_without_input` listed only frames of windows that never saw the object, and
    uncertainty/ had no file for frames answered without sampling (amodal/ had every one)."""
    frames, masks, depth = write_clip(tmp_path / "clip", FRAMES)
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(masks.iterdir())]
    late = int(np.setdiff1d(np.unique(labels[-1]), [0])[0])
    hidden = [0, 1, 2, 3, 5]  # a whole window (4 frames) without it, and one frame of one with
    for t in hidden:
        labels[t][labels[t] == late] = 0
        io.write_png(masks / f"{t:04d}.png", labels[t])
    args = tiny_args(tmp_path, (frames, masks, depth), published_folder, "--num-samples", "2")
    args += ["--completion-checkpoint", str(stage2_folder)]
    assert main(args) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objects"][str(late)]["frames_without_input"] == [f"{t:04d}" for t in hidden]
    for kind in ("amodal", "soft", "uncertainty", "completion"):
        assert len(list((out / kind / f"obj_{late}").iterdir())) == FRAMES, kind
    # frame 0's window never saw it: not run, so certain (as amodal/ says) and nothing painted
    read = lambda kind: cv2.imread(str(out / kind / f"obj_{late}" / "0000.png"), -1)  # noqa: E731
    assert not read("uncertainty").any() and not read("completion")[..., 3].any()
