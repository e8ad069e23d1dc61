"""Loading checkpoints in the published Diffusion-VAS layout (tiny, written by the tests)."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from amodal_ros.core import CheckpointError
from amodal_ros.models.architectures import build_components
from amodal_ros.models.layout import load_components, save_published_layout
from amodal_ros.pipeline import AmodalSegmenter

UNET_FILE = "unet/diffusion_pytorch_model.safetensors"


def test_published_layout_has_conv_in_and_conv_in2(published_folder):
    state = load_file(str(published_folder / UNET_FILE))
    assert state["conv_in.weight"].shape[1] == 8
    assert state["conv_in2.weight"].shape[1] == 12
    assert json.loads((published_folder / "unet/config.json").read_text())["in_channels"] == 8


def test_published_checkpoint_loads_and_matches_the_built_model(
    published_folder, components12, tiny_config, tracks, inverse_depth
):
    loaded = load_components(published_folder)
    assert loaded.unet.config.in_channels == 12 and loaded.num_conditions == 2
    # conv_in2 became the 12-channel conv_in; the unused 8-channel conv_in was dropped
    assert torch.equal(loaded.unet.conv_in.weight, components12.unet.conv_in.weight)
    direct = AmodalSegmenter(components12, tiny_config)(tracks, inverse_depth)
    from_disk = AmodalSegmenter(loaded, tiny_config)(tracks, inverse_depth)
    for a, b in zip(direct, from_disk):
        np.testing.assert_allclose(a.soft, b.soft, atol=1e-5)
        assert (a.amodal == b.amodal).all()


def test_mask_only_checkpoint_loads_with_8_channels(tmp_path, components8, tiny_config, tracks):
    folder = save_published_layout(components8, tmp_path / "mask_only")
    assert "conv_in2.weight" not in load_file(str(folder / UNET_FILE))
    loaded = load_components(folder)
    assert loaded.unet.config.in_channels == 8 and loaded.num_conditions == 1
    results = AmodalSegmenter(loaded, tiny_config)(tracks)
    assert results[0].amodal.shape == tracks[0].masks.shape


def test_missing_folder_says_what_to_download(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist.*diffusion-vas"):
        load_components(tmp_path / "nope")


def test_folder_that_is_not_a_checkpoint_names_what_is_missing(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(
        CheckpointError, match=r"missing model_index.json, vae, image_encoder, scheduler"
    ):
        load_components(tmp_path)


def test_pickle_only_weights_are_refused(tmp_path, published_folder):
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    (folder / UNET_FILE).unlink()
    (folder / "unet/diffusion_pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(CheckpointError, match="pickle.*never loaded"):
        load_components(folder)


@pytest.mark.parametrize(
    "component, weights, shard, said",
    [
        ("vae", "diffusion_pytorch_model.safetensors", "evil.bin", "not a .safetensors file"),
        ("image_encoder", "model.safetensors", "../../elsewhere/evil.bin", "shards outside"),
    ],
)
def test_an_index_naming_a_pickle_is_refused(
    tmp_path, published_folder, component, weights, shard, said
):
    """diffusers and transformers follow a sharded index, even with use_safetensors, to the
    file it names: they unpickled a .bin beside a valid .safetensors (and transformers one
    outside the folder), with torch's restricted unpickler the only barrier."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    state = load_file(str(folder / component / weights))
    pickle = (folder / component / shard).resolve()
    pickle.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, pickle)  # the same weights: the libraries loaded them without a word
    if component == "image_encoder":  # transformers reads the index when the file is absent
        (folder / component / weights).rename(folder / component / "decoy.safetensors")
    index = folder / component / f"{weights}.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": dict.fromkeys(state, shard)}))
    with pytest.raises(CheckpointError, match=said):
        load_components(folder)


