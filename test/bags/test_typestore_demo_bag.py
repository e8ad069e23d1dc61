"""The amodal_ros types registered from the .msg files, and the synthetic demo bag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from bag_helpers import FPS, read_messages  # noqa: E402

from amodal_ros.bags import topics, typestore  # noqa: E402
from amodal_ros.bags.demo_bag import START_NS, pinhole_k, write_demo_bag  # noqa: E402
from amodal_ros.bags.typestore import AMODAL_OBJECT_ARRAY, amodal_typestore  # noqa: E402
from amodal_ros.cli.main import main  # noqa: E402
from amodal_ros.core.errors import InputError  # noqa: E402
from amodal_ros.data.scenes import make_scene, split_seeds  # noqa: E402
from amodal_ros.interface.convert import depth_from_image, labels_from_image, rgb_from_image  # noqa: E402

REPO_MSG = Path(__file__).resolve().parents[2] / "msg"


def test_typestore_round_trips_an_amodal_object_array():
    store = amodal_typestore(REPO_MSG)
    t = store.types
    obj_cls = t["amodal_ros/msg/AmodalObject"]
    assert obj_cls.REASON_DEADLINE_MISSED == 3  # constants come from the .msg text
    empty = t["sensor_msgs/msg/Image"](
        header=t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="cam"
        ),
        height=0,
        width=0,
        encoding="mono8",
        is_bigendian=0,
        step=0,
        data=np.zeros(0, np.uint8),
    )
    obj = obj_cls(
        object_id=7,
        modal_mask=empty,
        amodal_mask=empty,
        completion=empty,
        occlusion_ratio=0.25,
        mean_uncertainty=0.0,
        uncertainty=empty,
        bbox_x=1,
        bbox_y=2,
        bbox_width=3,
        bbox_height=4,
        truncated=True,
        amodal_valid=True,
        reason=0,
        occluder_ids=np.array([3], np.uint32),
        occluder_overlap_pixels=np.array([12], np.uint32),
        occluder_depth_order=np.array([1], np.int8),
        extent_valid=True,
        extent_reason=obj_cls.EXTENT_OK,
        extent_pose=t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=0.1, y=-0.2, z=1.5),
            orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        ),
        extent_size=t["geometry_msgs/msg/Vector3"](x=0.3, y=0.2, z=0.05),
        extent_hidden_share=0.5,
    )
    array = t[AMODAL_OBJECT_ARRAY](
        header=empty.header,
        window_first_stamp=empty.header.stamp,
        window_last_stamp=empty.header.stamp,
        window_frames=25,
        frames_missing=0,
        latency=0.0,
        objects=[obj],
    )
    back = store.deserialize_cdr(
        store.serialize_cdr(array, AMODAL_OBJECT_ARRAY), AMODAL_OBJECT_ARRAY
    )
    assert back.objects[0].object_id == 7 and back.objects[0].occluder_depth_order.tolist() == [1]
    assert back.header.frame_id == "cam" and back.window_frames == 25
    assert back.objects[0].extent_pose.position.z == 1.5 and back.objects[0].extent_size.x == 0.3
    assert back.objects[0].truncated is True


def test_type_hash_matches_rosidl_when_built():
    # rosidl writes the type hash next to the installed .msg; rosbags must compute the same one,
    # or ROS 2 tools would see a different type in our bags.
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        generated = Path(prefix) / "share" / "amodal_ros" / "msg" / "AmodalObjectArray.json"
        if generated.is_file():
            break
    else:
        pytest.skip("amodal_ros is not built with colcon (no rosidl type hash to compare)")
    hashes = json.loads(generated.read_text())["type_hashes"]
    expected = {h["type_name"]: h["hash_string"] for h in hashes}[AMODAL_OBJECT_ARRAY]
    assert amodal_typestore().hash_rihs01(AMODAL_OBJECT_ARRAY) == expected


def test_msg_dir_is_found_and_a_missing_one_names_where_it_looked(monkeypatch):
    assert (typestore.find_msg_dir() / "AmodalObject.msg").is_file()
    monkeypatch.setattr(typestore, "MSG_NAMES", ("NoSuchMessage",))
    with pytest.raises(FileNotFoundError, match="looked in: .*msg") as err:
        typestore.find_msg_dir()
    assert str(REPO_MSG) in str(err.value)


def test_a_pip_install_finds_the_msg_files_where_setup_py_installs_them(monkeypatch, tmp_path):
    import sys

    # setup.py's data_files put them in PREFIX/share/amodal_ros/msg; a wheel has no msg/ beside
    # the package and no AMENT_PREFIX_PATH (Ray workers with a pip install, for one)
    setup_py = (REPO_MSG.parent / "setup.py").read_text()
    assert '("share/amodal_ros/msg", ["msg/AmodalObject.msg", "msg/AmodalObjectArray.msg"])' in (
        setup_py
    )
    share = tmp_path / "share" / "amodal_ros" / "msg"
    share.mkdir(parents=True)
    for name in typestore.MSG_NAMES:
        (share / f"{name}.msg").write_text((REPO_MSG / f"{name}.msg").read_text())
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    assert share in typestore.msg_dir_candidates()
    # pip install --user / --prefix, Debian's pip into /usr/local: the prefix is the one the
    # package lies under, not sys.prefix
    import amodal_ros

    package = tmp_path / "lib" / "python3.11" / "site-packages" / "amodal_ros" / "__init__.py"
    package.parent.mkdir(parents=True)
    package.touch()
    monkeypatch.setattr(amodal_ros, "__file__", str(package))
    monkeypatch.setattr(sys, "prefix", "/usr")
    assert typestore.find_msg_dir() == share


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_demo_bag_topics_counts_encodings_and_stamps(tmp_path, storage):
    frames, height, width = 5, 40, 72
    out = tmp_path / "demo"
    summary = write_demo_bag(
        out, frames=frames, fps=FPS, height=height, width=width, storage=storage
    )
    assert summary["topics"] == {
        t: frames
        for t in (
            topics.RGB_TOPIC,
            topics.DEPTH_TOPIC,
            topics.MASK_TOPIC,
            topics.CAMERA_INFO_TOPIC,
        )
    }
    assert (out / f"demo.{'db3' if storage == 'sqlite3' else 'mcap'}").is_file()
    assert not list(tmp_path.glob(".demo.partial-*"))
    scene = split_seeds("test", 1)[0]  # a held-out scene
    clip = make_scene(scene, num_frames=frames, height=height, width=width)
    stamps = [START_NS + round(i * 1e9 / FPS) for i in range(frames)]

    def header_ns(msg):
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    rgb = read_messages(out, topics.RGB_TOPIC)
    depth = read_messages(out, topics.DEPTH_TOPIC)
    masks = read_messages(out, topics.MASK_TOPIC)
    infos = read_messages(out, topics.CAMERA_INFO_TOPIC)
    for name, msgs in (("rgb", rgb), ("depth", depth), ("masks", masks), ("info", infos)):
        assert [t for t, _ in msgs] == stamps, name  # log time = header stamp
        assert [header_ns(m) for _, m in msgs] == stamps, name
        assert {m.header.frame_id for _, m in msgs} == {topics.FRAME_ID}, name
    assert {m.encoding for _, m in rgb} == {"rgb8"}
    assert {m.encoding for _, m in depth} == {"16UC1"}
    assert {m.encoding for _, m in masks} == {"mono16"}
    for i in range(frames):
        np.testing.assert_array_equal(rgb_from_image(rgb[i][1]), clip.rgb[i])
        np.testing.assert_array_equal(labels_from_image(masks[i][1]), clip.labels[i])
        mm, encoding = depth_from_image(depth[i][1])
        assert encoding == "16UC1"
        np.testing.assert_allclose(mm / 1000.0, clip.depth[i], atol=5e-4)
    info = infos[0][1]
    assert (info.width, info.height, info.distortion_model) == (width, height, "plumb_bob")
    np.testing.assert_allclose(info.k, pinhole_k(width, height))
    fx, cx, cy = info.k[0], info.k[2], info.k[5]
    assert 0.5 * width < fx < 1.5 * width and cx == width / 2 and cy == height / 2
    assert info.p[0] == fx and info.p[3] == 0.0 and list(info.r) == list(np.eye(3).ravel())


def test_demo_bag_command_and_existing_output(tmp_path, capsys):
    out = tmp_path / "bag"
    argv = ["demo-bag", str(out), "--frames", "3", "--image-height", "32", "--image-width", "48"]
    assert main(argv) == 0
    assert "3 frames at 15 fps" in capsys.readouterr().out
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        write_demo_bag(out, frames=2)
    assert main(["demo-bag", str(out), "--frames", "2", "--overwrite"]) == 0
    assert len(read_messages(out, topics.RGB_TOPIC)) == 2
    assert not list(tmp_path.glob(".bag.partial-*"))


BLOCKED_TORCH_DEMO_BAG = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'diffusers', 'transformers', 'rclpy'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from amodal_ros.bags import replay  # importable without torch; running it needs the model
from amodal_ros.cli.main import main
size = ['--image-height', '32', '--image-width', '48']
assert main(['demo-bag', sys.argv[1], '--frames', '2', *size]) == 0
assert 'torch' not in sys.modules and 'rclpy' not in sys.modules
"""


