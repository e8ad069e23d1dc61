"""The Diffusion-VAS checkpoint folder (diffusers layout): loading it onto the stock classes and
writing it, safetensors only.

Layout (as published, e.g. `diffusion-vas-amodal-segmentation/`):

    model_index.json
    unet/config.json + diffusion_pytorch_model[.fp16].safetensors (or a sharded index)
    vae/config.json + diffusion_pytorch_model.safetensors
    image_encoder/config.json + model.safetensors
    feature_extractor/preprocessor_config.json   (optional: CLIP mean/std)
    scheduler/scheduler_config.json

Folders written here (`save_published_layout`) add an `amodal_ros` entry to model_index.json
with the InferenceConfig defaults the model was trained for (working size, conditioning mode),
the stage it is for (`stage`: both stages' UNets take 12 channels, so only this tells them
apart), and for a distilled student how it was made (`student`); a folder without it is a
published checkpoint and gets PUBLISHED_DEFAULTS (its stage is the folder's name: STAGES).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch

from amodal_ros.core.config import PUBLISHED_DEFAULTS
from amodal_ros.core.errors import CheckpointError
from amodal_ros.core.staging import escaping
from amodal_ros.models.components import CLIP_MEAN, CLIP_STD, VasComponents
from amodal_ros.models.unet import PerFrameUNet
from amodal_ros.models.weights import (
    REDOWNLOAD,
    check_weight_folder,
    load_pretrained_strict,
    load_state_strict,
    read_json,
    read_state,
)

log = logging.getLogger(__name__)

SUBFOLDERS = ("unet", "vae", "image_encoder", "scheduler")
# (shard indexes, single file) of each precision, full before the fp16 variant, as diffusers
# (and weights._variant) choose: a complete fp16 index beside the full file loaded the rounded
# weights. fp16 indexes as diffusers names them, and as older hub folders do.
UNET_SOURCES = (
    (("diffusion_pytorch_model.safetensors.index.json",), "diffusion_pytorch_model.safetensors"),
    (
        (
            "diffusion_pytorch_model.safetensors.index.fp16.json",
            "diffusion_pytorch_model.fp16.safetensors.index.json",
        ),
        "diffusion_pytorch_model.fp16.safetensors",
    ),
)
UNET_WEIGHTS = tuple(single for _, single in UNET_SOURCES)
UNET_INDEXES = tuple(index for indexes, _ in UNET_SOURCES for index in indexes)
METADATA_KEY = "amodal_ros"  # our entry in model_index.json
# the most training timesteps a scheduler config may state (SVD's: 1000); the scheduler
# allocates one beta per timestep (10**9: 4 GB, at the first window)
MAX_TRAIN_TIMESTEPS = 100_000
# Input channels of the UNet: noisy latents (4) + first condition (4) [+ second condition (4)],
# at SVD's 4 latent channels (a model trained here may have more: each latent is then wider).
MASK_ONLY_CHANNELS = 8
TWO_CONDITION_CHANNELS = 12
# stage -> what it does, the parameter (command-line flag) that takes its checkpoint, and its
# published folder (unmarked: nothing in it says its stage)
STAGES = {
    1: (
        "amodal segmentation",
        "`checkpoint` (--checkpoint)",
        "kaihuac/diffusion-vas-amodal-segmentation",
    ),
    2: (
        "content completion",
        "`completion_checkpoint` (--completion-checkpoint)",
        "kaihuac/diffusion-vas-content-completion",
    ),
}


def load_components(folder: str | Path, stage: int | None = None) -> VasComponents:
    """Load one stage's checkpoint folder on the CPU in fp32 (call `.to()` afterwards).
    `stage` (1 or 2): the stage it is loaded for; a folder that records the other one is
    refused (an unmarked, published folder is taken as `stage`'s).

    Raises:
        CheckpointError: the folder is missing, is not in the expected layout, holds only
            pickle weights or an empty/truncated/garbage weight file (named), a component's
            weights have missing/unexpected keys (named), its components come from different
            models, or it is the other stage's.
    """
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionModelWithProjection

    root = Path(folder).expanduser()
    check_layout(root)
    index = read_json(root / "model_index.json")
    ours = index.get(METADATA_KEY, {})
    _check_mapping(root, METADATA_KEY, ours)
    for key in ("defaults", "student"):
        _check_mapping(root, f"{METADATA_KEY}.{key}", ours.get(key, {}))
    marked = _check_stage(root, ours.get("stage"), stage)  # before the weights are read
    _check_defaults(root, ours.get("defaults", {}))
    unet = load_unet(root / "unet")
    vae = load_pretrained_strict(AutoencoderKLTemporalDecoder, root / "vae")
    if vae.config.latent_channels != unet.config.out_channels:
        raise CheckpointError(
            f"{root}: its VAE encodes {vae.config.latent_channels} latent channels but its UNet "
            f"predicts {unet.config.out_channels}; the two subfolders come from different models"
        )
    image_encoder = load_pretrained_strict(CLIPVisionModelWithProjection, root / "image_encoder")
    embedding = image_encoder.config.projection_dim
    cross = unet.config.cross_attention_dim  # one per block, or one for all
    if set(cross if isinstance(cross, (list, tuple)) else [cross]) != {embedding}:
        raise CheckpointError(
            f"{root}: its image encoder embeds frames in {embedding} dimensions but its UNet's "
            f"cross-attention reads {cross}; the two subfolders come from different models"
        )
    scheduler_config = read_json(root / "scheduler" / "scheduler_config.json")
    _check_scheduler(root / "scheduler" / "scheduler_config.json", scheduler_config)
    mean, std = _clip_normalisation(root / "feature_extractor" / "preprocessor_config.json")
    defaults = ours.get("defaults", PUBLISHED_DEFAULTS)
    log.info("loaded %s (UNet with %d input channels)", root, unet.config.in_channels)
    components = VasComponents(
        unet,
        vae,
        image_encoder,
        scheduler_config,
        mean,
        std,
        str(root),
        dict(defaults),
        dict(ours.get("student", {})),
        marked or stage,
    )
    return components.frozen()


def _check_mapping(root: Path, name: str, value) -> None:
    """Refuse a damaged model_index.json entry (`null`, a list) as a CheckpointError: it was
    an AttributeError's traceback."""
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{root / 'model_index.json'}: {name} is {value!r}, not a mapping; the folder is "
            "damaged"
        )