def test_a_pickle_index_beside_safetensors_weights_is_left_alone(tmp_path, published_folder):
    """Hub snapshots often ship both formats; with use_safetensors no library reads the
    pickle index, so it does not make a good folder unloadable."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    index = folder / "image_encoder" / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"weight_map": {"w": "pytorch_model-00001-of-00001.bin"}}))
    assert load_components(folder).image_encoder is not None


def _edit_unet_state(folder, edit):
    state = load_file(str(folder / UNET_FILE))
    edit(state)
    save_file(state, str(folder / UNET_FILE))


def test_unexpected_and_missing_keys_are_named(tmp_path, published_folder):
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    _edit_unet_state(folder, lambda s: s.update({"extra.layer.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected keys: extra\.layer\.weight"):
        load_components(folder)
    _edit_unet_state(folder, lambda s: (s.pop("extra.layer.weight"), s.pop("conv_out.bias")))
    with pytest.raises(CheckpointError, match=r"1 missing keys: conv_out\.bias"):
        load_components(folder)


@pytest.mark.parametrize(
    "weights, key",
    [
        ("vae/diffusion_pytorch_model.safetensors", "decoder.conv_out.bias"),
        ("image_encoder/model.safetensors", "vision_model.post_layernorm.weight"),
    ],
)
def test_every_component_refuses_missing_and_unexpected_weights(
    tmp_path, published_folder, weights, key
):
    """The libraries would initialise a missing weight at random with a warning only."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt", symlinks=False)
    state = load_file(str(folder / weights))
    del state[key]
    save_file(state, str(folder / weights), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"1 missing keys: {key.replace('.', '[.]')}"):
        load_components(folder)
    save_file({**load_file(str(published_folder / weights)), "extra": torch.zeros(1)},
              str(folder / weights), metadata={"format": "pt"})  # fmt: skip
    with pytest.raises(CheckpointError, match="1 unexpected keys: extra"):
        load_components(folder)


def test_wrong_input_channel_count_is_refused(tmp_path):
    folder = save_published_layout(build_components("tiny", in_channels=8), tmp_path / "ckpt")
    _edit_unet_state(folder, lambda s: s.update({"conv_in.weight": torch.zeros(32, 6, 3, 3)}))
    with pytest.raises(CheckpointError, match="6 channels; expected 8"):
        load_components(folder)


def test_a_published_folder_runs_as_published_and_ours_as_trained(tmp_path, components12):
    """Without our metadata (the authors' folders) a checkpoint defaults to 256x512 and the
    'reference' conditioning; a folder written here keeps its own size and 'consistent'."""
    from amodal_ros.core import InferenceConfig
    from amodal_ros.core.config import StreamConfig
    from amodal_ros.pipeline.factory import build

    published = save_published_layout(components12, tmp_path / "published", defaults={})
    ours = save_published_layout(components12, tmp_path / "ours")
    config = InferenceConfig(num_frames=4, num_steps=1)
    pipes = build(StreamConfig(checkpoint=str(published)), config)
    assert (pipes.config.height, pipes.config.width) == (256, 512)
    assert pipes.config.conditioning_mode == "reference" and pipes.config.fps_id == 7
    assert "authors' inference path" in pipes.describe()
    pipes = build(StreamConfig(checkpoint=str(ours)), config)
    assert (pipes.config.height, pipes.config.width) == (32, 64)
    assert pipes.config.conditioning_mode == "consistent" and "trained" in pipes.mode_reason
    chosen = build(
        StreamConfig(checkpoint=str(ours)), config.replace(conditioning_mode="reference")
    )
    assert chosen.config.conditioning_mode == "reference" and chosen.mode_reason == "as configured"


def test_other_settings_run_the_same_models_both_stages(tmp_path, components12, stage2_folder):
    """`with_config` (bench's presets and variants): both stages under the new settings with
    the models as loaded, and the conditioning mode's reason found again for 'auto'."""
    from amodal_ros.core import InferenceConfig
    from amodal_ros.core.config import StreamConfig
    from amodal_ros.pipeline.factory import build

    ours = save_published_layout(components12, tmp_path / "ours")
    config = InferenceConfig(num_frames=4, num_steps=1, conditioning_mode="reference")
    stream = StreamConfig(checkpoint=str(ours), completion_checkpoint=str(stage2_folder))
    pipes = build(stream, config)
    again = pipes.with_config(config.replace(num_steps=2, conditioning_mode="auto"))
    assert again.segmenter.components is pipes.segmenter.components
    assert again.completer.components is pipes.completer.components
    assert again.config.num_steps == again.completer.config.num_steps == 2
    assert again.config.conditioning_mode == "consistent" and "trained" in again.mode_reason


def test_a_device_this_machine_lacks_is_refused_before_any_model_loads():
    from amodal_ros.core import InferenceConfig, InputError
    from amodal_ros.core.config import StreamConfig
    from amodal_ros.pipeline.factory import build

    stream = StreamConfig(checkpoint="embedded")
    with pytest.raises(InputError, match="'gpu0' is not a torch device"):
        build(stream, InferenceConfig(device="gpu0"))
    if torch.cuda.is_available():
        bad, why = f"cuda:{torch.cuda.device_count()}", "this machine has"
    else:  # torch would raise an AssertionError deep inside .to()
        bad, why = "cuda", "sees no CUDA GPU"
    with pytest.raises(InputError, match=why):
        build(stream, InferenceConfig(device=bad))


