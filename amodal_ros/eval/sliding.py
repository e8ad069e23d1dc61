"""Sliding-window evaluation: the stream as the node runs it (a window every `stride` frames,
one WindowProcessor across a clip's windows, the frames new since the last window published),
scored on those published frames. Measures what warm start and presets cost in quality."""

from __future__ import annotations

import time

import numpy as np

from amodal_ros.eval.metrics import mean_scores, score_window


def evaluate_sliding(pipelines, clips, stride: int, progress: bool = False) -> dict:
    """MIoU / mIoU_occ (%) of the frames published by windows after the first that runs in
    each clip (a cold start in every configuration), and their window times in seconds.

    Args:
        pipelines: amodal_ros.pipeline.factory.Pipelines (its config sets steps, guidance,
            warm start).
        clips: AmodalClips longer than one window.
        stride: frames between windows (the node's `stride`, publish policy 'new').
    """
    from tqdm.auto import tqdm

    from amodal_ros.core.config import StreamConfig
    from amodal_ros.core.errors import ProcessingError
    from amodal_ros.core.frames import frames_from_arrays
    from amodal_ros.pipeline.processor import WindowProcessor
    from amodal_ros.pipeline.window import Window

    t = pipelines.config.num_frames
    scores, seconds = [], []
    for clip in tqdm(clips, desc="sliding eval", unit="clip", disable=not progress):
        if len(clip.rgb) < t + stride:
            raise ValueError(f"clips need >= {t + stride} frames, got {len(clip.rgb)}")
        processor = WindowProcessor(pipelines, StreamConfig(publish_frames="new"))
        frames = frames_from_arrays(clip.rgb, clip.labels, clip.depth, "32FC1")
        index = {f.stamp_ns: n for n, f in enumerate(frames)}
        cold = True  # the clip's first window that runs: no earlier one to start from
        for first in range(0, len(frames) - t + 1, stride):
            span = slice(first, first + t)
            visible = [i for i in clip.target_ids if clip.modal(i)[span].any()]
            if not visible:
                continue
            window = Window(tuple(frames[span]), tuple(visible), new_frames=stride, full=True)
            started = time.perf_counter()
            published = processor.process(window)
            if cold:
                cold = False
                continue
            seconds.append(time.perf_counter() - started)
            shown = [index[r.frame.stamp_ns] for r in published]  # their frames in the clip
            for n, i in enumerate(visible):
                pred = np.stack([r.objects[n].amodal for r in published])
                modal = np.stack([r.objects[n].modal for r in published])
                truth = clip.amodal[i][shown]
                scores.append(score_window(pred, truth, modal, clip.visible[i][shown]))
        if processor.errors:  # a failed window would score as the modal mask
            raise ProcessingError(f"{processor.errors} window(s) failed; see the log above")
    summary = mean_scores(scores)
    summary.update(
        windows=len(seconds),
        window_s_p50=float(np.median(seconds)) if seconds else float("nan"),
        window_s_mean=float(np.mean(seconds)) if seconds else float("nan"),
    )
    return summary
