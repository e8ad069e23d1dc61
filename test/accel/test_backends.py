"""Backends against torch eager on tiny models: onnxruntime and torch.compile run here,
TensorRT where a GPU and tensorrt are present."""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import T

from amodal_ros.accel import backends
from amodal_ros.accel.artifacts import ArtifactCache, ArtifactLoadError, artifact_key, model_hash
from amodal_ros.accel.onnx_export import DepthSpec, UNetSpec
from amodal_ros.accel.ort_backend import providers_for
from amodal_ros.accel.trt_backend import profile_for
from amodal_ros.accel.trt_backend import unavailable_reason as trt_unavailable
from amodal_ros.core import ObjectTrack
from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.depth.depth_anything import DepthAnythingDepth
from amodal_ros.models.architectures import build_components, build_depth_anything
from amodal_ros.pipeline import AmodalSegmenter
from amodal_ros.pipeline.runner import WindowSampler

CPU = torch.device("cpu")
needs_ort = pytest.mark.skipif(
    backends.unavailable_reason("onnxruntime", CPU) is not None,
    reason=f"onnxruntime: {backends.unavailable_reason('onnxruntime', CPU)}",
)
CUDA = torch.device("cuda")
TRT_REASON = trt_unavailable(CUDA)
needs_trt = [
    pytest.mark.gpu,
    pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT: {TRT_REASON}"),
]


def _unet_inputs(sampler: WindowSampler, batch: int):
    spec = sampler.unet_spec()
    torch.manual_seed(3)
    x = spec.example(batch)
    return x["sample"], torch.tensor(0.8), x["context"], sampler.time_ids().expand(batch, -1)


@needs_ort
def test_onnxruntime_unet_matches_eager_for_every_batch(components12, tiny_config, tmp_path):
    config = tiny_config.replace(unet_backend="onnxruntime", engine_cache=str(tmp_path))
    ort = WindowSampler(components12, config)
    eager = WindowSampler(components12, tiny_config.replace(unet_backend="eager"))
    assert ort.predict.name == "onnxruntime"
    for batch in (1, 2, 3):  # dynamic batch axis: windows x guidance
        inputs = _unet_inputs(eager, batch)
        torch.testing.assert_close(
            ort.predict(*inputs), eager.predict(*inputs), atol=2e-5, rtol=1e-4
        )


@needs_ort
def test_onnxruntime_segmenter_gives_the_eager_masks(components12, tiny_config, tracks, tmp_path):
    depth = np.random.default_rng(1).random((T, 40, 72)).astype(np.float32) + 0.2
    eager = AmodalSegmenter(components12, tiny_config.replace(unet_backend="eager"))(tracks, depth)
    ort_config = tiny_config.replace(unet_backend="onnxruntime", engine_cache=str(tmp_path))
    ort = AmodalSegmenter(components12, ort_config)(tracks, depth)
    for a, b in zip(eager, ort):
        np.testing.assert_allclose(a.soft, b.soft, atol=3 / 765)  # one uint8 step of rounding
        assert (a.amodal != b.amodal).mean() < 0.002


@needs_ort
def test_a_clip_shorter_than_the_window_runs_on_an_exported_backend(
    components12, tiny_config, tmp_path, caplog
):
    """`infer` runs the model on a clip shorter than a window; the ONNX graph has the window's
    frame count fixed, so every such window failed on onnxruntime and TensorRT."""
    t = T - 2
    masks = np.zeros((t, 40, 72), bool)
    masks[:, 8:24, 10:26] = True
    short = [ObjectTrack(1, masks)]
    depth = np.random.default_rng(1).random((t, 40, 72)).astype(np.float32) + 0.2
    eager = AmodalSegmenter(components12, tiny_config.replace(unet_backend="eager"))(short, depth)
    ort_config = tiny_config.replace(unet_backend="onnxruntime", engine_cache=str(tmp_path))
    with caplog.at_level("INFO", logger="amodal_ros.runner"):
        ort = AmodalSegmenter(components12, ort_config)(short, depth)
    assert ort[0].amodal.shape == (t, 40, 72)
    np.testing.assert_allclose(eager[0].soft, ort[0].soft, atol=1e-6)  # eager ran it
    assert f"a window of {t} frames, shorter than the model's {T}" in caplog.text


@needs_ort
def test_onnx_export_is_cached_by_content(components12, tiny_config, tmp_path):
    config = tiny_config.replace(unet_backend="onnxruntime", engine_cache=str(tmp_path))
    first = WindowSampler(components12, config)
    assert first.artifacts.built == 1
    again = WindowSampler(components12, config)
    assert again.artifacts.built == 0 and again.predict.path == first.predict.path
    more_objects = WindowSampler(components12, config.replace(max_batch_objects=3))
    assert more_objects.unet_spec().max_batch != first.unet_spec().max_batch
    assert more_objects.artifacts.built == 0  # dynamic batch: the same export
    inputs = _unet_inputs(more_objects, 3)
    torch.testing.assert_close(more_objects.predict(*inputs), first.predict(*inputs))
    longer = WindowSampler(components12, config.replace(num_frames=T + 1))
    assert longer.artifacts.built == 1 and longer.predict.path != first.predict.path
    other_weights = build_components("tiny", seed=5, in_channels=12)
    retrained = WindowSampler(other_weights, config)
    assert retrained.artifacts.built == 1 and retrained.predict.path != first.predict.path