def test_demo_bag_needs_no_torch_or_rclpy(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "bag"
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_TORCH_DEMO_BAG, str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (out / "metadata.yaml").is_file()


def test_a_bag_that_cannot_be_read_is_named_with_what_to_do(tmp_path):
    """A folder of bags, an MCAP without metadata.yaml, an empty folder and a topic recorded
    without its type's definition (rosbags raised a bare KeyError: '') each say what to do."""
    import shutil
    import sqlite3

    from amodal_ros.bags.reader import InputBag

    write_demo_bag(tmp_path / "runs" / "run1", frames=2, height=16, width=16)
    write_demo_bag(tmp_path / "runs" / "run2", frames=2, height=16, width=16, storage="mcap")
    with pytest.raises(InputError, match=r"it holds bags: run1, run2; .*replay-many"):
        InputBag(tmp_path / "runs")
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tmp_path / "runs" / "run2" / "run2.mcap", lone / "rec_0.mcap")
    with pytest.raises(InputError, match=r"its MCAP file opens on its own: pass .*rec_0.mcap"):
        InputBag(lone)
    shutil.copy(lone / "rec_0.mcap", lone / "rec_1.mcap")  # a split recording: no lone file
    with pytest.raises(InputError, match=r"before it wrote metadata.yaml\? `ros2 bag reindex"):
        InputBag(lone)
    (lone / "rec_1.mcap").unlink()
    many = tmp_path / "many"
    for k in range(7):  # bags named, at most five
        (many / f"run{k}").mkdir(parents=True)
        (many / f"run{k}" / "metadata.yaml").write_text("")
    with pytest.raises(InputError, match=r"it holds bags: run0, run1, run2, run3, run4, \.\.\.;"):
        InputBag(many)
    with InputBag(lone / "rec_0.mcap") as bag:
        assert bag.has(topics.RGB_TOPIC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no rosbag2 here"):
        InputBag(tmp_path / "empty")
    # a file that is no bag says what replay takes; `mcap recover` only for an .mcap
    (tmp_path / "notes.txt").write_text("junk")
    (tmp_path / "old.bag").write_text("junk")
    for junk, why in (("notes.txt", "notes.txt is no bag"), ("old.bag", "old.bag does not begin")):
        with pytest.raises(InputError, match=r"replay takes a rosbag2 folder") as refused:
            InputBag(tmp_path / junk)
        assert why in str(refused.value) and "mcap recover" not in str(refused.value)

    run1 = tmp_path / "runs" / "run1"
    with sqlite3.connect(run1 / "run1.db3") as db:  # as rosbag2 records a type it cannot find
        db.execute(
            "INSERT INTO topics (name, type, serialization_format, offered_qos_profiles, "
            "type_description_hash) VALUES ('/robot/status', 'my_msgs/msg/Status', 'cdr', '', '')"
        )
        db.execute(
            "INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, "
            "type_description_hash) VALUES ('my_msgs/msg/Status', '', '', '')"
        )
    with pytest.raises(
        InputError,
        match=r"run1: rosbags cannot read its message definitions \(KeyError '':.*bag convert",
    ):
        InputBag(run1)


def test_an_open_bag_names_its_topics_range_and_recording(tmp_path):
    """What replay asks a bag: each role's topic (the option to name it, the type it must
    have), the log-time range of --start / --end at its edges, the messages in a range, and
    what tells the recording apart."""
    from amodal_ros.bags.reader import MASKS, RGB, InputBag

    write_demo_bag(tmp_path / "bag", frames=4, height=16, width=16)
    with InputBag(tmp_path / "bag") as bag:
        first, last = bag.reader.start_time, bag.reader.end_time
        assert bag.recording == {"start_ns": first, "end_ns": last, "messages": 16}
        with pytest.raises(InputError, match="masks topic /nope is not in .* with --mask-topic"):
            bag.connections(MASKS, "/nope")
        with pytest.raises(InputError, match="has type sensor_msgs/msg/CameraInfo; expected"):
            bag.connections(RGB, topics.CAMERA_INFO_TOPIC)
        span = (last - first) / 1e9
        assert bag.time_range(span, None) == (last, None)  # the bag's end is not past it
        with pytest.raises(InputError, match="is past the end"):
            bag.time_range(span + 1e-9, None)
        assert bag.time_range(None, 10**9) == (None, last + 1)  # held to the bag's end
        conns = bag.connections(RGB, topics.RGB_TOPIC)
        assert bag.estimate_count(conns, None, None) == 4
        assert bag.estimate_count(conns, None, last + 1) == 4
        assert bag.estimate_count(conns, first + (last - first) // 2, None) == 2
        assert len(list(bag.messages(conns, *bag.time_range(None, 10**9)))) == 4
    open_files = len(os.listdir("/proc/self/fd"))  # replay-many opens one bag after another
    for _ in range(3):
        with InputBag(tmp_path / "bag") as bag:
            assert len(os.listdir("/proc/self/fd")) > open_files
    assert len(os.listdir("/proc/self/fd")) == open_files


def test_a_bag_recorded_inside_another_bags_folder_opens(tmp_path):
    """A bag recorded into another bag's folder (`ros2 bag record -o run/extra`) is a bag of
    its own, not a file of that bag: it opens (only a file there is one of the bag's)."""
    from amodal_ros.bags.reader import InputBag

    write_demo_bag(tmp_path / "run", frames=2, height=16, width=16)
    write_demo_bag(tmp_path / "run" / "extra", frames=3, height=16, width=16)
    with InputBag(tmp_path / "run" / "extra") as bag:
        assert bag.recording["messages"] == 12
    with pytest.raises(InputError, match="is a file of the rosbag2 bag .*run: name the folder"):
        InputBag(tmp_path / "run" / "run.db3")


def test_messages_copied_from_a_rosbag2_keep_its_definition_of_their_type(tmp_path):
    """A rosbag2 recorded with its own definition of a standard type (a vendor's Image with
    one more field): its messages are copied as recorded, so the definition that goes into
    the output bag beside them is the input bag's; ours did not read them (size mismatch)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from amodal_ros.bags.reader import RGB, InputBag

    ours, vendor = amodal_typestore(), get_typestore(Stores.EMPTY)
    image, header_type = typestore.IMAGE, "std_msgs/msg/Header"
    fields = "uint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step"
    vendor.register(
        {name: ours.fielddefs[name] for name in ("builtin_interfaces/msg/Time", header_type)}
    )
    vendor.register(
        get_types_from_msg(f"std_msgs/Header header\n{fields}\nuint8[] data\nstring serial", image)
    )
    t = vendor.types
    header = t[header_type](stamp=t["builtin_interfaces/msg/Time"](1, 0), frame_id="c")
    sent = t[image](header, 1, 2, "mono8", 0, 2, np.array([1, 2], np.uint8), "SN42")
    with Writer(tmp_path / "vendor", version=9) as writer:
        conn = writer.add_connection(topics.RGB_TOPIC, image, typestore=vendor)
        writer.write(conn, START_NS, vendor.serialize_cdr(sent, image))
    with InputBag(tmp_path / "vendor") as bag:
        conns = bag.connections(RGB, topics.RGB_TOPIC)
        ((conn, _, raw),) = bag.messages(conns, None, None)
        copied = bag.output_defs(conn.msgtype).deserialize_cdr(bytes(raw), image)
    assert copied.serial == "SN42" and list(copied.data) == [1, 2]


def test_a_full_disk_under_sqlite3_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import sqlite3

    from rosbags.rosbag2 import Writer

    real = Writer.write

    def full(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Writer, "write", full)
    assert main(["demo-bag", str(tmp_path / "bag"), "--frames", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"amodal-ros demo-bag: error: cannot write bag {tmp_path / 'bag'}: " + (
        "sqlite3: disk I/O error"
    )
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Writer, "write", real)


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """`timeout`, `docker stop`, Slurm: it died with 143, silently, its staging folder left."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "bag"
    # the console script users run (under `python -m` CPython itself exits by SIGINT, -2, in
    # about a quarter of such stops after main returned 143: its own unhandled-interrupt flag)
    command = str(Path(sys.executable).with_name("amodal-ros"))
    cmd = [command, "demo-bag", str(out), "--frames", "2000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".bag.partial-*")):  # it is writing the bag
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "amodal-ros demo-bag: terminated"
    assert list(tmp_path.iterdir()) == []
