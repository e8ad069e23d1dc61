"""`amodal-ros replay` on damaged bags and out-of-range options (helper h5's fuzzing): each
must end in one line and exit code 2, never a traceback, and leave nothing under --out."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from bag_helpers import FPS, FRAMES, HEIGHT, WIDTH  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode  # noqa: E402

from amodal_ros.bags.demo_bag import write_demo_bag  # noqa: E402
from amodal_ros.bags.typestore import amodal_typestore  # noqa: E402
from amodal_ros.cli.main import main  # noqa: E402

pytestmark = pytest.mark.slow  # starts whole commands on real files

MAGIC = b"\x89MCAP0\r\n"


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    """A small demo bag of each storage."""
    root = tmp_path_factory.mktemp("damaged_src")
    made = {}
    for storage in ("sqlite3", "mcap"):
        made[storage] = root / f"demo_{storage}"
        write_demo_bag(
            made[storage], frames=FRAMES, fps=FPS, height=HEIGHT, width=WIDTH, storage=storage
        )
    return made


def replay_cli(bag: Path, out: Path, checkpoint: Path, *extra: str) -> int:
    """`amodal-ros replay` with the tiny model (quick where the model runs at all)."""
    tiny = ["--height", "32", "--width", "64", "--num-frames", "4", "--num-steps", "1"]
    stream = ["--frame-rate", "7.5", "--stride", "2", "--no-progress"]
    argv = ["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint)]
    return main([*argv, *tiny, *stream, *extra])


def one_line_error(capsys, out: Path) -> str:
    """The one stderr line of a refused replay; nothing left under --out or staged beside it."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("amodal-ros replay: error: "), err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.partial*"))
    return err[0]


def storage_file(bag: Path) -> Path:
    (file,) = [p for p in bag.iterdir() if p.name != "metadata.yaml"]
    return file


def first_chunk(data: bytes) -> int:
    """Offset of the first Chunk record (opcode 0x06) of an MCAP file."""
    at = len(MAGIC)
    while data[at] != 0x06:
        (length,) = struct.unpack_from("<Q", data, at + 1)
        at += 9 + length
    return at


def damage_mcap_header(data: bytes) -> bytes:
    """The Header record's length (the first field after the magic) read as 2**64 - 1."""
    return data[:9] + b"\xff" * 8 + data[17:]


def damage_mcap_chunk(data: bytes) -> bytes:
    """Inside the first chunk, the first record's length is 2**64 - 1, and the chunk's CRC 0
    (= not stored, as writers may leave it): only reading the messages finds the damage."""
    data = bytearray(data)
    chunk = first_chunk(data)
    body = chunk + 9  # message_start_time, message_end_time, uncompressed_size, crc, compression
    data[body + 24 : body + 28] = b"\0\0\0\0"
    (compression,) = struct.unpack_from("<I", data, body + 28)
    assert compression == 0, "the demo bag's chunks are uncompressed"
    records = body + 32 + 8  # after the empty compression string and the records' length
    data[records + 1 : records + 9] = b"\xff" * 8
    return bytes(data)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(MAGIC)], id="cut-after-the-magic"),
        pytest.param(damage_mcap_header, id="header-length"),
        pytest.param(damage_mcap_chunk, id="record-length-in-a-chunk"),
    ],
)
def test_a_damaged_mcap_file_is_one_line_not_a_traceback(
    tmp_path, bags, published_folder, capsys, damage
):
    """rosbags' MCAP reader raises TypeError, OverflowError, MemoryError or struct.error (not
    its ReaderError) on a file cut after its magic or a damaged record length; InputBag only
    turned ReaderError (opening) and rosbags/sqlite errors (reading) into one line, so
    replay died with a traceback and exit code 1, opening the bag or half-way through."""
    bag = shutil.copytree(bags["mcap"], tmp_path / "bag")
    mcap = storage_file(bag)
    mcap.write_bytes(damage(mcap.read_bytes()))
    out = tmp_path / "out"
    assert replay_cli(bag, out, published_folder) == 2
    err = one_line_error(capsys, out)
    assert err.startswith(f"amodal-ros replay: error: cannot read bag {bag}"), err


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_damaged_file_compressed_bag_is_one_line_not_a_traceback(
    tmp_path, bags, published_folder, capsys, storage
):
    """A rosbag2 compressed per file (`ros2 bag record --compression-mode file`) is
    decompressed by rosbags as it opens; a cut-short or damaged .zstd file raised EOFError or
    zstd's ZstdError there, which replay let through as a traceback (exit code 1)."""
    whole = tmp_path / "whole"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    store = amodal_typestore()
    writer = Writer(whole, version=9, storage_plugin=plugin)
    writer.set_compression(CompressionMode.FILE, CompressionFormat.ZSTD)
    with AnyReader([bags[storage]]) as reader, writer:
        conns = {
            c.id: writer.add_connection(c.topic, c.msgtype, typestore=store)
            for c in reader.connections
        }
        for conn, t, raw in reader.messages():
            writer.write(conns[conn.id], t, raw)
    for name, cut in {"half": 0.5, "empty": 0.0}.items():
        bag = shutil.copytree(whole, tmp_path / name)
        zstd = storage_file(bag)
        assert zstd.suffix == ".zstd"
        zstd.write_bytes(zstd.read_bytes()[: int(zstd.stat().st_size * cut)])
        out = tmp_path / f"out_{name}"
        assert replay_cli(bag, out, published_folder) == 2
        assert f"cannot read bag {bag}" in one_line_error(capsys, out)


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_a_start_or_end_past_the_range_of_times_is_refused_in_one_line(
    tmp_path, bags, published_folder, capsys, option
):
    """--end 1e300 (a finite float, so the finiteness check passed) made round(seconds * 1e9)
    an OverflowError (float infinity to integer) in InputBag.time_range: a traceback; --start
    1e300 too, before it could be said to be past the bag's end."""
    out = tmp_path / "out"
    assert replay_cli(bags["sqlite3"], out, published_folder, option, "1e300") == 2
    assert option in one_line_error(capsys, out)


