"""`amodal-ros eval`: the model and the baselines on the same held-out synthetic clips.

Per method: mIoU, mIoU_occ (the reference's rule), mIoU_occ_all (misses count as 0), AP50 of
the amodal boxes (TAO-Amodal's metric), Top-k mIoU with several samples, and, with a stage-2
checkpoint, PSNR/SSIM of the completed content inside the hidden regions (synthetic clips
have the ground truth the paper could only judge by a user study). Writes results.md,
results.json and examples.png.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np

from amodal_ros.core.config import (
    MAX_IMAGE_SIDE,
    STUDENT_MAX_STEPS,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)
from amodal_ros.core.errors import InputError, ProcessingError
from amodal_ros.core.staging import staged_path
from amodal_ros.eval.baselines import BASELINES, mean_colour_fill
from amodal_ros.eval.metrics import (
    as_shown,
    average_precision,
    box_detections,
    completion_errors,
    completion_scores,
    frame_iou,
    mean_scores,
    occluded_region,
    score_window,
)

MODEL = "model"  # the results row of the evaluated checkpoint
CARVED = "convex_hull_carved"  # the hull carved by the camera depth the model's masks are
WRITES = ("results.md", "results.json", "examples.png")  # what eval writes into --out
# stage 2's baseline behind the same masks (baselines.mean_colour_fill), as mean_colour_<key>
MEAN_COLOUR_SCORES = ("completion_psnr_db", "completion_psnr_found_db")


@dataclass
class EvalArgs:
    """What `amodal-ros eval` scores, on which clips. Without a checkpoint: baselines only.

    Generated clips are `inference.num_frames` long (one window each).
    """

    out: Path = param(MISSING, "results folder")
    clips: int = param(20, "held-out clips generated on the fly (fixed seeds)", 1)
    start: int = param(
        0,
        "first clip index of the split (or of --data's folders, sorted): fresh validation "
        "clips to confirm a choice made on the first ones (as amodal-ros synth --start)",
        0,
    )
    split: str = param(
        "test",
        "'test' (held out), 'val' (for calibration), 'unseen' (object families and occluders "
        "never used in training)",
        choices=("test", "val", "unseen"),
    )
    data: Path | None = param(
        None, "or a folder of clip folders (amodal-ros synth): the first --clips of them"
    )
    student_checkpoint: str = param(
        "",
        "also score this distilled student (amodal-ros distill; 'embedded' = the shipped one) "
        "at 1 and 2 UNet evaluations: rows student-1, student-2 (with the completion "
        "checkpoint's student: it must be one, or '')",
    )
    student_steps: int = param(
        STUDENT_MAX_STEPS,
        "the student is scored at 1 up to this many UNet evaluations (1: row student-1 only, "
        "what `preset: realtime` runs, at half the cost of a report)",
        1,
        STUDENT_MAX_STEPS,
    )
    clip_height: int = param(128, "height of generated clips, pixels", 16, MAX_IMAGE_SIDE)
    clip_width: int = param(256, "width of generated clips, pixels", 16, MAX_IMAGE_SIDE)
    examples: int = param(4, "clips shown in examples.png", 0)
    progress: bool = param(True, "progress bar")
    stream: StreamConfig = group(
        StreamConfig,
        only=(
            "checkpoint",
            "completion_checkpoint",
            "min_object_pixels",
            "free_space_margin",
            "detached_part_share",
        ),
    )
    # warm_start carries an object's last window into its next: eval runs one window a clip
    inference: InferenceConfig = group(InferenceConfig, exclude=("warm_start",))


def run(args: EvalArgs) -> dict:
    """Score every method on every target window; write and return the results."""
    from tqdm.auto import tqdm

    check_out(args.out)
    clips = _clips(args)
    processors = _processors(args)
    methods = dict(BASELINES)
    windows: dict[str, list] = {name: [] for name in methods}
    families: list[str] = []  # each window's object family, in the order of every method's
    boxes: dict[str, list] = {}  # method -> [(scores, hits, num_gt)] per window
    topk, shown = [], []
    completion: dict[str, list] = {}  # method -> completion errors (all, found) per window
    # the model's working grid, whose coarse edges carving leaves a band around (none without)
    sized = processors[MODEL].pipelines.config if MODEL in processors else None
    working = (sized.height, sized.width) if sized is not None else None
    started = time.perf_counter()
    for clip in tqdm(clips, desc="eval", unit="clip", disable=not args.progress):
        predictions = {}
        for name, baseline in methods.items():
            predictions[name] = {i: baseline(clip.modal(i)) for i in clip.target_ids}
        if args.stream.free_space_margin > 0:  # what the model's masks get, the hull gets
            hulls = predictions["convex_hull"]
            predictions[CARVED] = {
                i: _carved(hulls[i], clip, i, args.stream.free_space_margin, working)
                for i in clip.target_ids
            }
        confidence: dict[str, dict] = {}
        for name, processor in processors.items():
            model_pred, confidence[name], model_topk, model_completion = _run_model(
                clip, processor
            )
            predictions[name] = model_pred
            completion.setdefault(name, []).extend(model_completion)
            if name == MODEL:
                topk.extend(model_topk)
        families.extend(clip.families.get(i, "") for i in clip.target_ids)
        for name, per_object in predictions.items():
            windows.setdefault(name, [])
            for i in clip.target_ids:
                pred = per_object[i]
                windows[name].append(
                    score_window(pred, clip.amodal[i], clip.modal(i), clip.visible[i])
                )
                scores = confidence[name].get(i) if name in confidence else None
                boxes.setdefault(name, []).append(box_detections(pred, clip.amodal[i], scores))
        if len(shown) < args.examples:
            shown.append((clip, predictions))
    failed = sum(p.errors for p in processors.values())
    if failed:  # a failed window would score as modal
        raise ProcessingError(
            f"{failed} window(s) failed (the log above says why); no scores written"
        )
    results = {name: mean_scores(w) for name, w in windows.items()}
    for name, per_window in boxes.items():
        scores = [s for window in per_window for s in window[0]]
        hits = [h for window in per_window for h in window[1]]
        num_gt = sum(window[2] for window in per_window)
        results[name]["AP50_box"] = 100.0 * average_precision(scores, hits, num_gt)
        # the reference's "AP50": no ranking, so every method stands on the same footing
        results[name]["box_hit50"] = 100.0 * sum(hits) / num_gt if num_gt else float("nan")
    samples = args.inference.num_samples
    if topk:
        results[MODEL][f"top{samples}_mIoU"] = 100.0 * float(np.mean(topk))  # pooled frames
    for name, per_window in completion.items():
        if per_window:  # stage 2's scores, and the mean colour's behind the same masks
            results[name].update(completion_scores([stage2 for stage2, _ in per_window]))
            fill = completion_scores([fill for _, fill in per_window])
            results[name].update({f"mean_colour_{k}": fill[k] for k in MEAN_COLOUR_SCORES})
    summary = {
        "split": _split_name(args, clips),
        "start": args.start,
        "clips": len(clips),
        "windows": len(windows["modal"]),
        "seconds": round(time.perf_counter() - started, 2),
        "checkpoint": args.stream.checkpoint or None,
        "clips_version": sorted({clip.clips_version for clip in clips}),
        "results": results,
    }
    if all(families):  # clips that name their objects' families
        summary["by_family"] = by_family(windows, families)
    if MODEL in processors:
        summary["model"] = processors[MODEL].pipelines.describe()
    if args.student_checkpoint:
        summary["student"] = args.student_checkpoint
    _write(args.out, summary, shown)
    print((args.out / "results.md").read_text(), end="")
    print(f"wrote {args.out}/results.md, results.json" + (", examples.png" if shown else ""))
    return summary


def _carved(
    hull: np.ndarray, clip, object_id: int, margin: float, working: tuple[int, int] | None
) -> np.ndarray:
    """[T, H, W] the convex hull less what the clip's camera depth shows as free space, as the
    pipeline carves the model's masks (eval runs the model so): the baseline's share of what
    depth alone gives (a review found carving lifted the hull's mIoU_occ_all by 4 points)."""
    from amodal_ros.core.types import AmodalResult
    from amodal_ros.pipeline.free_space import carve, keep_band

    modal = clip.modal(object_id)
    if not modal.any():  # no visible pixel to judge depth by: nothing is carved
        return hull
    result = AmodalResult(object_id, hull.copy(), hull.astype(np.float32), modal)
    keep = keep_band(hull.shape[1:], working) if working else 0
    carve(result, list(clip.depth), margin, keep)
    return result.amodal


def _split_name(args: EvalArgs, clips) -> str:
    """The split scored: a --data folder's is its clips' (one split per folder, _clips)."""
    from amodal_ros.data.scenes import split_of

    return f"data folder ({split_of(clips[0].seed) or 'other'})" if args.data else args.split


def _clips(args: EvalArgs):
    from amodal_ros.data.clip import CLIPS_VERSION
    from amodal_ros.data.scenes import (
        make_scene,
        make_unseen_scene,
        read_clip_folder,
        split_of,
        split_seeds,
    )

    frames = args.inference.num_frames
    if args.data is not None:
        generating = [  # options of generated clips: a folder's clips are its own
            "--" + f.name.replace("_", "-")
            for f in fields(args)
            if f.name in ("split", "clip_height", "clip_width")
            and getattr(args, f.name) != f.default
        ]
        if generating:
            raise InputError(
                f"{', '.join(generating)} choose generated clips, and --data scores its "
                "folder's own: drop one"
            )
        if not Path(args.data).is_dir():
            raise FileNotFoundError(
                f"--data {args.data} is no folder: pass a folder of clip folders (amodal-ros "
                "synth DIR --split test writes one)"
            )
        folders = sorted(p for p in Path(args.data).iterdir() if (p / "meta.json").is_file())
        if not folders:
            raise FileNotFoundError(f"no clip folders (with meta.json) in {args.data}")
        if args.start >= len(folders):
            raise ValueError(
                f"--start {args.start} is past the {len(folders)} clip folders in {args.data}"
            )
        chosen = folders[args.start : args.start + args.clips]
        if len(chosen) < args.clips:  # never fewer than asked without a word
            print(
                f"eval: {args.data} holds {len(folders)} clip folders: scoring {len(chosen)} "
                f"from --start {args.start}, not the {args.clips} of --clips",
                file=sys.stderr,
            )
        if len(chosen) < len(folders):  # --clips and --start count folders: never a silent subset
            print(
                f"eval: scoring folders {args.start + 1}-{args.start + len(chosen)} of the "
                f"{len(folders)} clip folders in {args.data} (--start 0 --clips {len(folders)} "
                "for all)",
                file=sys.stderr,
            )
        clips = [read_clip_folder(f) for f in chosen]
        splits = Counter(split_of(clip.seed) or "other" for clip in clips)
        if len(splits) > 1:  # e.g. train and test clips synthesised into one folder
            found = ", ".join(f"{n} {split}" for split, n in sorted(splits.items()))
            raise InputError(
                f"the clip folders in {args.data} are of several splits ({found}): scores "
                "would mix them; keep one split per folder (amodal-ros synth DIR/test "
                "--split test)"
            )
        versions = sorted({clip.clips_version for clip in clips} - {CLIPS_VERSION})
        if versions:
            print(
                f"eval: warning: clip folders in {args.data} were written by an earlier generator "
                f"(clips version {', '.join(map(str, versions))}; today's is {CLIPS_VERSION}, "
                "amodal_ros/data/clip.py): their scores compare only with scores of the same "
                "clips; synth them again for today's",
                file=sys.stderr,
            )
        if "train" in splits:
            print(
                f"eval: warning: the clip folders in {args.data} are of the train split: their "
                "scores say how well the model fits what it was trained on, not how it does on "
                "clips it never saw (synth --split test writes held-out ones)",
                file=sys.stderr,
            )
        models = args.stream.checkpoint or args.student_checkpoint
        for folder, clip in zip(chosen, clips):  # a model scores a clip as one window
            if models and len(clip.rgb) != frames:
                raise InputError(
                    f"clip folder {folder} has {len(clip.rgb)} frames, but eval scores each "
                    f"clip as one window of --num-frames {frames}: write clips of {frames} "
                    "frames (amodal-ros synth --frames), or pass the window length the model "
                    "runs"
                )
        return clips
    make = make_unseen_scene if args.split == "unseen" else make_scene
    return [
        make(seed, num_frames=frames, height=args.clip_height, width=args.clip_width)
        for seed in split_seeds(args.split, args.clips, args.start)
    ]


def _processors(args: EvalArgs) -> dict:
    """The node's WindowProcessor per scored model: the checkpoint (MODEL) and the student at
    each of its step counts (none: baselines only); every frame of a clip's window is
    published."""
    from amodal_ros.pipeline.factory import build
    from amodal_ros.pipeline.processor import WindowProcessor

    stream = args.stream.replace(publish_frames="new", depth_source="auto")
    processors = {}
    if args.stream.checkpoint:
        processors[MODEL] = WindowProcessor.from_config(stream, args.inference)
    if args.student_checkpoint:
        # the completion checkpoint's student too (stage 2 runs under the same preset)
        student = stream.replace(checkpoint=args.student_checkpoint)
        one_step = args.inference.replace(preset="realtime")
        loaded = build(student, one_step)  # the models, loaded once for every step count
        for steps in range(1, args.student_steps + 1):
            config = one_step.replace(num_steps=steps)
            processors[f"student-{steps}"] = WindowProcessor(loaded.with_config(config), student)
    return processors


def clip_window(clip, object_ids):
    """A whole clip as one full window of the stream (camera depth in metres), every frame new."""
    from amodal_ros.core.frames import frames_from_arrays
    from amodal_ros.pipeline.window import Window

    frames = frames_from_arrays(clip.rgb, clip.labels, clip.depth, "32FC1")
    return Window(tuple(frames), tuple(object_ids), new_frames=len(frames), full=True)


def _run_model(clip, processor):
    visible = [i for i in clip.target_ids if clip.modal(i).any()]
    predictions = {i: clip.modal(i) for i in clip.target_ids}  # nothing visible: nothing to run
    if not visible:
        return predictions, {}, [], []
    processor.reset()  # each clip's stamps start at 0: no warm start from another clip's object
    frames = processor.process(clip_window(clip, visible))
    per_object = {i: [f.objects[k] for f in frames] for k, i in enumerate(visible)}
    topk, confidence, completion = [], {}, []
    for i, objects in per_object.items():
        amodal = np.stack([o.amodal for o in objects])
        soft = np.stack([o.soft for o in objects])
        predictions[i] = amodal
        # per-frame confidence for AP: the mean soft score inside the predicted mask
        area = amodal.reshape(len(amodal), -1).sum(1)
        inside = (soft * amodal).reshape(len(amodal), -1).sum(1)
        confidence[i] = np.where(area > 0, inside / np.maximum(area, 1), 0.0)
        if objects[0].samples is not None:  # Top-k: the best of the sampled hypotheses
            samples = np.stack([o.samples for o in objects], axis=1)  # [S, T, H, W]
            gt, modal = clip.amodal[i], clip.modal(i)
            # its frames pooled as mIoU pools them (OR-ed with the modal input), so that K
            # identical samples score the mIoU
            per_sample = [frame_iou(s | modal, gt) for s in samples]  # S x [T]
            best = max(
                per_sample, key=lambda ious: np.nanmean(ious) if np.isfinite(ious).any() else -1
            )
            topk.extend(best[np.isfinite(best)])
        if objects[0].completion is not None:  # stage 2's, and the mean colour's behind
            hidden = occluded_region(clip.visible[i], clip.amodal[i])  # the same masks
            truth = clip.appearance[i][..., :3]
            fill = mean_colour_fill(clip.rgb, clip.modal(i), amodal)
            pair = []
            for rgba in (np.stack([o.completion for o in objects]), fill):
                rgb = as_shown(rgba)
                errors = completion_errors(rgb, truth, hidden, clip.amodal[i])
                if errors is not None:  # and where the predicted mask found the hidden part
                    found = completion_errors(rgb, truth, hidden & amodal, clip.amodal[i])
                    pair.append((errors, found))
            if pair:
                completion.append(tuple(pair))
    return predictions, confidence, topk, completion


def validation_completion_scores(
    completion: str,
    masks: str,
    start: int,
    count: int,
    settings: dict[str, str | int] | None = None,
) -> dict[str, float]:
    """Stage 2's completion scores (metrics.COMPLETION_SCORES) of the student `completion`
    filling the masks of the stage-1 student `masks`, both under preset realtime (and
    `settings`) as the node runs them, on validation clips start..start+count-1, one window
    each: what a stage-2 shipping rule scores (`amodal_ros.train.judge`)."""
    from tqdm.auto import tqdm

    from amodal_ros.data.scenes import make_scene, split_seeds
    from amodal_ros.pipeline.processor import WindowProcessor

    config = InferenceConfig(preset="realtime", **(settings or {}))
    stream = StreamConfig(checkpoint=masks, completion_checkpoint=completion, publish_frames="new")
    processor = WindowProcessor.from_config(stream, config)
    pairs = []
    for seed in tqdm(split_seeds("val", count, start), desc="completions", unit="clip"):
        completions = _run_model(make_scene(seed, num_frames=config.num_frames), processor)[3]
        pairs.extend(stage2 for stage2, _ in completions)
    if processor.errors:
        raise ProcessingError(f"{processor.errors} window(s) failed; see the log above")
    if not pairs:
        raise ProcessingError(f"validation clips {start}-{start + count - 1} hide nothing")
    return completion_scores(pairs)


def by_family(windows: dict[str, list], families: list[str]) -> dict[str, dict]:
    """{family: {"windows": n, method: {"mIoU", "mIoU_occ_all"}}}: where each method's hidden
    parts succeed and fail (thin and concave shapes fail first), from the per-window scores
    of `windows` (method -> WindowScores, in the order of `families`)."""
    table = {}
    for family in sorted(set(families)):
        rows = [k for k, f in enumerate(families) if f == family]
        table[family] = {"windows": len(rows)}
        for name, scores in windows.items():
            mean = mean_scores([scores[k] for k in rows])
            table[family][name] = {k: mean[k] for k in ("mIoU", "mIoU_occ_all")}
    return table


def _family_table(summary: dict) -> list[str]:
    """results.md's mIoU_occ_all per object family and method, if the clips name families."""
    table = summary.get("by_family")
    if not table:
        return []
    methods = list(summary["results"])
    lines = [
        "\nmIoU_occ_all by object family:\n",
        "| family | windows | " + " | ".join(methods) + " |",
        "|" + "---|" * (len(methods) + 2),
    ]
    for family, row in table.items():
        cells = [_fmt(row[m]["mIoU_occ_all"]) for m in methods]
        lines.append(f"| {family} | {row['windows']} | " + " | ".join(cells) + " |")
    return lines


def _which(summary: dict) -> str:
    """'val', or 'val from clip 30' when the clips do not start at the split's first."""
    start = summary.get("start", 0)
    return f"{summary['split']} from clip {start}" if start else summary["split"]


def check_out(out: Path) -> None:
    """Refuse an --out eval cannot write before any clip is scored (the README's runs take
    an hour): a file, a folder it may not write, or one whose results.md, results.json or
    examples.png another program wrote (an earlier eval's are replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; eval writes a folder ({', '.join(WRITES)})")
    ours = [out / name for name in WRITES if (out / name).exists()]
    if ours and not _earlier_results(out / "results.json"):
        raise InputError(
            f"--out {out} holds {', '.join(p.name for p in ours)} that no earlier eval wrote "
            "(no results.json of one); nothing was replaced: choose another --out"
        )
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise InputError(
            f"--out {out}: {existing} is no folder it can write; choose another --out"
        )


def _earlier_results(path: Path) -> bool:
    """Whether `path` is the results.json of an earlier eval (its summary's keys)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"split", "clips", "windows", "results"} <= set(record)


def _write(out: Path, summary: dict, shown) -> None:
    """examples.png, results.md, then results.json (the run's record), each written whole
    (staged); an examples.png of an earlier run goes when this one shows none."""
    out.mkdir(parents=True, exist_ok=True)
    if shown:
        with staged_path(out / "examples.png") as staged:
            _figure(staged, shown)
    else:
        (out / "examples.png").unlink(missing_ok=True)
    keys = ["mIoU", "mIoU_occ", "mIoU_occ_all", "frames", "frames_occ", "frames_occ_all"]
    extra = sorted({k for r in summary["results"].values() for k in r} - set(keys))
    header = ["method", *keys, *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in summary["results"].items():
        cells = [name] + [_fmt(r.get(k)) for k in keys + extra]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\n{summary['clips']} synthetic clips ({_which(summary)}, clips version "
        f"{'/'.join(map(str, summary['clips_version']))}), {summary['windows']} object "
        "windows. mIoU_occ leaves out frames whose occluded-region IoU is below 1e-6 (the "
        "reference's rule; its occluded regions eroded by the reference's 5x5 at 800 rows, "
        "scaled to the clips' height: none below about 200 rows); mIoU_occ_all counts them "
        "as 0; mIoU_hidden: frames where the object "
        "is fully hidden; *_newest: each window's newest frame only (what the node publishes "
        "with publish_frames latest). area_ratio_median: predicted / true amodal area (median "
        "over frames); "
        "stray_share: % of predicted amodal pixels farther than 3 px from the true mask. "
        "AP50_box: COCO-style AP at box IoU 0.5 of the per-frame amodal boxes (TAO-Amodal's "
        "metric); the model ranks by its mean soft score, baselines have no confidence (one "
        "operating point; an object the model passed through ranks first, its modal mask's "
        "score being 1). box_hit50: % of true amodal boxes matched "
        "at IoU >= 0.5, no ranking (what the reference's evaluation calls AP50, which counts "
        "IoU above 0.5: an IoU of exactly 0.5 is rare; every method on the same footing). "
        "completion_psnr_db / completion_ssim: stage 2's appearance against "
        "the true one over every hidden pixel (pooled; white where the predicted mask missed "
        "it); completion_psnr_found_db: only the hidden pixels the predicted mask covers "
        "(stage 2's painting apart from stage 1's coverage); completion_coverage: % of hidden "
        "pixels covered; completion_psnr_coverage_bound_db: the pooled PSNR if stage 2 painted "
        "every covered pixel exactly (what the missed pixels alone allow); mean_colour_*: "
        "the same two for the simplest completion behind the same masks (the camera's pixels "
        "where visible, the mean colour of them where hidden: stage 2's baseline). "
        "convex_hull_carved: the hull less what the clips' camera depth shows as free space, "
        "carved as the model rows' masks are (free_space_margin; with no model evaluated, "
        "without the band a model's working grid keeps around the visible mask). Masks (not "
        "the boxes of AP50_box and box_hit50) are OR-ed with the modal input, as the reference "
        "scores them (the segmenter-noisy labels given to every method, so even the true "
        "amodal mask scores under 100 where label pixels fall outside it); mIoU_as_published "
        "(results.json) scores the masks as the node publishes them, without label pixels it "
        "removed as detached parts. topK_mIoU: the best of K samples per window (the paper's "
        "oracle Top-K), over the objects the model sampled (an object too small or never "
        "labelled scores in mIoU as its modal mask, in topK_mIoU not at all). Every mask "
        "score is a mean over object "
        "frames pooled across windows, leaving out frames where both masks are empty (so the "
        "methods' frame counts differ; mIoU_occ also over the frames each method found some "
        "of the hidden part in: compare methods by mIoU_occ_all).\n"
        f"\nexamples.png columns: RGB, ground truth, {', '.join(summary['results'])}.\n"
    )
    with staged_path(out / "results.md") as staged:
        staged.write_text("\n".join([*lines, *_family_table(summary)]) + "\n" + note)
    with staged_path(out / "results.json") as staged:
        staged.write_text(json.dumps(_strict_json(summary), indent=2, allow_nan=False))


def _strict_json(value):
    """NaN (a metric with no counted frame) as JSON null and an infinity (the PSNR of an
    exact completion) as the string "inf", so the file is strict JSON and tells them apart."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, float) and np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.2f}"
    return str(value)


def _figure(path: Path, shown) -> None:
    """Rows: clips (middle frame); columns: RGB, ground truth, then each method's prediction
    drawn as the overlay the node publishes (outline, hidden part shaded)."""
    from amodal_ros.data.clip_folder import write_png
    from amodal_ros.interface.overlay import draw_overlay

    rows = []
    for clip, predictions in shown:
        t = len(clip.rgb) // 2
        ids = clip.target_ids
        tiles = [clip.rgb[t]]
        tiles.append(
            draw_overlay(clip.rgb[t], [(clip.modal(i)[t], clip.amodal[i][t]) for i in ids], ids)
        )
        for per_object in predictions.values():
            pairs = [(clip.modal(i)[t], per_object[i][t]) for i in ids]
            tiles.append(draw_overlay(clip.rgb[t], pairs, ids))
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    grid = np.concatenate(rows, axis=0)
    write_png(path, grid)
