"""Launch files and the parameter YAML agree with the node, checked without `launch` installed
(by reading the launch files' syntax tree); where launch_ros imports, a launch test runs too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from amodal_ros.core.config import NodeConfig, TopicConfig
from amodal_ros.ros.params import parameter_specs

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
ROS_BUILTIN_PARAMETERS = {"use_sim_time"}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == name
    ]


def _kw(call: ast.Call, key: str):
    return next((k.value for k in call.keywords if k.arg == key), None)


def _str_args(calls: list[ast.Call]) -> set[str]:
    return {c.args[0].value for c in calls if c.args and isinstance(c.args[0], ast.Constant)}


@pytest.fixture(scope="module")
def declared() -> dict:
    return {name: default for name, default, _ in parameter_specs()}


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} == {"amodal.launch.py", "replay.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_declarative_and_its_arguments_are_declared(path):
    source = path.read_text()
    tree = ast.parse(source)
    assert not re.search(r"\b(eval|exec|PythonExpression|subprocess|os\.system)\b", source)
    for proc in _calls(tree, "ExecuteProcess"):
        assert _kw(proc, "shell") is None, "no shell=True"
        assert isinstance(_kw(proc, "cmd"), ast.List), "commands as argument lists"
    used = _str_args(_calls(tree, "LaunchConfiguration"))
    declared_args = _str_args(_calls(tree, "DeclareLaunchArgument"))
    assert used <= declared_args, f"undeclared launch arguments: {used - declared_args}"
    assert any(f.name == "generate_launch_description" for f in tree.body if hasattr(f, "name"))


def test_node_in_launch_file_matches_the_node(declared):
    tree = ast.parse((ROOT / "launch" / "amodal.launch.py").read_text())
    assert not _calls(tree, "Node"), "amodal_node is a lifecycle node: launch_ros LifecycleNode"
    (node,) = _calls(tree, "LifecycleNode")
    assert _kw(node, "package").value == "amodal_ros"
    assert _kw(node, "name").value == "amodal_node"  # LifecycleNode needs name and namespace
    namespace = _kw(node, "namespace")  # the launch argument, not a fixed name
    assert namespace.func.id == "LaunchConfiguration" and namespace.args[0].value == "namespace"
    executable = _kw(node, "executable").value
    # the executable is a script installed by CMake to lib/amodal_ros
    assert (ROOT / "scripts" / executable).stat().st_mode & 0o111
    assert f"scripts/{executable}" in (ROOT / "CMakeLists.txt").read_text()
    installed = ROOT / "install" / "amodal_ros" / "lib" / "amodal_ros" / executable
    if (ROOT / "install").exists():
        assert installed.exists(), f"{installed} missing: run scripts/setup.sh"
    # every parameter given inline is declared by the node
    params = _kw(node, "parameters")
    keys = {k.value for d in ast.walk(params) if isinstance(d, ast.Dict) for k in d.keys}
    assert keys <= set(declared) | ROS_BUILTIN_PARAMETERS
    # every remapped name is one of the node's topic names
    topics = {getattr(TopicConfig(), f) for f in TopicConfig.field_names() if f.endswith("_topic")}
    remapped = {t.elts[0].value for t in _kw(node, "remappings").elts}
    assert remapped <= topics and {"image", "masks", "depth"} <= remapped


def test_autostart_argument_moves_the_node_through_its_services_not_its_parameter():
    """A node that configured itself did so before launch subscribed to its transition events:
    replay.launch.py's handler on `active` missed it (3 of 3 launches with a tiny model)."""
    tree = ast.parse((ROOT / "launch" / "amodal.launch.py").read_text())
    (arg,) = [a for a in _calls(tree, "DeclareLaunchArgument") if a.args[0].value == "autostart"]
    # the launch default is the node's own default
    assert _kw(arg, "default_value").value == str(NodeConfig().autostart).lower()
    (node,) = _calls(tree, "LifecycleNode")
    (inline,) = [d for d in ast.walk(_kw(node, "parameters")) if isinstance(d, ast.Dict)]
    given = {k.value: v for k, v in zip(inline.keys, inline.values)}
    assert isinstance(given["autostart"], ast.Constant) and given["autostart"].value is False
    # inline parameters come after the params file: they win over the YAML
    assert isinstance(_kw(node, "parameters").elts[-1], ast.Dict)
    # the launch argument gates launch's own transitions: configure, then activate once inactive
    changes = [_kw(c, "transition_id").attr for c in _calls(tree, "ChangeState")]
    assert sorted(changes) == ["TRANSITION_ACTIVATE", "TRANSITION_CONFIGURE"]
    conditions = [_kw(c, "condition") for c in _calls(tree, "RegisterEventHandler")]
    conditions += [_kw(c, "condition") for c in _calls(tree, "EmitEvent") if _kw(c, "condition")]
    assert len(conditions) == 2
    for name in {c.id for c in conditions}:
        (gate,) = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign) and n.targets[0].id == name
        ]
        assert gate.func.id == "IfCondition" and gate.args[0].args[0].value == "autostart"
    (handler,) = _calls(tree, "OnStateTransition")
    assert _kw(handler, "goal_state").value == "inactive"
    assert _kw(handler, "handle_once").value is True  # a manager's later deactivation stays
    (ret,) = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    order = [e.id for e in ret.value.args[0].elts if isinstance(e, ast.Name)]
    assert order.index("activate_once_configured") < order.index("node") < order.index("configure")