@needs_ort
def test_a_damaged_cached_onnx_file_is_built_again(components12, tiny_config, tmp_path, caplog):
    config = tiny_config.replace(unet_backend="onnxruntime", engine_cache=str(tmp_path))
    first = WindowSampler(components12, config)
    first.predict.path.write_bytes(first.predict.path.read_bytes()[:100])  # a disk error
    again = WindowSampler(components12, config)
    assert again.artifacts.built == 1 and "building it again" in caplog.text
    inputs = _unet_inputs(again, 1)
    torch.testing.assert_close(again.predict(*inputs), first.predict(*inputs))


def test_a_cached_engine_runs_without_its_onnx_and_a_damaged_onnx_is_exported_again(
    components8, tmp_path, monkeypatch
):
    """TensorRT's side of the cache, with a stand-in for TensorRT (it runs on no machine of
    this project): an engine that is cached needs no ONNX file (deleted to save disk: not
    exported again); an engine build first exports again an ONNX file changed since its export
    (TensorRT's parser cannot tell a damaged file)."""
    from amodal_ros.accel import trt_backend

    exports, parsed, bound = [], [], []

    def export(folder):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"graph")
        exports.append(folder)

    def build_engine(onnx_path, engine_path, profile, device):
        parsed.append(onnx_path.read_bytes())
        engine_path.write_bytes(b"engine")

    monkeypatch.setattr(trt_backend, "environment", lambda device: {"gpu": "stand-in"})
    monkeypatch.setattr(trt_backend, "build_engine", build_engine)

    def engine_of(path, device, input_names):
        bound.append(input_names)
        return path.read_bytes

    monkeypatch.setattr(trt_backend, "TrtEngine", engine_of)
    spec = UNetSpec(
        frames=2,
        in_channels=8,
        latent_height=4,
        latent_width=8,
        tokens=2,
        context_dim=components8.unet.config.cross_attention_dim,
        max_batch=2,
    )

    def engine():
        cache = ArtifactCache(tmp_path)
        return backends._exported("unet", components8.unet, spec, "tensorrt", CPU, cache, export)

    first = engine()
    onnx = next(p for p in tmp_path.glob("unet-onnx-*") if p.is_dir())
    assert len(exports) == 1 and parsed == [b"graph"]
    # bound by the names the export gives the inputs (TensorRT keeps no order of them)
    assert bound == [list(spec.example(1))] == [["sample", "timestep", "context", "time_ids"]]
    (onnx / "model.onnx").write_bytes(b"grap?")  # a disk error; and the engine is gone
    first.path.unlink()
    assert engine().path == first.path
    assert len(exports) == 2 and parsed == [b"graph", b"graph"]
    shutil.rmtree(onnx)  # deleted to save disk
    assert engine().path == first.path and len(exports) == 2  # the engine alone


def assert_matches_depth(actual: np.ndarray, eager: np.ndarray, share: float) -> None:
    """Within `share` of eager's largest value: the tiny depth model's outputs are about 1e-6,
    under any fixed tolerance (a backend answering zeros passed), and its frames differ."""
    scale = float(np.abs(eager).max())
    assert scale > 0 and float(np.ptp(eager.mean(axis=(1, 2)))) > 10 * share * scale
    np.testing.assert_allclose(actual, eager, rtol=0, atol=share * scale)


@needs_ort
def test_onnxruntime_depth_matches_eager(tmp_path):
    model = build_depth_anything("tiny")
    frames = np.random.default_rng(0).integers(0, 255, (3, 30, 44, 3), dtype=np.uint8)
    eager = DepthAnythingDepth(model, input_size=28).inverse_depth(frames)
    ort = DepthAnythingDepth(
        model, input_size=28, backend="onnxruntime", engine_cache=str(tmp_path)
    )
    assert_matches_depth(ort.inverse_depth(frames), eager, 1e-4)
    assert ort.backend == "onnxruntime" and len(list(tmp_path.glob("depth-onnx-*.json"))) == 1


def test_torch_compile_matches_eager_and_keeps_its_kernels_in_the_engine_cache(
    components8, tmp_path, monkeypatch
):
    config_kwargs = dict(height=32, width=64, num_frames=2, num_steps=2, max_batch_objects=1)
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from amodal_ros.core import InferenceConfig

    # torch sets the variable to its /tmp default as soon as anything asks for it
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    config = InferenceConfig(**config_kwargs, min_guidance=1.0, max_guidance=1.0)
    eager = WindowSampler(components8, config.replace(unet_backend="eager"))
    compiled = WindowSampler(
        components8, config.replace(unet_backend="compile", engine_cache=str(tmp_path))
    )
    assert compiled.predict.name == "compile"
    inputs = _unet_inputs(eager, 1)
    torch.testing.assert_close(
        compiled.predict(*inputs), eager.predict(*inputs), atol=1e-4, rtol=1e-4
    )
    # the compiled graph is on disk beside the engines, where the next process finds it
    # (bench/bench_compile_cache.py: a second start hits it and skips the compilation)
    assert any(p.is_file() for p in (tmp_path / "inductor").rglob("*"))


