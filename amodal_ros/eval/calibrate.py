"""Choose a trained model's mask threshold on the validation split (never the test split).

The model runs once per clip (each clip one window through the node's WindowProcessor, as
`amodal-ros eval` runs it) with the smooth upsampling, which keeps the upsampled score; every
candidate threshold is then applied to the same scores as the pipeline applies it (and its
small detached parts removed), so the sweep costs one evaluation.

Run it to judge a model on validation clips, e.g. the shipped student on clips 150-179:
`python -m amodal_ros.eval.calibrate amodal_ros/models/embedded/student1 --preset realtime
--start 150 --clips 30 --thresholds 400` (`embedded --preset realtime` is the same model);
`--set FIELD=VALUE` runs it with a field it decides set otherwise (`--set initial_noise=zeros`,
as a rule's `run_settings` judge a run's student; `--set height=64 --set width=128`).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from amodal_ros.core.config import PRESETS, InferenceConfig, StreamConfig, model_settings
from amodal_ros.core.errors import CheckpointError, InputError
from amodal_ros.eval.metrics import mean_scores, score_window

THRESHOLDS = tuple(range(150, 651, 50))  # R+G+B of 765: from a sixth to 85 %
SWEPT = ("rgb_sum_threshold", "mask_upsample")  # the sweep's own: not settable over a model


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
    from amodal_ros.pipeline.detached import drop_specks
    from amodal_ros.pipeline.processor import WindowProcessor

    if inference.num_samples > 1:  # then `soft` is the samples' vote, not the R+G+B score
        raise ValueError(
            f"thresholds are swept on one sample's R+G+B score: num_samples must be 1, "
            f"got {inference.num_samples}"
        )
    config = inference.replace(mask_upsample="smooth")
    # the processor's own removal of small parts would zero their scores at its threshold
    # only; here they are removed at every threshold
    window_stream = stream.replace(publish_frames="new", detached_part_share=0.0)
    processor = WindowProcessor.from_config(window_stream, config)
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
            truth = (clip.amodal[i], clip.modal(i), clip.visible[i])
            for t in thresholds:
                pred = (soft * 765.0 > t + 0.5) | modal
                if stream.detached_part_share > 0:
                    drop_specks(pred, stream.detached_part_share)
                windows[t].append(score_window(pred, *truth))
    if processor.errors:
        raise ProcessingError(f"{processor.errors} window(s) failed; see the log above")
    return {t: mean_scores(w) for t, w in windows.items()}


def validation_scores(
    checkpoint: str,
    preset: str,
    start: int,
    count: int,
    thresholds=THRESHOLDS,
    settings: dict[str, str | int] | None = None,
) -> dict[int, dict[str, float]]:
    """`sweep_thresholds` of `checkpoint` under `preset` (and `settings`, inference fields over
    the model's defaults) on validation clips start..start+count-1, one window each: what
    every shipping rule scores."""
    from amodal_ros.data.scenes import make_scene, split_seeds

    config = InferenceConfig(preset=preset, **(settings or {}))
    seeds = split_seeds("val", count, start)
    clips = [make_scene(seed, num_frames=config.num_frames) for seed in seeds]
    stream = StreamConfig(checkpoint=checkpoint)
    return sweep_thresholds(stream, config, clips, thresholds, progress=True)


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

    def rank(t: int) -> tuple[float, float]:  # NaN (no occluded frame) ranks last
        occ = scores[t]["mIoU_occ_all"]
        return (-math.inf if math.isnan(occ) else occ, scores[t]["mIoU"])

    return max(close, key=rank)


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names it: "invalid int value: 'abc'"
    return parse


def main(argv: list[str] | None = None) -> None:
    """Print a checkpoint's validation scores at each threshold as JSON, with the criterion's
    choice: the numbers behind every threshold and shipping rule in docs/training.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint folder, or 'embedded'")
    parser.add_argument(
        "--preset",
        default="quality",
        choices=tuple(PRESETS),
        help="realtime for a one-step student (embedded's own)",
    )
    parser.add_argument("--start", type=_at_least(0), default=0, help="first validation clip")
    parser.add_argument("--clips", type=_at_least(1), default=30)
    parser.add_argument(
        "--thresholds",
        default=",".join(map(str, THRESHOLDS)),
        help="R+G+B thresholds of 765, comma-separated",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="run the model with this over its default (e.g. initial_noise=zeros, height=64)",
    )
    ns = parser.parse_args(argv)
    try:
        thresholds = tuple(int(t) for t in ns.thresholds.split(","))
    except ValueError:
        parser.error(f"--thresholds {ns.thresholds!r}: expected integers, e.g. 350,400,450")
    try:
        settings = model_settings(ns.set, leave_out=SWEPT)
    except ValueError as err:
        parser.error(f"--set {err}")
    try:
        scores = validation_scores(
            ns.checkpoint, ns.preset, ns.start, ns.clips, thresholds, settings
        )
    except (CheckpointError, InputError) as err:  # one line and exit 2, as amodal-ros says it
        parser.error(str(err))
    report = {
        "checkpoint": ns.checkpoint,
        "preset": ns.preset,
        "settings": settings,
        "split": "val",
        "clips": [ns.start, ns.start + ns.clips],
        "criterion": CRITERION,
        "chosen": best_threshold(scores),
        "best_mIoU": max(scores, key=lambda t: scores[t]["mIoU"]),
        "scores": {t: {k: round(v, 3) for k, v in s.items()} for t, s in scores.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
