"""Shared fixtures: tiny real models (seeded) and small synthetic inputs.

Fixtures import torch only when a test asks for them, so the numpy-only tests (core, sync,
window, conversions) run where torch is not installed; a test module that needs torch says so
with `pytest.importorskip("torch")` or by using these fixtures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

from dds_domain import claim_domain

# pytest -n N (xdist, the README's test command): each worker, and what it starts, takes its
# share of the cores (torch's OpenMP threads spin: two workers of two threads on two cores ran
# the suite slower than one process) and talks on a DDS domain of its own, so tests that run
# at once never hear each other's topics. Set before anything imports torch.
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    share = len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))
    os.environ["ROS_DOMAIN_ID"] = str(claim_domain(40 + int(worker.removeprefix("gw"))))
else:  # `colcon test` on a robot: never on the domain its running stack talks on
    os.environ["ROS_DOMAIN_ID"] = str(claim_domain(39))
# ... nor with another machine's nodes on it (as scripts/with_env.sh, unless chosen)
if not os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") and not os.environ.get(
    "ROS_LOCALHOST_ONLY"
):
    if os.environ.get("ROS_DISTRO") == "humble":
        os.environ["ROS_LOCALHOST_ONLY"] = "1"
    else:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ONNX exports / TensorRT engines of test models go to a throwaway folder, not ~/.cache,
# removed by the process that made it (xdist's workers inherit the controller's)
if "AMODAL_ROS_ENGINE_CACHE" not in os.environ:
    os.environ["AMODAL_ROS_ENGINE_CACHE"] = tempfile.mkdtemp(prefix="amodal_engines_")
    atexit.register(shutil.rmtree, os.environ["AMODAL_ROS_ENGINE_CACHE"], ignore_errors=True)

from amodal_ros.core import InferenceConfig, ObjectTrack  # numpy only

T, H, W = 4, 40, 72  # frames and camera size of the small test window

HEAVY = ("torch", "diffusers", "transformers")


def run_until(cmd: list[str], stop_on: str | None, timeout: float) -> tuple[int, str]:
    """Start `cmd`, read its output until a line contains `stop_on` (None: until it exits) or
    `timeout` s pass, then stop it with SIGINT if it still runs (as Ctrl-C would); returns
    (exit code, all output, including what it printed while stopping)."""
    import signal
    import time

    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )
    import queue
    import threading

    lines, deadline = [], time.monotonic() + timeout
    read: queue.Queue = queue.Queue()  # read on a thread: a silent child meets the deadline
    reader = threading.Thread(target=lambda: [read.put(x) for x in proc.stdout], daemon=True)
    reader.start()
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = read.get(timeout=min(left, 0.5))
            except queue.Empty:
                if proc.poll() is not None and read.empty():
                    break
                continue
            lines.append(line)
            if stop_on and stop_on in line:
                # a ROS log line is printed before it is published to /rosout: a SIGINT at
                # once raced that publish ("Failed to publish log message to rosout")
                time.sleep(0.5)
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=5)  # what it says while stopping, for failures
    while not read.empty():
        lines.append(read.get())
    return proc.returncode, "".join(lines)


def fit_fixed_batch(loss_fn, params, steps: int, lr: float) -> list[float]:
    """AdamW `steps` times on one fixed batch (`loss_fn()` computes its loss); the losses, for
    tests that training lowers it."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def run_without(code: str, blocked: tuple[str, ...] = HEAVY) -> str:
    """Run `code` in a fresh interpreter in which importing any of `blocked` fails (e.g. to
    prove a module works without torch); asserts success and returns its stdout."""
    prelude = (
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(blocked)!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="session")
def tiny_config() -> InferenceConfig:
    return InferenceConfig(
        height=32,
        width=64,
        num_frames=T,
        num_steps=2,
        min_guidance=1.0,
        max_guidance=2.0,
        max_batch_objects=4,  # batched as on a GPU (auto runs 1 per call on a CPU)
    )


def tiny_components(seed: int = 0, in_channels: int = 12, **vae):
    """The tiny seeded models of the real classes (skips the test where torch is missing)."""
    pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")
    from amodal_ros.models.architectures import build_components

    return build_components("tiny", seed, in_channels, **vae)


def save_tiny(components, folder):
    """`components` written as a checkpoint folder in the published layout."""
    from amodal_ros.models.layout import save_published_layout

    return save_published_layout(components, folder)


@pytest.fixture(scope="session")
def components12():
    return tiny_components(seed=0, in_channels=12)


@pytest.fixture(scope="session")
def components8():
    return tiny_components(seed=0, in_channels=8)


@pytest.fixture(scope="session")
def published_folder(tmp_path_factory, components12):
    return save_tiny(components12, tmp_path_factory.mktemp("published") / "ckpt")


@pytest.fixture(scope="session")
def stage2_folder(tmp_path_factory):
    """A tiny stage-2 (completion) checkpoint: other weights than stage 1's."""
    return save_tiny(tiny_components(seed=1), tmp_path_factory.mktemp("s2") / "ckpt")


def box_masks(t=T, h=H, w=W, y0=8, x0=10, size=16, dx=3) -> np.ndarray:
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        masks[i, y0 : y0 + size, x0 + i * dx : x0 + i * dx + size] = True
    return masks


@pytest.fixture
def tracks():
    occluded = box_masks()
    occluded[:, :, 30:40] = False  # a bar hides part of object 1
    return [ObjectTrack(1, occluded), ObjectTrack(7, box_masks(y0=22, x0=40, size=12, dx=-2))]


@pytest.fixture
def inverse_depth():
    rng = np.random.default_rng(0)
    return (rng.random((T, H, W)) + 0.2).astype(np.float32)


# --- small synthetic clips of the generator's tests (test/data/), made once per session.
# Here rather than in test/data/conftest.py: a second conftest.py would replace this module as
# `conftest` in sys.modules during collection, and `from conftest import ...` in the test
# modules collected after it would fail.

SMALL_CLIP = dict(num_frames=16, height=64, width=128)
SENSORS_OFF = dict(depth_holes=0.0, depth_noise=0.0, label_errors=0.0)  # exact depth, labels
CLIP_SEEDS = range(12)


@pytest.fixture(scope="session")
def small():
    """`make_scene` at 16 frames of 64x128; `exact=True` turns the sensor models off."""
    from amodal_ros.data.scenes import make_scene

    def make(seed: int, exact: bool = False, **kwargs):
        return make_scene(seed, **{**SMALL_CLIP, **(SENSORS_OFF if exact else {}), **kwargs})

    return make


@pytest.fixture(scope="session")
def clips(small):
    """Small default clips of seeds 0..11."""
    return [small(seed) for seed in CLIP_SEEDS]


@pytest.fixture(scope="session")
def exact_clips(small):
    """The same clips with exact depth and labels."""
    return [small(seed, exact=True) for seed in CLIP_SEEDS]