def test_fp8_quantizes_a_copy_of_the_unet_close_to_fp32(components12, tiny_config):
    """quantize: fp8 stores the UNet's linear weights in float8 (torchao); the shared
    components keep their fp32 UNet, and the prediction stays close to it."""
    pytest.importorskip("torchao", reason="torchao is not installed (pip install torchao)")
    from amodal_ros.core.errors import InputError

    eager = WindowSampler(components12, tiny_config.replace(unet_backend="eager"))
    fp8 = WindowSampler(components12, tiny_config.replace(quantize="fp8"))
    assert fp8.predict.name == "eager"  # auto is eager for fp8: it runs in torch
    kinds = {type(m.weight).__name__ for m in fp8.predict.unet.modules() if _linear(m)}
    assert kinds == {"Float8Tensor"}
    assert {type(m.weight).__name__ for m in components12.unet.modules() if _linear(m)} == {
        "Parameter"
    }
    inputs = _unet_inputs(eager, 2)
    want, got = eager.predict(*inputs), fp8.predict(*inputs)
    assert not torch.equal(want, got)
    assert float((got - want).norm() / want.norm()) < 0.05
    with pytest.raises(InputError, match="torch backends"):
        WindowSampler(
            components12, tiny_config.replace(quantize="fp8", unet_backend="onnxruntime")
        )


def _linear(module) -> bool:
    return isinstance(module, torch.nn.Linear)


def test_depth_compile_matches_eager_with_one_graph_for_every_batch():
    """3 frames in batches of 2 run as 2 + 1: the single frame is padded to 2, so one graph
    serves both calls (and every later one at this camera size)."""
    from torch._dynamo.utils import counters

    from amodal_ros.depth.depth_anything import DepthAnythingDepth
    from amodal_ros.models.registry import depth_model

    frames = np.random.default_rng(0).integers(0, 255, (3, 20, 30, 3), dtype=np.uint8)
    model = depth_model("tiny")
    eager = DepthAnythingDepth(model, input_size=28).inverse_depth(frames)
    compiled = DepthAnythingDepth(model, input_size=28, backend="compile", batch=2)
    assert compiled.backend == "compile"
    graphs = counters["stats"]["unique_graphs"]
    assert_matches_depth(compiled.inverse_depth(frames), eager, 1e-4)
    assert counters["stats"]["unique_graphs"] - graphs == 1


def test_unavailable_backend_raises_with_the_reason(components12, tiny_config):
    with pytest.raises(BackendUnavailableError, match="tensorrt.*CUDA device"):
        WindowSampler(components12, tiny_config.replace(unet_backend="tensorrt"))
    with pytest.raises(BackendUnavailableError, match="depth backend 'tensorrt'"):
        DepthAnythingDepth(build_depth_anything("tiny"), backend="tensorrt")


def test_auto_picks_the_first_available_and_logs_it(caplog):
    with caplog.at_level(logging.INFO, logger="amodal_ros.accel"):
        chosen = backends.resolve("UNet", "auto", CPU, order={"cpu": ("tensorrt", "eager")})
    assert chosen == "eager"
    assert "auto skipped tensorrt" in caplog.text and "auto chose eager" in caplog.text
    assert backends.resolve("UNet", "auto", CPU) == "eager"  # measured fastest on a CPU
    if backends.unavailable_reason("onnxruntime", CPU) is None:
        assert backends.resolve("depth", "auto", CPU) == "onnxruntime"


def test_a_bfloat16_model_is_never_sent_to_tensorrt():
    # built from ONNX, which takes no bfloat16: refused with the reason on any machine, and
    # auto on a GPU would have chosen it, to fail at the first window
    reason = backends.unavailable_reason("tensorrt", torch.device("cuda"), torch.bfloat16)
    assert reason is not None and "no bfloat16: use float16" in reason


def test_a_tensorrt_other_than_10_is_refused_and_auto_takes_the_next(monkeypatch, caplog):
    """`pip install tensorrt` gets TensorRT 11, which removed the FP16 builder flag the engine
    build sets: refused with the install command that fits, so auto runs eager instead of
    failing at the build. A stand-in module gives the version, no GPU is needed to refuse."""
    import types

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the checks past the GPU's
    tensorrt = types.ModuleType("tensorrt")
    tensorrt.__version__ = "11.4.0.15"
    monkeypatch.setitem(sys.modules, "tensorrt", tensorrt)
    assert trt_unavailable(CUDA) == (
        "TensorRT 11.4.0.15 found; this build supports TensorRT 10: pip install 'tensorrt>=10,<11'"
    )
    with caplog.at_level(logging.INFO, logger="amodal_ros.accel"):
        assert backends.resolve("UNet", "auto", CUDA) == "eager"
    assert "auto skipped tensorrt (TensorRT 11.4.0.15 found" in caplog.text
    with pytest.raises(BackendUnavailableError, match="'tensorrt' is unavailable: TensorRT 11"):
        backends.resolve("depth", "tensorrt", CUDA)
    tensorrt.__version__ = "10.13.3.9"
    assert trt_unavailable(CUDA) is None
    # the engines are built from torch's ONNX export, which needs the onnx package: without it
    # TensorRT passed the check and the first window failed in torch's exporter, no hint
    monkeypatch.setattr(backends, "is_available", lambda module: module != "onnx")
    reason = backends.unavailable_reason("tensorrt", CUDA)
    assert reason is not None and "'onnx' is not installed" in reason
    assert "pip install onnx" in reason