def test_a_folder_of_fp16_variant_weights_loads(tmp_path, published_folder, components12):
    """A download of only the fp16 variant (`--include "*fp16*"`, as the reference's scripts
    load it) names every file *.fp16.*: the VAE and image encoder failed to load, and a UNet
    in fp16 shards had "no UNet weights"; a stray .safetensors beside them failed it again."""
    folder = tmp_path / "fp16"
    shutil.copytree(published_folder, folder)
    image_encoder = folder / "image_encoder"
    (image_encoder / "model.safetensors").rename(image_encoder / "model.fp16.safetensors")
    shutil.copy(image_encoder / "model.fp16.safetensors", image_encoder / "extra.safetensors")
    # shards as diffusers writes them (its index is *.safetensors.index.fp16.json)
    for sub in ("vae", "unet"):
        shutil.rmtree(folder / sub)
        model = getattr(components12, sub)
        model.save_pretrained(folder / sub, variant="fp16", max_shard_size="100KB")
        assert len(list((folder / sub).glob("*.fp16-0*-of-*.safetensors"))) > 1
    loaded = load_components(folder)
    assert torch.equal(
        loaded.vae.decoder.conv_out.weight, components12.vae.decoder.conv_out.weight
    )
    assert torch.equal(loaded.unet.conv_in.weight, components12.unet.conv_in.weight)


def test_the_unet_is_built_without_weights_of_its_own_and_takes_fp16_files_as_fp32(
    tmp_path, published_folder, components12
):
    """The UNet is built on the meta device (no random init to overwrite) and takes the
    checkpoint's tensors: every one is real, in fp32, whatever the file stored."""
    folder = tmp_path / "half"
    shutil.copytree(published_folder, folder)
    state = load_file(str(folder / UNET_FILE))
    save_file({k: v.half() for k, v in state.items()}, str(folder / UNET_FILE))
    unet = load_components(folder).unet
    tensors = list(unet.parameters()) + list(unet.buffers())
    assert not any(t.is_meta for t in tensors) and {t.dtype for t in tensors} == {torch.float32}
    torch.testing.assert_close(
        unet.conv_in.weight, components12.unet.conv_in.weight.half().float()
    )


def test_an_image_encoder_of_another_width_is_refused(tmp_path, components12):
    """A CLIP whose embeddings are not as wide as the UNet's cross-attention (ViT-L's 768
    beside SVD's 1024) loaded, then failed inside the first window with a matmul error."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    clip = components12.image_encoder.config.to_dict()
    wider = CLIPVisionModelWithProjection(CLIPVisionConfig(**{**clip, "projection_dim": 48}))
    mixed = build_components("tiny")
    mixed.image_encoder = wider
    folder = save_published_layout(mixed, tmp_path / "mixed")
    with pytest.raises(CheckpointError, match="embeds frames in 48 .* reads 32; the two"):
        load_components(folder)


def test_a_folder_records_its_stage_and_is_refused_for_the_other(tmp_path, components12):
    """Both stages' UNets take 12 channels: only the folder's record tells them apart. An
    unmarked (published) folder loads for either stage, as the stage it was loaded for."""
    from amodal_ros.pipeline import ContentCompleter

    published = save_published_layout(components12, tmp_path / "published")
    assert load_components(published).stage is None
    first = load_components(published, stage=1)
    assert first.stage == 1 and load_components(published, stage=2).stage == 2
    ours = save_published_layout(first, tmp_path / "ours")  # what training writes
    assert json.loads((ours / "model_index.json").read_text())["amodal_ros"]["stage"] == 1
    assert load_components(ours).stage == 1  # loaded without a stage: the folder's own
    with pytest.raises(CheckpointError, match=r"is a stage-1 checkpoint \(amodal segmentation"):
        load_components(ours, stage=2)
    with pytest.raises(CheckpointError, match="pass it as `checkpoint` .--checkpoint."):
        ContentCompleter.from_pretrained(ours)
    # a damaged record is a CheckpointError (an AttributeError's traceback; true as stage 1)
    index = json.loads((ours / "model_index.json").read_text())
    for key, value, said in (
        (None, None, "amodal_ros is None, not a mapping"),
        ("defaults", [1], r"amodal_ros.defaults is \[1\], not a mapping"),
        ("stage", True, "amodal_ros.stage is True, not one of"),
    ):
        damaged = dict(
            index, amodal_ros=None if key is None else {**index["amodal_ros"], key: value}
        )
        (ours / "model_index.json").write_text(json.dumps(damaged))
        with pytest.raises(CheckpointError, match=said):
            load_components(ours)


@pytest.mark.parametrize("stage, other", [(1, 2), (2, 1)])
def test_the_embedded_stages_cannot_be_swapped(stage, other):
    """`AmodalSegmenter.from_pretrained(embedded/stage2)` loaded and ran stage 2's UNet."""
    from amodal_ros.models import registry
    from amodal_ros.pipeline import ContentCompleter

    pipeline = {1: AmodalSegmenter, 2: ContentCompleter}[other]
    parameter = {1: "`checkpoint` (--checkpoint)", 2: "`completion_checkpoint`"}[stage]
    with pytest.raises(CheckpointError, match=f"stage-{stage} checkpoint") as error:
        pipeline.from_pretrained(registry.embedded_folder(stage))
    assert f"pass it as {parameter}" in str(error.value)