def test_replay_launch_plays_the_bag_when_the_node_becomes_active():
    tree = ast.parse((ROOT / "launch" / "replay.launch.py").read_text())
    assert not _calls(tree, "TimerAction"), "no fixed delay: the node's activation starts it"
    (handler,) = _calls(tree, "OnStateTransition")
    assert _kw(handler, "goal_state").value == "active"
    assert _kw(handler, "handle_once").value is True  # a re-activation does not replay
    (entity,) = _kw(handler, "entities").elts
    assignments = {
        t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
    }
    player = assignments[entity.id]
    assert isinstance(player, ast.Call) and player.func.id == "ExecuteProcess"
    (register,) = _calls(tree, "RegisterEventHandler")
    assert register.args[0] is handler
    # registered before the node starts, so no transition can be missed
    (ret,) = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    entities = [e.id for e in ret.value.args[0].elts if isinstance(e, ast.Name)]
    handler_name = next(t for t, v in assignments.items() if v is register)
    assert entities.index(handler_name) < entities.index("node")


def test_replay_launch_includes_the_node_launch_with_sim_time():
    tree = ast.parse((ROOT / "launch" / "replay.launch.py").read_text())
    (include,) = _calls(tree, "IncludeLaunchDescription")
    args = _kw(include, "launch_arguments").func.value  # {...}.items()
    passed = {k.value: v for k, v in zip(args.keys, args.values)}
    assert passed["use_sim_time"].value == "true"
    assert passed["autostart"].value == "true"  # the bag plays once the node is active
    target = ast.parse((ROOT / "launch" / "amodal.launch.py").read_text())
    assert set(passed) <= _str_args(_calls(target, "DeclareLaunchArgument"))
    (player,) = _calls(tree, "ExecuteProcess")
    cmd = [e.value for e in _kw(player, "cmd").elts if isinstance(e, ast.Constant)]
    assert cmd[:3] == ["ros2", "bag", "play"] and "--clock" in cmd


def test_yaml_lists_every_parameter_with_the_node_defaults(declared):
    data = yaml.safe_load((ROOT / "config" / "amodal_node.yaml").read_text())
    (key,) = data
    assert key.endswith("amodal_node")
    params = data[key]["ros__parameters"]
    assert set(params) == set(declared)
    for name, value in params.items():
        assert value == declared[name] and type(value) is type(declared[name]), name


def test_rviz_config_shows_the_default_outputs_in_the_demo_camera_frame():
    from amodal_ros.bags.topics import FRAME_ID

    config = yaml.safe_load((ROOT / "config" / "amodal.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == FRAME_ID
    shown = {d["Class"].split("/")[-1]: [] for d in manager["Displays"]}
    for d in manager["Displays"]:
        if "Topic" in d:
            shown[d["Class"].split("/")[-1]].append(d["Topic"]["Value"])
    topics = TopicConfig()
    assert shown["Image"] == ["/" + topics.overlay_topic, "/" + topics.completion_topic]
    assert shown["MarkerArray"] == ["/" + topics.markers_topic]
    assert "rviz2 -d config/amodal.rviz" in (ROOT / "README.md").read_text()


try:
    import launch_ros  # noqa: F401

    _NO_LAUNCH = ""
except ImportError:
    _NO_LAUNCH = "launch_ros is not installed (no PyPI wheel); runs on a real ROS 2 install"


@pytest.mark.skipif(bool(_NO_LAUNCH), reason=_NO_LAUNCH or "ok")
def test_launch_starts_the_node_for_real(tmp_path, published_folder):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**/amodal_node:\n  ros__parameters:\n"
        f"    checkpoint: '{published_folder}'\n    height: 32\n    width: 64\n"
        "    num_frames: 4\n    num_steps: 1\n"
    )
    from conftest import run_until

    cmd = ["ros2", "launch", "amodal_ros", "amodal.launch.py", f"params_file:={params}"]
    _, out = run_until(cmd, "active: listening on", timeout=90)  # the launch runs until stopped
    assert "active: listening on" in out, out[-3000:]
