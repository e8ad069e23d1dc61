"""Typed inference configuration; defaults are the published Diffusion-VAS values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

CONDITIONING_MODES = ("consistent", "reference")
DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class InferenceConfig:
    """How one window is sampled. Flat scalars so the ROS node can bind them as parameters.

    `conditioning_mode`:
      - "consistent" (default): as the model was trained; every frame's cross-attention sees the
        window's per-frame CLIP embeddings, the unconditional branch gets zeros, correctly paired,
        and the fps time id is `fps`.
      - "reference": reproduces the reference inference (Kaihua-Chen/diffusion-vas demo) exactly:
        one token per frame, its scrambled guidance pairing and the fps - 1 time id.
      Which one the published weights prefer is not settled (needs them and SAIL-VOS).
    """

    height: int = 256  # working resolution, pixels (published: 256x512)
    width: int = 512
    num_frames: int = 25  # window length the model was trained on
    num_steps: int = 25  # Euler (EDM) sampling steps
    min_guidance: float = 1.5  # classifier-free guidance, ramped linearly over frames
    max_guidance: float = 1.5  # the demo uses min = max = 1.5; <= 1 disables guidance
    conditioning_mode: str = "consistent"
    fps: int = 8  # training fps id; "reference" mode passes fps - 1
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02  # sigma of noise added to conditioning pixels
    decode_chunk_size: int = 8  # frames per temporal-VAE decode call
    rgb_sum_threshold: int = 600  # amodal where R+G+B (0..765) of the decoded frame exceeds this
    max_batch_objects: int = 4  # objects per batched UNet call
    num_samples: int = 1  # hypotheses per object (the paper's Top-k)
    seed: int = 23  # the reference demo's seed
    device: str = "cpu"
    dtype: str = "float32"  # UNet dtype; the VAE encodes in fp32 when its config forces upcast

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 8 or value % 8:
                raise ValueError(f"{name} must be a positive multiple of 8 pixels, got {value!r}")
        positive = (
            "num_frames",
            "num_steps",
            "decode_chunk_size",
            "max_batch_objects",
            "num_samples",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.min_guidance < 0 or self.max_guidance < 0:
            raise ValueError(
                "min_guidance/max_guidance must be >= 0, "
                f"got {self.min_guidance}/{self.max_guidance}"
            )
        if self.conditioning_mode not in CONDITIONING_MODES:
            raise ValueError(
                f"conditioning_mode must be one of {CONDITIONING_MODES}, "
                f"got {self.conditioning_mode!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not 0 <= self.rgb_sum_threshold < 765:
            raise ValueError(
                f"rgb_sum_threshold must be in [0, 765), got {self.rgb_sum_threshold}"
            )
        if self.noise_aug_strength < 0:
            raise ValueError(f"noise_aug_strength must be >= 0, got {self.noise_aug_strength}")
        if self.fps < 1:
            raise ValueError(f"fps must be >= 1, got {self.fps}")

    @property
    def uses_guidance(self) -> bool:
        return max(self.min_guidance, self.max_guidance) > 1.0

    @property
    def fps_id(self) -> int:
        # The reference trains with fps = 8 but passes fps - 1 at inference (REFERENCE.md, item 3).
        return self.fps - 1 if self.conditioning_mode == "reference" else self.fps

    def replace(self, **changes) -> InferenceConfig:
        """A validated copy with some fields changed."""
        return InferenceConfig(**{**asdict(self), **changes})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
