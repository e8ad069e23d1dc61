"""A corrupt weight file in any component gets one clear line naming the file, exit code 2 and
no output: truncated, garbage and empty files, in the UNet, the VAE and the image encoder."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.cli.main import main  # noqa: E402
from amodal_ros.core.errors import CheckpointError  # noqa: E402
from amodal_ros.models.weights import check_safetensors  # noqa: E402

pytestmark = pytest.mark.slow  # starts whole commands on real files

WEIGHTS = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "image_encoder": "image_encoder/model.safetensors",
}
CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) * 2 // 3],
    "garbage": lambda data: b"\x13\x37not safetensors at all" * 50,
    "empty": lambda data: b"",
}


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory):
    from amodal_ros.cli import io
    from amodal_ros.data.scenes import make_scene

    clip = make_scene(0, num_frames=2, height=32, width=64)
    folder = tmp_path_factory.mktemp("clip")
    for t in range(2):
        io.write_png(folder / "rgb" / f"{t}.png", clip.rgb[t])
        io.write_png(folder / "labels" / f"{t}.png", clip.labels[t])
    return folder


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("component", sorted(WEIGHTS))
def test_corrupt_weights_end_infer_with_one_line_naming_the_file(
    component, corruption, published_folder, clip_dirs, tmp_path, capsys
):
    ckpt = shutil.copytree(published_folder, tmp_path / "ckpt")
    path = ckpt / WEIGHTS[component]
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    out = tmp_path / "out"
    argv = ["infer", "--frames", str(clip_dirs / "rgb"), "--masks", str(clip_dirs / "labels")]
    argv += ["--checkpoint", str(ckpt), "--out", str(out), "--depth-model", "tiny"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and "re-download" in err, err
    assert not out.exists()


def test_a_complete_file_passes_and_trailing_bytes_do_not_fool_the_size_check(
    published_folder, tmp_path
):
    path = published_folder / WEIGHTS["vae"]
    check_safetensors(path)  # complete: no error
    short = tmp_path / "short.safetensors"
    short.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        check_safetensors(short)
    odd = tmp_path / "odd.safetensors"  # a JSON header that is no safetensors header
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": 4}}'
    odd.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(CheckpointError, match="without two data offsets"):
        check_safetensors(odd)


@pytest.mark.parametrize(
    "file, text, said",
    [
        ("model_index.json", "[1, 2]", "a JSON list, not an object"),
        ("scheduler/scheduler_config.json", '"euler"', "a JSON str, not an object"),
        ("unet/diffusion_pytorch_model.safetensors.index.json", "{}", "no weight_map"),
        (
            "unet/diffusion_pytorch_model.safetensors.index.json",
            '{"weight_map": {"w": "../vae/diffusion_pytorch_model.safetensors"}}',
            "names shards outside",
        ),
    ],
)
def test_a_damaged_json_file_is_a_checkpoint_error_naming_it(
    published_folder, tmp_path, file, text, said
):
    from amodal_ros.models.layout import load_components

    ckpt = shutil.copytree(published_folder, tmp_path / "ckpt")
    (ckpt / file).write_text(text)
    with pytest.raises(CheckpointError, match=said) as error:
        load_components(ckpt)
    assert str(ckpt / file) in str(error.value)


def _safetensors(path, header: bytes, data: bytes = b""):
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


@pytest.mark.parametrize(
    "header, data, said",
    [
        (b"{oops", b"", "bad header"),
        (b"[1, 2]", b"", "header is not a mapping"),
        # a header whose offsets hold, with a dtype no safetensors knows: the library's error
        (b'{"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}', bytes(4), "corrupt"),
    ],
)
def test_a_weight_file_that_is_no_safetensors_is_named_with_what_to_do(
    tmp_path, header, data, said
):
    from amodal_ros.models.weights import read_state

    path = _safetensors(tmp_path / "w.safetensors", header, data)
    with pytest.raises(CheckpointError, match=said) as error:
        read_state(path)
    assert str(path) in str(error.value) and "re-download" in str(error.value)


def test_weights_of_another_shape_are_refused_with_each_shape_named():
    import torch

    from amodal_ros.models.weights import load_state_strict

    model = torch.nn.Linear(2, 3)
    state = {"weight": torch.zeros(3, 3), "bias": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"1 shape mismatches: weight \(3, 3\) vs \(3, 2\)"):
        load_state_strict(model, state, "ckpt/unet")
    assert float(model.weight.detach().abs().sum()) > 0  # nothing was loaded


@pytest.mark.parametrize(
    "component, edit, said",
    [
        ("unet", lambda config: "{", "unreadable JSON"),
        (  # diffusers' own check: a ValueError that named no folder
            "unet",
            lambda config: json.dumps({**config, "num_attention_heads": [2, 4, 8]}),
            "not a valid UNet config .ValueError: Must provide the same number",
        ),
        ("vae", lambda config: "{", "could not load AutoencoderKLTemporalDecoder"),
    ],
)
def test_a_damaged_model_config_names_the_file_and_what_to_do(
    published_folder, tmp_path, component, edit, said
):
    """The UNet is built from its config by our loader, not by `from_pretrained`: its errors
    (OSError, ValueError) were the library's, naming no folder."""
    from amodal_ros.models.layout import load_components

    ckpt = shutil.copytree(published_folder, tmp_path / "ckpt")
    path = ckpt / component / "config.json"
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(CheckpointError, match=said) as error:
        load_components(ckpt)
    assert str(path.parent) in str(error.value) and "re-download" in str(error.value)


