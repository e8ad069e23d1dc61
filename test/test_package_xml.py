"""package.xml declares what the code imports: every third-party import has its rosdep key in
package.xml, or is pip-only and in the README's pip command; every declared key is used.
Plus the package metadata (license, maintainer) agrees between package.xml, setup.py and
LICENSE, and `colcon test` is wired to pytest."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# import name -> rosdep key in package.xml, or "pip: <distribution>" where rosdep has no key
# (rosdistro's rosdep/*.yaml, checked 2026-11: python3-torch, python3-transformers-pip and
# python3-rosbags-pip exist; diffusers, accelerate, safetensors, onnx, tensorrt have no key;
# onnxruntime's key would install the CPU build over a GPU one, so it stays a pip choice).
IMPORTS = {
    # Python libraries
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "PIL": "python3-pil",
    "torch": "pip: torch",  # python3-torch exists, but is older than transformers needs
    "transformers": "python3-transformers-pip",
    "rosbags": "python3-rosbags-pip",
    "diffusers": "pip: diffusers",
    "accelerate": "pip: accelerate",
    "safetensors": "pip: safetensors",
    "onnx": "pip: onnx",  # optional: the onnxruntime backend
    "onnxruntime": "pip: onnxruntime",  # optional (onnxruntime-gpu on a GPU)
    "tensorrt": "pip: tensorrt",  # optional: the TensorRT backend, NVIDIA GPUs only
    "ray": "pip: ray",  # optional: replay-many (python3-ray has no rosdep key)
    "torchao": "pip: torchao",  # optional: quantize fp8 (no rosdep key)
    # ROS packages
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs",
    "visualization_msgs": "visualization_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "launch": "launch",  # the launch files
    "launch_ros": "launch_ros",
    "lifecycle_msgs": "lifecycle_msgs",  # the launch file's transitions; rclpy.lifecycle's too
}
# declared keys that no import names, and what needs them
NOT_IMPORTED = {
    "rosidl_default_runtime": "the generated amodal_ros.msg code",
    "ros2launch": "`ros2 launch amodal_ros ...`",
    "ros2bag": "launch/replay.launch.py runs `ros2 bag play`",
    "rosbag2_storage_default_plugins": "`ros2 bag play` of the demo bag (sqlite3)",
}
# where imports are looked for: the library, the launch files, the installed executables
SOURCES = [
    *sorted((ROOT / "amodal_ros").rglob("*.py")),
    *sorted((ROOT / "launch").glob("*.py")),
    ROOT / "scripts" / "amodal_node",
    ROOT / "scripts" / "amodal_cli",
]
# calls that import a module named by a string (core/imports.py)
DYNAMIC_IMPORTS = {"require", "is_available", "import_module"}


def third_party_imports() -> dict[str, set[str]]:
    """{top-level module: files importing it} of everything not stdlib and not amodal_ros."""
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in DYNAMIC_IMPORTS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "amodal_ros":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def package_keys() -> dict[str, set[str]]:
    """{dependency tag: rosdep keys} of package.xml."""
    root = ET.parse(ROOT / "package.xml").getroot()
    keys: dict[str, set[str]] = {}
    for element in root:
        if element.tag.endswith("depend"):
            keys.setdefault(element.tag, set()).add(element.text.strip())
    return keys


def runtime_keys() -> set[str]:
    keys = package_keys()
    return keys.get("depend", set()) | keys.get("exec_depend", set())


def pip_names() -> set[str]:
    return {v.split(": ", 1)[1] for v in IMPORTS.values() if v.startswith("pip: ")}


def test_the_scan_sees_the_known_imports():
    found = third_party_imports()
    # plain, from-, lazy (inside functions) and dynamic (require("...")) imports
    assert {"numpy", "torch", "rclpy", "launch_ros", "rosbags", "tensorrt"} <= set(found)
    assert "amodal_ros" not in found and "os" not in found


def test_every_third_party_import_has_a_rosdep_key_or_is_pip_only():
    found = third_party_imports()
    missing = {name: sorted(files)[:3] for name, files in found.items() if name not in IMPORTS}
    assert not missing, f"imports without a rosdep key or pip entry in IMPORTS: {missing}"
    declared = runtime_keys()
    for name in found:
        key = IMPORTS[name]
        if not key.startswith("pip: "):
            assert key in declared, f"{name} is imported but package.xml lacks {key}"


def test_every_declared_key_is_used():
    used = {IMPORTS[name] for name in third_party_imports()} | set(NOT_IMPORTED)
    unused = runtime_keys() - used
    assert not unused, f"package.xml declares keys nothing imports or needs: {unused}"
    assert not set(IMPORTS.values()) - used - {f"pip: {n}" for n in pip_names()}, (
        "IMPORTS maps modules the code no longer imports"
    )


def test_pip_only_dependencies_are_in_the_readme_install_command():
    readme = (ROOT / "README.md").read_text()
    words = {  # a requirement's name: `"tensorrt>=10,<11"` names tensorrt
        re.split(r"[<>=!~\[;]", w.strip("'\""))[0]
        for line in readme.splitlines()
        if "pip install" in line
        for w in re.split(r"\s+", line)
    }
    assert pip_names() <= words, f"not in a README pip command: {pip_names() - words}"
    declared = runtime_keys()
    for name in pip_names():  # pip-only means no key: a key would install it twice
        assert not any(name in key for key in declared), name


def test_license_and_maintainer_agree_with_setup_py():
    root = ET.parse(ROOT / "package.xml").getroot()
    setup = ast.parse((ROOT / "setup.py").read_text())
    (call,) = [
        n
        for n in ast.walk(setup)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    ]
    kw = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
    assert root.findtext("license") == kw["license"] == "Apache-2.0"
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.split()[:3] == ["Apache", "License", "Version"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in license_text
    maintainer = root.find("maintainer")
    assert maintainer is not None and maintainer.text == kw["maintainer"]
    assert maintainer.get("email") == kw["maintainer_email"] and "@" in kw["maintainer_email"]
    assert root.findtext("version") == kw["version"]


def test_colcon_test_runs_the_pytest_suite():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    block = cmake[cmake.index("if(BUILD_TESTING)") :]
    assert "find_package(ament_cmake_pytest REQUIRED)" in block
    call = re.search(r"ament_add_pytest_test\((\w+) (\S+)", block)
    assert call and (ROOT / call.group(2)).is_dir()
    assert "WORKING_DIRECTORY" in block and "PYTHONPATH=${CMAKE_INSTALL_PREFIX}" in block
    assert "ament_cmake_pytest" in package_keys()["test_depend"]


@pytest.mark.parametrize("key", sorted(NOT_IMPORTED))
def test_keys_needed_without_an_import_are_declared(key):
    assert key in runtime_keys()
