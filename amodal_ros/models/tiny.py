"""Tiny seeded Diffusion-VAS models of the real architectures, for tests, demos and benchmarks.

They are untrained: outputs are meaningless until a trained checkpoint is used.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from amodal_ros.models.loading import VasComponents
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


def tiny_unet_config(in_channels: int = 12, cross_attention_dim: int = 32) -> dict:
    return dict(
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,  # 3 added time ids x 8
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        num_attention_heads=(2, 4),
        num_frames=25,
    )


def build_tiny_components(
    seed: int = 0, in_channels: int = 12, vae_blocks: int = 4
) -> VasComponents:
    """A tiny UNet (2 blocks), temporal VAE and CLIP vision tower, seeded. The VAE downsamples
    2^(vae_blocks - 1) times: 8x like SVD's by default; the embedded model uses 3 blocks (4x),
    which a small VAE learns to reconstruct far faster."""
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = PerFrameUNet(**tiny_unet_config(in_channels))
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32,) * vae_blocks,  # 4 blocks -> 8x downsampling, as SVD's VAE
        down_block_types=("DownEncoderBlock2D",) * vae_blocks,
        layers_per_block=1,
        latent_channels=4,
    )
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    )
    for model in (unet, vae, clip):
        model.eval().requires_grad_(False)
    return VasComponents(unet, vae, clip, dict(SVD_SCHEDULER_CONFIG), source="<tiny seeded>")


def save_published_layout(components: VasComponents, folder: str | Path) -> Path:
    """Write `components` as a diffusers folder in the published Diffusion-VAS layout.

    A 12-channel UNet is stored as the reference stores it: config `in_channels` = 8, an unused
    8-channel `conv_in` and the real 12-channel input conv under `conv_in2`.
    """
    root = Path(folder)
    (root / "unet").mkdir(parents=True, exist_ok=True)
    unet = components.unet
    state = {k: v.contiguous() for k, v in unet.state_dict().items()}
    config = dict(unet.config)
    if unet.config.in_channels == 12:
        state["conv_in2.weight"] = state.pop("conv_in.weight")
        state["conv_in2.bias"] = state.pop("conv_in.bias")
        generator = torch.Generator().manual_seed(1)
        out_ch, _, k, _ = state["conv_in2.weight"].shape
        state["conv_in.weight"] = torch.randn(out_ch, 8, k, k, generator=generator)
        state["conv_in.bias"] = torch.randn(out_ch, generator=generator)
        config["in_channels"] = 8
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
    (root / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "DiffusionVASPipeline",
                "unet": ["diffusion_vas", "UNetSpatioTemporalConditionModel"],
                "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
                "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
                "feature_extractor": ["transformers", "CLIPImageProcessor"],
                "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            },
            indent=2,
        )
    )
    return root


def build_tiny_depth_anything(seed: int = 0):
    """A tiny `DepthAnythingForDepthEstimation` (ViT hidden size 32, 4 layers, 28 px input) of
    the real transformers class, seeded, for tests and benchmarks."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=28,
        patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[16, 32, 64, 64],
        fusion_hidden_size=16,
        head_hidden_size=16,
        depth_estimation_type="relative",
    )
    return DepthAnythingForDepthEstimation(config)