@needs_ort
def test_auto_runs_eager_when_its_choice_fails_to_build_and_a_named_backend_raises(
    tmp_path, caplog
):
    """auto promises a backend that runs: its choice failing to export, build or load (here
    the ONNX export, into an engine cache that is a file) is logged with the backend and the
    error, and eager runs. onnxruntime asked for by name raises that error."""
    model = build_depth_anything("tiny")
    spec = DepthSpec(28, 42, max_batch=1)
    not_a_folder = tmp_path / "engines"
    not_a_folder.write_text("")
    cache = ArtifactCache(not_a_folder)
    with caplog.at_level(logging.WARNING, logger="amodal_ros.accel"):
        predict = backends.depth_predictor(model, spec, "auto", CPU, cache)
    assert predict.name == "eager"
    said = "depth backend: auto chose onnxruntime, which failed (BackendUnavailableError"
    assert said in caplog.text and "engines is a file: set engine_cache" in caplog.text
    x = torch.rand(2, 3, 28, 42)
    with torch.no_grad():
        torch.testing.assert_close(predict(x), model(pixel_values=x).predicted_depth)
    with pytest.raises(BackendUnavailableError, match="is a file"):
        backends.depth_predictor(model, spec, "onnxruntime", CPU, cache)


def test_the_depth_estimator_falls_back_as_its_predictor_does(tmp_path, caplog):
    """The estimator resolves auto to say its choice, but hands auto itself to each input
    size's predictor, so that a choice failing to build falls back there too (it passed the
    choice by name, which raised), and says what runs."""
    not_a_folder = tmp_path / "engines"
    not_a_folder.write_text("")
    depth = DepthAnythingDepth(
        build_depth_anything("tiny"), input_size=28, backend="auto", engine_cache=str(not_a_folder)
    )
    assert depth.backend == "onnxruntime"  # auto's first choice on a CPU
    frames = np.random.default_rng(0).integers(0, 255, (2, 20, 30, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="amodal_ros.accel"):
        assert np.isfinite(depth.inverse_depth(frames)).all()
    assert depth.backend == "eager" and "running eager instead" in caplog.text


def test_a_bfloat16_model_is_never_sent_to_onnxruntime(components12):
    """ONNX's Conv takes no bfloat16: asked for, onnxruntime is refused with the reason (the
    export once failed inside onnxruntime with a traceback); auto's depth choice on a CPU
    skips it."""
    unet = copy.deepcopy(components12.unet).to(torch.bfloat16)
    with pytest.raises(BackendUnavailableError, match="onnxruntime does not run bfloat16"):
        backends.unet_predictor(unet, None, "onnxruntime", CPU, None)
    with pytest.raises(BackendUnavailableError, match="onnxruntime does not run bfloat16"):
        DepthAnythingDepth(
            build_depth_anything("tiny"), dtype=torch.bfloat16, backend="onnxruntime"
        )
    assert backends.resolve("depth", "auto", CPU, dtype=torch.bfloat16) == "eager"
    frames = np.random.default_rng(0).integers(0, 255, (2, 20, 30, 3), dtype=np.uint8)
    depth = DepthAnythingDepth(build_depth_anything("tiny"), input_size=28, dtype=torch.bfloat16)
    assert depth.backend == "eager"
    assert np.isfinite(depth.inverse_depth(frames)).all()


def test_artifact_cache_builds_once_per_key(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def build(path):
        calls.append(path)
        path.write_bytes(b"engine")

    key = artifact_key(
        model="abc", shapes={"x": (1, 2)}, precision="fp16", tensorrt="10.9", gpu="H100"
    )
    first = cache.get_or_build("unet-trt", key, ".engine", build, {"gpu": "H100"})
    second = cache.get_or_build("unet-trt", key, ".engine", build, {"gpu": "H100"})
    assert first == second and len(calls) == 1 and first.read_bytes() == b"engine"
    # any part of the key changing gives a new artifact
    for change in ({"tensorrt": "10.10"}, {"gpu": "L4"}, {"precision": "fp32"}, {"model": "abd"}):
        parts = dict(
            model="abc", shapes={"x": (1, 2)}, precision="fp16", tensorrt="10.9", gpu="H100"
        )
        assert artifact_key(**{**parts, **change}) != key


def test_an_engine_cache_others_may_write_into_is_refused_or_closed(tmp_path, caplog):
    """What the cache holds is run (TensorRT engines, Inductor's Python kernels): a folder
    another user owns or may write into (a fixed name under /tmp) let them run code as us.
    Another user's is refused; ours loses the others' write permission, with a warning."""

    def build(path):
        path.write_bytes(b"engine")

    new = ArtifactCache(tmp_path / "fresh" / "engines")
    new.get_or_build("unet-trt", "k", ".engine", build, {})
    assert (new.folder.stat().st_mode & 0o777) == 0o700  # made for its owner only
    shared = tmp_path / "shared"  # ours, made under umask 002 by an older version
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="amodal_ros.accel"):
        ArtifactCache(shared).get_or_build("unet-trt", "k", ".engine", build, {})
    assert (shared.stat().st_mode & 0o777) == 0o755  # nobody else may write there now
    assert "was writable by other users (mode 777): made it 755" in caplog.text
    group = tmp_path / "group"  # a group's setgid folder keeps its setgid
    group.mkdir()
    group.chmod(0o2775)
    ArtifactCache(group).get_or_build("unet-trt", "k", ".engine", build, {})
    assert (group.stat().st_mode & 0o7777) == 0o2755
    tmp_like = tmp_path / "tmp"  # as /tmp or /dev/shm: closing it broke every other program
    tmp_like.mkdir()
    tmp_like.chmod(0o1777)
    with pytest.raises(BackendUnavailableError, match="is a shared folder \\(mode 1777"):
        ArtifactCache(tmp_like).get_or_build("unet-trt", "k", ".engine", build, {})
    assert (tmp_like.stat().st_mode & 0o7777) == 0o1777 and not any(tmp_like.iterdir())
    a_file = tmp_path / "engines.txt"  # was a bare "[Errno 17] File exists"
    a_file.write_text("mine")
    with pytest.raises(BackendUnavailableError, match="engines.txt is a file: set engine_cache"):
        ArtifactCache(a_file).get_or_build("unet-trt", "k", ".engine", build, {})
    assert a_file.read_text() == "mine"
    if os.geteuid() == 0:  # only root can hand a folder to another user
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o755)
        os.chown(theirs, 4242, 4242)
        with pytest.raises(BackendUnavailableError, match="belongs to user 4242"):
            ArtifactCache(theirs).get_or_build("unet-trt", "k", ".engine", build, {})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fifo", ["unet-trt-k.engine", "unet-trt-k.engine.json", "onnx"])
