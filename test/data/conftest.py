"""Small synthetic clips shared by the generator's tests (made once per session)."""

from __future__ import annotations

import pytest

from amodal_ros.data.scenes import make_scene

SMALL = dict(num_frames=16, height=64, width=128)
SENSORS_OFF = dict(depth_holes=0.0, depth_noise=0.0, label_errors=0.0)  # exact depth, labels
SEEDS = range(12)


@pytest.fixture(scope="session")
def small():
    """`make_scene` at 16 frames of 64x128; `exact=True` turns the sensor models off."""

    def make(seed: int, exact: bool = False, **kwargs):
        return make_scene(seed, **{**SMALL, **(SENSORS_OFF if exact else {}), **kwargs})

    return make


@pytest.fixture(scope="session")
def clips(small):
    """Small default clips of seeds 0..11."""
    return [small(seed) for seed in SEEDS]


@pytest.fixture(scope="session")
def exact_clips(small):
    """The same clips with exact depth and labels."""
    return [small(seed, exact=True) for seed in SEEDS]
