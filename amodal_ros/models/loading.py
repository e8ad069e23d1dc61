"""Load a Diffusion-VAS checkpoint folder (diffusers layout) onto stock classes, safetensors only.

Expected layout (as published, e.g. `diffusion-vas-amodal-segmentation/`):

    model_index.json
    unet/config.json + diffusion_pytorch_model[.fp16].safetensors (or a sharded index)
    vae/config.json + diffusion_pytorch_model.safetensors
    image_encoder/config.json + model.safetensors
    feature_extractor/preprocessor_config.json   (optional: CLIP mean/std)
    scheduler/scheduler_config.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from amodal_ros.core.errors import CheckpointError
from amodal_ros.models.unet import PerFrameUNet

log = logging.getLogger(__name__)

SUBFOLDERS = ("unet", "vae", "image_encoder", "scheduler")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
UNET_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
UNET_INDEX = "diffusion_pytorch_model.safetensors.index.json"
# OpenAI CLIP normalisation, used when feature_extractor/ is absent.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Input channels of the UNet: noisy latents (4) + first condition (4) [+ second condition (4)].
MASK_ONLY_CHANNELS = 8
TWO_CONDITION_CHANNELS = 12


@dataclass
class VasComponents:
    """The models of one Diffusion-VAS stage, ready to run."""

    unet: PerFrameUNet
    vae: torch.nn.Module  # AutoencoderKLTemporalDecoder
    image_encoder: torch.nn.Module  # CLIPVisionModelWithProjection
    scheduler_config: dict
    clip_mean: tuple[float, float, float] = CLIP_MEAN
    clip_std: tuple[float, float, float] = CLIP_STD
    source: str = "<in memory>"

    @property
    def num_conditions(self) -> int:
        """1 for mask-only checkpoints (8 input channels), 2 for mask+depth (12)."""
        return (self.unet.config.in_channels - 4) // 4

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def clip_size(self) -> int:
        return int(self.image_encoder.config.image_size)

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> VasComponents:
        """Move to `device`; the UNet takes `dtype`, the VAE stays fp32 when it forces upcast."""
        vae_dtype = torch.float32 if self.vae.config.force_upcast else dtype
        for module, want in (
            (self.unet, dtype),
            (self.vae, vae_dtype),
            (self.image_encoder, dtype),
        ):
            # a dtype that is already right is not passed: diffusers warns on any dtype cast
            same = next(module.parameters()).dtype == want
            module.to(device=device) if same else module.to(device=device, dtype=want)
        return self


def load_components(folder: str | Path) -> VasComponents:
    """Load one stage's checkpoint folder on the CPU in fp32 (call `.to()` afterwards).

    Raises:
        CheckpointError: the folder is missing, is not in the expected layout, holds only
            pickle weights, or its UNet weights have missing/unexpected keys (named).
    """
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionModelWithProjection

    root = Path(folder).expanduser()
    check_layout(root)
    unet = load_unet(root / "unet")
    vae = _load_pretrained(AutoencoderKLTemporalDecoder, root / "vae")
    image_encoder = _load_pretrained(CLIPVisionModelWithProjection, root / "image_encoder")
    scheduler_config = _read_json(root / "scheduler" / "scheduler_config.json")
    mean, std = _clip_normalisation(root / "feature_extractor" / "preprocessor_config.json")
    for model in (unet, vae, image_encoder):
        model.eval().requires_grad_(False)
    log.info("loaded %s (UNet with %d input channels)", root, unet.config.in_channels)
    return VasComponents(unet, vae, image_encoder, scheduler_config, mean, std, str(root))


def check_layout(root: Path) -> None:
    """Raise CheckpointError unless `root` looks like a Diffusion-VAS diffusers folder."""
    expected = "model_index.json and subfolders " + ", ".join(f"{s}/" for s in SUBFOLDERS)
    if not root.is_dir():
        raise CheckpointError(
            f"checkpoint folder {root} does not exist; download a Diffusion-VAS checkpoint "
            f"(e.g. kaihuac/diffusion-vas-amodal-segmentation) and pass its folder ({expected})"
        )
    missing = [name for name in ("model_index.json", *SUBFOLDERS) if not (root / name).exists()]
    if missing:
        raise CheckpointError(
            f"{root} is not a Diffusion-VAS checkpoint folder: missing {', '.join(missing)} "
            f"(expected {expected})"
        )
    for sub in ("unet", "vae", "image_encoder"):
        _refuse_pickles(root / sub)


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
    if in_channels not in (MASK_ONLY_CHANNELS, TWO_CONDITION_CHANNELS):
        raise CheckpointError(
            f"{unet_dir}: UNet input conv has {in_channels} channels; expected 8 (mask only) "
            "or 12 (mask + depth / modal RGB + amodal mask)"
        )
    config = dict(PerFrameUNet.load_config(str(unet_dir)))
    config["in_channels"] = in_channels
    unet = PerFrameUNet.from_config(config)
    load_state_strict(unet, state, unet_dir)
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


def load_state_strict(model: torch.nn.Module, state: dict, where: Path | str) -> None:
    """Load `state` into `model`, raising CheckpointError that names missing/unexpected keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        k for k in set(expected) & set(state) if expected[k].shape != state[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label} keys: {_shorten(keys)}")
        if mismatched:
            shapes = [
                f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched
            ]
            parts.append(f"{len(mismatched)} shape mismatches: {_shorten(shapes)}")
        raise CheckpointError(
            f"{where}: weights do not match the model config; " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def _read_unet_state(unet_dir: Path) -> dict[str, torch.Tensor]:
    if not (unet_dir / "config.json").is_file():
        raise CheckpointError(f"{unet_dir}: missing config.json")
    index = unet_dir / UNET_INDEX
    if index.is_file():
        shards = sorted(set(_read_json(index)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(unet_dir / shard)))
        return state
    for name in UNET_WEIGHTS:
        if (unet_dir / name).is_file():
            return load_file(str(unet_dir / name))
    raise CheckpointError(
        f"{unet_dir}: no UNet weights; expected one of {', '.join(UNET_WEIGHTS)} or {UNET_INDEX}"
    )


def _refuse_pickles(folder: Path) -> None:
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise CheckpointError(
            f"{folder}: only pickle weights ({', '.join(pickles)}); they are never loaded because "
            "unpickling can run code. Convert them to .safetensors on a trusted machine."
        )
    raise CheckpointError(f"{folder}: no .safetensors weights found")


def _load_pretrained(cls, folder: Path):
    try:
        return cls.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{folder}: could not load {cls.__name__}: {err}") from err


def _clip_normalisation(path: Path) -> tuple[tuple, tuple]:
    if not path.is_file():
        return CLIP_MEAN, CLIP_STD
    config = _read_json(path)
    return tuple(config.get("image_mean", CLIP_MEAN)), tuple(config.get("image_std", CLIP_STD))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err})") from err


def _shorten(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
