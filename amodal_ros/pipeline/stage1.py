"""Stage 1 of Diffusion-VAS: modal masks (+ depth) of a window -> amodal masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from amodal_ros.core.errors import InputError
from amodal_ros.core.types import AmodalResult, ObjectTrack
from amodal_ros.depth.normalize import normalize_window
from amodal_ros.pipeline import preprocess
from amodal_ros.pipeline.cache import FrameEncodingCache, stable_seed
from amodal_ros.pipeline.checks import check_frames, check_tracks
from amodal_ros.pipeline.runner import (
    SamplingJob,
    StagePipeline,
    WarmStarts,
    rgb_sum,
    to_masks,
)


class AmodalSegmenter(StagePipeline):
    """Turns the modal masks of several objects over one window into amodal masks.

    Objects (and their samples) run batched, `config.objects_per_call` windows per UNet call;
    each object's noise is seeded from (seed, object id, sample), so results do not depend on
    batching. Per-frame encodings go through `cache`: pass the same cache with stable object ids
    and frame keys across sliding windows and only new frames are encoded.
    With `config.mirror_ensemble` 'on', every window also runs mirrored left-right, and with
    `config.reverse_ensemble` 'on' reversed in time (both ways mirrored too): each object's
    scores are the mean of the views (a scene's mirror image, or the scene played backwards, is
    as plausible as the scene, and the answers' errors differ), at the views' UNet and decoder
    work. A view runs as any window would, its guidance ramp by position included, so the
    ensemble answers a reversed window with the reversed answer.
    `from_pretrained` loads a mask-only or mask+depth checkpoint folder (or 'embedded').
    """

    STAGE = 1

    @property
    def needs_depth(self) -> bool:
        """Whether the checkpoint conditions on depth (mask+depth) or on masks only."""
        return self.components.num_conditions == 2

    def __call__(
        self,
        tracks: Sequence[ObjectTrack],
        inverse_depth: np.ndarray | None = None,
        cache: FrameEncodingCache | None = None,
        progress: bool = False,
        frames: Sequence[int] | None = None,
        warm: WarmStarts | None = None,
    ) -> list[AmodalResult]:
        """Amodal masks for every object of a window.

        Args:
            tracks: objects of the window, each with [T, H, W] bool modal masks.
            inverse_depth: [T, H, W] relative inverse depth of the frames (Depth Anything output
                or `CameraDepth`), any positive scale; normalised over the window here. Required
                by mask+depth checkpoints, refused by mask-only ones.
            cache: per-frame encoding cache shared across windows; a fresh one when None.
            frames: indices of the frames whose masks are needed (None = all). Frames that
                are not needed and share no decoder chunk with one are not decoded; they carry
                the modal mask and are marked in `AmodalResult.decoded`.
            warm: with `config.warm_start`, each object's last result, which starts the next
                window of tracks with `frame_keys` (stamps) that overlap it (kept per stream).

        Returns:
            one AmodalResult per track, in order, at the input resolution.
        """
        cfg = self.config
        # 1. check inputs
        t, h, w = check_tracks(tracks)
        if self.needs_depth and inverse_depth is None:
            raise InputError(
                f"checkpoint {self.components.source} is a mask+depth model: pass depth "
                "(camera depth or a Depth Anything V2 folder)"
            )
        if not self.needs_depth and inverse_depth is not None:
            raise InputError(
                f"checkpoint {self.components.source} is mask-only: it takes no depth input"
            )
        check_frames("depth", inverse_depth, t, h, w, None)
        cache = cache if cache is not None else FrameEncodingCache()

        # 2-3. conditioning per view (as seen, and mirrored with mirror_ensemble 'on'): shared
        # per-frame depth, and each object's masks (latents + CLIP), cached per frame
        mirrors = (False, True) if cfg.uses_mirror else (False,)
        depth_pixels = None
        if inverse_depth is not None:
            depth_pixels = preprocess.depth_pixels(
                normalize_window(inverse_depth), cfg.height, cfg.width
            )
        mask_pixels = [
            preprocess.mask_pixels(track.masks, cfg.height, cfg.width, cfg.mask_resize)
            for track in tracks
        ]
        conditions = {}
        for mirrored in mirrors:
            depth_latents = None
            if depth_pixels is not None:
                depth_latents, _ = self._encode(
                    cache, "depth", None, tracks[0].keys(), depth_pixels, mirrored
                )
            for i, track in enumerate(tracks):
                latents, clip = self._encode(
                    cache, "mask", track.object_id, track.keys(), mask_pixels[i], mirrored
                )
                if depth_latents is not None:
                    latents = torch.cat([latents, depth_latents], dim=1)  # [T, 8, h, w]
                conditions[i, mirrored] = (latents, clip)

        # 4-6. sample every (object, sample, view) window in bounded batches, decode; with
        # reverse_ensemble 'on' the same windows again, their frames in reverse order (the
        # per-frame encodings reused), in a second pass that decodes the chunks holding the
        # asked frames' places in reverse order
        owners = [
            (i, track, s, mirrored)
            for i, track in enumerate(tracks)
            for s in range(cfg.num_samples)
            for mirrored in mirrors
        ]
        views = []
        for reverse in (False, True) if cfg.uses_reverse else (False,):
            given = {k: _in_reverse(*c) for k, c in conditions.items()} if reverse else conditions
            jobs = [
                SamplingJob(
                    *given[i, mirrored],
                    stable_seed(cfg.seed, "noise", track.object_id, s),
                    None if reverse else self._warm_init(warm, track, (s, mirrored)),
                )
                for i, track, s, mirrored in owners
            ]
            wanted = [t - 1 - f for f in frames] if reverse and frames is not None else frames
            # stage 1 needs only R+G+B: reduced on the device, one small copy per window
            sums, decoded = self.sampler.run(jobs, wanted, progress=progress, reduce=rgb_sum)
            if not reverse and cfg.warm_start > 0 and warm is not None:
                for (_, track, s, mirrored), latents in zip(owners, self.sampler.last_latents):
                    if track.frame_keys is not None:  # without stamps there is no next window
                        warm.remember(track.object_id, (s, mirrored), track.keys(), latents)
            if reverse:  # back in time order
                sums, decoded = sums.flip(1), [t - 1 - j for j in reversed(decoded)]
            if cfg.uses_mirror:  # each mirrored window flipped back
                sums = torch.stack([sums[0::2], sums[1::2].flip(-1)], dim=1)
            else:
                sums = sums[:, None]
            views.append((sums, decoded))  # [objects x samples, views, t, h, w]
        # the frames every pass decoded (each pass decodes the chunks holding `frames`)
        indices = [f for f in views[0][1] if all(f in d for _, d in views[1:])]
        sums = average_views(
            torch.cat([v[:, :, [d.index(f) for f in indices]] for v, d in views], dim=1)
        )

        # 7. threshold, resize to input size, union with the modal mask
        results = []
        for i, track in enumerate(tracks):
            own = sums[i * cfg.num_samples : (i + 1) * cfg.num_samples]  # [S, t, h', w']
            results.append(self._postprocess(track, own, indices, h, w))
        return results

    def _encode(self, cache, kind: str, object_key, keys, pixels: np.ndarray, mirrored: bool):
        """Latents (and, for masks, CLIP embeddings) of a window's conditioning frames, or of
        their mirror image (under its own cache entries and noise augmentation)."""
        with_clip = kind == "mask"
        if mirrored:
            kind, pixels = f"{kind}-mirrored", np.ascontiguousarray(pixels[..., ::-1])
        return self.sampler.encoder.encode(kind, object_key, keys, pixels, cache, with_clip)

    def _warm_init(self, warm, track: ObjectTrack, sample) -> torch.Tensor | None:
        if warm is None or self.config.warm_start <= 0 or track.frame_keys is None:
            return None  # without stamps, windows cannot be aligned
        return warm.init(track.object_id, sample, track.keys())

    def _postprocess(
        self, track: ObjectTrack, sums: torch.Tensor, indices: list[int], h: int, w: int
    ) -> AmodalResult:
        cfg = self.config
        small, scores = to_masks(sums, cfg.rgb_sum_threshold)  # [S, t, h', w'] (R+G+B)/765
        small, scores = small.reshape(-1, *small.shape[2:]), scores.reshape(-1, *scores.shape[2:])
        scores = preprocess.resize_stack(scores, h, w, False).reshape(cfg.num_samples, -1, h, w)
        modal = track.masks[indices]
        if cfg.mask_upsample == "nearest":  # threshold at the working size (the reference)
            masks = preprocess.resize_stack(small.astype(np.uint8), h, w, True).astype(bool)
            masks = masks.reshape(cfg.num_samples, -1, h, w) | modal[None]
        else:  # upsample the score, then threshold: outlines finer than the working grid
            # (+0.5: integer sums at the working size compare exactly as `sum > threshold`)
            masks = (scores * 765.0 > cfg.rgb_sum_threshold + 0.5) | modal[None]
        decoded = np.zeros(len(track.masks), bool)
        decoded[indices] = True
        amodal = track.masks.copy()  # frames not decoded carry the modal mask
        soft = track.masks.astype(np.float32)
        if cfg.num_samples == 1:
            amodal[indices] = masks[0]
            soft[indices] = np.maximum(np.clip(scores[0], 0.0, 1.0), modal)
            return AmodalResult(
                track.object_id, amodal, soft, track.masks, decoded=_none_if_all(decoded)
            )
        p = masks.mean(axis=0, dtype=np.float32)  # share of samples marking each pixel
        amodal[indices] = p >= 0.5
        soft[indices] = p
        disagreement = np.zeros(soft.shape, np.float32)
        disagreement[indices] = 1.0 - np.abs(2.0 * p - 1.0)
        samples = np.repeat(track.masks[None], cfg.num_samples, axis=0)
        samples[:, indices] = masks
        return AmodalResult(
            track.object_id,
            amodal=amodal,
            soft=soft,
            modal=track.masks,
            disagreement=disagreement,
            samples=samples,
            decoded=_none_if_all(decoded),
        )


def average_views(views: torch.Tensor) -> torch.Tensor:
    """R+G+B sums [N, V, ..., H, W] of V views of each window, each already turned back to the
    window as seen, averaged over V and rounded half down (ceil(mean - 1/2)), so that the mean
    passes an integer threshold T exactly where the exact mean passes T + 0.5 (as the smooth
    upsampling compares); for 2 views this is the mean rounded down."""
    total, count = views.int().sum(dim=1), views.shape[1]
    return (2 * total + count - 1).div(2 * count, rounding_mode="floor").to(views.dtype)


def _in_reverse(latents: torch.Tensor, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A window's per-frame conditioning [T, ...] with its frames in reverse order."""
    return latents.flip(0), clip.flip(0)


def _none_if_all(decoded: np.ndarray) -> np.ndarray | None:
    return None if decoded.all() else decoded