def test_a_cache_entry_that_is_a_fifo_is_built_again_not_opened(tmp_path, fifo, caplog):
    """A build writes no FIFO; opening one to load or hash it (the artifact, a file of an ONNX
    folder, its record) blocked the node's start for ever."""
    cache = ArtifactCache(tmp_path)
    name, suffix = ("unet-onnx", "") if fifo == "onnx" else ("unet-trt", ".engine")

    def build(path):
        if suffix:
            path.write_bytes(b"engine")
        else:
            path.mkdir()
            (path / "model.onnx").write_bytes(b"onnx")

    def load(path):
        file = path if suffix else path / "model.onnx"
        if not file.is_file() or file.read_bytes() not in (b"engine", b"onnx"):
            raise ArtifactLoadError(f"cannot load {file}")  # a runtime's refusal
        return file.read_bytes()

    cache.get_or_build(name, "k", suffix, build, {})
    path = tmp_path / "unet-onnx-k" / "model.onnx" if fifo == "onnx" else tmp_path / fifo
    path.unlink()
    os.mkfifo(path)
    if fifo.endswith(".json"):  # its record is read when the engine does not load
        (tmp_path / "unet-trt-k.engine").write_bytes(b"cut")
    with caplog.at_level(logging.WARNING):
        loaded = ArtifactCache(tmp_path).load(name, "k", suffix, build, {}, load=load)
    assert loaded in (b"engine", b"onnx") and "a FIFO?" in caplog.text


def test_a_failed_build_leaves_no_artifact(tmp_path):
    cache = ArtifactCache(tmp_path)

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build("unet-trt", "k", ".engine", broken, {})
    assert list(tmp_path.iterdir()) == []


def test_an_artifact_that_does_not_load_is_rebuilt_only_when_its_files_changed(tmp_path):
    """Out of GPU memory is no damaged file: an intact artifact is kept and the machine named;
    one whose bytes changed since its build is built again, once."""
    cache = ArtifactCache(tmp_path)
    builds = []

    def build(path):
        builds.append(path)
        path.write_bytes(b"engine")

    def out_of_memory(path):
        raise ArtifactLoadError(f"TensorRT could not load {path}")

    target = cache.get_or_build("unet-trt", "k", ".engine", build, {})
    with pytest.raises(
        BackendUnavailableError, match="as built .* cause is likely this machine"
    ) as err:
        ArtifactCache(tmp_path).load("unet-trt", "k", ".engine", build, {}, load=out_of_memory)
    assert not isinstance(err.value, ArtifactLoadError)  # raised as it is, not rebuilt
    assert len(builds) == 1 and target.read_bytes() == b"engine"
    fresh = tmp_path / "fresh"  # built, then not loaded: its remedy, not a bare load error
    with pytest.raises(BackendUnavailableError, match="just built.*unet_backend") as err:
        ArtifactCache(fresh).load(
            "unet-trt", "k", ".engine", lambda path: path.write_bytes(b"e"), {}, out_of_memory
        )
    assert not isinstance(err.value, ArtifactLoadError)

    target.write_bytes(b"eng")  # a disk error
    loaded = ArtifactCache(tmp_path).load(
        "unet-trt", "k", ".engine", build, {}, load=lambda path: path.read_bytes()
    )
    assert loaded == b"eng"  # it loads: nothing to rebuild

    def load_whole(path):
        if path.read_bytes() != b"engine":
            raise ArtifactLoadError(f"cannot load {path}")
        return path.read_bytes()

    again = ArtifactCache(tmp_path)
    assert again.load("unet-trt", "k", ".engine", build, {}, load=load_whole) == b"engine"
    assert again.built == 1 and len(builds) == 2


