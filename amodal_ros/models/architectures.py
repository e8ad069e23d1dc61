"""The Diffusion-VAS architectures at two sizes, seeded, with random weights.

- "full": SVD img2vid-xt's UNet (12-channel input), VAE and CLIP ViT-H/14 (diffusion-vas), about
  2.2 B parameters: benchmarks of the real cost where no weights can be downloaded.
- "tiny": the same classes a few MB small: tests, and the starting point of models trained
  here (the embedded model).

Depth Anything V2 likewise: "vits", "vitb", "vitl" (the published sizes) and "tiny".
Outputs of untrained models are meaningless; shapes and FLOPs are the real ones.
"""

from __future__ import annotations

import torch

from amodal_ros.core.config import PUBLISHED_DEFAULTS
from amodal_ros.models.components import VasComponents
from amodal_ros.models.unet import PerFrameUNet

# Stable Video Diffusion img2vid-xt's scheduler config (EDM sigmas, v-prediction, continuous t).
SVD_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}

SIZES = ("tiny", "full")
# What each size runs with by default (VasComponents.defaults): the tiny one at the working
# size and conditioning of the models trained here, the full one as a published checkpoint.
SIZE_DEFAULTS = {
    "tiny": {
        "height": 32,
        "width": 64,
        "conditioning_mode": "consistent",
        "mask_resize": "nearest",
        "mask_upsample": "smooth",
        "rgb_sum_threshold": 600,
    },
    "full": dict(PUBLISHED_DEFAULTS),
}
# The UNet class defaults are SVD-XT's config; the tiny one keeps its two-block layout.
_TINY_UNET = dict(
    out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    block_out_channels=(32, 64),
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24,  # 3 added time ids x 8
    layers_per_block=1,
    num_attention_heads=(2, 4),
    num_frames=25,
)
_VAE = {  # AutoencoderKLTemporalDecoder; blocks -> 2^(blocks - 1) downsampling
    "tiny": dict(width=32, blocks=4, layers_per_block=1, force_upcast=True),
    "full": dict(widths=(128, 256, 512, 512), layers_per_block=2, force_upcast=True),
}
_CLIP = {  # CLIPVisionConfig
    "tiny": dict(
        hidden_size=32,
        projection_dim=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    ),
    "full": dict(
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=16,
        patch_size=14,
        image_size=224,
        projection_dim=1024,
        hidden_act="gelu",
    ),
}
# Depth Anything V2 (transformers configs): backbone width, depth, heads, the blocks read by
# the DPT neck, neck widths, fusion width, head width, input size.
DEPTH_ANYTHING_SIZES = {
    "tiny": (32, 4, 4, [1, 2, 3, 4], [16, 32, 64, 64], 16, 16, 28),
    "vits": (384, 12, 6, [3, 6, 9, 12], [48, 96, 192, 384], 64, 32, 518),
    "vitb": (768, 12, 12, [3, 6, 9, 12], [96, 192, 384, 768], 128, 32, 518),
    "vitl": (1024, 24, 16, [5, 12, 18, 24], [256, 512, 1024, 1024], 256, 32, 518),
}


def unet_config(
    size: str,
    in_channels: int = 12,
    cross_attention_dim: int | None = None,
    width: int | None = None,
    latent_channels: int = 4,
) -> dict:
    """Keyword arguments of PerFrameUNet at `size` ('full': SVD-XT's, the class defaults);
    `width`: the tiny UNet's first block's channels (the second has twice as many);
    `in_channels` counts the noisy latent and each condition's, `latent_channels` each."""
    _check_size(size)
    config = dict(_TINY_UNET) if size == "tiny" else {}
    config["out_channels"] = latent_channels
    if width is not None:
        if size != "tiny":
            raise ValueError("width sets the tiny UNet's blocks; the full one is SVD-XT's")
        config["block_out_channels"] = (width, 2 * width)
    config["in_channels"] = in_channels
    if cross_attention_dim is not None:
        config["cross_attention_dim"] = cross_attention_dim
    elif size == "tiny":
        config["cross_attention_dim"] = _CLIP["tiny"]["projection_dim"]
    return config


def build_components(
    size: str = "tiny",
    seed: int = 0,
    in_channels: int = 12,
    vae_blocks: int | None = None,
    vae_width: int | None = None,
    vae_layers: int | None = None,
    unet_width: int | None = None,
    latent_channels: int = 4,
) -> VasComponents:
    """UNet, temporal VAE and CLIP vision tower of one stage at `size`, seeded, fp32, frozen.

    The tiny VAE's shape can be changed (`vae_blocks`: 2^(blocks - 1) downsampling, 4 = 8x as
    SVD's; `vae_width` channels per block; `vae_layers` per block; `latent_channels`, 4 as
    SVD's), and so can the tiny UNet's width (`unet_width`); models trained here pick what
    their working size needs. `in_channels` counts the noisy latent and each condition's
    (12 at 4 latent channels: two conditions; 8: masks only).
    """
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    _check_size(size)
    torch.manual_seed(seed)
    unet_kwargs = unet_config(size, in_channels, width=unet_width, latent_channels=latent_channels)
    unet = PerFrameUNet(**unet_kwargs)
    vae_spec = dict(_VAE[size])
    if size == "tiny":
        blocks = vae_blocks or vae_spec.pop("blocks")
        vae_spec.pop("blocks", None)
        widths = (vae_width or vae_spec.pop("width"),) * blocks
        vae_spec.pop("width", None)
        vae_spec["layers_per_block"] = vae_layers or vae_spec["layers_per_block"]
    else:
        widths = vae_spec.pop("widths")
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=widths,
        down_block_types=("DownEncoderBlock2D",) * len(widths),
        latent_channels=latent_channels,
        **vae_spec,
    )
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**_CLIP[size]))
    components = VasComponents(
        unet,
        vae,
        clip,
        dict(SVD_SCHEDULER_CONFIG),
        source=f"<{size} seeded>",
        defaults=dict(SIZE_DEFAULTS[size]),
    )
    return components.frozen()


def build_depth_anything(size: str, seed: int = 0):
    """Depth Anything V2 at `size` ('tiny', 'vits', 'vitb', 'vitl'), random weights, eval."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    if size not in DEPTH_ANYTHING_SIZES:
        raise ValueError(f"size must be one of {sorted(DEPTH_ANYTHING_SIZES)}, got {size!r}")
    hidden, layers, heads, blocks, neck, fusion, head, image = DEPTH_ANYTHING_SIZES[size]
    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden if size != "tiny" else 2 * hidden,
        image_size=image,
        patch_size=14,
        out_indices=blocks,
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=hidden,
        neck_hidden_sizes=neck,
        fusion_hidden_size=fusion,
        head_hidden_size=head,
        depth_estimation_type="relative",
    )
    return DepthAnythingForDepthEstimation(config).eval().requires_grad_(False)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
