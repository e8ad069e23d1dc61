"""`amodal-ros demo`: the product end to end on a synthetic RGB-D scene, no downloads needed.

Writes a demo rosbag2 (a 15 fps RGB-D camera, instance masks, objects passing behind an
occluder), replays it through the node's streaming pipeline (sync, 8 fps sampling, 25-frame
windows, stride 5) into a results bag, and writes the overlay video:

    OUT/demo_bag/      the input bag (try `ros2 bag play` or `amodal-ros replay` on it)
    OUT/results/       AmodalObjectArray, overlay and completion topics (rosbag2)
    OUT/overlay.mp4    amodal outlines over the RGB, hidden parts shaded (+ overlay.gif up to
                       200 frames)
    OUT/summary.json   the replay summary

By default it runs the embedded model (amodal_ros/models/embedded): a small Diffusion-VAS,
stage 1 (mask + depth) and stage 2 (completion), trained on synthetic scenes on a CPU, under
preset realtime: its one-step students, which beat its 25-step stages on every mask metric
(MODEL_CARD.md); --preset quality runs the stages. The demo scene is from the held-out test
split. Real cameras need the published weights (--checkpoint and --completion-checkpoint, with
--preset quality: they have no students).

Usage:
    amodal-ros demo --out demo_out
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from amodal_ros.core.config import (
    OFFLINE_DEFAULT_CHECKPOINT,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)
from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import (
    check_makeable,
    remove_dead_partials,
    stage_name,
    staged_path,
)

DEMO_OUTPUTS = ("demo_bag", "results", "overlay.mp4", "overlay.gif", "summary.json")
EARLIER = "earlier_demo"  # an earlier demo's outputs wait under this staged name in OUT


def demo_stream() -> StreamConfig:
    """The demo's stream: both embedded stages, every sampled frame answered."""
    return StreamConfig(
        checkpoint=OFFLINE_DEFAULT_CHECKPOINT,
        completion_checkpoint=OFFLINE_DEFAULT_CHECKPOINT,
        publish_frames="new",
    )


def demo_inference() -> InferenceConfig:
    """The demo's sampling: preset realtime, the embedded model's best and fastest path."""
    return InferenceConfig(preset="realtime")


@dataclass
class Args:
    """What `amodal-ros demo` writes, and with which model."""

    out: Path = param(Path("demo_out"), "output folder")
    frames: int = param(60, "camera frames (15 fps)", 1)
    overwrite: bool = param(
        False,
        "write into a folder of other files, beside them (a previous demo's output is always "
        "replaced)",
    )
    stream: StreamConfig = group(
        demo_stream, only=("checkpoint", "completion_checkpoint", "stride", "depth_model")
    )
    inference: InferenceConfig = group(demo_inference)


def run(args: Args) -> dict:
    """Write the demo bag, replay it and write the video; returns the replay summary. A run
    that fails leaves none of its outputs (nor the folder, when it made it), and an earlier
    demo's outputs as they were."""
    out = args.out
    made = not out.exists()
    earlier = _set_aside(out, args.overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
        summary = _demo(out, args)
    except BaseException:
        _remove_outputs(out)
        if earlier is not None:  # a typo'd checkpoint or a Ctrl-C deleted the last demo
            for path in earlier.iterdir():
                path.rename(out / path.name)
            earlier.rmdir()
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    if earlier is not None:
        shutil.rmtree(earlier)
    print(
        f"wrote {out}: input bag demo_bag/, results bag results/ "
        f"({summary['results_written']} frames), video: {', '.join(summary['videos'])}"
    )
    from amodal_ros.bags.replay import check_windows

    check_windows(summary)  # exit code 1: the outputs are kept, to look at
    return summary


def _set_aside(out: Path, overwrite: bool) -> Path | None:
    """Move an earlier demo's outputs in `out` into a hidden folder there (returned: removed
    when this run succeeds, put back when it fails); refuse a folder of other files unless
    `overwrite`, and even then one holding files of the demo's output names (they would be
    replaced): nothing of the user's is deleted."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; choose a folder")
    check_makeable(out, "--out")
    if out.is_dir():  # what a killed run set aside (its outputs are unknown: not put back)
        remove_dead_partials(out, EARLIER)
    if not out.exists() or not any(out.iterdir()):
        return None
    # a demo writes its input bag first: a run killed after that is recognised too
    if not (out / "demo_bag" / "metadata.yaml").is_file():
        if not overwrite:
            raise InputError(
                f"{out} exists and is not an earlier demo's output; choose another --out or "
                "pass --overwrite (the demo is then written beside its files)"
            )
        clashing = [name for name in DEMO_OUTPUTS if (out / name).exists()]
        if clashing:
            raise InputError(
                f"{out} is not an earlier demo's output, and it holds {', '.join(clashing)}, "
                "which the demo would replace; nothing was deleted: choose another --out"
            )
        return None
    aside = out / stage_name(out / EARLIER)
    aside.mkdir()
    for name in DEMO_OUTPUTS:
        if (out / name).exists() or (out / name).is_symlink():
            (out / name).rename(aside / name)
    return aside


def _remove_outputs(out: Path) -> None:
    for name in DEMO_OUTPUTS:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _demo(out: Path, args: Args) -> dict:
    from amodal_ros.bags import replay
    from amodal_ros.bags.demo_bag import write_demo_bag

    stream = args.stream
    # the embedded stage 2 goes with the embedded stage 1, either mask student (another stage 1
    # has its own size)
    default_stage2 = demo_stream().completion_checkpoint
    from amodal_ros.models.registry import is_embedded

    if not is_embedded(stream.checkpoint) and stream.completion_checkpoint == default_stage2:
        stream = stream.replace(completion_checkpoint="")
    write_demo_bag(out / "demo_bag", frames=args.frames)
    summary = replay.run(
        replay.ReplayArgs(
            bag=out / "demo_bag",
            out=out / "results",
            stream=stream,
            inference=args.inference,
            video=out / "overlay",
        )
    )
    with staged_path(out / "summary.json") as staged:
        staged.write_text(json.dumps(summary, indent=2, default=str))
    return summary