def test_an_artifact_without_a_readable_record_is_not_taken_as_intact(tmp_path):
    """A lost or damaged record says nothing of the files it recorded: a cached artifact
    without one that does not load is built again, once (not blamed on the machine), and an
    ONNX export without one is built again before an engine is built from it."""
    builds = []

    def build(path):
        builds.append(path)
        path.write_bytes(b"engine")

    def loads_once_rebuilt(path):
        if len(builds) < 2:  # what the first build left does not load
            raise ArtifactLoadError(f"cannot load {path}")
        return path.read_bytes()

    target = ArtifactCache(tmp_path).get_or_build("unet-trt", "k", ".engine", build, {})
    record = target.with_name(target.name + ".json")
    record.unlink()
    again = ArtifactCache(tmp_path)
    assert again.load("unet-trt", "k", ".engine", build, {}, load=loads_once_rebuilt) == b"engine"
    assert again.built == 1 and len(builds) == 2 and record.exists()
    record.write_text('{"files": ')  # cut short
    ArtifactCache(tmp_path).get_intact("unet-trt", "k", ".engine", build, {})
    assert len(builds) == 3
    ArtifactCache(tmp_path).get_intact("unet-trt", "k", ".engine", build, {})
    assert len(builds) == 3  # recorded and unchanged: kept


def test_an_artifact_is_on_disk_before_its_name_is(tmp_path, monkeypatch):
    """A rename reaches the disk before the data it names unless that was flushed: after a
    power cut the name could hold an empty file. An ONNX folder's files and the record are
    flushed before their renames, the cache folder's entries after. (os.fsync and os.replace
    run as they are, watched.)"""
    from amodal_ros.core.staging import stage_name

    events = []
    fsync, replace = os.fsync, os.replace

    def watched_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def watched_replace(src, dst):
        events.append(("replace", str(dst)))
        replace(src, dst)

    def build(path):
        path.mkdir()
        (path / "model.onnx").write_bytes(b"graph")
        (path / "model.onnx.data").write_bytes(b"weights")

    folder = tmp_path.resolve()
    monkeypatch.setattr(os, "fsync", watched_fsync)
    monkeypatch.setattr(os, "replace", watched_replace)
    target = ArtifactCache(folder).get_or_build("unet-onnx", "k", "", build, {})
    record = target.with_name(target.name + ".json")
    renames = [i for i, (what, _) in enumerate(events) if what == "replace"]
    assert [events[i][1] for i in renames] == [str(target), str(record)]
    flushed_first = {os.path.basename(p) for what, p in events[: renames[0]] if what == "fsync"}
    assert {"model.onnx", "model.onnx.data", stage_name(target), stage_name(record)} <= (
        flushed_first
    )
    assert events[-1] == ("fsync", str(folder))


def test_an_engine_is_deserialized_from_a_map_of_its_file(tmp_path):
    """deserialize_cuda_engine takes any buffer: a multi-GB engine goes to it as a read-only
    map of its file, not as a copy on the heap; an empty file is no engine. (A stand-in for
    TensorRT's Runtime: TensorRT runs on no machine of this project.)"""
    import mmap

    from amodal_ros.accel.trt_backend import read_engine

    class Runtime:
        def deserialize_cuda_engine(self, blob):
            self.given = type(blob), bytes(blob)
            return "engine"

    path = tmp_path / "unet.engine"
    path.write_bytes(b"plan")
    runtime = Runtime()
    assert read_engine(runtime, path) == "engine" and runtime.given == (mmap.mmap, b"plan")
    path.write_bytes(b"")
    assert read_engine(runtime, path) is None


def test_tensorrt_profile_covers_every_batched_input_also_for_one_window():
    """TensorRT builds no engine whose dynamic inputs have no profile: with max_batch 1
    (realtime, one object per call) every batched input still gets its (min, opt, max)."""
    spec = UNetSpec(
        frames=4,
        in_channels=8,
        latent_height=4,
        latent_width=8,
        tokens=4,
        context_dim=16,
        max_batch=1,
    )
    one = profile_for(spec)
    assert sorted(one) == ["context", "sample", "time_ids"]  # the timestep has no batch axis
    assert one["sample"] == ((1, 4, 8, 4, 8),) * 3
    four = profile_for(dataclasses.replace(spec, max_batch=4))
    assert four["context"] == ((4, 4, 16), (16, 4, 16), (16, 4, 16))
    assert profile_for(DepthSpec(28, 42, max_batch=1)) == {"pixel_values": ((1, 3, 28, 42),) * 3}


def test_the_engine_key_follows_the_build_settings(monkeypatch):
    from amodal_ros.accel import trt_backend

    before = trt_backend.build_code()  # the build function's source and its workspace
    monkeypatch.setattr(trt_backend, "WORKSPACE_BYTES", 4 << 30)
    assert trt_backend.build_code() != before