def _check_defaults(root: Path, defaults: dict) -> None:
    """Refuse recorded defaults the InferenceConfig would refuse (a height of "abc", a mode
    no sampler has), naming the folder: they surfaced at the first window as a ValueError
    that read as if the user had set them."""
    from amodal_ros.core.config import MODEL_FIELDS, InferenceConfig

    try:
        InferenceConfig().for_model({k: v for k, v in defaults.items() if k in MODEL_FIELDS})
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{root / 'model_index.json'}: {METADATA_KEY}.defaults: {err}; the folder is damaged"
        ) from err


def _check_scheduler(path: Path, config: dict) -> None:
    """Build the sampler's scheduler once and take one step, so a damaged config is named here:
    it failed in the first window (a TypeError, IndexError, NotImplementedError traceback).
    num_train_timesteps is checked first: the scheduler allocates one beta per timestep."""
    import torch
    from diffusers import EulerDiscreteScheduler

    steps = config.get("num_train_timesteps", 1000)
    if type(steps) is not int or not 1 <= steps <= MAX_TRAIN_TIMESTEPS:
        raise CheckpointError(
            f"{path}: num_train_timesteps is {steps!r}, not a count of 1 to "
            f"{MAX_TRAIN_TIMESTEPS}; {REDOWNLOAD}"
        )
    try:
        scheduler = EulerDiscreteScheduler.from_config(config)
        scheduler.set_timesteps(2)
        t, sample = scheduler.timesteps[0], torch.zeros(1)
        scheduler.step(sample, t, scheduler.scale_model_input(sample, t))
    except Exception as err:  # diffusers raises what the config's values make it raise
        raise CheckpointError(
            f"{path}: not a valid scheduler config ({type(err).__name__}: {err}); {REDOWNLOAD}"
        ) from err


def _check_stage(root: Path, marked, stage: int | None) -> int | None:
    """The stage `root`'s model_index.json records (None: unmarked), refused when it is not
    `stage`: both stages' UNets take 12 channels, so a swapped pair would load and run."""
    if marked is None:
        return None
    if isinstance(marked, bool) or marked not in STAGES:  # (True == 1)
        raise CheckpointError(
            f"{root / 'model_index.json'}: {METADATA_KEY}.stage is {marked!r}, not one of "
            f"{sorted(STAGES)}; the folder is damaged"
        )
    if stage is not None and marked != stage:
        what, where, _ = STAGES[marked]
        wanted, wanted_where, published = STAGES[stage]
        raise CheckpointError(
            f"{root} is a stage-{marked} checkpoint ({what}, as its model_index.json "
            f"records), given for stage {stage} ({wanted}): pass it as {where}, and a "
            f"stage-{stage} folder (e.g. {published}) as {wanted_where}"
        )
    return marked


