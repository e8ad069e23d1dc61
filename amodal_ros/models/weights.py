"""Weight files: safetensors only, checked before any library reads them, loaded strictly.

Every failure is a CheckpointError naming the file and what to do, so a truncated download in
any component ends a command (or the node's configure) with one clear line.
"""

from __future__ import annotations

import json
import re
import stat
import struct
from pathlib import Path

import torch

from amodal_ros.core.errors import CheckpointError
from amodal_ros.core.staging import escaping

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
REDOWNLOAD = "re-download or re-export the checkpoint"
HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header size
JSON_LIMIT = 16 * 2**20  # far above any config or shard index (SVD's UNet index: ~100 kB)
# config keys that count a model's layers or blocks (a list: its length); a count of N builds
# modules whose weights are numbered up to N - 1
COUNT_KEYS = (
    "layers_per_block",
    "transformer_layers_per_block",
    "num_hidden_layers",
    "down_block_types",
    "up_block_types",
    "block_out_channels",
)

# an fp16-variant weights file, whole or a shard: model.fp16.safetensors, model.fp16-00001-of-00002
FP16_NAME = re.compile(r"\.fp16(-\d+-of-\d+)?\.safetensors$")


def check_safetensors(path: Path) -> list[str]:
    """Raise CheckpointError unless `path` is a complete safetensors file; its tensors' names.

    Reads only the 8-byte length and the JSON header, then checks that the file holds every
    byte the header promises: an empty, truncated or garbage file is named here rather than
    surfacing as a library's SafetensorError from deep inside a model constructor.
    """
    try:
        size = _regular_size(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{path}: empty or truncated weight file ({size} bytes); {REDOWNLOAD}"
                )
            (length,) = struct.unpack("<Q", head)
            if length > min(HEADER_LIMIT, size - 8):
                raise CheckpointError(
                    f"{path}: not a safetensors file, or truncated (header of {length} bytes in a "
                    f"{size}-byte file); {REDOWNLOAD}"
                )
            header = json.loads(f.read(length))
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable weight file ({err})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path}: not a safetensors file (bad header: {err}); {REDOWNLOAD}"
        ) from err
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path}: not a safetensors file (header is not a mapping); {REDOWNLOAD}"
        )
    entries = [entry for name, entry in header.items() if name != "__metadata__"]
    offsets = [e.get("data_offsets") if isinstance(e, dict) else None for e in entries]
    if not all(
        isinstance(o, list) and len(o) == 2 and all(type(x) is int for x in o) for o in offsets
    ):
        raise CheckpointError(
            f"{path}: not a safetensors file (a tensor without two data offsets); {REDOWNLOAD}"
        )
    ends = [end for _, end in offsets]
    available = size - 8 - length
    if ends and max(ends) > available:
        raise CheckpointError(
            f"{path}: truncated weight file ({available} of {max(ends)} data bytes); {REDOWNLOAD}"
        )
    return [name for name in header if name != "__metadata__"]


def _regular_size(path: Path) -> int:
    """The size of `path`, refused unless it is a regular file (after links): reading a FIFO
    named like a weight or config file blocked forever, and a link to /dev/zero never ended."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        kind = "folder" if stat.S_ISDIR(st.st_mode) else "FIFO or device"
        raise CheckpointError(f"{path}: a {kind}, not a regular file; {REDOWNLOAD}")
    return st.st_size


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one checked safetensors file."""
    from safetensors.torch import load_file

    check_safetensors(path)
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for corrupt data
        raise CheckpointError(f"{path}: corrupt weight file ({err}); {REDOWNLOAD}") from err


def check_weight_folder(folder: Path) -> None:
    """A component folder must hold safetensors weights, each complete; pickles are refused,
    also where a sharded index names one (the libraries follow an index, even with
    use_safetensors, to whatever file it names: a .bin is unpickled, and transformers takes
    '../' too)."""
    if not folder.is_dir():  # a single downloaded file where the component's folder belongs
        raise CheckpointError(
            f"{folder} is not a folder: a component ({folder.name}) is a folder holding its "
            "config and .safetensors weights (the diffusers layout)"
        )
    names = []  # of the tensors, as indexes and weight files name them
    for index in sorted(folder.glob("*.safetensors.index*.json")):  # what use_safetensors reads
        names += _check_index(index)
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        names += [name for path in weights for name in check_safetensors(path)]
        _check_counts(folder / "config.json", names)
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder}: only pickle weights ({', '.join(pickles)}); they are never loaded because "
            "unpickling can run code. Convert them to .safetensors on a trusted machine."
        )
    raise CheckpointError(f"{folder}: no .safetensors weights found")


def _check_counts(config_path: Path, names: list[str]) -> None:
    """Refuse a config that counts more layers or blocks than the weights `names` number: the
    model is built before its weights are compared, and a damaged count took that long
    (layers_per_block 10,000: minutes, even on the meta device; a million: hours and
    gigabytes). An unreadable config is left to the loader, which names it."""
    try:
        config = read_json(config_path) if config_path.is_file() else {}
    except CheckpointError:
        return
    held = 1 + max((int(p) for name in names for p in name.split(".") if p.isdecimal()), default=0)
    for key, value in _count_items(config):
        if value > held:
            raise CheckpointError(
                f"{config_path}: {key} counts {value} but the weights beside it number at most "
                f"{held}; the config does not belong to these weights, {REDOWNLOAD}"
            )


def _count_items(config):
    """(key, count) of every COUNT_KEYS entry in `config`, nested configs included."""
    for key, value in config.items() if isinstance(config, dict) else ():
        if isinstance(value, dict):
            yield from _count_items(value)
        elif key in COUNT_KEYS and isinstance(value, (list, tuple)):
            yield key, len(value)
            if key != "block_out_channels":  # its numbers are widths, not counts
                yield from ((key, v) for v in _ints(value))
        elif key in COUNT_KEYS:
            yield from ((key, v) for v in _ints(value))


