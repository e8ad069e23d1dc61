"""The models of one Diffusion-VAS stage, as the pipeline receives them."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from amodal_ros.models.unet import PerFrameUNet

# A distilled student's second noise level (its 2-step schedule [sigma_max, this, 0]): latents
# have unit variance, so at 1 the second evaluation refines a still-recognisable shape.
STUDENT_SIGMA = 1.0

# OpenAI CLIP normalisation, used when a checkpoint has no feature_extractor/.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VasComponents:
    """The models of one Diffusion-VAS stage, ready to run.

    Attributes:
        defaults: InferenceConfig fields this model was made for (working size, conditioning
            mode), read from its folder; the pipeline fills fields left at 'auto' from them.
        source: where the models came from (a folder, or a name such as '<tiny seeded>').
        student: for a distilled student (`amodal-ros distill`), how it was made (teacher,
            targets, steps); empty for a model sampled with the full Euler schedule. Its
            scheduler config holds its own few-step schedule.
        stage: the stage these models are for (1: amodal segmentation, 2: content
            completion), as their folder records it or as they were loaded; None when unknown.
            A folder written from them records it, so it cannot be given for the other stage
            (both stages' UNets take 12 channels).
    """

    unet: PerFrameUNet
    vae: torch.nn.Module  # AutoencoderKLTemporalDecoder
    image_encoder: torch.nn.Module  # CLIPVisionModelWithProjection
    scheduler_config: dict
    clip_mean: tuple[float, float, float] = CLIP_MEAN
    clip_std: tuple[float, float, float] = CLIP_STD
    source: str = "<in memory>"
    defaults: dict = field(default_factory=dict)
    student: dict = field(default_factory=dict)
    stage: int | None = None

    @property
    def is_student(self) -> bool:
        """Whether this is a distilled few-step student (run with `student: true`)."""
        return bool(self.student)

    @property
    def latent_channels(self) -> int:
        """Channels of a latent frame: what the VAE encodes to and the UNet predicts (4 as
        SVD's; a wider latent keeps more of an appearance)."""
        return self.vae.config.latent_channels

    @property
    def num_conditions(self) -> int:
        """1 for mask-only checkpoints (8 input channels at 4 latent channels), 2 for
        mask+depth or stage 2's two conditions (12): the UNet reads the noisy latent and one
        latent per condition."""
        return self.unet.config.in_channels // self.latent_channels - 1

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel of the VAE, per side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def clip_size(self) -> int:
        """Input side of the CLIP vision tower, pixels."""
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

    def frozen(self) -> VasComponents:
        """Eval mode, no gradients: how inference and the frozen training parts run them."""
        for module in (self.unet, self.vae, self.image_encoder):
            module.eval().requires_grad_(False)
        return self


def student_schedule(teacher_schedule: dict, second_sigma: float = STUDENT_SIGMA) -> dict:
    """A student's scheduler config: the teacher's Euler/Karras config with sigma_min set to the
    student's second noise level, so the stock schedule of 1 step is [sigma_max, 0] and of 2
    steps [sigma_max, second_sigma, 0]: the pipeline samples a student unchanged."""
    if not teacher_schedule.get("use_karras_sigmas"):
        raise ValueError(
            "the teacher's scheduler does not use Karras sigmas (SVD's Euler config does); a "
            "student's schedule is built on them"
        )
    return {**teacher_schedule, "sigma_min": float(second_sigma)}
