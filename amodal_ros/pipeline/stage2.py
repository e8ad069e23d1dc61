"""Stage 2 of Diffusion-VAS: modal RGB + amodal masks -> the object's completed appearance."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.errors import CheckpointError, InputError
from amodal_ros.core.types import AmodalResult, CompletionResult, ObjectTrack
from amodal_ros.models.components import VasComponents
from amodal_ros.pipeline import preprocess
from amodal_ros.pipeline.cache import FrameEncodingCache, stable_seed
from amodal_ros.pipeline.checks import check_frames, check_tracks
from amodal_ros.pipeline.runner import SamplingJob, StagePipeline, to_uint8


class ContentCompleter(StagePipeline):
    """Paints the hidden part of objects, given their modal RGB and stage-1 amodal masks; the
    visible part keeps the camera's pixels (the model repaints the whole object, blurred by its
    working size).

    Same pipeline as stage 1 with other conditions (diffusion-vas): first condition = the modal
    RGB on white (also the CLIP input), second = the amodal mask as +-1.
    """

    STAGE = 2

    def __init__(self, components: VasComponents, config: InferenceConfig | None = None):
        if components.num_conditions != 2:
            raise CheckpointError(
                f"{components.source}: a content-completion UNet takes "
                f"{3 * components.latent_channels} input channels (noisy latent + modal RGB + "
                f"amodal mask, {components.latent_channels} each), this one takes "
                f"{components.unet.config.in_channels}"
            )
        super().__init__(components, config)

    def __call__(
        self,
        rgb: np.ndarray,
        amodal: Sequence[AmodalResult],
        cache: FrameEncodingCache | None = None,
        progress: bool = False,
        frames: Sequence[int] | None = None,
        frame_keys: Sequence[Hashable] | None = None,
    ) -> list[CompletionResult]:
        """Completed appearance of every object.

        Args:
            rgb: [T, H, W, 3] uint8 RGB frames of the window.
            amodal: stage-1 results (their `modal` and `amodal` masks, [T, H, W] bool), decoded
                on every frame (stage 2 conditions on all of them).
            frames: indices of the frames whose completion is needed (None = all); frames in
                no needed decoder chunk stay white with alpha 0.
            frame_keys: T keys (stamps) naming the frames, as stage 1's tracks have them: a
                sliding window then reuses the encodings of the frames it shares with the
                last one (None: the frames are named by their index in the window).

        Returns:
            one CompletionResult per object at the input resolution.
        """
        cfg = self.config
        # 1. check inputs
        partial = [r.object_id for r in amodal if r.decoded is not None]
        if partial:
            raise InputError(
                f"stage 1 decoded only some frames of objects {partial}; stage 2 conditions on "
                "every frame's amodal mask: run stage 1 with frames=None"
            )
        tracks = [ObjectTrack(r.object_id, r.modal) for r in amodal]
        t, h, w = check_tracks(tracks)
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
            raise InputError(f"rgb must be a uint8 array, got {getattr(rgb, 'dtype', type(rgb))}")
        check_frames("rgb", rgb, t, h, w, 3)
        cache = cache if cache is not None else FrameEncodingCache()
        keys = list(range(t)) if frame_keys is None else list(frame_keys)
        if len(keys) != t:
            raise InputError(f"frame_keys must name the {t} frames, got {len(keys)}")

        # 2. conditions per object: modal RGB on white (+ CLIP) and the amodal mask
        jobs = []
        for result in amodal:
            rgb_pixels = preprocess.modal_rgb_pixels(
                rgb, result.modal, cfg.height, cfg.width, cfg.mask_resize
            )
            rgb_latents, clip = self.sampler.encoder.encode(
                "rgb", result.object_id, keys, rgb_pixels, cache, with_clip=True
            )
            mask_pixels = preprocess.mask_pixels(
                result.amodal, cfg.height, cfg.width, cfg.mask_resize
            )
            mask_latents, _ = self.sampler.encoder.encode(
                "amodal", result.object_id, keys, mask_pixels, cache, with_clip=False
            )
            cond = torch.cat([rgb_latents, mask_latents], dim=1)  # [T, 8, h, w]
            seed = stable_seed(cfg.seed, "complete", result.object_id)
            jobs.append(SamplingJob(cond, clip, seed))

        # 3. sample, decode, resize back
        decoded, indices = self.sampler.run(jobs, frames, progress=progress, reduce=to_uint8)
        videos = decoded.numpy()  # [N, t, h', w', 3] uint8
        out = []
        for result, video in zip(amodal, videos):
            completed = np.full((t, h, w, 3), 255, np.uint8)
            inside = _covered(result.amodal[indices], video.shape[1:3])
            painted = preprocess.resize_stack(
                preprocess.extend_inside(video, inside), h, w, nearest=False
            )
            # the visible part as the camera saw it: the model repaints it at its working size
            seen = result.modal[indices, ..., None]
            completed[indices] = np.where(seen, rgb[indices], painted)
            alpha = result.amodal.astype(np.uint8)[..., None] * np.uint8(255)
            alpha[[i for i in range(t) if i not in set(indices)]] = 0
            out.append(
                CompletionResult(
                    result.object_id, completed, np.concatenate([completed, alpha], -1)
                )
            )
        return out


def _covered(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[T, h, w] bool: the working-size pixels the [T, H, W] masks wholly cover. The model's
    pixels on the mask's edge are part white (it paints on white), so they are repainted
    from inside too: +0.81 dB PSNR on the covered hidden pixels, where repainting only those
    the mask covers less than half of gave +0.46 (8 validation clips; docs/training.md, "The
    painting's edge")."""
    share = preprocess.resize_stack(masks.astype(np.float32), *size, nearest=False)
    return share >= WHOLLY_COVERED


WHOLLY_COVERED = 0.99  # a share of a pixel: area resizing sums in float32