def test_a_component_that_is_a_file_is_a_checkpoint_error_naming_the_layout(tmp_path):
    """A single downloaded file where the `unet` folder belongs was a NotADirectoryError."""
    from amodal_ros.models.layout import check_layout

    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "model_index.json").write_text("{}")
    for sub in ("vae", "image_encoder", "scheduler", "feature_extractor"):
        (root / sub).mkdir()
    (root / "unet").write_bytes(b"")
    with pytest.raises(CheckpointError, match="unet is not a folder: a component .* diffusers"):
        check_layout(root)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt", ".pkl"])
def test_pickle_weights_of_every_suffix_are_named_as_never_loaded(tmp_path, suffix):
    """Each pickle format torch and the hub write is named as such, with what to do: a bare
    "no .safetensors weights found" hid what the folder holds."""
    from amodal_ros.models.weights import check_weight_folder

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / f"model{suffix}").write_bytes(b"not unpickled")
    with pytest.raises(CheckpointError, match=rf"only pickle weights \(model\{suffix}\).*never"):
        check_weight_folder(tmp_path)


def test_a_component_without_weights_is_named_before_any_library_reads_it(tmp_path):
    """A component folder with a config and no weights at all: our line, not the library's
    error from inside from_pretrained."""
    from amodal_ros.models.weights import check_weight_folder

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r": no \.safetensors weights found$"):
        check_weight_folder(tmp_path)


def test_an_index_whose_weight_map_is_no_object_is_a_checkpoint_error(tmp_path):
    """A damaged index (its weight_map a list) was an AttributeError's traceback."""
    from amodal_ros.models.weights import check_weight_folder

    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": ["model.safetensors"]}))
    with pytest.raises(CheckpointError, match="its weight_map is not an object; re-download"):
        check_weight_folder(tmp_path)


def test_a_weight_file_that_cannot_be_read_is_named(tmp_path):
    """A weight file that links to nothing (a hub cache's blob links, copied without their
    blobs) is named as unreadable, not a traceback."""
    from amodal_ros.models.weights import check_weight_folder

    (tmp_path / "model.safetensors").symlink_to(tmp_path / "blobs" / "gone")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unreadable weight file"):
        check_weight_folder(tmp_path)


def test_many_mismatched_keys_are_listed_eight_at_most_with_the_count_of_the_rest():
    """An error line stays readable: eight keys, then how many more; eight are all shown."""
    import torch

    from amodal_ros.models.weights import load_state_strict

    ten = torch.nn.Sequential(*[torch.nn.Linear(1, 1, bias=False) for _ in range(10)])
    with pytest.raises(CheckpointError, match=r"10 missing keys: 0\.weight, .*, 7\.weight, ") as e:
        load_state_strict(ten, {}, "ckpt/unet")
    assert str(e.value).endswith("7.weight, ... (+2 more)")
    eight = torch.nn.Sequential(*[torch.nn.Linear(1, 1, bias=False) for _ in range(8)])
    with pytest.raises(CheckpointError) as e:
        load_state_strict(eight, {}, "ckpt/unet")
    assert str(e.value).endswith("; 8 missing keys: " + ", ".join(f"{i}.weight" for i in range(8)))


def test_every_tensor_of_a_header_needs_its_two_data_offsets(tmp_path):
    """One good tensor entry does not vouch for the rest: a header with one entry lacking its
    offsets is named here, not left to the library."""
    header = (
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
        b' "b": {"dtype": "F32", "shape": [1]}}'
    )
    path = _safetensors(tmp_path / "w.safetensors", header, bytes(8))
    with pytest.raises(CheckpointError, match="a tensor without two data offsets"):
        check_safetensors(path)
