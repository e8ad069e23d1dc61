"""Sliding-window evaluation: the stream as the node runs it (a window every `stride` frames,
one cache across windows, only the frames new since the last window decoded and published),
scored on those published frames. Measures what warm start and presets cost in quality."""

from __future__ import annotations

import time

import numpy as np

from amodal_ros.eval.metrics import mean_scores, score_window


def evaluate_sliding(segmenter, clips, stride: int, progress: bool = False) -> dict:
    """mIoU / mIoU_occ (%) of the frames published by windows after the first of each clip
    (the first is a cold start in every configuration), and their window times in seconds.

    Args:
        segmenter: an AmodalSegmenter (its config sets steps, guidance, warm start).
        clips: AmodalClips longer than one window.
        stride: frames between windows (the node's `stride`, publish policy 'new').
    """
    from tqdm.auto import tqdm

    from amodal_ros.core.types import ObjectTrack
    from amodal_ros.depth.camera import inverse_depth_from_camera
    from amodal_ros.pipeline.cache import FrameEncodingCache

    t = segmenter.config.num_frames
    scores, seconds = [], []
    for clip in tqdm(clips, desc="sliding eval", unit="clip", disable=not progress):
        if len(clip.rgb) < t + stride:
            raise ValueError(f"clips need >= {t + stride} frames, got {len(clip.rgb)}")
        cache = FrameEncodingCache()
        depth = None
        if segmenter.needs_depth:
            depth = inverse_depth_from_camera(clip.depth, "32FC1")
        for k, first in enumerate(range(0, len(clip.rgb) - t + 1, stride)):
            frames = slice(first, first + t)
            keys = list(range(first, first + t))
            published = list(range(t - stride, t))
            tracks = [
                ObjectTrack(i, clip.modal(i)[frames], frame_keys=keys)
                for i in clip.target_ids
                if clip.modal(i)[frames].any()
            ]
            if not tracks:
                continue
            cache.forget_frames_before(first)
            started = time.perf_counter()
            results = segmenter(
                tracks, None if depth is None else depth[frames], cache, frames=published
            )
            if k == 0:
                continue
            seconds.append(time.perf_counter() - started)
            for r in results:
                gt = clip.amodal[r.object_id][frames][published]
                scores.append(score_window(r.amodal[published], gt, r.modal[published]))
    summary = mean_scores(scores)
    summary.update(
        windows=len(seconds),
        window_s_p50=float(np.median(seconds)) if seconds else float("nan"),
        window_s_mean=float(np.mean(seconds)) if seconds else float("nan"),
    )
    return summary