def _ints(value) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _ints(v)]
    return [value] if type(value) is int else []


def read_json(path: Path, *required: str) -> dict:
    """The JSON object in `path`, holding the `required` keys."""
    try:
        size = _regular_size(path)
        if size > JSON_LIMIT:
            raise CheckpointError(
                f"{path}: {size} bytes, too large for a config or index (at most {JSON_LIMIT}); "
                f"{REDOWNLOAD}"
            )
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        # RecursionError: a JSON nested thousands deep
        raise CheckpointError(f"{path}: unreadable JSON ({err}); {REDOWNLOAD}") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: a JSON {type(data).__name__}, not an object")
    missing = [key for key in required if key not in data]
    if missing:
        raise CheckpointError(f"{path}: no {', '.join(missing)}; the folder is damaged")
    return data


def _check_index(index: Path) -> list[str]:
    """The tensor names `index` maps, refused unless it maps them to .safetensors beside it."""
    weight_map = read_json(index, "weight_map")["weight_map"]
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index}: its weight_map is not an object; {REDOWNLOAD}")
    shards = sorted(set(map(str, weight_map.values())))
    outside = escaping(shards)
    if outside:  # an index names files beside it, never elsewhere
        raise CheckpointError(f"{index}: names shards outside {index.parent}: {outside}")
    for shard in shards:
        if Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise CheckpointError(
                f"{index}: names the weights {shard!r}, which is not a .safetensors file beside "
                "it; it is never loaded (unpickling can run code, and an index names files in "
                "its own folder). Convert the weights to .safetensors on a trusted machine."
            )
    return list(map(str, weight_map))


def load_state_strict(
    model: torch.nn.Module, state: dict, where: Path | str, assign: bool = False
) -> None:
    """Load `state` into `model`, raising CheckpointError that names missing/unexpected keys.
    `assign`: the state's tensors (in the model's dtypes) become the model's, for a model
    built on the meta device (no weights of its own to fill)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        k for k in set(expected) & set(state) if expected[k].shape != state[k].shape
    )
    # stored as whole numbers or bools where the model computes in floats: converted, they
    # loaded silently as a model of garbage
    whole = sorted(
        k
        for k in set(expected) & set(state)
        if expected[k].is_floating_point() and not state[k].is_floating_point()
    )
    if missing or unexpected or mismatched or whole:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label} keys: {_shorten(keys)}")
        if whole:
            stored = [f"{k} {state[k].dtype}" for k in whole]
            parts.append(f"{len(whole)} not stored as floats: {_shorten(stored)}")
        if mismatched:
            shapes = [
                f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched
            ]
            parts.append(f"{len(mismatched)} shape mismatches: {_shorten(shapes)}")
        raise CheckpointError(
            f"{where}: weights do not match the model config; " + "; ".join(parts)
        )
    if assign:  # in place: each stored tensor is freed as its converted one is made
        for k in list(state):
            state[k] = state[k].to(expected[k].dtype)
    model.load_state_dict(state, strict=True, assign=assign)


# a model's full-precision weights, as the libraries name them (a file, or a shard index)
FULL_PRECISION = ("model.safetensors", "diffusion_pytorch_model.safetensors")


def _variant(folder: Path) -> str | None:
    """'fp16' for a folder holding fp16-variant weights (`*.fp16.safetensors`, as a download
    of `--include "*fp16*"` leaves it) and no full-precision ones, which the libraries load
    only when asked (another stray .safetensors beside them made it fail to load)."""
    full = any(
        (folder / n).is_file() or (folder / f"{n}.index.json").is_file() for n in FULL_PRECISION
    )
    if not full and any(FP16_NAME.search(p.name) for p in folder.glob("*.safetensors")):
        return "fp16"
    return None


def load_pretrained_strict(cls, folder: Path | str):
    """`cls.from_pretrained` (a diffusers or transformers class) from a local folder of
    safetensors, in fp32, refusing missing, unexpected or mis-shaped weights: the libraries
    would initialise a missing one at random with only a warning (which the CLI and node
    silence).

    The dtype is passed explicitly: transformers 5 otherwise loads in the dtype config.json
    states (float16 in the published CLIP configs) beside an fp32 VAE and UNet, and a frozen
    part moved with `.to(device)` alone would then run in fp16, even on a CPU.

    Raises:
        CheckpointError: naming the folder and the keys, or the library's error.
    """
    try:
        model, info = cls.from_pretrained(
            str(folder),
            use_safetensors=True,
            local_files_only=True,
            output_loading_info=True,
            variant=_variant(Path(folder)),
            **{_dtype_argument(cls): torch.float32},
        )
    except Exception as err:  # weight files were checked; a bad config.json lands here
        raise CheckpointError(
            f"{folder}: could not load {cls.__name__} ({type(err).__name__}: {err}); {REDOWNLOAD}"
        ) from err
    parts = [
        f"{len(keys)} {label.replace('_', ' ')}: {_shorten(sorted(map(str, keys)))}"
        for label in ("missing_keys", "unexpected_keys", "mismatched_keys")
        if (keys := info.get(label))
    ]
    if parts:
        raise CheckpointError(
            f"{folder}: {cls.__name__} weights do not match its config; "
            + "; ".join(parts)
            + f"; {REDOWNLOAD}"
        )
    return model


def _dtype_argument(cls) -> str:
    """The name `cls.from_pretrained` takes the dtype by: diffusers' `torch_dtype`;
    transformers renamed it `dtype` in 4.56 (5.x warns on the old name)."""
    if cls.__module__.split(".")[0] != "transformers":
        return "torch_dtype"
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _shorten(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
