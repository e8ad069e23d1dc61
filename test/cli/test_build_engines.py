"""`amodal-ros build-engines`: what the node's parameter file needs is built once, then found."""

from __future__ import annotations

import pytest
import yaml

from amodal_ros.accel.backends import unavailable_reason
from amodal_ros.cli.main import main
from amodal_ros.models.architectures import build_depth_anything

ORT_REASON = unavailable_reason("onnxruntime", __import__("torch").device("cpu"))


@pytest.fixture
def params_file(tmp_path, published_folder):
    depth_dir = tmp_path / "depth"
    build_depth_anything("tiny").save_pretrained(str(depth_dir), safe_serialization=True)
    params = {
        "checkpoint": str(published_folder),
        "depth_model": str(depth_dir),
        "height": 32,
        "width": 64,
        "num_frames": 4,
        "engine_cache": str(tmp_path / "engines"),
    }
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump({"/**/amodal_node": {"ros__parameters": params}}))
    return path


@pytest.mark.skipif(ORT_REASON is not None, reason=f"onnxruntime: {ORT_REASON}")
def test_builds_once_then_finds_the_cached_artifacts(params_file, tmp_path, capsys):
    argv = ["build-engines", "--params", str(params_file), "--unet-backend", "onnxruntime"]
    argv += ["--depth-backend", "onnxruntime"]
    assert main(argv + ["--camera-size", "40x72"]) == 0
    first = capsys.readouterr().out
    engines = tmp_path / "engines"
    onnx = sorted(p.name for p in engines.iterdir() if not p.name.endswith(".json"))
    assert [n.split("-")[0] for n in onnx] == ["depth", "unet"]
    assert "stage-1 UNet: onnxruntime ->" in first and "depth model at 518x938" in first
    stamps = {p: p.stat().st_mtime_ns for p in engines.rglob("*")}
    assert main(argv + ["--camera-size", "40x72"]) == 0
    assert {p: p.stat().st_mtime_ns for p in engines.rglob("*")} == stamps  # nothing rebuilt
    assert main(argv + ["--camera-size", "480x640"]) == 0  # another camera: one more depth file
    assert len([p for p in engines.glob("depth-onnx-*") if p.is_dir()]) == 2


def test_depth_model_needs_the_camera_size(params_file, capsys):
    argv = ["build-engines", "--params", str(params_file), "--depth-backend", "onnxruntime"]
    assert main(argv) == 2
    assert "set its camera_size or pass --camera-size" in capsys.readouterr().err