def test_onnxruntime_runs_on_the_gpu_asked_for():
    assert providers_for(torch.device("cuda:1"))[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert providers_for(torch.device("cuda"))[0][1] == {"device_id": 0}
    assert providers_for(CPU) == ["CPUExecutionProvider"]


def test_two_processes_building_one_export_both_end_with_it(tmp_path):
    """An ONNX export is a folder: when another process finishes the same key first, this
    one uses that folder instead of failing on the rename, and leaves no temporary folder."""
    cache = ArtifactCache(tmp_path)

    def build(path):
        path.mkdir()
        (path / "model.onnx").write_bytes(b"mine")
        other = cache.path("unet-onnx", "k", "")  # meanwhile, another process's build lands
        other.mkdir()
        (other / "model.onnx").write_bytes(b"theirs")

    built = cache.get_or_build("unet-onnx", "k", "", build, {})
    assert (built / "model.onnx").read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["unet-onnx-k"]


def test_a_killed_builds_leftovers_are_removed_by_the_next_build(tmp_path):
    """SIGKILL skips a build's cleanup; the next build on the machine removes what it left,
    and neither a live build's staging folder nor another machine's."""
    from amodal_ros.core.staging import HOST

    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its PID names no running process now
    cache = ArtifactCache(tmp_path)
    dead = tmp_path / f".unet-trt-old.engine.partial-{HOST}-{killed.pid}"
    live = tmp_path / f".unet-trt-new.engine.partial-{HOST}-{os.getpid()}"
    elsewhere = tmp_path / f".unet-trt-old.engine.partial-other-machine-{killed.pid}"
    # a host whose name starts with this one's (node1, node1-gpu): not ours either
    longer = tmp_path / f".unet-trt-old.engine.partial-{HOST}-gpu-{killed.pid}"
    for leftover in (dead, live, elsewhere, longer):
        leftover.mkdir()
        (leftover / "weights.bin").write_bytes(b"half")
    cache.get_or_build("unet-onnx", "k", "", lambda path: path.mkdir(), {})
    assert not dead.exists() and live.exists() and elsewhere.exists() and longer.exists()


def test_the_export_key_follows_the_code_that_traces_the_model(monkeypatch):
    from amodal_ros.accel import artifacts

    unet = build_components("tiny", seed=0, in_channels=8).unet
    before = artifacts.code_hash(unet)
    assert artifacts.code_hash(unet) == before
    monkeypatch.setattr(
        artifacts.Path, "read_bytes", lambda self: b"changed " + self.name.encode()
    )
    assert artifacts.code_hash(unet) != before


def test_model_hash_follows_the_weights():
    unet = build_components("tiny", seed=0, in_channels=8).unet
    before = model_hash(unet)
    assert model_hash(build_components("tiny", seed=0, in_channels=8).unet) == before
    with torch.no_grad():
        unet.conv_out.bias[0] += 1.0
    assert model_hash(unet) != before


def test_model_hash_is_the_same_in_every_process():
    """diffusers lists `_use_default_values` from a set, in an order that differs between
    processes (PYTHONHASHSEED): a prebuilt engine was missed and a run's init refused."""
    from diffusers.configuration_utils import FrozenDict

    unet = build_components("tiny", seed=0, in_channels=8).unet
    before = model_hash(unet)
    listed = list(unet.config["_use_default_values"])
    assert len(listed) > 1
    unet._internal_dict = FrozenDict({**unet.config, "_use_default_values": listed[::-1]})
    assert model_hash(unet) == before
    unet._internal_dict = FrozenDict({**unet.config, "num_attention_heads": 3})
    assert model_hash(unet) != before  # a setting is still the model's


def test_model_hash_ignores_the_library_version_that_writes_the_config(monkeypatch):
    """The image encoder's config carries `transformers_version`: a run carried to a machine
    with another transformers was refused its resume, its frozen image encoder "changed"."""
    from transformers import configuration_utils

    encoder = build_components("tiny", seed=0, in_channels=8).image_encoder
    before = model_hash(encoder)
    monkeypatch.setattr(configuration_utils, "__version__", "0.0.1")
    assert encoder.config.to_dict()["transformers_version"] == "0.0.1"
    assert model_hash(encoder) == before
    encoder.config.hidden_act = "relu"
    assert model_hash(encoder) != before


def test_the_engine_cache_is_the_configured_folder_then_the_environments(tmp_path, monkeypatch):
    """engine_cache (the parameter) wins over $AMODAL_ROS_ENGINE_CACHE, which wins over the
    default under ~/.cache: a configured folder must not be overridden by the variable."""
    from amodal_ros.accel.artifacts import cache_dir

    monkeypatch.setenv("AMODAL_ROS_ENGINE_CACHE", str(tmp_path / "env"))
    assert cache_dir(str(tmp_path / "configured")) == tmp_path / "configured"
    assert cache_dir("") == tmp_path / "env"
    monkeypatch.delenv("AMODAL_ROS_ENGINE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("") == tmp_path / "home" / ".cache" / "amodal_ros" / "engines"
    assert cache_dir("~/engines") == tmp_path / "home" / "engines"


def test_an_engine_cache_only_its_owner_may_write_into_is_used_as_it_is(tmp_path, caplog):
    """Only the write bits of group and others make a folder unsafe: one that others may only
    read or enter, sticky or not, is used unchanged and without a warning."""

    def build(path):
        path.write_bytes(b"engine")

    for mode in (0o700, 0o751, 0o1755):
        folder = tmp_path / f"{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        with caplog.at_level(logging.WARNING, logger="amodal_ros.accel"):
            ArtifactCache(folder).get_or_build("unet-trt", "k", ".engine", build, {})
        assert (folder.stat().st_mode & 0o7777) == mode
    assert caplog.text == ""


def test_a_folder_artifact_is_intact_only_when_every_file_is(tmp_path):
    """An ONNX export is a folder (graph and external weights): its record holds each file's
    hash, so a damaged graph beside intact weights is built again."""
    builds = []

    def build(path):
        builds.append(path)
        path.mkdir()
        (path / "model.onnx").write_bytes(b"graph")
        (path / "model.onnx.data").write_bytes(b"weights")

    target = ArtifactCache(tmp_path).get_or_build("unet-onnx", "k", "", build, {})
    record = json.loads(target.with_name(target.name + ".json").read_text())
    assert sorted(record["files"]) == ["model.onnx", "model.onnx.data"]
    (target / "model.onnx").write_bytes(b"grap?")  # the first file of two
    assert ArtifactCache(tmp_path).get_intact("unet-onnx", "k", "", build, {}) == target
    assert len(builds) == 2 and (target / "model.onnx").read_bytes() == b"graph"


def test_a_rename_that_fails_is_raised_and_leaves_nothing(tmp_path, monkeypatch):
    """Only a rename that lost to another process's finished build is taken as done; one that
    fails with nothing under the name (a disk error, which no test can cause for real) is
    raised, not answered with the path of a missing artifact."""
    replace = os.replace

    def failing(src, dst):
        if str(dst).endswith(".engine"):
            raise OSError(errno.EIO, "Input/output error")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    cache = ArtifactCache(tmp_path)
    with pytest.raises(OSError, match="Input/output error"):
        cache.get_or_build("unet-trt", "k", ".engine", lambda path: path.write_bytes(b"e"), {})
    assert list(tmp_path.iterdir()) == [] and cache.built == 0


def test_keys_do_not_depend_on_the_order_of_their_parts():
    """The same parts (keywords, a dict's entries, a model config's entries) in another order
    give the same key: a caller listing them otherwise still finds its cached artifact."""
    from diffusers.configuration_utils import FrozenDict

    a = artifact_key(model="m", shapes={"x": (1, 2), "y": (3,)}, precision="fp16")
    b = artifact_key(precision="fp16", shapes={"y": (3,), "x": (1, 2)}, model="m")
    assert a == b
    unet = build_components("tiny", seed=0, in_channels=8).unet
    before = model_hash(unet)
    unet._internal_dict = FrozenDict(dict(reversed(list(unet.config.items()))))
    assert model_hash(unet) == before


def test_model_hash_follows_the_shapes_of_the_weights():
    """Equal bytes in another shape are another model: a module without a config (a plain
    torch layer) is told apart by its weights' shapes."""
    wide, tall = torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 3, bias=False)
    for layer in (wide, tall):
        torch.nn.init.zeros_(layer.weight)
    assert model_hash(wide) != model_hash(tall)


@needs_trt[0]
@needs_trt[1]
def test_tensorrt_unet_matches_eager(components12, tiny_config, tmp_path, capfd):
    gpu = components12.to("cuda")
    try:
        config = tiny_config.replace(device="cuda", engine_cache=str(tmp_path))
        trt = WindowSampler(gpu, config.replace(unet_backend="tensorrt"))
        eager = WindowSampler(gpu, config.replace(unet_backend="eager"))
        inputs = [x.cuda() for x in _unet_inputs(eager, 2)]
        # FP16 engine against the fp32 module
        torch.testing.assert_close(
            trt.predict(*inputs), eager.predict(*inputs), atol=2e-2, rtol=2e-2
        )
        again = WindowSampler(gpu, config.replace(unet_backend="tensorrt"))
        assert again.artifacts.built == 0  # nothing changed: the cached engine is used
        # each engine runs on a stream of its own, not the default one TensorRT warns about
        assert "default stream" not in "".join(capfd.readouterr())
    finally:
        components12.to("cpu")


@needs_trt[0]
@needs_trt[1]
def test_tensorrt_depth_matches_eager(tmp_path):
    model = build_depth_anything("tiny")
    frames = np.random.default_rng(0).integers(0, 255, (3, 30, 44, 3), dtype=np.uint8)
    eager = DepthAnythingDepth(model, input_size=28, device="cuda").inverse_depth(frames)
    trt = DepthAnythingDepth(
        model, input_size=28, device="cuda", backend="tensorrt", engine_cache=str(tmp_path)
    )
    assert_matches_depth(trt.inverse_depth(frames), eager, 2e-2)


def test_unet_spec_shapes():
    spec = UNetSpec(
        frames=25,
        in_channels=12,
        latent_height=32,
        latent_width=64,
        tokens=25,
        context_dim=1024,
        max_batch=2,
    )
    shapes = spec.shapes(2)
    assert shapes["sample"] == (2, 25, 12, 32, 64)
    assert shapes["context"] == (50, 25, 1024) and shapes["time_ids"] == (2, 3)
