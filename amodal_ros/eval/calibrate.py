"""Choose a trained model's mask threshold on the validation split (never the test split).

The model runs once per clip (each clip one window through the node's WindowProcessor, as
`amodal-ros eval` runs it) with the smooth upsampling, which keeps the upsampled score; every
candidate threshold is then applied to the same scores, so the sweep costs one evaluation.
"""

from __future__ import annotations

import numpy as np

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.eval.metrics import mean_scores, score_window

THRESHOLDS = tuple(range(150, 651, 50))  # R+G+B of 765: from a sixth to 85 %


def sweep_thresholds(
    stream: StreamConfig,
    inference: InferenceConfig,
    clips,
    thresholds=THRESHOLDS,
    progress: bool = False,
) -> dict[int, dict[str, float]]:
    """{threshold: mean scores (mIoU, mIoU_occ, ...)} of the model `stream` names on `clips`.

    Args:
        clips: AmodalClips (use the 'val' split: `split_seeds('val', n)`), one window each.
    """
    from tqdm.auto import tqdm

    from amodal_ros.core.errors import ProcessingError
    from amodal_ros.eval.run import clip_window
    from amodal_ros.pipeline.processor import WindowProcessor

    config = inference.replace(mask_upsample="smooth")
    processor = WindowProcessor.from_config(stream.replace(publish_frames="new"), config)
    windows: dict[int, list] = {t: [] for t in thresholds}
    for clip in tqdm(clips, desc="calibrate", unit="clip", disable=not progress):
        visible = [i for i in clip.target_ids if clip.modal(i).any()]
        if not visible:
            continue
        processor.reset()  # each clip's stamps start at 0: no warm start from another clip
        frames = processor.process(clip_window(clip, visible))
        for k, i in enumerate(visible):
            modal = np.stack([f.objects[k].modal for f in frames])
            soft = np.stack([f.objects[k].soft for f in frames])  # >= 1 on the modal mask
            for t in thresholds:
                pred = (soft * 765.0 > t + 0.5) | modal
                windows[t].append(
                    score_window(pred, clip.amodal[i], clip.modal(i), clip.visible[i])
                )
    if processor.errors:
        raise ProcessingError(f"{processor.errors} window(s) failed; see the log above")
    return {t: mean_scores(w) for t, w in windows.items()}


MIOU_TOLERANCE = 0.5  # points of whole-mask mIoU that a hidden part may cost
CRITERION = f"most mIoU_occ_all within {MIOU_TOLERANCE} points of the best mIoU"


def best_threshold(scores: dict[int, dict[str, float]]) -> int:
    """The threshold that finds most of the hidden parts (mIoU_occ_all) among those whose
    whole-mask mIoU is within MIOU_TOLERANCE of the best.

    The whole mask is mostly visible pixels, so it barely moves when a hidden part is found
    and it alone picks timid masks; the tolerance keeps a greedy mask from winning, since
    every pixel over-reached costs whole-mask mIoU."""
    best = max(s["mIoU"] for s in scores.values())
    close = [t for t in scores if scores[t]["mIoU"] >= best - MIOU_TOLERANCE]
    return max(close, key=lambda t: (scores[t]["mIoU_occ_all"], scores[t]["mIoU"]))