def unparsable_yaml(bag: Path) -> None:
    (bag / "metadata.yaml").write_text("{{{: [\n")


def unparsable_definition(bag: Path) -> None:
    import sqlite3

    with sqlite3.connect(storage_file(bag)) as con:
        con.execute(
            "UPDATE message_definitions SET encoded_message_definition = 'uint8 ok\n%%% ::' "
            "WHERE topic_type = 'sensor_msgs/msg/CameraInfo'"
        )
    con.close()


@pytest.mark.parametrize("damage", [unparsable_yaml, unparsable_definition])
def test_metadata_and_message_definitions_that_do_not_parse_are_one_line(
    tmp_path, bags, published_folder, capsys, damage
):
    """rosbags' errors carry newlines: a metadata.yaml that does not parse gave PyYAML's
    five-line report, and a message definition that does not parse gave the whole definition,
    30 lines, after `error:`; the product's rule is one line per error."""
    bag = shutil.copytree(bags["sqlite3"], tmp_path / "bag")
    damage(bag)
    out = tmp_path / "out"
    assert replay_cli(bag, out, published_folder) == 2
    assert f"cannot read bag {bag}" in one_line_error(capsys, out)


def test_a_metadata_file_that_is_not_utf8_names_the_bag(tmp_path, bags, published_folder, capsys):
    """A metadata.yaml with a byte that is not UTF-8 (a damaged disk block) ended replay with
    `error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte`: exit code
    2, but naming neither the bag nor the file that could not be read."""
    bag = shutil.copytree(bags["mcap"], tmp_path / "bag")
    meta = bag / "metadata.yaml"
    meta.write_bytes(b"\xff" + meta.read_bytes())
    out = tmp_path / "out"
    assert replay_cli(bag, out, published_folder) == 2
    err = one_line_error(capsys, out)
    assert str(meta) in err or f"bag {bag}" in err, err


def test_metadata_whose_type_disagrees_with_the_storage_is_not_called_an_empty_topic(
    tmp_path, bags, published_folder, capsys
):
    """metadata.yaml lists the RGB topic as CompressedImage with its 14 messages while the
    storage file holds them as Image: rosbags yields none of them (it pairs connections by
    type), and replay said the topic 'recorded no message' and to 'record the segmenter's
    output with the camera's', though the bag's own index counts its messages."""
    bag = shutil.copytree(bags["sqlite3"], tmp_path / "bag")
    meta = bag / "metadata.yaml"
    text = meta.read_text()
    rgb = text.index("name: /camera/color/image_raw")
    typed = text.index("type: sensor_msgs/msg/Image", rgb)
    meta.write_text(
        text[:typed]
        + text[typed:].replace("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", 1)
    )
    out = tmp_path / "out"
    assert replay_cli(bag, out, published_folder) == 2
    err = one_line_error(capsys, out)
    assert "recorded no message" not in err and "metadata.yaml" in err, err


def test_an_out_under_a_file_is_named_as_such(tmp_path, bags, published_folder, capsys):
    """--out a_file/results: replay loaded the models, then failed creating the staging
    folder with `error: [Errno 17] File exists: '.../a_file'`, which names neither --out nor
    that the path is a file where a folder must be (check_args checks --out itself only)."""
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "results"
    assert replay_cli(bags["sqlite3"], out, published_folder) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "File exists" not in err[0], err


def test_a_pipe_named_like_a_bag_is_refused_not_read_forever(
    tmp_path, bags, published_folder, capsys
):
    """A FIFO named x.mcap (a stream redirected into a named pipe), alone or as a rosbag2
    folder's storage file: replay opened it and waited for a writer, forever."""
    lone = tmp_path / "x.mcap"
    os.mkfifo(lone)
    bag = shutil.copytree(bags["mcap"], tmp_path / "bag")
    storage = storage_file(bag)
    storage.unlink()
    os.mkfifo(storage)
    for path in (lone, bag):
        out = tmp_path / "out"
        assert replay_cli(path, out, published_folder) == 2
        err = one_line_error(capsys, out)
        assert "is not a regular file (a pipe, socket or device)" in err, err