def check_layout(root: Path) -> None:
    """Raise CheckpointError unless `root` looks like a Diffusion-VAS diffusers folder whose
    weight files are all complete safetensors files."""
    expected = "model_index.json and subfolders " + ", ".join(f"{s}/" for s in SUBFOLDERS)
    if root.is_file():
        raise CheckpointError(
            f"{root} is a file: a checkpoint is a diffusers folder ({expected}) of "
            "safetensors weights; pass the folder"
        )
    if not root.is_dir():
        raise CheckpointError(
            f"checkpoint folder {root} does not exist; download a Diffusion-VAS checkpoint "
            f"(e.g. kaihuac/diffusion-vas-amodal-segmentation) and pass its folder ({expected})"
        )
    missing = [name for name in ("model_index.json", *SUBFOLDERS) if not (root / name).exists()]
    broken = [name for name in missing if (root / name).is_symlink()]
    if broken:  # as `cp -r` leaves a copy of an embedded folder (relative links)
        links = ", ".join(f"{name} -> {os.readlink(root / name)}" for name in broken)
        raise CheckpointError(
            f"{root}: broken link{'s' if len(broken) > 1 else ''} {links} (nothing there); "
            "copy a folder whose components are links, as the embedded model's are, with "
            "`cp -rL`, which copies what the links point to"
        )
    if missing:
        raise CheckpointError(
            f"{root} is not a Diffusion-VAS checkpoint folder: missing {', '.join(missing)} "
            f"(expected {expected})"
        )
    for sub in ("unet", "vae", "image_encoder"):
        check_weight_folder(root / sub)


def load_unet(unet_dir: Path) -> PerFrameUNet:
    """Build the UNet from its config and load its weights, mapping `conv_in2` -> `conv_in`.

    The published checkpoint keeps the stock 8-channel `conv_in` (unused) and a 12-channel
    `conv_in2` that its forward uses; on the stock class that is a 12-channel `conv_in`.
    Mask-only checkpoints have just an 8-channel `conv_in`.
    """
    state = remap_published_unet_keys(_read_unet_state(unet_dir))
    if "conv_in.weight" not in state:
        raise CheckpointError(f"{unet_dir}: UNet weights have neither conv_in nor conv_in2")
    in_channels = state["conv_in.weight"].shape[1]
    config = read_json(unet_dir / "config.json")
    latent = config.get("out_channels", 4)  # the noisy latent and each condition's
    if in_channels not in (2 * latent, 3 * latent):
        raise CheckpointError(
            f"{unet_dir}: UNet input conv has {in_channels} channels; expected {2 * latent} "
            f"(mask only) or {3 * latent} (mask + depth / modal RGB + amodal mask) for its "
            f"{latent}-channel latents"
        )
    config["in_channels"] = in_channels
    # built without weights: the random init of SVD's 1.5 B parameters, only to be
    # overwritten, was most of the load (8-10 s against 1.7-1.9 s on a 2-core CPU)
    try:
        with torch.device("meta"):
            unet = PerFrameUNet.from_config(config)
    except Exception as err:  # diffusers' checks raise ValueError, a wrong type TypeError, ...
        raise CheckpointError(
            f"{unet_dir / 'config.json'}: not a valid UNet config ({type(err).__name__}: "
            f"{err}); {REDOWNLOAD}"
        ) from err
    load_state_strict(unet, state, unet_dir, assign=True)
    return unet