def test_a_copied_folder_with_broken_links_says_to_copy_with_cp_rl(tmp_path):
    """`cp -r embedded/stage2 X` keeps its relative links, which then lead nowhere: the error
    said "missing vae, image_encoder" while `ls` showed both."""
    from amodal_ros.models import registry

    copy = shutil.copytree(registry.embedded_folder(2), tmp_path / "stage2", symlinks=True)
    assert (copy / "vae").is_symlink()
    with pytest.raises(CheckpointError, match=r"broken links vae -> \.\./stage1/vae.*cp -rL"):
        load_components(copy)


INDEX = "unet/diffusion_pytorch_model.safetensors.index.json"


def test_an_index_with_missing_shards_does_not_hide_the_single_file(
    tmp_path, published_folder, components12
):
    """A leftover index of an interrupted sharded download (one shard of two there) beside a
    complete single file: the file loads; without it the missing shard is named."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    state = load_file(str(folder / UNET_FILE))
    shards = [f"diffusion_pytorch_model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    save_file({"conv_out.bias": state["conv_out.bias"]}, str(folder / "unet" / shards[0]))
    weight_map = {k: shards[0] if k == "conv_out.bias" else shards[1] for k in state}
    (folder / INDEX).write_text(json.dumps({"weight_map": weight_map}))
    loaded = load_components(folder)
    assert torch.equal(loaded.unet.conv_in.weight, components12.unet.conv_in.weight)
    (folder / UNET_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"{INDEX}: shard {shards[1]} missing, and no"):
        load_components(folder)


def test_the_full_precision_file_wins_over_complete_fp16_shards(
    tmp_path, published_folder, components12
):
    """As diffusers chooses: a complete fp16 index beside the full file loaded the rounded
    weights."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    state = load_file(str(folder / UNET_FILE))
    shard = "diffusion_pytorch_model-00001-of-00001.fp16.safetensors"
    save_file({k: v.half() for k, v in state.items()}, str(folder / "unet" / shard))
    index = folder / "unet" / "diffusion_pytorch_model.safetensors.index.fp16.json"
    index.write_text(json.dumps({"weight_map": {k: shard for k in state}}))
    loaded = load_components(folder)
    assert torch.equal(loaded.unet.conv_in.weight, components12.unet.conv_in.weight)
    (folder / UNET_FILE).unlink()  # the variant alone: it loads
    rounded = load_components(folder).unet.conv_in.weight
    assert torch.equal(rounded, components12.unet.conv_in.weight.half().float())


