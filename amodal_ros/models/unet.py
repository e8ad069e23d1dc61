"""SVD's 3D UNet with per-frame cross-attention conditioning, as Diffusion-VAS uses it, and
optionally attention across space and time at its coarsest level."""

from __future__ import annotations

import math

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.unets.unet_spatio_temporal_condition import (
    UNetSpatioTemporalConditionOutput,
)


class SpaceTimeAttention(torch.nn.Module):
    """Self-attention over every (frame, row, column) position of a feature map, with fixed
    sinusoidal positions. SVD's temporal attention looks at one position over time, so a shape
    seen whole where the object was some frames ago is out of its reach once the object has
    moved; here any position sees every other. Its output projection starts at zero: added to
    a trained UNet it changes nothing until it trains. `causal`: a frame sees its own and
    earlier frames only, as the live node sees a window's newest frame (no later frame to
    borrow a shape from); the weights are the same either way."""

    def __init__(self, channels: int, heads: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.norm = torch.nn.GroupNorm(32, channels, eps=1e-6)
        self.attention = Attention(channels, heads=heads, dim_head=channels // heads)
        out = self.attention.to_out[0]
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.zeros_(out.bias)

    def forward(self, hidden: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Adds what attention finds to `hidden` [B*F, C, h, w] (same shape)."""
        bf, c, h, w = hidden.shape
        b = bf // num_frames
        tokens = self.norm(hidden).reshape(b, num_frames, c, h * w).transpose(2, 3)
        tokens = tokens.reshape(b, num_frames * h * w, c)
        tokens = tokens + positions(num_frames, h, w, c, tokens.device).to(tokens.dtype)
        mask = _earlier_frames(num_frames, h * w, tokens) if self.causal else None
        added = self.attention(tokens, attention_mask=mask)
        added = added.reshape(b, num_frames, h * w, c).transpose(2, 3)
        return hidden + added.reshape(bf, c, h, w)


def _earlier_frames(frames: int, per_frame: int, tokens: torch.Tensor) -> torch.Tensor:
    """[B, N, N] additive attention mask over `tokens` [B, N, C] (frame-major): 0 where the
    key's frame is not later than the query's, -inf where it is. Made on the tokens' device."""
    frame = torch.arange(frames, device=tokens.device).repeat_interleave(per_frame)
    later = frame[None, :] > frame[:, None]
    mask = torch.zeros(later.shape, dtype=tokens.dtype, device=tokens.device)
    return mask.masked_fill(later, float("-inf")).expand(tokens.shape[0], -1, -1)


def positions(
    frames: int, height: int, width: int, channels: int, device: torch.device | None = None
) -> torch.Tensor:
    """[frames*height*width, channels] sinusoidal codes of (frame, row, column): a quarter of
    the channels for the frame, the rest split between row and column (channels: a multiple
    of 16). Made on `device`, so a captured CUDA graph holds no host copy."""

    def arange(n: int) -> torch.Tensor:
        return torch.arange(n, device=device)

    t_dim = channels // 4
    y_dim = (channels - t_dim) // 2
    codes = [
        _sinusoid(arange(n), dim)[index]
        for n, dim, index in (
            (frames, t_dim, arange(frames).repeat_interleave(height * width)),
            (height, y_dim, arange(height).repeat_interleave(width).repeat(frames)),
            (width, channels - t_dim - y_dim, arange(width).repeat(frames * height)),
        )
    ]
    return torch.cat(codes, dim=1)


def _sinusoid(position: torch.Tensor, dim: int) -> torch.Tensor:
    """[n, dim] sin/cos codes of the n `position`s (dim even)."""
    steps = torch.arange(dim // 2, device=position.device)
    freq = torch.exp(-math.log(10000.0) * steps / max(dim // 2, 1))
    angle = position[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], dim=1)


class PerFrameUNet(UNetSpatioTemporalConditionModel):
    """`UNetSpatioTemporalConditionModel` whose cross-attention context is given per frame.

    The stock forward takes `encoder_hidden_states` as [batch, tokens, dim] and repeats it over
    all frames. Diffusion-VAS conditions every frame on its own CLIP context, so this forward
    takes [batch * frames, tokens, dim] as given (the reference's `unet_diffusion_vas.py` does
    the same). Everything else is the stock forward; weights and config are stock, so any
    stock checkpoint loads. A [batch, tokens, dim] context still works (repeated as stock).

    `space_time_heads` > 0 adds a SpaceTimeAttention after the mid block (a config key and
    weights the stock class does not have; 0, the default, is the stock UNet);
    `space_time_causal` makes it see earlier frames only.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 8,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ),
        up_block_types: tuple[str, ...] = (
            "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
        ),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int | tuple[int] = 2,
        cross_attention_dim: int | tuple[int] = 1024,
        transformer_layers_per_block: int | tuple = 1,
        num_attention_heads: int | tuple[int, ...] = (5, 10, 20, 20),
        num_frames: int = 25,
        space_time_heads: int = 0,
        space_time_causal: bool = False,
    ):
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            num_attention_heads=num_attention_heads,
            num_frames=num_frames,
        )
        self.space_time = (
            SpaceTimeAttention(block_out_channels[-1], space_time_heads, space_time_causal)
            if space_time_heads > 0
            else None
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = True,
    ):
        """Args: sample [B, F, C_in, h, w]; timestep scalar or [B]; encoder_hidden_states
        [B*F, tokens, dim] (or [B, tokens, dim]); added_time_ids [B, 3].
        Returns [B, F, out_channels, h, w] (the latent channels)."""
        batch_size, num_frames = sample.shape[:2]
        upsample_factor = 2**self.num_upsamplers
        forward_upsample_size = any(s % upsample_factor != 0 for s in sample.shape[-2:])

        # 1. time and added-time (fps, motion bucket, noise aug) embeddings
        timesteps = torch.as_tensor(timestep, device=sample.device)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(batch_size)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape(batch_size, -1)
        emb = emb + self.add_embedding(time_embeds.to(emb.dtype))

        # [B, F, C, h, w] -> [B*F, C, h, w]; emb [B, D] -> [B*F, D]
        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0)
        if encoder_hidden_states.shape[0] == batch_size and num_frames > 1:
            encoder_hidden_states = encoder_hidden_states.repeat_interleave(num_frames, dim=0)
        if encoder_hidden_states.shape[0] != batch_size * num_frames:
            raise ValueError(
                "encoder_hidden_states must have batch*frames rows "
                f"({batch_size}*{num_frames}), got {tuple(encoder_hidden_states.shape)}"
            )

        # 2. pre-process
        sample = self.conv_in(sample)
        image_only_indicator = torch.zeros(
            batch_size, num_frames, dtype=sample.dtype, device=sample.device
        )
        context = {"temb": emb, "image_only_indicator": image_only_indicator}

        # 3. down
        skips = (sample,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, res = block(
                    hidden_states=sample, encoder_hidden_states=encoder_hidden_states, **context
                )
            else:
                sample, res = block(hidden_states=sample, **context)
            skips += res

        # 4. mid
        sample = self.mid_block(
            hidden_states=sample, encoder_hidden_states=encoder_hidden_states, **context
        )
        if self.space_time is not None:
            sample = self.space_time(sample, num_frames)

        # 5. up
        upsample_size = None
        for i, block in enumerate(self.up_blocks):
            res, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
            if i < len(self.up_blocks) - 1 and forward_upsample_size:
                upsample_size = skips[-1].shape[2:]
            kwargs = dict(res_hidden_states_tuple=res, upsample_size=upsample_size, **context)
            if getattr(block, "has_cross_attention", False):
                kwargs["encoder_hidden_states"] = encoder_hidden_states
            sample = block(hidden_states=sample, **kwargs)

        # 6. post-process; [B*F, C, h, w] -> [B, F, C, h, w]
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)


def with_space_time(unet: PerFrameUNet, heads: int, causal: bool = False) -> PerFrameUNet:
    """`unet` with a SpaceTimeAttention of `heads` heads added (zero output: it computes what
    `unet` did until it trains), on `unet`'s device and dtype. A `unet` that has one with
    `heads` heads comes back with it made causal when `causal` is set (same weights)."""
    has = unet.config.get("space_time_heads", 0)
    if has and (has != heads or not causal):
        raise ValueError(
            f"the UNet already has space-time attention ({has} heads); only making it "
            "causal is a change"
        )
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}  # (which
    # keys took defaults would otherwise override the new one)
    grown = PerFrameUNet.from_config(
        {**config, "space_time_heads": heads, "space_time_causal": causal}
    )
    missing, unexpected = grown.load_state_dict(unet.state_dict(), strict=False)
    if unexpected or not all(k.startswith("space_time.") for k in missing):
        raise ValueError(f"weights do not match: missing {missing}, unexpected {unexpected}")
    return grown.to(device=unet.device, dtype=unet.dtype)