def remap_published_unet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published layout -> stock keys: `conv_in2.*` replaces `conv_in.*`; other keys unchanged."""
    if "conv_in2.weight" not in state:
        return state
    state = {k: v for k, v in state.items() if not k.startswith("conv_in.")}
    for part in ("weight", "bias"):
        if f"conv_in2.{part}" in state:
            state[f"conv_in.{part}"] = state.pop(f"conv_in2.{part}")
    return state


def save_published_layout(
    components: VasComponents, folder: str | Path, defaults: dict | None = None
) -> Path:
    """Write `components` as a diffusers folder in the published Diffusion-VAS layout.

    A 12-channel UNet is stored as the reference stores it: config `in_channels` = 8, an unused
    8-channel `conv_in` and the real 12-channel input conv under `conv_in2`. `defaults`
    (InferenceConfig fields; default: `components.defaults`) go into model_index.json, so the
    loader knows the working size and conditioning mode this model was made for.
    """
    from safetensors.torch import save_file

    root = Path(folder)
    (root / "unet").mkdir(parents=True, exist_ok=True)
    unet = components.unet
    state = {k: v.contiguous() for k, v in unet.state_dict().items()}
    config = dict(unet.config)
    if unet.config.in_channels == TWO_CONDITION_CHANNELS:
        state["conv_in2.weight"] = state.pop("conv_in.weight")
        state["conv_in2.bias"] = state.pop("conv_in.bias")
        generator = torch.Generator().manual_seed(1)
        out_ch, _, k, _ = state["conv_in2.weight"].shape
        state["conv_in.weight"] = torch.randn(
            out_ch, MASK_ONLY_CHANNELS, k, k, generator=generator
        )
        state["conv_in.bias"] = torch.randn(out_ch, generator=generator)
        config["in_channels"] = MASK_ONLY_CHANNELS
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["_class_name"] = "UNetSpatioTemporalConditionModel"
    (root / "unet" / "config.json").write_text(json.dumps(config, indent=2, default=list))
    save_file(state, str(root / "unet" / "diffusion_pytorch_model.safetensors"))
    components.vae.save_pretrained(str(root / "vae"), safe_serialization=True)
    components.image_encoder.save_pretrained(str(root / "image_encoder"), safe_serialization=True)
    (root / "scheduler").mkdir(exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(components.scheduler_config, indent=2)
    )
    (root / "feature_extractor").mkdir(exist_ok=True)
    (root / "feature_extractor" / "preprocessor_config.json").write_text(
        json.dumps(
            {"image_mean": list(components.clip_mean), "image_std": list(components.clip_std)}
        )
    )
    index = {
        "_class_name": "DiffusionVASPipeline",
        "unet": ["diffusion_vas", "UNetSpatioTemporalConditionModel"],
        "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    }
    defaults = components.defaults if defaults is None else defaults
    if defaults:
        index[METADATA_KEY] = {"defaults": dict(defaults)}
    if components.stage is not None:
        index.setdefault(METADATA_KEY, {})["stage"] = components.stage
    if components.student:
        index.setdefault(METADATA_KEY, {})["student"] = dict(components.student)
    (root / "model_index.json").write_text(json.dumps(index, indent=2))
    return root


def _read_unet_state(unet_dir: Path) -> dict[str, torch.Tensor]:
    """The UNet's weights: from an index whose shards are all there, else from a single file
    (a leftover index beside a complete file does not hide it)."""
    if not (unet_dir / "config.json").is_file():
        raise CheckpointError(f"{unet_dir}: missing config.json")
    incomplete = []  # (index, its missing shards)
    for indexes, single in UNET_SOURCES:
        for name in indexes:
            index = unet_dir / name
            if not index.is_file():
                continue
            shards = sorted(set(read_json(index, "weight_map")["weight_map"].values()))
            outside = escaping(shards)
            if outside:  # an index names files beside it, never elsewhere
                raise CheckpointError(f"{index}: names shards outside {unet_dir}: {outside}")
            absent = [shard for shard in shards if not (unet_dir / shard).is_file()]
            if absent:
                incomplete.append((index, absent))
                continue
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                part = read_state(unet_dir / shard)
                twice = sorted(state.keys() & part.keys())
                if twice:  # the later shard's would win, whatever the index maps
                    raise CheckpointError(
                        f"{index}: shard {shard} holds weights an earlier shard holds too "
                        f"({', '.join(twice[:3])}{', ...' if len(twice) > 3 else ''}); "
                        f"{REDOWNLOAD}"
                    )
                state.update(part)
            return state
        if (unet_dir / single).is_file():
            return read_state(unet_dir / single)
    if incomplete:
        index, absent = incomplete[0]
        raise CheckpointError(
            f"{index}: shard{'s' if len(absent) > 1 else ''} {', '.join(absent)} missing, and "
            f"no single weights file ({' or '.join(UNET_WEIGHTS)}) beside it; {REDOWNLOAD}"
        )
    raise CheckpointError(
        f"{unet_dir}: no UNet weights; expected one of {', '.join(UNET_WEIGHTS + UNET_INDEXES)}"
    )


def _clip_normalisation(path: Path) -> tuple[tuple, tuple]:
    """CLIP's mean and std from `path` (OpenAI's when absent), three numbers each and a
    positive std: a null or short list was a traceback at load or at the first window, and a
    zero std made every output NaN. A path that is there but no file (a FIFO, a broken link)
    is read_json's error, not OpenAI's numbers in silence."""
    if not (path.exists() or path.is_symlink()):
        return CLIP_MEAN, CLIP_STD
    config = read_json(path)
    values = []
    for key, default in (("image_mean", CLIP_MEAN), ("image_std", CLIP_STD)):
        value = config.get(key, default)
        numbers = isinstance(value, (list, tuple)) and len(value) == 3
        if not numbers or not all(type(v) in (int, float) and math.isfinite(v) for v in value):
            raise CheckpointError(f"{path}: {key} is {value!r}, not three numbers; {REDOWNLOAD}")
        if key == "image_std" and min(value) <= 0:
            raise CheckpointError(f"{path}: image_std {value!r} is not positive; {REDOWNLOAD}")
        values.append(tuple(value))
    return values[0], values[1]
