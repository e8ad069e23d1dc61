"""SVD's 3D UNet with per-frame cross-attention conditioning, as Diffusion-VAS uses it."""

from __future__ import annotations

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.unets.unet_spatio_temporal_condition import (
    UNetSpatioTemporalConditionOutput,
)


class PerFrameUNet(UNetSpatioTemporalConditionModel):
    """`UNetSpatioTemporalConditionModel` whose cross-attention context is given per frame.

    The stock forward takes `encoder_hidden_states` as [batch, tokens, dim] and repeats it over
    all frames. Diffusion-VAS conditions every frame on its own CLIP context, so this forward
    takes [batch * frames, tokens, dim] as given (the reference's `unet_diffusion_vas.py` does
    the same). Everything else is the stock forward; weights and config are stock, so any
    stock checkpoint loads. A [batch, tokens, dim] context still works (repeated as stock).
    """

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
        Returns [B, F, 4, h, w]."""
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