def test_the_image_encoder_loads_in_fp32_whatever_its_config_states(tmp_path, published_folder):
    """transformers 5 loads in the dtype config.json states (float16 in the published CLIP
    configs) unless told: a frozen CLIP then ran in fp16 beside the fp32 VAE and UNet."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    config_path = folder / "image_encoder" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "dtype": "float16", "torch_dtype": "float16"}))
    loaded = load_components(folder)
    for module in (loaded.unet, loaded.vae, loaded.image_encoder):
        assert {p.dtype for p in module.parameters()} == {torch.float32}


def test_a_file_given_as_the_checkpoint_is_named_a_file(published_folder):
    weights = published_folder / UNET_FILE
    with pytest.raises(CheckpointError, match=r"is a file: a checkpoint is a diffusers folder"):
        load_components(weights)


def test_a_folder_without_a_preprocessor_config_normalises_as_clip_does(
    tmp_path, published_folder
):
    from amodal_ros.models.components import CLIP_MEAN, CLIP_STD

    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    (folder / "feature_extractor" / "preprocessor_config.json").unlink()
    loaded = load_components(folder)
    assert (loaded.clip_mean, loaded.clip_std) == (CLIP_MEAN, CLIP_STD)


def test_the_unet_loader_alone_refuses_an_index_naming_files_outside_its_folder(
    tmp_path, published_folder
):
    """load_unet reads what an index names, so it checks the names itself (load_components
    checks the whole folder first): a shard '../x' would be read from another folder."""
    from amodal_ros.models.layout import load_unet

    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    shard = "../vae/diffusion_pytorch_model.safetensors"
    (folder / INDEX).write_text(json.dumps({"weight_map": {"conv_in.weight": shard}}))
    with pytest.raises(CheckpointError, match="names shards outside"):
        load_unet(folder / "unet")


def test_the_full_precision_files_win_over_fp16_variants_beside_them(
    tmp_path, published_folder, components12
):
    """A hub snapshot holds both model.safetensors and model.fp16.safetensors: the VAE and
    the image encoder load the full weights, as the libraries do when no variant is asked."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    for weights in ("vae/diffusion_pytorch_model.safetensors", "image_encoder/model.safetensors"):
        state = load_file(str(folder / weights))
        rounded = {k: v.half() for k, v in state.items()}
        variant = folder / weights.replace(".safetensors", ".fp16.safetensors")
        save_file(rounded, str(variant), metadata={"format": "pt"})
    loaded = load_components(folder)
    for name, built in (("vae", components12.vae), ("image_encoder", components12.image_encoder)):
        full = built.state_dict()
        assert all(torch.equal(v, full[k]) for k, v in getattr(loaded, name).state_dict().items())


def test_a_pickle_beside_safetensors_of_another_name_is_never_loaded(tmp_path, published_folder):
    """The folder check passes on any .safetensors file; the libraries, unless told to take
    safetensors only, fall back to the pickle the component's standard name leaves
    (pytorch_model.bin) when no standard .safetensors is there, and unpickle it."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    encoder = folder / "image_encoder"
    torch.save(load_file(str(encoder / "model.safetensors")), encoder / "pytorch_model.bin")
    (encoder / "model.safetensors").rename(encoder / "decoy.safetensors")
    with pytest.raises(CheckpointError, match="image_encoder: could not load CLIPVision"):
        load_components(folder)


def test_a_published_unet_without_its_conv_in2_bias_is_refused(tmp_path, published_folder):
    """The unused 8-channel conv_in is dropped whole: its bias, of the same shape, must not
    stand in for a missing conv_in2 bias."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    _edit_unet_state(folder, lambda s: s.pop("conv_in2.bias"))
    with pytest.raises(CheckpointError, match=r"1 missing keys: conv_in\.bias"):
        load_components(folder)


def test_a_unet_folder_without_weights_of_its_names_lists_the_names(tmp_path, published_folder):
    """A .safetensors file under another name passes the folder check; the UNet loader then
    names the files it reads."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    (folder / UNET_FILE).rename(folder / "unet" / "unet.safetensors")
    with pytest.raises(CheckpointError, match="no UNet weights; expected one of diffusion_py"):
        load_components(folder)


def _unblock(fifo, after: float = 3.0):
    """Open `fifo` for writing after `after` s and close it: a reader blocked on it then reads
    nothing, so a loader that opens it fails instead of hanging the test."""
    import os
    import threading
    import time

    def write():
        time.sleep(after)
        os.close(os.open(fifo, os.O_WRONLY))

    threading.Thread(target=write, daemon=True).start()


@pytest.mark.parametrize(
    "file",
    [
        "vae/stray.safetensors",  # every *.safetensors of a component is checked
        UNET_FILE,
        "model_index.json",
        "scheduler/scheduler_config.json",
        "image_encoder/model.safetensors.index.json",
    ],
)
def test_a_fifo_named_as_a_weight_or_json_file_is_refused_without_reading_it(
    tmp_path, published_folder, file
):
    """Reading a FIFO blocks until something writes to it: the load hung forever (and a link
    to /dev/zero in its place read until memory ran out)."""
    import os

    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    path = folder / file
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    _unblock(path)
    with pytest.raises(CheckpointError, match="a FIFO or device, not a regular file") as error:
        load_components(folder)
    assert str(path) in str(error.value)


def test_a_json_file_nested_too_deep_is_a_checkpoint_error(tmp_path, published_folder):
    """json.loads raises RecursionError past ~1000 levels: it was a traceback."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    (folder / "model_index.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="model_index.json: unreadable JSON .maximum rec"):
        load_components(folder)