def test_the_camera_size_defaults_to_the_files_and_the_flag_wins(params_file, capsys):
    """The node's camera_size (its warm-up size) is the size build-engines builds for."""
    data = yaml.safe_load(params_file.read_text())
    data["/**/amodal_node"]["ros__parameters"]["camera_size"] = "40x72"
    data["/**/amodal_node"]["ros__parameters"]["unet_backnd"] = "onnxruntime"  # a typo
    data["/**/amodal_node"]["ros__parameters"]["use_sim_time"] = True  # rclpy's own
    params_file.write_text(yaml.safe_dump(data))
    argv = ["build-engines", "--params", str(params_file), "--depth-backend", "eager"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "depth model at 518x938 (HxW): eager" in captured.out
    assert "unknown parameters, ignored: unet_backnd (did you mean unet_backend?)\n" in (
        captured.err
    )
    assert main(argv + ["--camera-size", "72x40"]) == 0
    assert "depth model at 938x518 (HxW): eager" in capsys.readouterr().out


@pytest.mark.parametrize("size", ["480by640", "0x-5", "480x"])
def test_a_camera_size_that_is_not_hxw_is_refused_before_any_model_loads(
    params_file, capsys, size
):
    argv = ["build-engines", "--params", str(params_file), "--camera-size", size]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"--camera-size must be HxW in pixels, e.g. 480x640, got {size!r}" in captured.err
    assert "loading the models" not in captured.out


@pytest.mark.skipif(ORT_REASON is not None, reason=f"onnxruntime: {ORT_REASON}")
def test_auto_falling_back_to_eager_is_a_failed_build(params_file, tmp_path, capsys):
    """The node's `auto` runs eager when its choice fails to build; the command whose one job
    is to build said "eager (nothing to build)" and exited 0, and the robot then tried the
    build at every start."""
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    values = yaml.safe_load(params_file.read_text())
    values["/**/amodal_node"]["ros__parameters"]["engine_cache"] = str(not_a_folder / "engines")
    params_file.write_text(yaml.safe_dump(values))  # the depth backend is auto, the default
    argv = ["build-engines", "--params", str(params_file), "--camera-size", "40x72"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "depth model at 518x938 (HxW): eager" in captured.out
    assert "depth model: auto chose onnxruntime, which failed (" in captured.err
    assert "the node would try again at every start" in captured.err


def test_unavailable_backend_exits_with_the_reason(params_file, capsys):
    argv = ["build-engines", "--params", str(params_file), "--unet-backend", "tensorrt"]
    assert main(argv + ["--camera-size", "40x72"]) == 2
    err = capsys.readouterr().err
    assert "UNet backend 'tensorrt' is unavailable" in err and "CUDA device" in err


@pytest.mark.parametrize(
    "text, said",
    [
        (b"42\n", "is a YAML int, not a mapping of settings"),
        (b"hello\n", "is a YAML str, not a mapping of settings"),
        (b"- checkpoint\n", "is a YAML list, not a mapping of settings"),
        (b"a: 1\nb: [1, 2\nc: 3\n", "is not readable YAML: line 3, column 2: expected ',' or ']'"),
        (b"\xff\xfe\x00", "is not readable YAML"),
    ],
)
def test_a_settings_file_that_is_no_mapping_is_one_line_naming_it(tmp_path, capsys, text, said):
    """A parameter file or training config that parses to no mapping (or does not parse)."""
    path = tmp_path / "settings.yaml"
    path.write_bytes(text)
    for argv in (["build-engines", "--params", str(path)], ["train", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(path) in err and said in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    path.write_text("amodal_node:\n  ros__parameters: 5\n")
    assert main(["build-engines", "--params", str(path)]) == 2
    assert "no 'ros__parameters' section for /amodal_node" in capsys.readouterr().err
    assert main(["train", str(tmp_path)]) == 2  # the config folder for its file: said so
    assert f"training config {tmp_path} is a folder; name the YAML file" in capsys.readouterr().err


def test_the_parameters_are_those_rcl_gives_the_node_from_every_section_for_it(tmp_path):
    """A robot's file starting with '/**' (use_sim_time for all nodes) gave build-engines that
    section alone: "no stage-1 checkpoint", or, the node's first, the '/**' dtype dropped."""
    from amodal_ros.cli.build_engines import read_parameter_file

    path = tmp_path / "robot.yaml"
    path.write_text(
        "/**:\n  ros__parameters: {use_sim_time: true, dtype: float16}\n"
        "/**/camera:\n  ros__parameters: {dtype: bfloat16, fps: 30}\n"
        "/**/amodal_node:\n  ros__parameters: {checkpoint: embedded, dtype: float32}\n"
        "perception:\n  amodal_node:\n    ros__parameters: {num_steps: 4}\n"
    )
    assert read_parameter_file(path) == {  # /amodal_node, as launched without a namespace
        "use_sim_time": True,
        "dtype": "float32",  # the later section wins, as in rcl
        "checkpoint": "embedded",
    }
    assert read_parameter_file(path, "/perception/amodal_node") == {
        "use_sim_time": True,
        "dtype": "float32",
        "checkpoint": "embedded",
        "num_steps": 4,  # its namespace's section (nested) too
    }
    path.write_text("/robot1/my_amodal:\n  ros__parameters: {checkpoint: embedded}\n")
    with pytest.raises(ValueError, match="its sections: /robot1/my_amodal\\); name the node"):
        read_parameter_file(path)
    assert read_parameter_file(path, "robot1/my_amodal") == {"checkpoint": "embedded"}


def test_a_compiled_model_is_compiled_by_its_warm_up_window(params_file, monkeypatch, capsys):
    """build-engines said "(nothing to build)" for compile, and the node's first start paid the
    compiling (the real compile of the tiny UNet: 105 s cold, 10 s warm on this CPU)."""
    from amodal_ros.pipeline.factory import Pipelines

    monkeypatch.setattr(Pipelines, "compiles", property(lambda self: True))  # eager, quickly
    argv = ["build-engines", "--params", str(params_file), "--unet-backend", "eager"]
    assert main(argv + ["--depth-backend", "eager", "--camera-size", "40x72"]) == 0
    printed = capsys.readouterr().out
    assert "compiling: one window at 40x72 (HxW), as the node's warm-up" in printed
    assert "compiled in " in printed and "engines/inductor" in printed


def test_the_compiling_window_is_at_the_models_working_size_without_a_camera(
    tmp_path, published_folder, monkeypatch, capsys
):
    """Without a camera size or a height/width the warm-up window was 0x0 (a 16x16 scene),
    not the node's: the model's own working size."""
    from amodal_ros.pipeline.factory import Pipelines

    monkeypatch.setattr(Pipelines, "compiles", property(lambda self: True))  # eager, quickly
    engines = str(tmp_path / "engines")
    params = {"checkpoint": str(published_folder), "num_frames": 4, "engine_cache": engines}
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump({"/**/amodal_node": {"ros__parameters": params}}))
    assert main(["build-engines", "--params", str(path), "--unet-backend", "eager"]) == 0
    assert "compiling: one window at 32x64 (HxW)" in capsys.readouterr().out
