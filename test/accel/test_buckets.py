"""A compiled model meets a few batch sizes, all compiled at its first call (accel/buckets)."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from amodal_ros.accel import backends
from amodal_ros.accel.artifacts import ArtifactCache
from amodal_ros.accel.buckets import Bucketed, batch_sizes
from amodal_ros.accel.onnx_export import UNetSpec


def test_batch_sizes_are_powers_of_two_of_the_step_then_the_largest():
    assert batch_sizes(1) == (1,)
    assert batch_sizes(4) == (1, 2, 4)
    assert batch_sizes(5) == (1, 2, 4, 5)
    assert batch_sizes(8, step=2) == (2, 4, 8)  # guided: both branches of each window
    assert batch_sizes(6, step=2) == (2, 4, 6)
    with pytest.raises(ValueError, match="multiple of step 2"):
        batch_sizes(5, step=2)


def test_a_compiled_unet_compiles_each_size_once_at_its_first_call_and_matches_eager(
    components8,
):
    """Dynamo (its eager backend: the graphs, not Inductor's minutes) sees the batch sizes
    (1, 2, 4) only, all at the first call; later batches of 3, 1 and 4 compile nothing more
    (whatever the strides of their inputs), and every answer is the unpadded model's."""
    unet = components8.unet
    spec = UNetSpec(
        frames=2,
        in_channels=unet.config.in_channels,
        latent_height=4,
        latent_width=8,
        tokens=2,  # the context holds one row per frame: 2 rows per item
        context_dim=unet.config.cross_attention_dim,
        max_batch=4,
    )
    eager = backends.EagerUNet(unet)
    fast = Bucketed(
        backends.EagerUNet(torch.compile(unet, backend="eager", dynamic=False)),
        batch_sizes(spec.max_batch),
        "UNet",
    )
    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        for i, b in enumerate((2, 3, 1, 4)):
            torch.manual_seed(b)
            x = spec.example(b)
            time_ids = x["time_ids"][:1].expand(b, -1)  # as sampling passes them: stride 0
            inputs = (x["sample"], x["timestep"], x["context"], time_ids)
            got = fast(*inputs)
            assert got.shape == (b, 2, 4, 4, 8)
            torch.testing.assert_close(got, eager(*inputs), atol=1e-5, rtol=1e-5)
            if i == 0:
                assert counters["stats"]["unique_graphs"] - graphs == 3  # sizes 1, 2, 4
    assert counters["stats"]["unique_graphs"] - graphs == 3
    with pytest.raises(ValueError, match="batch of 5 is larger than the 4"):
        fast(*spec.example(5).values())


def test_a_sampler_compiles_the_batch_sizes_of_its_windows(components12, tiny_config):
    """Guided windows call the UNet with both branches: 2, 4, 8 for 4 windows per call; a
    student's unguided ones 1, 2, 4. Nothing compiles until the first call."""
    from amodal_ros.pipeline.runner import WindowSampler

    guided = WindowSampler(components12, tiny_config.replace(unet_backend="compile"))
    assert guided.predict.sizes == (2, 4, 8) and guided.predict.name == "compile"
    unguided = tiny_config.replace(unet_backend="compile", min_guidance=1.0, max_guidance=1.0)
    assert WindowSampler(components12, unguided).predict.sizes == (1, 2, 4)


def test_the_pipelines_say_when_their_first_window_compiles(components12, tiny_config):
    """The node's warm-up times a second window when the first one compiles, so its pace
    at configure is a window's, not the compiler's."""
    from amodal_ros.depth.depth_anything import DepthAnythingDepth
    from amodal_ros.models.registry import depth_model
    from amodal_ros.pipeline import AmodalSegmenter
    from amodal_ros.pipeline.factory import Pipelines

    def pipelines(backend, depth=None):
        config = tiny_config.replace(unet_backend=backend)
        return Pipelines(AmodalSegmenter(components12, config), depth=depth)

    assert pipelines("compile").compiles and not pipelines("eager").compiles
    compiled_depth = DepthAnythingDepth(depth_model("tiny"), input_size=28, backend="compile")
    assert pipelines("eager", compiled_depth).compiles  # the depth model's first call compiles


def test_a_call_whose_inputs_are_no_whole_rows_per_item_is_refused():
    fast = Bucketed(lambda a, b: a, (2, 4), "model")
    with pytest.raises(ValueError, match="no whole number of rows per item"):
        fast(torch.zeros(3, 1), torch.zeros(4, 1))


def test_compiling_raises_torchs_recompile_limit_to_every_graph_asked_for(tmp_path, monkeypatch):
    """Both stages' UNets share one forward, whose graphs torch counts together and runs
    eager past its limit (8): five sizes each would have run the second stage eager."""
    # torch's own patch restores its config (monkeypatch's undo deleted the entry, and every
    # later compile failed on it)
    before = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(recompile_limit=8):
        monkeypatch.setattr(backends, "_graphs_asked", 0)
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
        cache = ArtifactCache(tmp_path)
        for _ in range(2):
            linear = torch.nn.Linear(2, 2)
            backends.compiled(linear, torch.device("cpu"), cache, len(batch_sizes(16)))
        assert torch._dynamo.config.recompile_limit == 10
    assert torch._dynamo.config.recompile_limit == before  # restored