@pytest.mark.parametrize(
    "component, key",
    [
        ("unet", "layers_per_block"),
        ("unet", "transformer_layers_per_block"),
        ("vae", "layers_per_block"),
        ("image_encoder", "num_hidden_layers"),
    ],
)
def test_a_config_counting_more_layers_than_its_weights_is_refused_before_building(
    tmp_path, published_folder, component, key
):
    """The model is built from its config before its weights are compared: a damaged count
    (10,000 layers per block: minutes, even on the meta device; a million: hours and
    gigabytes) is refused against the layers the weights number."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    path = folder / component / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: 50}))
    with pytest.raises(CheckpointError, match=f"{key} counts 50 but the weights beside") as error:
        load_components(folder)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "edit, said",
    [
        ({"num_train_timesteps": 10**9}, "num_train_timesteps is 1000000000, not a count"),
        ({"beta_schedule": "evil"}, "not a valid scheduler config .NotImplementedError"),
        ({"sigma_max": "x"}, "not a valid scheduler config .TypeError"),
        ({"prediction_type": "evil"}, "not a valid scheduler config .ValueError"),
    ],
)
def test_a_damaged_scheduler_config_is_named_at_load(tmp_path, published_folder, edit, said):
    """The scheduler was first built in the first window: its errors were tracebacks there,
    and 10**9 training timesteps allocated 4 GB of betas."""
    edited_json_is_refused(
        tmp_path, published_folder, "scheduler/scheduler_config.json", edit, said
    )


@pytest.mark.parametrize(
    "edit, said",
    [
        ({"image_mean": None}, "image_mean is None, not three numbers"),
        ({"image_mean": [0.5]}, r"image_mean is \[0.5\], not three numbers"),
        ({"image_std": [0, 0, 0]}, r"image_std \[0, 0, 0\] is not positive"),
    ],
)
def test_a_damaged_clip_normalisation_is_named_at_load(tmp_path, published_folder, edit, said):
    """A null mean was a TypeError's traceback at load, a short one a RuntimeError in the first
    window, and a zero std NaN in every output."""
    json_file = "feature_extractor/preprocessor_config.json"
    edited_json_is_refused(tmp_path, published_folder, json_file, edit, said)


def edited_json_is_refused(tmp_path, published_folder, json_file: str, edit: dict, said: str):
    """A copy of the published folder with `edit` merged into its `json_file` is refused at
    load with `said`, naming that file."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    path = folder / json_file
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(CheckpointError, match=said) as error:
        load_components(folder)
    assert str(path) in str(error.value)


def test_recorded_defaults_the_config_refuses_name_the_folder(tmp_path, components12):
    """A damaged working size in model_index.json was a ValueError at the first window that
    read as if the user had set it."""
    folder = save_published_layout(components12, tmp_path / "ckpt", defaults={"height": "abc"})
    with pytest.raises(CheckpointError, match="amodal_ros.defaults: height must be int") as error:
        load_components(folder)
    assert str(folder / "model_index.json") in str(error.value)


def test_unet_weights_in_two_shards_or_not_stored_as_floats_are_refused(
    tmp_path, published_folder
):
    """A weight held by two shards took the later shard's value (all zeros in the fuzzing),
    whatever the index maps; weights stored as int8 or bool were converted to float and
    loaded silently as a model of garbage."""
    folder = shutil.copytree(published_folder, tmp_path / "ckpt")
    state = load_file(str(folder / UNET_FILE))
    (folder / UNET_FILE).unlink()
    shards = [f"diffusion_pytorch_model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    save_file(state, str(folder / "unet" / shards[0]))
    zeros = {"conv_out.bias": torch.zeros_like(state["conv_out.bias"])}
    save_file(zeros, str(folder / "unet" / shards[1]))
    weight_map = {k: shards[1] if k in zeros else shards[0] for k in state}
    (folder / INDEX).write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=f"shard {shards[1]} holds weights an earlier"):
        load_components(folder)
    (folder / INDEX).unlink()
    for shard in shards:
        (folder / "unet" / shard).unlink()
    save_file(
        {**state, "conv_out.weight": state["conv_out.weight"].to(torch.int8)},
        str(folder / UNET_FILE),
    )
    with pytest.raises(
        CheckpointError, match=r"1 not stored as floats: conv_out.weight torch.int8"
    ):
        load_components(folder)
