"""`amodal-ros replay` on small demo bags with the tiny seeded model (1 step, 4-frame windows):
counts, stamps, determinism, corrupt messages, storage and bag formats, and failures."""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from bag_helpers import (  # noqa: E402
    DROP,
    FPS,
    FRAME_RATE,
    FRAMES,
    HEIGHT,
    SAMPLED,
    STRIDE,
    WIDTH,
    WINDOW,
    mono,
    read_bag,
    read_messages,
    replay_args,
    rewrite_bag,
)
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag1 import Writer as Writer1  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from amodal_ros.bags import replay, topics  # noqa: E402
from amodal_ros.bags import writer as result_writer  # noqa: E402
from amodal_ros.bags.demo_bag import START_NS, write_demo_bag  # noqa: E402
from amodal_ros.bags.output import RESULTS_MARKER, is_results_bag  # noqa: E402
from amodal_ros.bags.typestore import (  # noqa: E402
    AMODAL_OBJECT_ARRAY,
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    amodal_typestore,
)
from amodal_ros.cli.main import build_parser, main  # noqa: E402
from amodal_ros.cli.options import from_namespace  # noqa: E402
from amodal_ros.cli.replay import Args  # noqa: E402
from amodal_ros.core.errors import CheckpointError, InputError  # noqa: E402
from amodal_ros.core.frames import REASON_ERROR, REASON_OK, REASON_WINDOW_NOT_FULL  # noqa: E402
from amodal_ros.data.scenes import make_scene, split_seeds  # noqa: E402
from amodal_ros.interface.messages import ResultMessages  # noqa: E402
from amodal_ros.models.registry import EMBEDDED_NOTE  # noqa: E402
from amodal_ros.pipeline.rate import FrameRateSampler  # noqa: E402

pytestmark = pytest.mark.slow  # starts whole commands on real files

STAMPS = [START_NS + round(i * 1e9 / FPS) for i in range(FRAMES)]
SAMPLED_STAMPS = STAMPS[::2]  # 7.5 fps of a 15 fps camera: every other frame


def expected_results(sampled: int, window: int, stride: int, policy: str) -> int:
    """AmodalObjectArray messages replay writes for `sampled` frames.

    While the buffer fills, every frame gets a partial window; then a full window every
    `stride` frames, and at the end one more for frames left after the last window. 'new'
    publishes every frame new to a window (= every sampled frame), 'latest' one per window.
    """
    if policy == "new":
        return sampled
    if sampled < window:
        return sampled
    after_first = sampled - window
    return (window - 1) + 1 + after_first // stride + (after_first % stride > 0)


def header_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def demo_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo_bag"
    write_demo_bag(out, frames=FRAMES, fps=FPS, height=HEIGHT, width=WIDTH)
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, demo_bag, published_folder):
    """(output bag, summary) of the demo bag replayed with the tiny stage-1 model."""
    out = tmp_path_factory.mktemp("replay_a") / "results"
    return out, replay.run(replay_args(demo_bag, out, published_folder))


def test_expected_results_formula():
    assert [expected_results(n, 4, 2, "latest") for n in (2, 4, 5, 6, 7)] == [2, 4, 5, 5, 6]
    assert expected_results(SAMPLED, WINDOW, STRIDE, "new") == SAMPLED == len(SAMPLED_STAMPS)


