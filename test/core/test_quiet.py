"""What a user sees on stderr: third-party import chatter is kept out, --verbose keeps it."""

import subprocess
import sys

import pytest

from amodal_ros.core.imports import is_available

LOAD_DIFFUSERS = (
    "from amodal_ros.core.imports import quiet_libraries; quiet_libraries({verbose}); "
    "from diffusers import UNetSpatioTemporalConditionModel"
)


def _stderr(verbose: bool) -> str:
    code = LOAD_DIFFUSERS.format(verbose=verbose)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stderr


@pytest.mark.skipif(not is_available("torchao"), reason="torchao (the fp8 extra) not installed")
def test_loading_the_models_prints_nothing_unless_verbose():
    # with torchao installed, diffusers imports it, which warns about its CUDA kernels
    assert _stderr(verbose=False) == ""
    assert "torchao" in _stderr(verbose=True)
