"""The numpy-only core: imports without torch, config validation, geometry helpers."""

import numpy as np
import pytest
from conftest import run_without

from amodal_ros.core import InferenceConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.types import mask_bbox, occluders, occlusion_ratio

BLOCK_TORCH = """
import amodal_ros.core
from amodal_ros.core import InferenceConfig, ObjectTrack
from amodal_ros.depth import CameraDepth, normalize_window
# the message conversions and the stream logic are torch- and rclpy-free too
from amodal_ros.interface.convert import image_to_array, image_fields
from amodal_ros.interface.messages import ResultMessages, frame_from_messages
from amodal_ros.pipeline.processor import WindowProcessor
from amodal_ros.pipeline.stream import StreamFront
from amodal_ros.core.config import node_configs
from amodal_ros.bags.replay import ReplayArgs
from amodal_ros.cli.main import build_parser
build_parser()  # every command module, for `amodal-ros --help`
assert 'torch' not in sys.modules and 'rclpy' not in sys.modules
print('ok')
"""


def test_core_conversions_and_stream_import_without_torch_or_rclpy():
    blocked = ("torch", "diffusers", "transformers", "rclpy")
    assert run_without(BLOCK_TORCH, blocked).strip() == "ok"


@pytest.mark.parametrize(
    "field, value",
    [
        ("height", 100),
        ("num_steps", 0),
        ("conditioning_mode", "bogus"),
        ("dtype", "int8"),
        ("max_batch_objects", -1),
        ("min_guidance", -1.0),
        ("rgb_sum_threshold", 800),
        ("min_guidance", float("nan")),  # nan compares false with every bound
        ("max_guidance", "nan"),  # as YAML text
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        InferenceConfig(**{field: value})


def test_unquoted_on_and_off_in_yaml_mean_on_and_off():
    """YAML (and ROS's parameter files) read `mirror_ensemble: off` as false: the documented
    line failed as 'must be str'."""
    import yaml

    from amodal_ros.core.config import node_configs

    values = yaml.safe_load("mirror_ensemble: off\nreverse_ensemble: on\n")
    inference = node_configs(values)[0]
    assert (inference.mirror_ensemble, inference.reverse_ensemble) == ("off", "on")
    with pytest.raises(ValueError, match="publish_when_idle must be bool"):
        node_configs({"publish_when_idle": "off"})  # only on/off texts take a bool
    with pytest.raises(ValueError, match="conditioning_mode must be str"):
        InferenceConfig(conditioning_mode=False)


def test_config_defaults_are_the_published_values():
    cfg = InferenceConfig().for_model({})  # a checkpoint without our metadata: published
    assert (cfg.height, cfg.width, cfg.num_frames, cfg.num_steps) == (256, 512, 25, 25)
    assert cfg.conditioning_mode == "reference" and cfg.fps_id == 7  # the authors' path
    assert (cfg.min_guidance, cfg.max_guidance, cfg.seed, cfg.decode_chunk_size) == (
        1.5,
        1.5,
        23,
        8,
    )
    assert cfg.replace(conditioning_mode="consistent").fps_id == 8


def test_fields_left_to_the_model_take_its_defaults_and_set_fields_win():
    trained_here = {"height": 32, "width": 64, "conditioning_mode": "consistent"}
    assert not InferenceConfig().resolved
    cfg = InferenceConfig(num_steps=4).for_model(trained_here)
    assert (cfg.height, cfg.width, cfg.conditioning_mode, cfg.num_steps) == (
        32,
        64,
        "consistent",
        4,
    )
    assert cfg.resolved and cfg.for_model({}) == cfg  # resolving twice changes nothing
    mine = InferenceConfig(height=64, conditioning_mode="reference").for_model(trained_here)
    assert (mine.height, mine.width, mine.conditioning_mode) == (64, 64, "reference")


def test_occlusion_ratio_bbox_and_occluders():
    modal = np.zeros((1, 6, 6), bool)
    amodal = np.zeros((1, 6, 6), bool)
    amodal[0, 1:5, 1:5] = True  # 16 px
    modal[0, 1:5, 1:3] = True  # 8 px visible
    labels = np.zeros((6, 6), np.int32)
    labels[1:5, 3] = 9  # 4 px of the hidden part covered by object 9
    labels[1:3, 4] = 4  # 2 px by object 4
    assert occlusion_ratio(modal, amodal)[0] == pytest.approx(0.5)
    assert mask_bbox(amodal[0]).tolist() == [1, 1, 4, 4]
    assert mask_bbox(np.zeros((3, 3), bool)).tolist() == [0, 0, 0, 0]
    assert list(occluders(labels, modal[0], amodal[0]).items()) == [(9, 4), (4, 2)]  # largest 1st
    assert occlusion_ratio(modal, np.zeros_like(amodal))[0] == 0.0


def test_only_an_earlier_output_is_replaceable(tmp_path):
    from amodal_ros.core.staging import check_replaceable

    check_replaceable(tmp_path / "absent", "metadata.yaml", "bag")  # nothing to replace
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {}")
    check_replaceable(bag, "metadata.yaml", "bag")
    for other in (tmp_path, tmp_path / "bag" / "metadata.yaml"):  # a folder of files, a file
        with pytest.raises(InputError, match="replaces an earlier bag, and .* is not one"):
            check_replaceable(other, "metadata.yaml", "bag")
    # a summary.json is written by several commands: only the named one's is replaceable
    (bag / "summary.json").write_text('{"command": "infer"}')
    check_replaceable(bag, "summary.json", "infer output", command="infer")
    (bag / "summary.json").write_text('{"bag": "a demo replay summary"}')
    with pytest.raises(InputError, match="no summary.json written by `amodal-ros infer`"):
        check_replaceable(bag, "summary.json", "infer output", command="infer")


def test_staged_path_replaces_only_on_success(tmp_path):
    from amodal_ros.core.staging import staged_path

    out = tmp_path / "result"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_path(out) as stage:
        stage.mkdir()
        (stage / "half.txt").write_text("half")
        raise RuntimeError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    # a file never replaces a folder (`bench --out results/` deleted the folder)
    with (
        pytest.raises(InputError, match="is a folder and a file was written"),
        staged_path(out) as stage,
    ):
        stage.write_text("a file")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    (out / "old.txt").unlink()
    out.rmdir()
    with staged_path(out) as stage:
        stage.write_text("a file this time")
    assert out.read_text() == "a file this time"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
    with pytest.raises(FileNotFoundError, match="it is kept"), staged_path(out):
        pass  # nothing written: the old output stays
    assert out.read_text() == "a file this time"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]


def test_a_file_is_replaced_in_one_step(tmp_path, monkeypatch):
    """A file was set aside, then the new one renamed in: killed between the two, no file
    was left (results.json of an eval)."""
    from pathlib import Path

    from amodal_ros.core.staging import staged_path

    out = tmp_path / "results.json"
    out.write_text("old")
    real = Path.rename

    def no_setting_aside(self, target):
        if self == out:
            raise KeyboardInterrupt  # killed right after the old file would have gone
        return real(self, target)

    monkeypatch.setattr(Path, "rename", no_setting_aside)
    with staged_path(out) as stage:
        stage.write_text("new")
    assert out.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_the_next_writer_removes_what_a_killed_one_left_half_written(tmp_path):
    """SIGKILL (out of memory, a power cut) skips a writer's cleanup: its staging folder
    stayed beside the output for ever, gigabytes for a replayed bag. The next writer of that
    output on this machine removes it; a live writer's, another output's and another
    machine's stay."""
    import socket
    import subprocess
    import sys

    from amodal_ros.core.staging import HOST, remove_dead_partials, staged_path

    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its PID names no running process now
    writing = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".out.partial-{HOST}-{killed.pid}"
        live = tmp_path / f".out.partial-{HOST}-{writing.pid}"
        other_output = tmp_path / f".other.partial-{HOST}-{killed.pid}"
        elsewhere = tmp_path / f".out.partial-another-machine-{killed.pid}"
        # a container on this host (--network host: the same host name), whose process ids
        # are not this one's: its live writer's pid may name no process here
        container = tmp_path / f".out.partial-{socket.gethostname()}~1-{killed.pid}"
        for leftover in (dead, live, other_output, elsewhere, container):
            (leftover / "out").mkdir(parents=True)
        with staged_path(tmp_path / "out") as stage:
            stage.write_text("done")
        names = {p.name for p in tmp_path.iterdir()}
        assert names == {"out", live.name, other_output.name, elsewhere.name, container.name}
        assert HOST.startswith(f"{socket.gethostname()}~")  # Linux: its PID namespace
        # a video is staged with its container's extension (OpenCV picks the format by it)
        video = tmp_path / f".v.mp4.partial-{HOST}-{killed.pid}.mp4"
        video.write_bytes(b"half")
        assert remove_dead_partials(tmp_path, "v.mp4") == [video] and not video.exists()
        # and an earlier run's video it had set aside until its bag was written
        aside = tmp_path / f".v.mp4.partial-{HOST}-{killed.pid}.earlier.mp4"
        aside.write_bytes(b"earlier")
        assert remove_dead_partials(tmp_path, "v.mp4") == [aside]
    finally:
        writing.kill()


def test_a_killed_workers_stages_are_removed_once_its_process_has_ended(tmp_path):
    """Ray answers that a killed worker died before its process ends, and a worker can stage
    a video in between (CI: `.run1.mp4.partial-vm-4504.mp4` outlived replay-many's Ctrl-C):
    the cleanup waits for a process of this machine to be gone; another machine's it cannot."""
    import subprocess
    import sys
    import threading
    import time

    from amodal_ros.core.staging import HOST, wait_until_gone

    ending = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    threading.Thread(target=ending.wait, daemon=True).start()  # reaped as Ray reaps workers
    started = time.monotonic()
    assert wait_until_gone(f"{HOST}-{ending.pid}", timeout=30)
    assert ending.poll() is not None and time.monotonic() - started >= 0.2
    hanging = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not wait_until_gone(f"{HOST}-{hanging.pid}", timeout=0.2)
    finally:
        hanging.kill()
    assert wait_until_gone(f"another-machine-{hanging.pid}", timeout=0.2)


def test_more_steps_than_a_student_takes_names_the_way_to_the_full_model():
    """`demo --steps 4` (preset realtime) was told to use --preset realtime or --steps 2."""
    with pytest.raises(ValueError, match="or --no-student \\(or --preset quality\\)"):
        InferenceConfig(preset="realtime").replace(num_steps=4)
    assert not InferenceConfig(preset="realtime").replace(num_steps=4, student=False).student


def test_turning_the_student_off_runs_the_full_models_steps_and_guidance():
    """`demo --no-student` over preset realtime ran the full stages at the student's 1 step
    and guidance 1.0; the values given still win."""
    full = InferenceConfig(preset="realtime").replace(student=False)
    assert (full.num_steps, full.min_guidance, full.preset) == (25, 1.5, "")
    mine = InferenceConfig(preset="realtime").replace(student=False, num_steps=4)
    assert (mine.num_steps, mine.max_guidance) == (4, 1.5)
    two = InferenceConfig(preset="realtime").replace(num_steps=2)  # still the student
    assert two.student and two.num_steps == 2


def test_a_preset_given_with_other_values_of_its_fields_is_refused():
    """`--preset fast --steps 10`, or `num_steps: 10` beside `preset: fast`, ran 4 steps."""
    from amodal_ros.core.config import node_configs

    match = "preset 'fast' sets num_steps to 4, but num_steps 10 was given too"
    with pytest.raises(ValueError, match=match):
        InferenceConfig().replace(preset="fast", num_steps=10)
    with pytest.raises(ValueError, match=match):
        node_configs({"preset": "fast", "num_steps": 10})
    assert InferenceConfig().replace(preset="fast", num_steps=4).num_steps == 4  # agrees
    assert node_configs({"preset": "fast", "num_steps": 25})[0].num_steps == 4  # the default
    assert InferenceConfig(preset="fast").replace(preset="balanced").num_steps == 8