def test_replay_writes_one_result_per_sampled_frame(replayed, demo_bag):
    out, summary = replayed
    assert summary["messages_read"] == 4 * FRAMES
    assert summary["frames_synchronised"] == FRAMES
    assert summary["frames_sampled"] == SAMPLED
    # offline, no partial windows: the first full one (at sampled frame 4) answers frames
    # 1-4, the next at 6, the end-of-bag one at 7
    assert (summary["windows"], summary["windows_model"], summary["windows_failed"]) == (3, 3, 0)
    n = expected_results(SAMPLED, WINDOW, STRIDE, "new")
    assert summary["results_written"] == n
    assert summary["skipped"] == {"deserialize": 0, "convert": 0}
    assert set(summary["unmatched"].values()) == {0}
    assert summary["stream_restarts"] == {"gap": 0, "stamp_back": 0, "size": 0}
    assert "window started over: 0 after gaps longer than a window" in replay.format_summary(
        summary
    )
    assert summary["latency"] == 0.0 and summary["embedded_model"] is False
    assert summary["messages_written"] == {
        topics.OBJECTS_TOPIC: n,
        topics.OVERLAY_TOPIC: n,
        topics.MARKERS_TOPIC: n,
        topics.CAMERA_INFO_OUT_TOPIC: n,
    }

    # marked as results (an --overwrite may replace it) with what made it
    assert is_results_bag(out)
    made = json.loads((out / RESULTS_MARKER).read_text())
    assert made["bag"] == str(demo_bag.resolve()) and made["recording"]["messages"] == 4 * FRAMES
    assert made["written_by"].startswith("amodal-ros replay ")
    # the options that shape it, as replay-many compares them when its summary lost the bag
    assert made["options"]["stream.stride"] == STRIDE and "out" not in made["options"]
    assert made["windows_failed"] == 0  # a bag with failed windows is replayed again by it

    arrays = read_messages(out, topics.OBJECTS_TOPIC)
    assert [t for t, _ in arrays] == SAMPLED_STAMPS  # logged at the result frame's stamp
    assert [header_ns(m) for _, m in arrays] == SAMPLED_STAMPS  # header of the input RGB
    assert {m.header.frame_id for _, m in arrays} == {topics.FRAME_ID}
    assert {m.latency for _, m in arrays} == {0.0}
    overlays = read_messages(out, topics.OVERLAY_TOPIC)
    assert [header_ns(m) for _, m in overlays] == SAMPLED_STAMPS
    assert {(m.encoding, m.height, m.width) for _, m in overlays} == {("rgb8", HEIGHT, WIDTH)}
    infos = read_messages(out, topics.CAMERA_INFO_OUT_TOPIC)
    assert sorted(header_ns(m) for _, m in infos) == SAMPLED_STAMPS

    clip = make_scene(split_seeds("test", 1)[0], num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    reasons = []
    for (_, msg), frame in zip(arrays, range(0, FRAMES, 2)):
        ids = [o.object_id for o in msg.objects]
        assert ids == sorted(ids) and ids  # the scene's targets and occluders in view
        for o in msg.objects:
            modal, amodal = mono(o.modal_mask) > 0, mono(o.amodal_mask) > 0
            np.testing.assert_array_equal(modal, clip.labels[frame] == o.object_id)
            assert not (modal & ~amodal).any()  # the amodal mask contains the modal mask
            reasons.append(o.reason)
    assert set(reasons) == {REASON_OK}  # every frame answered by the model, none as modal
    assert [m.window_frames for _, m in arrays] == [4] * SAMPLED

    # 3D extents from the bag's depth (mm) and CameraInfo, logged after each frame's images:
    # a window's newest frame has the previous frame's (same intrinsics), the others their own
    boxes = {}
    for _, msg in arrays:
        for o in msg.objects:
            if not o.amodal_valid:
                assert o.extent_reason == o.EXTENT_NO_AMODAL
            elif o.extent_valid:
                boxes.setdefault(header_ns(msg), set()).add(o.object_id)
                if o.object_id in clip.target_depth:  # flat targets at a known depth
                    depth, z = clip.target_depth[o.object_id], o.extent_pose.position.z
                    assert abs(z - depth) <= o.extent_size.z / 2 + 0.05, (z, depth)
    assert len(boxes) == SAMPLED  # each window runs after its older frames' own CameraInfo
    markers = read_messages(out, topics.MARKERS_TOPIC)
    assert [header_ns(m.markers[0]) for _, m in markers] == SAMPLED_STAMPS
    for _, m in markers:
        cubes = {x.id for x in m.markers if x.ns == "amodal_extent"}
        assert cubes == boxes.get(header_ns(m.markers[0]), set())


def test_latest_policy_writes_one_result_per_window(tmp_path, demo_bag, published_folder):
    out = tmp_path / "latest"
    summary = replay.run(replay_args(demo_bag, out, published_folder, publish_frames="latest"))
    n = expected_results(SAMPLED, WINDOW, STRIDE, "latest")
    assert summary["results_written"] == n == 6
    stamps = [header_ns(m) for _, m in read_messages(out, topics.OBJECTS_TOPIC)]
    s = SAMPLED_STAMPS
    assert stamps == [s[0], s[1], s[2], s[3], s[5], s[6]]


def test_two_runs_write_byte_identical_bags(
    tmp_path, replayed, demo_bag, published_folder, caplog
):
    first, _ = replayed
    second = tmp_path / first.name  # same bag name: the storage file is named after it
    with caplog.at_level(logging.WARNING):
        replay.run(replay_args(demo_bag, second, published_folder))
    assert not caplog.records, caplog.text  # a sound bag replayed whole: nothing to warn of
    assert read_bag(second) == read_bag(first)
    for name in (f"{first.name}.db3", "metadata.yaml"):
        assert (second / name).read_bytes() == (first / name).read_bytes(), name


def _corrupt(topic: str, index: int, raw: bytes):
    store = amodal_typestore()
    if topic == topics.RGB_TOPIC and index == 4:  # a sampled frame: image data truncated
        msg = store.deserialize_cdr(raw, IMAGE)
        msg.data = msg.data[: len(msg.data) // 3]
        return IMAGE, bytes(store.serialize_cdr(msg, IMAGE))
    if topic == topics.MASK_TOPIC and index == 9:  # undecodable CDR
        return IMAGE, raw[:30]
    return None


def test_corrupt_messages_are_reported_skipped_and_counted(
    tmp_path, demo_bag, published_folder, caplog
):
    bad = tmp_path / "bad"
    rewrite_bag(demo_bag, bad, _corrupt)
    with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
        summary = replay.run(replay_args(bad, tmp_path / "out", published_folder))
    assert summary["skipped"] == {"deserialize": 1, "convert": 1}
    log = caplog.text
    t4, t9 = STAMPS[4], STAMPS[9]
    assert f"{topics.RGB_TOPIC} at stamp {t4 // 10**9}.{t4 % 10**9:09d}" in log
    assert f"{topics.MASK_TOPIC} at log time {t9 // 10**9}.{t9 % 10**9:09d}" in log
    assert {(e["reason"], e["topic"]) for e in summary["errors"]} == {
        ("convert", topics.RGB_TOPIC),
        ("deserialize", topics.MASK_TOPIC),
    }
    # a frame is named by its stamp, a message that never became one by its log time
    when = {
        e["reason"]: {k: v for k, v in e.items() if k.endswith("_ns")} for e in summary["errors"]
    }
    assert when == {"convert": {"stamp_ns": t4}, "deserialize": {"log_time_ns": t9}}
    # frame 9 lost its mask: its RGB and depth found no partner
    assert summary["unmatched"] == {
        topics.RGB_TOPIC: 1,
        topics.MASK_TOPIC: 0,
        topics.DEPTH_TOPIC: 1,
    }
    assert summary["frames_synchronised"] == FRAMES - 1
    # the bad frame 4 gives its sampling slot back (frame 5 takes it), and the unmatched
    # frame 9 never reaches the sampler: sampled as if both were absent from the bag
    sampler = FrameRateSampler(FRAME_RATE)
    kept = [s for i, s in enumerate(STAMPS) if i not in (4, 9) and sampler.accept(s)]
    assert STAMPS[5] in kept and STAMPS[4] not in kept
    assert summary["frames_sampled"] == len(kept) == summary["results_written"]
    stamps = [header_ns(m) for _, m in read_messages(tmp_path / "out", topics.OBJECTS_TOPIC)]
    assert stamps == kept


def test_skip_warnings_are_rate_limited_and_the_error_list_capped(
    tmp_path, demo_bag, published_folder, caplog
):
    """201 undecodable mask messages (a recorder's garbage before the camera started): the
    first 3 are said in full, then every 100th with the count so far; all are counted, the
    first 100 listed in the summary."""
    from rosbags.rosbag2 import Writer

    junk = tmp_path / "junk"
    store = amodal_typestore()
    with AnyReader([demo_bag]) as reader, Writer(junk, version=9) as writer:
        conns = {
            c.topic: writer.add_connection(c.topic, c.msgtype, typestore=store)
            for c in reader.connections
        }
        for i in range(201):
            writer.write(conns[topics.MASK_TOPIC], START_NS - 10**9 + i * 1000, b"\0\1\0\0junk")
        for conn, t, raw in reader.messages():
            writer.write(conns[conn.topic], t, bytes(raw))
    with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
        summary = replay.run(replay_args(junk, tmp_path / "out", published_folder))
    assert summary["skipped"] == {"deserialize": 201, "convert": 0}
    assert len(summary["errors"]) == 100
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(said) == 5, said  # messages 1, 2, 3, 100 and 200
    assert "so far" not in said[2] and said[3].endswith("(100 skipped for deserialize so far)")
    assert said[4].endswith("(200 skipped for deserialize so far)")
    first = (START_NS - 10**9) // 10**9
    assert f"at log time {first}.000001000 s" in said[1]  # nanoseconds, zero-padded
    assert summary["frames_synchronised"] == FRAMES  # the camera's own messages all pair


def test_frames_still_waiting_for_partners_when_the_bag_ends_are_counted(
    tmp_path, demo_bag, published_folder
):
    """The last frame's mask is lost: its RGB and depth wait for it until the bag ends (the
    summary read the queues after the end-of-bag flush had emptied them: always 0)."""

    def lose_the_last_mask(topic: str, index: int, raw: bytes):
        return (IMAGE, raw[:30]) if topic == topics.MASK_TOPIC and index == FRAMES - 1 else None

    bad = tmp_path / "bad"
    rewrite_bag(demo_bag, bad, lose_the_last_mask)
    summary = replay.run(replay_args(bad, tmp_path / "out", published_folder))
    assert summary["pending_at_end"][topics.RGB_TOPIC] == 1
    assert summary["unmatched"][topics.RGB_TOPIC] == 1  # the flush found it no partner


def test_existing_output_is_refused_before_any_work(tmp_path, demo_bag, published_folder):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        replay.run(replay_args(demo_bag, out, published_folder))
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(InputError, match="is or holds the input bag"):
        replay.run(replay_args(demo_bag, demo_bag, published_folder, overwrite=True))
    # --overwrite replaces an earlier bag, never a folder of other files (or the input's)
    with pytest.raises(InputError, match="replaces an earlier bag, and .* is not one"):
        replay.run(replay_args(demo_bag, out, published_folder, overwrite=True))
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(InputError, match="is or holds the input bag"):
        replay.run(replay_args(demo_bag, demo_bag.parent, published_folder, overwrite=True))
    assert (demo_bag / "metadata.yaml").is_file()
    with pytest.raises(InputError, match="is inside the input bag"):  # it would join the bag
        replay.run(replay_args(demo_bag, demo_bag / "results", published_folder))
    assert not (demo_bag / "results").exists()
    # nor a recording (`replay rec1 --out rec2 --overwrite` deleted the recording rec2)
    recording = tmp_path / "rec2"
    write_demo_bag(recording, frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    with pytest.raises(InputError, match=f"rec2 is a bag without {RESULTS_MARKER}"):
        replay.run(replay_args(demo_bag, recording, published_folder, overwrite=True))
    assert (recording / "metadata.yaml").is_file()
    # nor one holding the node's results: `ros2 bag record -a` beside the running node
    beside_node = tmp_path / "rec3"
    beside_node.mkdir()
    (beside_node / "metadata.yaml").write_text(f"{AMODAL_OBJECT_ARRAY} sensor_msgs/msg/Image")
    with pytest.raises(InputError, match="or remove it yourself"):
        replay.run(replay_args(demo_bag, beside_node, published_folder, overwrite=True))
    assert (beside_node / "metadata.yaml").is_file()
    long_stride = replay_args(demo_bag, tmp_path / "new", tmp_path / "no_checkpoint")
    long_stride.stream = long_stride.stream.replace(stride=WINDOW + 1)  # before the models load
    with pytest.raises(InputError, match=f"stride {WINDOW + 1} is longer than the model's"):
        replay.run(long_stride)


def test_failures_leave_no_output_and_no_staging(tmp_path, demo_bag, monkeypatch):
    with pytest.raises(CheckpointError):
        replay.run(replay_args(demo_bag, tmp_path / "out", tmp_path / "no_checkpoint"))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))

    # a failure half-way through writing (the third result) keeps the old bag untouched and
    # leaves no video behind
    (tmp_path / "out").mkdir()
    earlier = f"old {AMODAL_OBJECT_ARRAY}"  # an earlier bag of results: replaceable
    (tmp_path / "out" / "metadata.yaml").write_text(earlier)
    (tmp_path / "out" / RESULTS_MARKER).write_text("{}")
    calls = {"n": 0}
    real = ResultMessages.array

    def failing_array(self, result, latency=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, result, latency)

    monkeypatch.setattr(ResultMessages, "array", failing_array)
    args = replay_args(demo_bag, tmp_path / "out", None, overwrite=True, video=tmp_path / "ov")
    with pytest.raises(OSError, match="disk full"):
        replay.run(args)
    assert calls["n"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        RESULTS_MARKER,
        "metadata.yaml",
    ]
    assert (tmp_path / "out" / "metadata.yaml").read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial bag or video


def test_mcap_storage_with_stage2_and_copied_inputs(
    tmp_path, demo_bag, published_folder, stage2_folder
):
    mcap_in = tmp_path / "demo_mcap"
    write_demo_bag(mcap_in, frames=FRAMES, fps=FPS, height=HEIGHT, width=WIDTH, storage="mcap")
    out = tmp_path / "out"
    args = replay_args(
        mcap_in,
        out,
        published_folder,
        storage="mcap",
        copy_inputs=True,
        completion_checkpoint=stage2_folder,
    )
    summary = replay.run(args)
    assert (out / "out.mcap").is_file()
    n = SAMPLED
    assert summary["messages_written"][topics.COMPLETION_TOPIC] == n
    completions = read_messages(out, topics.COMPLETION_TOPIC)
    assert [header_ns(m) for _, m in completions] == SAMPLED_STAMPS
    assert {m.encoding for _, m in completions} == {"rgb8"}
    written = read_bag(out)
    source = read_bag(demo_bag)
    for topic in (topics.RGB_TOPIC, topics.DEPTH_TOPIC, topics.MASK_TOPIC):
        assert [m for m in written if m[0] == topic] == [m for m in source if m[0] == topic]
    with AnyReader([out]) as reader:
        assert reader.topics[topics.RGB_TOPIC].msgtype == IMAGE


def test_ros1_bag_gives_the_same_results(tmp_path, demo_bag, published_folder, replayed):
    """The RGB images recorded from two publishers (a ROS 1 bag has a connection per
    publisher: a driver restarted): one topic in the output, its messages in order."""
    ros1 = tmp_path / "demo.bag"
    store, noetic = amodal_typestore(), get_typestore(Stores.ROS1_NOETIC)
    with AnyReader([demo_bag]) as reader, Writer1(ros1) as writer:
        conns = {
            c.id: writer.add_connection(c.topic, c.msgtype, typestore=noetic)
            for c in reader.connections
        }
        restarted = writer.add_connection(
            topics.RGB_TOPIC, IMAGE, typestore=noetic, callerid="/camera_restarted"
        )
        rgb = itertools.count()
        for conn, t, raw in reader.messages():
            later = conn.topic == topics.RGB_TOPIC and next(rgb) >= FRAMES // 2
            writer.write(
                restarted if later else conns[conn.id], t, store.cdr_to_ros1(raw, conn.msgtype)
            )
    out = tmp_path / "out"
    replay.run(replay_args(ros1, out, published_folder, copy_inputs=True))
    expected = read_bag(replayed[0])
    written = read_bag(out)
    for topic in (topics.OBJECTS_TOPIC, topics.OVERLAY_TOPIC, topics.CAMERA_INFO_OUT_TOPIC):
        assert [m for m in written if m[0] == topic] == [m for m in expected if m[0] == topic]
    source = read_bag(demo_bag)  # inputs are converted to CDR: the rosbag2 bytes again
    assert [m for m in written if m[0] == topics.RGB_TOPIC] == [
        m for m in source if m[0] == topics.RGB_TOPIC
    ]
    # without the inputs, the CameraInfo passed through is converted all the same
    alone = tmp_path / "alone"
    replay.run(replay_args(ros1, alone, published_folder))
    written = read_bag(alone)
    for topic in (topics.OBJECTS_TOPIC, topics.CAMERA_INFO_OUT_TOPIC):
        assert [m for m in written if m[0] == topic] == [m for m in expected if m[0] == topic]


def test_compressed_rgb_is_detected_and_decoded(tmp_path, demo_bag, published_folder, replayed):
    import cv2

    store = amodal_typestore()

    def to_png(topic, index, raw):
        if topic != topics.RGB_TOPIC:
            return None
        msg = store.deserialize_cdr(raw, IMAGE)
        rgb = np.asarray(msg.data).reshape(msg.height, msg.width, 3)
        ok, png = cv2.imencode(".png", rgb[..., ::-1])  # lossless: the same pixels
        compressed = store.types[COMPRESSED_IMAGE](
            header=msg.header, format="rgb8; png compressed bgr8", data=png.reshape(-1)
        )
        return COMPRESSED_IMAGE, bytes(store.serialize_cdr(compressed, COMPRESSED_IMAGE))

    bag = tmp_path / "compressed"
    rewrite_bag(demo_bag, bag, to_png)
    out = tmp_path / "out"
    replay.run(replay_args(bag, out, published_folder))
    expected = [m for m in read_bag(replayed[0]) if m[0] == topics.OBJECTS_TOPIC]
    assert [m for m in read_bag(out) if m[0] == topics.OBJECTS_TOPIC] == expected
    with pytest.raises(InputError, match="--compressed was given but"):
        replay.run(replay_args(demo_bag, tmp_path / "o2", published_folder, compressed=True))


def test_compressed_depth_and_masks_are_detected_and_a_depth_frame_mismatch_is_said_once(
    tmp_path, demo_bag, published_folder, replayed, caplog
):
    from image_transport_encoders import compressed_depth, png_compressed

    store = amodal_typestore()

    def compress(topic, index, raw):
        if topic not in (topics.DEPTH_TOPIC, topics.MASK_TOPIC):
            return None
        msg = store.deserialize_cdr(raw, IMAGE)
        image = np.asarray(msg.data).view(np.uint16).reshape(msg.height, msg.width)
        if topic == topics.DEPTH_TOPIC:  # compressedDepth of 16UC1 mm: lossless
            fmt, data, _ = compressed_depth(image, msg.encoding)
            msg.header.frame_id = "camera_depth_optical_frame"  # not registered to the RGB?
        else:  # the png `compressed` transport of the mono16 labels
            fmt, data = png_compressed(image, msg.encoding)
        compressed = store.types[COMPRESSED_IMAGE](
            header=msg.header, format=fmt, data=np.frombuffer(data, np.uint8)
        )
        return COMPRESSED_IMAGE, bytes(store.serialize_cdr(compressed, COMPRESSED_IMAGE))

    bag = tmp_path / "compressed"
    rewrite_bag(demo_bag, bag, compress)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
        summary = replay.run(replay_args(bag, out, published_folder))
    assert summary["skipped"] == {"deserialize": 0, "convert": 0}
    expected = [m for m in read_bag(replayed[0]) if m[0] == topics.OBJECTS_TOPIC]
    assert [m for m in read_bag(out) if m[0] == topics.OBJECTS_TOPIC] == expected
    mismatch = [r.getMessage() for r in caplog.records if "frame_id" in r.getMessage()]
    assert len(mismatch) == 1, mismatch  # said once, not per frame
    assert "depth frame_id 'camera_depth_optical_frame' differs from the RGB's " in mismatch[0]
    assert f"'{topics.FRAME_ID}'" in mismatch[0] and "registered to the RGB" in mismatch[0]


def test_start_and_end_select_a_time_range(tmp_path, demo_bag, published_folder, caplog):
    # frames 4..9 (0.25 s .. 0.65 s): 6 camera frames, every other one sampled
    args = replay_args(demo_bag, tmp_path / "out", published_folder, start=0.25, end=0.65)
    summary = replay.run(args)
    assert summary["frames_synchronised"] == 6 and summary["frames_sampled"] == 3
    stamps = [header_ns(m) for _, m in read_messages(tmp_path / "out", topics.OBJECTS_TOPIC)]
    assert stamps == [STAMPS[4], STAMPS[6], STAMPS[8]]
    with caplog.at_level(logging.WARNING):  # from the start to --end: fewer than the index's
        until = replay.run(replay_args(demo_bag, tmp_path / "until", published_folder, end=0.65))
    assert until["frames_synchronised"] == 10 and "damaged" not in caplog.text


def test_a_camera_info_recorded_once_before_start_serves_the_range(
    tmp_path, demo_bag, published_folder
):
    """A static or latched publisher records one CameraInfo as the bag begins: a replay from
    --start had none, and every 3D extent was EXTENT_NO_CAMERA_INFO. With --copy-inputs it is
    copied too, at its own log time and with its QoS (transient local: `ros2 bag play` serves
    it to late subscribers): the copied inputs replay on their own."""
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    never = QosTime(0, 0)
    latched = Qos(
        QosHistory.KEEP_LAST,
        1,
        QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL,
        never,
        never,
        QosLiveliness.AUTOMATIC,
        never,
        False,
    )
    once = tmp_path / "once"
    rewrite_bag(
        demo_bag,
        once,
        lambda t, i, raw: DROP if t == topics.CAMERA_INFO_TOPIC and i > 0 else None,
        qos={topics.CAMERA_INFO_TOPIC: [latched]},
    )
    args = replay_args(once, tmp_path / "out", published_folder, start=0.25, copy_inputs=True)
    replay.run(args)
    objects = [
        o for _, m in read_messages(tmp_path / "out", topics.OBJECTS_TOPIC) for o in m.objects
    ]
    assert objects and all(o.extent_reason != o.EXTENT_NO_CAMERA_INFO for o in objects)
    recorded = [m for m in read_bag(once) if m[0] == topics.CAMERA_INFO_TOPIC]
    assert [m for m in read_bag(tmp_path / "out") if m[0] == topics.CAMERA_INFO_TOPIC] == recorded
    with AnyReader([tmp_path / "out"]) as reader:
        (copied,) = [c for c in reader.connections if c.topic == topics.CAMERA_INFO_TOPIC]
        assert copied.ext.offered_qos_profiles == [latched]


def test_a_replay_that_synchronises_no_frame_is_an_error_not_an_empty_bag(
    tmp_path, demo_bag, published_folder
):
    """Masks stamped with another clock: no frame pairs, and an empty result bag would pass
    for a finished replay (replay-many skips it on every later run)."""

    def another_clock(msg):
        msg.header.stamp.sec += 60

    shifted = tmp_path / "shifted"
    rewrite_bag(demo_bag, shifted, _every(topics.MASK_TOPIC, another_clock))
    args = replay_args(shifted, tmp_path / "out", published_folder)
    with pytest.raises(InputError, match=r"no frame of .* was synchronised .*--sync-tolerance"):
        replay.run(args)
    assert not (tmp_path / "out").exists()


def test_an_empty_range_an_empty_bag_and_undecodable_masks_are_named_not_the_stamps(
    tmp_path, demo_bag, published_folder
):
    """Each read as 'the stamps must agree': --start past the end (after loading the models),
    a bag of no message (an overflow traceback with --start), every mask undecodable."""
    with pytest.raises(InputError, match=r"--start 60 s is past the end of .*spans 0\.\d+ s"):
        replay.run(replay_args(demo_bag, tmp_path / "o", tmp_path / "never_loaded", start=60))
    garbled = tmp_path / "garbled"
    rewrite_bag(demo_bag, garbled, lambda t, i, raw: (IMAGE, raw[:30]) if "mask" in t else None)
    with pytest.raises(InputError, match=f"no message of {topics.MASK_TOPIC} could be deser"):
        replay.run(replay_args(garbled, tmp_path / "o", published_folder))
    empty = tmp_path / "empty"
    rewrite_bag(demo_bag, empty, lambda t, i, raw: DROP)
    with pytest.raises(InputError, match=r"bag .*empty holds no message"):
        replay.run(replay_args(empty, tmp_path / "o", tmp_path / "never_loaded", start=1))
    assert not (tmp_path / "o").exists()


def test_missing_topic_is_one_clear_error_with_exit_code_2(tmp_path, demo_bag, capsys):
    code = main(["replay", str(demo_bag), "--out", str(tmp_path / "o"), "--rgb-topic", "/nope"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "rgb topic /nope is not in" in err
    for topic in (topics.RGB_TOPIC, topics.DEPTH_TOPIC, topics.MASK_TOPIC):
        assert topic in err
    assert not (tmp_path / "o").exists()


def test_command_line_arguments_map_to_configs(tmp_path):
    parser = build_parser()
    ns = parser.parse_args(["replay", "in_bag", "--out", "o"])
    args = from_namespace(Args, ns)
    assert args.stream.publish_frames == "new" and args.stream.checkpoint == "embedded"
    size = (args.inference.height, args.inference.width, args.inference.num_frames)
    assert size == (0, 0, 25)  # working size: the model's own
    assert args.storage == "sqlite3" and args.rgb_topic == topics.RGB_TOPIC and args.progress
    ns = parser.parse_args(
        [
            "replay",
            "in_bag",
            "--out",
            "o",
            "--checkpoint",
            str(tmp_path),
            "--stride",
            "3",
            "--frame-rate",
            "10",
            "--publish-frames",
            "latest",
            "--storage",
            "mcap",
            "--steps",
            "4",
            "--seed",
            "5",
            "--num-frames",
            "8",
            "--start",
            "1.5",
            "--compressed",
            "--no-progress",
        ]
    )
    args = from_namespace(Args, ns)
    assert (args.stream.stride, args.stream.frame_rate, args.stream.publish_frames) == (
        3,
        10.0,
        "latest",
    )
    assert (args.inference.height, args.inference.width) == (0, 0)  # the model's, at load
    assert (args.inference.num_steps, args.inference.seed, args.inference.num_frames) == (4, 5, 8)
    assert args.storage == "mcap" and args.start == 1.5 and args.compressed
    assert not args.progress


def test_frame_rate_and_demo_sampling_agree():
    # the test's arithmetic: 7.5 fps of a 15 fps stream keeps every other stamp
    from amodal_ros.pipeline.rate import FrameRateSampler

    sampler = FrameRateSampler(FRAME_RATE)
    assert [s for s in STAMPS if sampler.accept(s)] == SAMPLED_STAMPS


def test_overlay_video_has_one_frame_per_result(tmp_path, demo_bag, published_folder):
    from PIL import Image

    args = replay_args(demo_bag, tmp_path / "out", published_folder, video=tmp_path / "ov")
    summary = replay.run(args)
    gif, mp4 = tmp_path / "ov.gif", tmp_path / "ov.mp4"
    assert summary["videos"] == [str(mp4), str(gif)]
    assert f"video: {mp4}" in replay.format_summary(summary)  # where it went: said
    assert Image.open(gif).n_frames == summary["results_written"] == SAMPLED
    overlays = read_messages(tmp_path / "out", topics.OVERLAY_TOPIC)
    last = overlays[-1][1]
    with Image.open(gif) as im:
        im.seek(im.n_frames - 1)
        frame = np.asarray(im.convert("RGB"))
    assert frame.shape == (last.height, last.width, 3)
    import cv2

    video = cv2.VideoCapture(str(mp4))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == SAMPLED
    assert not list(tmp_path.glob(".*partial*"))
    # a second replay to the same video is refused before any work, as its bag would be
    again = replay_args(demo_bag, tmp_path / "out2", published_folder, video=tmp_path / "ov")
    with pytest.raises(InputError, match="video .*ov.mp4 exists; pass --overwrite"):
        replay.run(again)
    assert not (tmp_path / "out2").exists()
    gif.write_bytes(b"an earlier run's")
    again = replay_args(
        demo_bag, tmp_path / "out2", published_folder, video=tmp_path / "ov", overwrite=True
    )
    assert replay.run(again)["videos"] == [str(mp4), str(gif)]  # --overwrite: replaced
    assert Image.open(gif).n_frames == SAMPLED


def test_the_videos_take_their_names_only_once_the_bag_is_closed(
    tmp_path, demo_bag, published_folder, monkeypatch
):
    """Closing a large bag takes seconds (sqlite3 commits it): a replay killed then left its
    videos under their final names without a bag, and a re-run refused the videos."""
    from rosbags.rosbag2 import Writer

    close, seen = Writer.close, []

    def closing(writer):
        seen.append(sorted(p.name for p in tmp_path.glob("ov.*")))
        if len(seen) == 1:
            raise OSError("killed while the bag closes")
        close(writer)

    monkeypatch.setattr(Writer, "close", closing)
    args = replay_args(demo_bag, tmp_path / "out", published_folder, video=tmp_path / "ov")
    with pytest.raises(OSError, match="killed while"):
        replay.run(args)
    assert seen == [[]] and list(tmp_path.iterdir()) == []  # nothing of the killed run
    replay.run(args)  # the re-run is not refused, and writes both
    assert seen[1] == [] and {p.name for p in tmp_path.glob("ov.*")} == {"ov.mp4", "ov.gif"}


def test_a_camera_slower_than_the_model_rate_gives_a_video_at_its_own_pace(
    tmp_path, published_folder
):
    """The sampler only drops frames: a 4 fps camera's frames come at 4 fps (its video
    played at the model's 7.5 ran twice as fast)."""
    import cv2

    slow = tmp_path / "slow"
    write_demo_bag(slow, frames=8, fps=4.0, height=HEIGHT, width=WIDTH)
    replay.run(replay_args(slow, tmp_path / "out", published_folder, video=tmp_path / "ov"))
    capture = cv2.VideoCapture(str(tmp_path / "ov.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(4.0, rel=0.01)
    capture.release()


def test_a_video_inside_the_results_bag_is_refused_before_any_work(tmp_path, demo_bag):
    args = replay_args(demo_bag, tmp_path / "res", tmp_path / "missing", video=tmp_path / "res/ov")
    with pytest.raises(InputError, match="--video .* is inside --out .*res_overlay"):
        replay.run(args)  # before: replayed, then refused to write the bag beside the video
    assert list(tmp_path.iterdir()) == []


def test_masks_logged_seconds_after_their_images_still_pair_offline(tmp_path, published_folder):
    """A slow segmenter's masks are recorded 3 s (45 camera frames) after their images: live,
    the synchroniser's queue (sync_queue 30) would have pushed those images out; offline it
    waits longer (OFFLINE_SYNC_QUEUE), and every frame pairs."""
    src, late = tmp_path / "src", tmp_path / "late"
    write_demo_bag(src, frames=60, fps=FPS, height=HEIGHT, width=WIDTH)
    rewrite_bag(src, late, lambda *_: None, late={topics.MASK_TOPIC: 3_000_000_000})
    summary = replay.run(replay_args(late, tmp_path / "out", published_folder))
    assert summary["frames_synchronised"] == 60 and not any(summary["unmatched"].values())


def test_arguments_at_their_edges_are_judged_before_any_work(tmp_path, demo_bag):
    def check(**changes):
        replay.check_args(replay_args(demo_bag, tmp_path / "res", None, **changes))

    check(start=0.0)  # the bag's first message
    for changes, said in (
        ({"end": 0.0}, "end must be > 0 s"),
        ({"start": 2.0, "end": 2.0}, r"end \(2.0 s\) must be after start \(2.0 s\)"),
        ({"video": tmp_path / "res" / "sub" / "ov"}, "--video .* is inside --out"),
        ({"video": demo_bag / "ov"}, "--video .* is inside the input bag .*demo_bag_overlay"),
    ):
        with pytest.raises((InputError, ValueError), match=said):
            check(**changes)
    assert list(tmp_path.iterdir()) == [] and not list(demo_bag.glob("ov*"))


def test_one_failed_model_window_is_a_failed_replay():
    from amodal_ros.core.errors import ProcessingError

    replay.check_windows({"windows_failed": 0, "out": "o"})
    with pytest.raises(ProcessingError, match="^1 model windows failed"):
        replay.check_windows({"windows_failed": 1, "out": "o"})


def test_failed_replay_leaves_no_video(tmp_path, demo_bag):
    args = replay_args(demo_bag, tmp_path / "out", tmp_path / "missing", video=tmp_path / "ov")
    with pytest.raises(CheckpointError):
        replay.run(args)
    assert list(tmp_path.iterdir()) == []


def test_demo_command_writes_bags_video_and_summary(tmp_path, capsys):
    from amodal_ros.cli.main import main as cli_main

    # 8 camera frames at 15 fps are 4 model frames: the 25-frame window never fills, so the
    # demo finishes fast; every frame is still answered (modal passthrough, reason 1)
    assert cli_main(["demo", "--out", str(tmp_path / "d"), "--frames", "8"]) == 0
    out = capsys.readouterr().out
    assert "embedded model" in out and "overlay.mp4" in out
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    # the embedded model's one-step students by default
    assert summary["sampling"] == {"preset": "realtime", "unet_steps": 1, "student": True}
    results = read_messages(tmp_path / "d" / "results", topics.OBJECTS_TOPIC)
    assert len(results) == 4
    assert {o.reason for _, m in results for o in m.objects} == {REASON_WINDOW_NOT_FULL}
    assert (tmp_path / "d" / "overlay.gif").is_file()
    assert (tmp_path / "d" / "demo_bag" / "metadata.yaml").is_file()
    assert summary["messages_written"][topics.COMPLETION_TOPIC] == 4
    # the embedded model with its 32x64 mask student keeps the embedded completions
    args = ["demo", "--out", str(tmp_path / "s"), "--frames", "8", "--checkpoint"]
    assert cli_main([*args, "embedded-32x64"]) == 0
    small = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert small["checkpoint"] == "embedded-32x64"
    assert small["messages_written"][topics.COMPLETION_TOPIC] == 4


def test_a_demo_whose_model_windows_fail_keeps_its_outputs_and_exits_1(
    tmp_path, capsys, monkeypatch
):
    """It printed 'wrote ...' and exited 0 with every result the visible mask."""
    from amodal_ros.cli.main import main as cli_main
    from amodal_ros.pipeline.processor import WindowProcessor

    def broken(self, window):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(WindowProcessor, "_run", broken)
    # 50 camera frames at 15 fps fill one 25-frame window at 8 fps
    assert cli_main(["demo", "--out", str(tmp_path / "d"), "--frames", "50"]) == 1
    captured = capsys.readouterr()
    assert "failed: 2 model windows failed" in captured.err and "wrote" in captured.out
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["windows_failed"] == 2 and summary["windows_model"] == 0


def test_demo_never_deletes_a_folder_that_is_not_its_own(tmp_path, capsys):
    from amodal_ros.cli.main import main as cli_main

    mine = tmp_path / "mine"
    (mine / "results").mkdir(parents=True)
    (mine / "results" / "keep.txt").write_text("user data")
    assert cli_main(["demo", "--out", str(mine), "--frames", "4", "--steps", "1"]) == 2
    assert "not an earlier demo's output" in capsys.readouterr().err
    assert (mine / "results" / "keep.txt").read_text() == "user data"
    # not with --overwrite either, while its files bear the demo's output names
    assert cli_main(["demo", "--out", str(mine), "--frames", "4", "--overwrite"]) == 2
    assert "holds results, which the demo would replace" in capsys.readouterr().err
    assert (mine / "results" / "keep.txt").read_text() == "user data"
    # a failed demo leaves none of its outputs, nor the folder it made
    fresh = tmp_path / "fresh"
    assert cli_main(["demo", "--out", str(fresh), "--checkpoint", str(tmp_path / "nope")]) == 2
    assert not fresh.exists()
    with_files = tmp_path / "with_files"
    with_files.mkdir()
    (with_files / "notes.txt").write_text("mine")
    args = ["demo", "--out", str(with_files), "--overwrite", "--checkpoint", str(mine)]
    assert cli_main(args) == 2
    assert [p.name for p in with_files.iterdir()] == ["notes.txt"]
    capsys.readouterr()
    # an earlier demo's output is replaced without asking (the README command can be re-run)
    demo = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(demo), "--frames", "4", "--steps", "1"]) == 0
    assert cli_main(["demo", "--out", str(demo), "--frames", "6", "--steps", "1"]) == 0
    assert len(read_messages(demo / "results", topics.OBJECTS_TOPIC)) == 3
    # ... but only by a run that succeeds: a typo'd checkpoint deleted it before any check
    before = sorted(p.name for p in demo.iterdir())
    assert cli_main(["demo", "--out", str(demo), "--checkpoint", str(tmp_path / "nope")]) == 2
    assert sorted(p.name for p in demo.iterdir()) == before
    assert len(read_messages(demo / "results", topics.OBJECTS_TOPIC)) == 3
    # ... also one whose replay failed after its bag was written (no summary.json)
    (demo / "summary.json").unlink()
    assert cli_main(["demo", "--out", str(demo), "--frames", "4", "--steps", "1"]) == 0
    assert (demo / "summary.json").is_file()
    assert not [p for p in demo.iterdir() if p.name.startswith(".")]  # nothing set aside left


@pytest.mark.parametrize("log_times_kept", [result_writer.RGB_LOG_TIMES_KEPT, 10])
def test_results_are_logged_at_their_rgb_log_time(
    tmp_path, demo_bag, published_folder, monkeypatch, log_times_kept
):
    """Header stamps from another clock than the recorder's (e.g. a camera's hardware clock);
    with 10 RGB log times kept (of 14 frames: a long bag), the oldest are the ones forgotten."""
    monkeypatch.setattr(result_writer, "RGB_LOG_TIMES_KEPT", log_times_kept)
    shifted = tmp_path / "shifted"
    rewrite_bag(demo_bag, shifted, lambda *a: None, shift_ns=100 * 10**9)
    replay.run(replay_args(shifted, tmp_path / "out", published_folder))
    for topic in (topics.OBJECTS_TOPIC, topics.OVERLAY_TOPIC, topics.CAMERA_INFO_OUT_TOPIC):
        logged = read_messages(tmp_path / "out", topic)
        assert [t for t, _ in logged] == [s + 100 * 10**9 for s in SAMPLED_STAMPS], topic
        assert [header_ns(m) for _, m in logged] == SAMPLED_STAMPS


def test_a_camera_info_logged_after_its_results_still_goes_out_with_them(
    tmp_path, demo_bag, published_folder
):
    """CameraInfo logged 5 s late, each stamped exactly --sync-tolerance before its frame (a
    driver's clock): each is written when it comes, for the result of its stamp (the earlier
    ones' arrival leaves the later results waiting), restamped with the result's stamp and
    logged at the result's log time."""
    tolerance_ns = replay.replay_stream().tolerance_ns

    def early(msg):
        ns = header_ns(msg) - tolerance_ns
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 10**9)

    late = tmp_path / "late"
    shift = 100 * 10**9  # log times on the recorder's clock, not the stamps'
    edit = _every(topics.CAMERA_INFO_TOPIC, early, CAMERA_INFO)
    rewrite_bag(demo_bag, late, edit, shift_ns=shift, late={topics.CAMERA_INFO_TOPIC: 5 * 10**9})
    summary = replay.run(replay_args(late, tmp_path / "out", published_folder))
    assert summary["messages_written"][topics.CAMERA_INFO_OUT_TOPIC] == len(SAMPLED_STAMPS)
    objects = read_messages(tmp_path / "out", topics.OBJECTS_TOPIC)
    infos = read_messages(tmp_path / "out", topics.CAMERA_INFO_OUT_TOPIC)
    assert [header_ns(m) for _, m in infos] == [header_ns(m) for _, m in objects]
    assert [t for t, _ in infos] == [t for t, _ in objects] == [s + shift for s in SAMPLED_STAMPS]


def test_default_checkpoint_is_the_embedded_model(tmp_path, demo_bag, capsys):
    """No checkpoint: the shipped synthetic-trained model runs, and the replay says so."""
    summary = replay.run(replay_args(demo_bag, tmp_path / "emb", None))
    assert summary["embedded_model"] is True and summary["checkpoint"] == "embedded"
    assert summary["working_size_hw"] == [32, 64] and summary["conditioning_mode"] == "consistent"
    assert summary["windows_model"] == 3 and summary["windows_failed"] == 0
    assert "embedded model" in capsys.readouterr().out


def _every(topic: str, change, msgtype: str = IMAGE):
    """A rewrite_bag edit applying `change(msg)` to every message of `topic` (of `msgtype`)."""

    def edit(name: str, index: int, raw: bytes):
        if name != topic:
            return None
        store = amodal_typestore()
        msg = store.deserialize_cdr(raw, msgtype)
        change(msg)
        return msgtype, bytes(store.serialize_cdr(msg, msgtype))

    return edit


def _yuv(msg):
    msg.encoding = "yuv422"


def _half_size_masks(msg):
    msg.height, msg.width, msg.step = msg.height // 2, msg.width // 2, msg.step // 2
    msg.data = msg.data[: msg.step * msg.height]


def _truncated_a_little_more_each_frame():
    """Frames short by 1, 2, 3, ... bytes: each error text names another byte count."""
    cut = itertools.count(1)

    def truncate(msg):
        msg.data = msg.data[: len(msg.data) - next(cut)]

    return truncate


def _background(msg):
    msg.data = np.zeros_like(msg.data)


@pytest.mark.parametrize(
    "topic, change, problem",
    [
        (topics.RGB_TOPIC, _yuv, "RGB image has encoding 'yuv422'; expected one of"),
        (topics.MASK_TOPIC, _half_size_masks, "size mismatch: RGB is"),
        (
            topics.RGB_TOPIC,
            _truncated_a_little_more_each_frame(),
            "a truncated or mislabelled message",
        ),
    ],
)
def test_a_bag_that_fails_the_same_way_throughout_stops_with_one_line(
    tmp_path, demo_bag, published_folder, capsys, topic, change, problem
):
    bad = tmp_path / "bad"
    rewrite_bag(demo_bag, bad, _every(topic, change))
    out = tmp_path / "out"
    argv = ["replay", str(bad), "--out", str(out), "--checkpoint", str(published_folder)]
    assert main([*argv, "--no-progress", "--fail-after", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0] and "first 3 frames all failed" in err[0], err
    assert topic in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out.partial*"))
    # a short bag (fewer bad frames than fail_after) is refused at its end, the same way
    assert main([*argv, "--no-progress", "--fail-after", "1000"]) == 2
    assert "no frame of" in capsys.readouterr().err and not out.exists()


def _frames(topic: str, change, indices):
    """`_every`'s edit for the messages of `topic` at `indices` only."""
    every = _every(topic, change)
    return lambda name, index, raw: every(name, index, raw) if index in indices else None


def test_failures_stop_a_replay_only_while_no_frame_has_worked(
    tmp_path, demo_bag, published_folder, caplog
):
    """--fail-after N stops a bag whose first N frames fail alike, and only such a bag: one
    more bad frame than that, or bad frames after good ones (a corrupt tail, a camera that
    changed its encoding), are skipped and counted; the warnings held while nothing had
    worked are said once each when a frame works."""
    first = tmp_path / "first"
    rewrite_bag(demo_bag, first, _frames(topics.RGB_TOPIC, _yuv, range(3)))
    with pytest.raises(InputError, match="first 3 frames all failed the same way"):
        replay.run(replay_args(first, tmp_path / "a", published_folder, fail_after=3))
    with caplog.at_level(logging.WARNING):
        summary = replay.run(replay_args(first, tmp_path / "b", published_folder, fail_after=4))
    assert summary["skipped"]["convert"] == 3
    assert caplog.text.count("skipped the frame of") == 3, caplog.text
    tail = tmp_path / "tail"
    rewrite_bag(demo_bag, tail, _frames(topics.RGB_TOPIC, _yuv, range(FRAMES - 4, FRAMES)))
    summary = replay.run(replay_args(tail, tmp_path / "c", published_folder, fail_after=3))
    assert summary["skipped"]["convert"] == 4 and summary["results_written"] > 0


def test_fail_after_0_never_stops_early_and_says_each_failure_as_it_comes(
    tmp_path, demo_bag, published_folder, caplog
):
    """--fail-after 0 (go on whatever fails): no warning is held for a frame that may work
    later; a bag of which no frame works is refused at its end."""
    bad = tmp_path / "bad"
    rewrite_bag(demo_bag, bad, _every(topics.RGB_TOPIC, _yuv))
    with caplog.at_level(logging.WARNING), pytest.raises(InputError, match="no frame of"):
        replay.run(replay_args(bad, tmp_path / "out", published_folder, fail_after=0))
    assert caplog.text.count("skipped the frame of") == 3  # the first three, in full
    assert not (tmp_path / "out").exists()


def test_failed_model_windows_write_the_bag_and_exit_1(
    tmp_path, demo_bag, published_folder, monkeypatch
):
    """Every window failing (a GPU out of memory) exited 0, as a success, for a script."""
    from amodal_ros.cli import replay as replay_command
    from amodal_ros.core.errors import ProcessingError
    from amodal_ros.pipeline.processor import WindowProcessor

    def broken(self, window):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(WindowProcessor, "_run", broken)
    out = tmp_path / "out"
    with pytest.raises(ProcessingError, match=f"^3 model windows failed .* {out} is complete"):
        replay_command.run(replay_args(demo_bag, out, published_folder))
    results = read_messages(out, topics.OBJECTS_TOPIC)
    assert len(results) == SAMPLED  # every frame answered, flagged
    assert {o.reason for _, m in results for o in m.objects} == {REASON_ERROR}
    # its own record says so: replay-many replays it again by this when its summary is lost
    assert json.loads((out / RESULTS_MARKER).read_text())["windows_failed"] == 3


def test_a_bag_without_any_object_warns_once_and_says_so(
    tmp_path, demo_bag, published_folder, caplog
):
    empty = tmp_path / "empty"
    rewrite_bag(demo_bag, empty, _every(topics.MASK_TOPIC, _background))
    with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
        summary = replay.run(replay_args(empty, tmp_path / "out", published_folder))
    warnings = [r for r in caplog.records if "never contains an object" in r.getMessage()]
    assert len(warnings) == 1 and topics.MASK_TOPIC in warnings[0].getMessage()
    assert summary["frames_with_objects"] == 0 and summary["windows_model"] == 0
    assert summary["results_written"] == summary["frames_sampled"] > 0  # still answered


def test_a_bag_shorter_than_a_window_says_no_result_is_the_models(
    tmp_path, published_folder, caplog
):
    """Every result of it is the visible mask: said once, not left to a summary's count."""
    short = tmp_path / "short"
    write_demo_bag(short, frames=4, fps=FPS, height=HEIGHT, width=WIDTH)  # 2 sampled frames
    with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
        summary = replay.run(replay_args(short, tmp_path / "out", published_folder))
    assert summary["windows_model"] == 0
    assert summary["results_written"] == summary["frames_sampled"] == 2
    (said,) = [
        r.getMessage() for r in caplog.records if "no result is the model" in r.getMessage()
    ]
    assert f"2 frames at the model's 7.5 fps, fewer than its window of {WINDOW}" in said
    assert "WINDOW_NOT_FULL" in said


def test_track_ids_give_stable_ids_through_a_crossing_and_a_full_occlusion(
    tmp_path, published_folder
):
    """A segmenter's ids shuffle every frame; two objects cross and one hides for 1 s: with
    `track_ids` each object keeps one id and the hidden one a model answer in every frame."""
    from dataclasses import replace

    from crossing_scene import (
        assert_one_track_each,
        check_scene,
        crossing_scene,
        track_of_each_object,
    )

    from amodal_ros.bags.demo_bag import write_clip_bag

    check_scene()
    scene = crossing_scene()
    bag = tmp_path / "shuffled"
    write_clip_bag(scene.rgb, scene.depth, scene.labels, bag, fps=8.0)
    window = 12  # longer than the 8 hidden frames

    def replayed(track: bool) -> dict[int, dict[int, tuple]]:
        args = replay_args(bag, tmp_path / f"out_{track}", published_folder)
        args = replace(
            args,
            stream=args.stream.replace(frame_rate=8.0, track_ids=track),
            inference=replace(args.inference, num_frames=window),
        )
        replay.run(args)
        frames = {}
        for _, msg in read_messages(args.out, topics.OBJECTS_TOPIC):
            t = round((header_ns(msg) - START_NS) / 125_000_000)
            frames[t] = {
                o.object_id: (mono(o.modal_mask) > 0, o.amodal_valid) for o in msg.objects
            }
        return frames

    untracked = track_of_each_object(scene.truth, replayed(track=False))
    assert len(untracked[1]) > 20 and len(untracked[2]) > 20  # the segmenter's ids: useless
    assert_one_track_each(scene.truth, replayed(track=True), window)


def test_a_half_hidden_board_gets_its_true_3d_box_and_markers(tmp_path):
    """A 40 x 30 cm board 1 m away, its middle half behind a 12 cm pole 0.6 m away, in a
    128 x 256 RGB-D bag with CameraInfo, replayed with the embedded model: every frame the
    model answers has the board's 3D box within 10 % of its size and 2 cm of its centre, and
    a cube on /amodal/markers. (The pole is not segmented: only its depth says it is nearer.)
    The visible halves span the box here; the embedded model cannot yet complete a board hidden
    at one edge to within 10 % (README, What is missing), so that case is not asserted.
    """
    from amodal_ros.bags.demo_bag import pinhole_k, write_clip_bag
    from amodal_ros.bags.replay import ReplayArgs

    frames, height, width = 30, 128, 256
    f, _, cx, _, _, cy = pinhole_k(width, height)[:6]
    z, size = 1.0, (0.40, 0.30)  # m: the board's front face depth, width x height
    w, h = (round(s * f / z) for s in size)
    x0, y0 = width // 2 - w // 2, height // 2 - h // 2
    board = np.zeros((height, width), bool)
    board[y0 : y0 + h, x0 : x0 + w] = True
    pole = slice(width // 2 - 19, width // 2 + 18)  # 0.12 m at 0.6 m
    depth = np.full((height, width), 2.5, np.float32)
    depth[board], depth[:, pole] = z, 0.6
    labels = np.where(board, 1, 0).astype(np.uint16)
    labels[:, pole] = 0
    rgb = np.random.default_rng(0).integers(80, 150, (height, width, 3), dtype=np.uint8)
    rgb[board], rgb[:, pole] = (200, 120, 40), (60, 60, 70)
    assert abs(1 - (labels == 1).sum() / board.sum() - 0.5) < 0.02  # half hidden
    repeat = lambda a: np.repeat(a[None], frames, axis=0)  # noqa: E731
    bag, out = tmp_path / "board", tmp_path / "out"
    write_clip_bag(repeat(rgb), repeat(depth), repeat(labels), bag, fps=8.0)
    stream = replay.replay_stream().replace(frame_rate=8.0)  # the embedded model's defaults
    replay.run(ReplayArgs(bag=bag, out=out, stream=stream, progress=False))

    # the true box: centred on the board's pixels, 2 cm thick (the thinnest box) behind z
    true_centre = (((x0 + w / 2 - 0.5) - cx) * z / f, ((y0 + h / 2 - 0.5) - cy) * z / f, z + 0.01)
    true_size = (w * z / f, h * z / f, 0.02)
    answered = 0
    markers = dict(read_messages(out, topics.MARKERS_TOPIC))
    for log_ns, msg in read_messages(out, topics.OBJECTS_TOPIC):
        (o,) = msg.objects
        if not o.amodal_valid:
            continue
        answered += 1
        behind_pole = mono(o.amodal_mask)[board & (labels == 0)] > 0
        assert behind_pole.mean() > 0.1  # a model answer, not the modal mask (measured 0.16-0.76)
        assert o.extent_valid and o.extent_reason == o.EXTENT_OK
        s, c = o.extent_size, o.extent_pose.position
        for got, true in zip((s.x, s.y, s.z), true_size):
            assert abs(got - true) <= 0.1 * true, (s, true_size)
        assert np.linalg.norm(np.subtract((c.x, c.y, c.z), true_centre)) <= 0.02, (c, true_centre)
        (cube,) = [m for m in markers[log_ns].markers if m.ns == "amodal_extent"]
        assert (cube.id, cube.scale.x, cube.scale.y) == (1, s.x, s.y)
    assert answered == frames  # offline, the first full window answers the frames before it


def test_output_bags_play_on_humble_jazzy_and_kilted(
    tmp_path, demo_bag, published_folder, replayed
):
    """Each distro's reader requirements (rosbag2_readers, from rosbag2's source per branch):
    the default output (--ros-distro humble: metadata version 8) and the demo bag satisfy
    all three; --ros-distro jazzy writes version 9, which Humble cannot read."""
    from rosbag2_readers import DISTROS, problems

    mcap = tmp_path / "mcap"
    replay.run(replay_args(demo_bag, mcap, published_folder, storage="mcap"))
    for bag in (replayed[0], demo_bag, mcap):
        for distro in DISTROS:
            assert problems(bag, distro) == [], (bag.name, distro)
    jazzy = tmp_path / "jazzy"
    replay.run(replay_args(demo_bag, jazzy, published_folder, ros_distro="jazzy"))
    assert problems(jazzy, "jazzy") == problems(jazzy, "kilted") == []
    assert any("must be a string at version 9" in p for p in problems(jazzy, "humble"))
    # the same results in either version and storage
    results = [m for m in read_bag(replayed[0]) if m[0] == topics.OBJECTS_TOPIC]
    assert [m for m in read_bag(jazzy) if m[0] == topics.OBJECTS_TOPIC] == results
    assert [m for m in read_bag(mcap) if m[0] == topics.OBJECTS_TOPIC] == results
    for bag in (replayed[0], jazzy, mcap):  # no amodal_ros types given: the bag's own
        with AnyReader([bag]) as reader:
            (conn,) = [c for c in reader.connections if c.topic == topics.OBJECTS_TOPIC]
            _, _, raw = next(reader.messages([conn]))
            assert reader.deserialize(raw, conn.msgtype).header.frame_id == topics.FRAME_ID


def test_bags_rosbags_cannot_open_say_why_and_what_to_do(tmp_path, demo_bag):
    """A rosbag2 folder named rec.bag (read as a ROS 1 file: "Is a directory"), a results bag
    that would be so named, a folder whose MCAP file was cut short ("does not begin as a bag
    does"), an MCAP file of ROS 1's profile, an unrelated topic whose definition disagrees
    with its hash (a bare mismatch)."""
    from rosbags.rosbag2 import Writer

    from amodal_ros.bags.output import check_output
    from amodal_ros.bags.reader import InputBag

    named = shutil.copytree(demo_bag, tmp_path / "rec.bag")
    with pytest.raises(InputError, match=r"rosbag2 folder named like a ROS 1 .bag") as refused:
        InputBag(named)
    assert str(refused.value).endswith(f"(mv {named} {tmp_path / 'rec'})")
    with pytest.raises(InputError, match=r"ends in .bag, .* name it without .bag"):
        check_output(tmp_path / "results.bag", overwrite=False, results=True)
    cut = tmp_path / "cut"
    write_demo_bag(cut, frames=FRAMES, fps=FPS, height=HEIGHT, width=WIDTH, storage="mcap")
    (mcap,) = cut.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 2 // 3])
    with pytest.raises(InputError, match="`mcap recover` rebuilds the end of a file cut short"):
        InputBag(cut)
    with pytest.raises(InputError, match="`mcap recover` rebuilds the end of a file cut short"):
        InputBag(mcap.rename(tmp_path / "lone_cut.mcap"))  # the file alone, as other tools
    ros1 = tmp_path / "ros1"
    write_demo_bag(ros1, frames=FRAMES, fps=FPS, height=HEIGHT, width=WIDTH, storage="mcap")
    (mcap,) = ros1.glob("*.mcap")
    mcap = mcap.rename(tmp_path / "ros1.mcap")  # a loose file, as other tools write them
    mcap.write_bytes(
        mcap.read_bytes().replace(b"\x04\x00\x00\x00ros2", b"\x04\x00\x00\x00ros1", 1)
    )
    with pytest.raises(InputError, match="Profile is not ros2.*`rosbags-convert`"):
        InputBag(mcap)
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(tmp_path / "hashes", version=8) as writer:
        msgdef, _ = store.generate_msgdef("std_msgs/msg/String", ros_version=2)
        conn = writer.add_connection(
            "/chatter", "std_msgs/msg/String", msgdef=msgdef, rihs01="RIHS01_" + "0" * 64
        )
        text = store.types["std_msgs/msg/String"](data="x")
        writer.write(conn, 1, store.serialize_cdr(text, "std_msgs/msg/String"))
    with pytest.raises(InputError, match="hash mismatch .*`ros2 bag convert` without that topic"):
        InputBag(tmp_path / "hashes")


def test_a_bag_damaged_past_its_start_and_one_file_of_a_bag_are_one_line_each(
    tmp_path, demo_bag, capsys
):
    """A damaged database page read half-way through gave a traceback (and exit 1, as failed
    windows); one file of a rosbag2 folder replayed that part alone, silently."""
    import sqlite3

    damaged = tmp_path / "damaged"
    shutil.copytree(demo_bag, damaged)
    (db,) = damaged.glob("*.db3")
    with sqlite3.connect(db) as con:  # the pages that hold the images' bytes
        rows = con.execute("select pageno, pagetype from dbstat where name='messages'")
        overflow = sorted(page for page, kind in rows if kind == "overflow")
        page_size = con.execute("pragma page_size").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    for page in overflow[len(overflow) // 2 :: 5]:  # each points to a page past the file's end
        data[(page - 1) * page_size : (page - 1) * page_size + 4] = (10**6).to_bytes(4, "big")
    db.write_bytes(bytes(data))
    assert main(["replay", str(damaged), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    said = re.search(r"cannot read bag .*damaged (\d+\.\d{3}) s after its start: .*Error", err[0])
    assert len(err) == 1 and said, err
    assert 0 < float(said[1]) < (FRAMES - 1) / FPS  # half-way through the 0.87 s bag
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.partial-*"))

    (part,) = demo_bag.glob("*.db3")
    assert main(["replay", str(part), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    said = f"is a file of the rosbag2 bag {demo_bag}: name the folder {demo_bag}\n"
    assert said in capsys.readouterr().err


def test_a_topic_without_messages_and_repeated_stamps_are_named(
    tmp_path, demo_bag, published_folder, caplog
):
    """A mask topic recorded without a message was blamed on the stamps; frames whose header
    stamps were left unset (all 0) left one frame, said only as a count in the summary."""
    store = amodal_typestore()
    no_masks = tmp_path / "no_masks"
    rewrite_bag(
        demo_bag, no_masks, lambda topic, i, raw: DROP if topic == topics.MASK_TOPIC else None
    )
    with pytest.raises(InputError, match=f"{topics.MASK_TOPIC} recorded no message"):
        replay.run(replay_args(no_masks, tmp_path / "out", published_folder))

    def unset(name: str, index: int, raw: bytes):
        if name not in (topics.RGB_TOPIC, topics.MASK_TOPIC, topics.DEPTH_TOPIC):
            return None
        msg = store.deserialize_cdr(raw, IMAGE)
        msg.header.stamp.sec = msg.header.stamp.nanosec = 0
        return IMAGE, bytes(store.serialize_cdr(msg, IMAGE))

    unstamped = tmp_path / "unstamped"
    rewrite_bag(demo_bag, unstamped, unset)
    with caplog.at_level(logging.WARNING, logger="amodal_ros"):
        summary = replay.run(replay_args(unstamped, tmp_path / "out", published_folder))
    assert summary["results_written"] == 1
    assert f"{FRAMES - 1} frames of {unstamped} repeated a header stamp" in caplog.text


def test_images_stamped_backwards_are_named_not_only_counted_unmatched(
    tmp_path, demo_bag, published_folder, caplog
):
    """Header stamps running backwards while the log times go forward (a clock stepped back):
    every image after the first was lost as "unmatched", said only as a count."""
    store = amodal_typestore()

    def backwards(topic: str, index: int, raw: bytes):
        if topic not in (topics.RGB_TOPIC, topics.MASK_TOPIC, topics.DEPTH_TOPIC):
            return None
        msg = store.deserialize_cdr(raw, IMAGE)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(STAMPS[-1 - index], 10**9)
        return IMAGE, bytes(store.serialize_cdr(msg, IMAGE))

    bag = tmp_path / "backwards"
    rewrite_bag(demo_bag, bag, backwards)
    with caplog.at_level(logging.WARNING, logger="amodal_ros"):
        summary = replay.run(replay_args(bag, tmp_path / "out", published_folder))
    behind = summary["stamped_behind"]
    assert behind > FRAMES // 2 and summary["unmatched"][topics.RGB_TOPIC] >= behind
    assert f"{behind} images of {bag} were stamped before a frame already paired" in caplog.text


def test_results_without_a_camera_info_of_their_stamp_are_counted(
    tmp_path, demo_bag, published_folder, caplog
):
    """CameraInfo published once (latched, stamped as it was sent): the extents use it, but
    only its own frame's result passes it through, and the others are counted; one stamped 0
    (a static publisher) serves every frame (/amodal/camera_info stayed empty before)."""
    store = amodal_typestore()

    def first_only(stamp_zero: bool):
        def rewrite(topic: str, index: int, raw: bytes):
            if topic != topics.CAMERA_INFO_TOPIC:
                return None
            if index:
                return DROP
            if not stamp_zero:
                return None
            info = store.deserialize_cdr(raw, CAMERA_INFO)
            info.header.stamp.sec = info.header.stamp.nanosec = 0
            return CAMERA_INFO, bytes(store.serialize_cdr(info, CAMERA_INFO))

        return rewrite

    for stamp_zero in (False, True):
        once, out = tmp_path / f"info_once_{stamp_zero}", tmp_path / f"out_{stamp_zero}"
        rewrite_bag(demo_bag, once, first_only(stamp_zero))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="amodal_ros"):
            summary = replay.run(replay_args(once, out, published_folder))
        n, written = summary["results_written"], summary["messages_written"]
        infos = written[topics.CAMERA_INFO_OUT_TOPIC]
        if stamp_zero:
            assert infos == n and "results have no" not in caplog.text
            continue
        assert infos < n
        said = f"{n - infos} of {n} results have no {topics.CAMERA_INFO_OUT_TOPIC} from"
        assert said in caplog.text and "their 3D extents used the latest one" in caplog.text


def test_a_camera_info_topic_silent_in_the_range_replayed_says_so(
    tmp_path, demo_bag, published_folder, caplog
):
    """A CameraInfo topic whose first message comes after --end (a driver that started late)
    recorded none *before --end*; one with no message at all recorded none, said plainly."""
    late, silent = tmp_path / "late", tmp_path / "silent"
    rewrite_bag(
        demo_bag,
        late,
        lambda t, i, raw: DROP if t == topics.CAMERA_INFO_TOPIC and i < 10 else None,
    )
    rewrite_bag(
        demo_bag, silent, lambda t, i, raw: DROP if t == topics.CAMERA_INFO_TOPIC else None
    )
    for bag, end, said in (
        (late, 0.5, "it recorded no message before --end: their 3D extents have none"),
        (silent, None, "it recorded no message: their 3D extents have none"),
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="amodal_ros"):
            replay.run(replay_args(bag, tmp_path / f"out_{bag.name}", published_folder, end=end))
        assert said in caplog.text, caplog.text


def test_a_mask_topic_silent_in_the_range_replayed_names_that_range(
    tmp_path, demo_bag, published_folder
):
    """A segmenter that started late (masks from 0.67 s on) recorded none before --end 0.5,
    nor between --start 0.1 and it; one that stopped early (until 0.27 s) none after
    --start 0.4: the error names the side of the range the replay read, not both."""
    mask = topics.MASK_TOPIC
    started_late, stopped_early = tmp_path / "started_late", tmp_path / "stopped_early"
    rewrite_bag(demo_bag, started_late, lambda t, i, r: DROP if t == mask and i < 10 else None)
    rewrite_bag(demo_bag, stopped_early, lambda t, i, r: DROP if t == mask and i >= 5 else None)
    for bag, start, end, range_words in (
        (started_late, None, 0.5, "before --end"),
        (started_late, 0.1, 0.5, "between --start and --end"),
        (stopped_early, 0.4, None, "after --start"),
    ):
        args = replay_args(bag, tmp_path / "out", published_folder, start=start, end=end)
        with pytest.raises(InputError) as caught:
            replay.run(args)
        assert f"{mask} recorded no message {range_words} (" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_bag_holding_fewer_messages_than_its_index_says_so(tmp_path, demo_bag, caplog):
    """A damaged MCAP file can end rosbags' reading early without an error (bytes overwritten
    in a chunk: 1089 of 2000 messages read), and replay ended as a success on part of the bag;
    here the database holds fewer messages than metadata.yaml counts, the same to replay."""
    import sqlite3

    short = tmp_path / "short"
    shutil.copytree(demo_bag, short)
    (db,) = short.glob("*.db3")
    with sqlite3.connect(db) as con:
        con.execute("delete from messages where id > (select max(id) - 10 from messages)")
    con.close()
    with caplog.at_level(logging.WARNING, logger="amodal_ros"):
        summary = replay.run(replay_args(short, tmp_path / "out", None))
    read = summary["messages_read"]
    assert f"read {read} of the {read + 10} messages the index of {short} counts" in caplog.text


def test_more_bad_arguments_are_refused_before_the_models_load(tmp_path, demo_bag):
    """A negative --start, an unknown storage (replay-many and scripts call `run` without the
    parser's choices), one topic given for two inputs, and --overwrite of a recording are each
    refused, naming the argument, before a checkpoint is loaded (this one does not exist):
    refused only after the models loaded or the bag was replayed, a long run was lost."""
    never = tmp_path / "never_loaded"
    for changes, said in (
        ({"start": -1.0}, "start must be >= 0 s, got -1.0"),
        ({"storage": "zip"}, r"storage must be one of \('sqlite3', 'mcap'\), got 'zip'"),
        ({"mask_topic": topics.RGB_TOPIC}, "input topics must differ"),
    ):
        with pytest.raises(ValueError, match=said):
            replay.run(replay_args(demo_bag, tmp_path / "out", never, **changes))
    recording = tmp_path / "rec"
    write_demo_bag(recording, frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    with pytest.raises(InputError, match=f"rec is a bag without {RESULTS_MARKER}"):
        replay.run(replay_args(demo_bag, recording, never, overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_the_printed_summary_gives_each_count_of_a_bag_with_bad_messages(
    tmp_path, demo_bag, published_folder, capsys
):
    """The lines printed at the end are what a user reads of a replay (a log keeps them): the
    storage written and each count in them are the summary's own, the topics that lost frames
    are named with how many, and the throughput is per second of the replay's time (input and
    sampled frames). With --publish-frames latest, fewer results than sampled frames."""
    bad = tmp_path / "bad"
    rewrite_bag(demo_bag, bad, _corrupt)  # a truncated RGB image and an undecodable mask
    out = tmp_path / "out"
    args = replay_args(bad, out, published_folder, storage="mcap", publish_frames="latest")
    summary = replay.run(args)
    printed = capsys.readouterr().out
    sampled, windows, n = summary["frames_sampled"], summary["windows"], summary["results_written"]
    assert n == expected_results(sampled, WINDOW, STRIDE, "latest") < sampled
    model = summary["windows_model"]
    assert 0 < model < windows
    assert summary["storage"] == "mcap" and f"replayed {bad} -> {out} (mcap) in " in printed
    assert (
        f"  messages read {4 * FRAMES}; frames synchronised {FRAMES - 1}, sampled {sampled}; "
        f"windows {windows} ({model} through the model, 0 failed); results written {n}"
    ) in printed
    assert (
        f"  skipped: deserialize 1, convert 1; unmatched: {topics.RGB_TOPIC} 1, "
        f"{topics.DEPTH_TOPIC} 1; repeated stamps 0 (" in printed
    )
    seconds = summary["seconds"]
    assert summary["frames_per_s"] == pytest.approx((FRAMES - 1) / seconds, rel=0.05)
    assert summary["sampled_frames_per_s"] == pytest.approx(sampled / seconds, rel=0.05)
    rates = f"{summary['frames_per_s']:.2f} input frames/s, "
    assert f"  throughput: {rates}{summary['sampled_frames_per_s']:.2f} sampled" in printed
    assert f"  written: {topics.OBJECTS_TOPIC} {n}, " in printed


def test_the_printed_summary_of_a_sound_bag_says_no_topic_lost_a_frame(replayed):
    """No message skipped or unmatched is said as 'none', not as a list of every reason or
    topic with 0 (which reads as if each had lost some)."""
    printed = replay.format_summary(replayed[1])
    assert "  skipped: none; unmatched: none; repeated stamps 0 (" in printed


def _gaps_a_repeated_stamp_and_a_smaller_image(topic: str, index: int, raw: bytes):
    """Frames 4-13 and 18-27 lost (two gaps longer than a window), frame 15 stamped as frame
    14 (a publisher that sent one image twice), and frames from 32 on at half the size (a
    camera whose resolution changed), CameraInfo with them."""
    if 4 <= index < 14 or 18 <= index < 28:
        return DROP
    store = amodal_typestore()
    msgtype = CAMERA_INFO if topic == topics.CAMERA_INFO_TOPIC else IMAGE
    if index == 15:
        msg = store.deserialize_cdr(raw, msgtype)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(
            START_NS + round(14e9 / FPS), 10**9
        )
        return msgtype, bytes(store.serialize_cdr(msg, msgtype))
    if index < 32:
        return None
    if topic == topics.CAMERA_INFO_TOPIC:
        info = store.deserialize_cdr(raw, CAMERA_INFO)
        info.height, info.width = info.height // 2, info.width // 2
        info.k = info.k / 2
        info.k[8] = 1.0
        return CAMERA_INFO, bytes(store.serialize_cdr(info, CAMERA_INFO))
    msg = store.deserialize_cdr(raw, IMAGE)
    rows = np.asarray(msg.data).reshape(msg.height, msg.step)
    msg.height, msg.width, msg.step = msg.height // 2, msg.width // 2, msg.step // 2
    msg.data = np.ascontiguousarray(rows[: msg.height, : msg.step]).reshape(-1)
    return IMAGE, bytes(store.serialize_cdr(msg, IMAGE))


def test_restarts_and_repeated_stamps_are_counted_each_by_its_cause(
    tmp_path, published_folder, capsys
):
    """Why the window started over is a count per cause, in the summary and its printed line:
    two camera dropouts are two gaps, a resolution change one size change, no stamp went
    back (a user tells a dropout from a bag loop or a camera reconfigured by these); a frame
    that repeats a stamp is counted and printed too."""
    src, bag = tmp_path / "src", tmp_path / "gaps"
    write_demo_bag(src, frames=36, fps=FPS, height=HEIGHT, width=WIDTH)
    rewrite_bag(src, bag, _gaps_a_repeated_stamp_and_a_smaller_image)
    summary = replay.run(replay_args(bag, tmp_path / "out", published_folder))
    assert summary["stream_restarts"] == {"gap": 2, "stamp_back": 0, "size": 1}
    assert summary["repeated_stamps"] == 1
    printed = capsys.readouterr().out
    assert "; repeated stamps 1 (a publisher" in printed
    assert (
        "window started over: 2 after gaps longer than a window, 0 where a stamp went back, "
        "1 where the image size changed"
    ) in printed


def test_copy_inputs_copies_each_input_message_once_and_start_0_is_the_whole_bag(
    tmp_path, demo_bag, published_folder, replayed
):
    """--copy-inputs: every input topic, CameraInfo included, exactly as recorded, each
    message once: without --start (no CameraInfo is looked up before it) and with --start 0,
    the bag's first message, where a CameraInfo is logged at the start itself: that one is
    read in the range, not also as the one before it. --start 0 gives the same results as no
    --start."""
    source = read_bag(demo_bag)
    inputs = (topics.RGB_TOPIC, topics.DEPTH_TOPIC, topics.MASK_TOPIC, topics.CAMERA_INFO_TOPIC)
    results = [m for m in read_bag(replayed[0]) if m[0] not in inputs]
    for start in (None, 0.0):
        out = tmp_path / f"copied_{start}"
        replay.run(replay_args(demo_bag, out, published_folder, copy_inputs=True, start=start))
        written = read_bag(out)
        for topic in inputs:
            assert [m for m in written if m[0] == topic] == [m for m in source if m[0] == topic]
        assert [m for m in written if m[0] not in inputs] == results


def test_a_camera_info_topic_not_in_the_bag_or_none_given_still_replays(
    tmp_path, demo_bag, published_folder, caplog
):
    """--camera-info-topic is optional: one the bag does not hold is said once and the
    replay goes on without /amodal/camera_info (extents EXTENT_NO_CAMERA_INFO); '' (none)
    says nothing and writes none."""
    for name, said in (("/camera/nope", "camera info topic /camera/nope is not in"), ("", "")):
        out = tmp_path / f"out{len(name)}"
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="amodal_ros.replay"):
            summary = replay.run(
                replay_args(demo_bag, out, published_folder, camera_info_topic=name)
            )
        assert summary["results_written"] == SAMPLED
        assert topics.CAMERA_INFO_OUT_TOPIC not in summary["messages_written"]
        objects = [o for _, m in read_messages(out, topics.OBJECTS_TOPIC) for o in m.objects]
        reasons = {o.extent_reason for o in objects}  # no box: no mask, or no intrinsics
        assert reasons == {objects[0].EXTENT_NO_AMODAL, objects[0].EXTENT_NO_CAMERA_INFO}
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings == (
            [f"{said} {demo_bag}: no {topics.CAMERA_INFO_OUT_TOPIC} output"] if said else []
        ), warnings


def test_an_empty_replay_names_the_range_read_and_only_that(tmp_path, demo_bag, published_folder):
    """A mask topic with no message in a whole bag: the error says it recorded none, not
    'before --end' (a range the user never gave sends them after the wrong cause); a range
    between two frames (--start 0.01 --end 0.02) holds no message of any input topic: said
    so, not blamed on the segmenter."""
    no_masks = tmp_path / "no_masks"
    rewrite_bag(demo_bag, no_masks, lambda t, i, raw: DROP if t == topics.MASK_TOPIC else None)
    with pytest.raises(InputError) as caught:
        replay.run(replay_args(no_masks, tmp_path / "out", published_folder))
    said = f"{topics.MASK_TOPIC} recorded no message ({3 * FRAMES} messages read on the other"
    assert said in str(caught.value)
    between = replay_args(demo_bag, tmp_path / "out", published_folder, start=0.01, end=0.02)
    with pytest.raises(InputError) as caught:
        replay.run(between)
    assert "no message of the input topics between --start and --end; no output" in str(
        caught.value
    )
    assert not (tmp_path / "out").exists()


def test_videos_overwritten_leave_no_earlier_copy_beside_them(
    tmp_path, demo_bag, published_folder
):
    """--overwrite over an earlier run's videos: once the replay succeeds, the earlier ones
    set aside meanwhile are gone (a hidden copy of every earlier video left beside each
    re-run filled the disk)."""
    for name in ("ov.mp4", "ov.gif"):
        (tmp_path / name).write_bytes(b"an earlier run's")
    args = replay_args(
        demo_bag, tmp_path / "out", published_folder, video=tmp_path / "ov", overwrite=True
    )
    replay.run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ov.gif", "ov.mp4"]
    assert (tmp_path / "ov.gif").read_bytes()[:3] == b"GIF"


def test_a_bag_no_frame_of_which_works_is_named_by_its_most_common_failure(
    tmp_path, demo_bag, published_folder
):
    """Frames failing two ways (3 with masks of half the size, 11 with a YUV RGB image): the
    one error says the way most frames failed, with its count; the 3 masks first recorded
    were not the bag's problem."""
    both = tmp_path / "both"
    small_masks = _frames(topics.MASK_TOPIC, _half_size_masks, range(3))
    yuv = _frames(topics.RGB_TOPIC, _yuv, range(3, FRAMES))
    rewrite_bag(demo_bag, both, lambda t, i, raw: small_masks(t, i, raw) or yuv(t, i, raw))
    with pytest.raises(InputError) as caught:
        replay.run(replay_args(both, tmp_path / "out", published_folder, fail_after=0))
    said = f"could be used ({FRAMES - 3}x): {topics.RGB_TOPIC}: RGB image has encoding 'yuv422'"
    assert said in str(caught.value)


def test_the_embedded_models_note_is_said_again_after_the_summary(tmp_path, demo_bag, capsys):
    """The embedded model is trained on synthetic scenes only: its note is printed before the
    replay and again as the last lines, after the summary, where a user reading the end of
    the output sees it."""
    replay.run(replay_args(demo_bag, tmp_path / "emb", None))
    printed = capsys.readouterr().out.strip()
    note = EMBEDDED_NOTE.strip()
    assert printed.startswith(note) and printed.endswith(note)
    assert printed.count(note) == 2 and "  written: " in printed
