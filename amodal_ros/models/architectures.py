"""Full-size architectures with random weights, for benchmarks of the real cost where no
weights can be downloaded: SVD img2vid-xt's UNet (12-channel input), VAE and CLIP ViT-H/14
(REFERENCE.md), and Depth Anything V2 ViT-S/B/L. Outputs are meaningless; shapes and FLOPs
are the published models'."""

from __future__ import annotations

import torch

from amodal_ros.models.loading import VasComponents
from amodal_ros.models.tiny import SVD_SCHEDULER_CONFIG
from amodal_ros.models.unet import PerFrameUNet

# Depth Anything V2 (Hugging Face transformers configs): backbone width, depth, heads, the
# 4 blocks read by the DPT neck, neck widths, fusion width.
DEPTH_ANYTHING_SIZES = {
    "vits": (384, 12, 6, [3, 6, 9, 12], [48, 96, 192, 384], 64),
    "vitb": (768, 12, 12, [3, 6, 9, 12], [96, 192, 384, 768], 128),
    "vitl": (1024, 24, 16, [5, 12, 18, 24], [256, 512, 1024, 1024], 256),
}


def build_random_svd_components(seed: int = 0) -> VasComponents:
    """SVD img2vid-xt architectures (about 2.2 B parameters), random weights, fp32 on CPU."""
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = PerFrameUNet(in_channels=12)  # the class defaults are SVD's UNet config
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        force_upcast=True,
    )
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=1280,
            intermediate_size=5120,
            num_hidden_layers=32,
            num_attention_heads=16,
            patch_size=14,
            image_size=224,
            projection_dim=1024,
            hidden_act="gelu",
        )
    )
    for model in (unet, vae, clip):
        model.eval().requires_grad_(False)
    return VasComponents(unet, vae, clip, dict(SVD_SCHEDULER_CONFIG), source="<random SVD>")


def build_random_depth_anything(size: str, seed: int = 0):
    """Depth Anything V2 'vits', 'vitb' or 'vitl' ('tiny': the test model), random weights."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    if size == "tiny":
        from amodal_ros.models.tiny import build_tiny_depth_anything

        return build_tiny_depth_anything(seed)
    if size not in DEPTH_ANYTHING_SIZES:
        raise ValueError(
            f"size must be tiny or one of {sorted(DEPTH_ANYTHING_SIZES)}, got {size!r}"
        )
    hidden, layers, heads, blocks, neck, fusion = DEPTH_ANYTHING_SIZES[size]
    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        image_size=518,
        patch_size=14,
        out_indices=blocks,
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=hidden,
        neck_hidden_sizes=neck,
        fusion_hidden_size=fusion,
        head_hidden_size=32,
        depth_estimation_type="relative",
    )
    return DepthAnythingForDepthEstimation(config).eval().requires_grad_(False)
