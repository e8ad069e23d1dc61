"""`amodal-ros synth OUT`: synthetic amodal video clips with full ground truth, to disk.

Usage:
    amodal-ros synth data/synth/train --split train --clips 1000
    amodal-ros synth data/synth/test --split test --clips 100 --bags   # also a rosbag2 per clip

Each clip goes to OUT/<split>_<seed>/ in the folder format of amodal_ros.data.clip_folder (RGB,
depth, instance labels, amodal masks, full appearance, meta.json); with --bags also to
OUT/<split>_<seed>_bag/ as the camera topics `amodal-ros replay` reads. The test split's seeds
are fixed (from 1000000), so every machine evaluates on the same clips. A clip (and its bag)
appears only when complete: a failed or stopped run leaves no half clip to block the next.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path

from amodal_ros.core.config import MAX_IMAGE_SIDE, param
from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import check_makeable, staged_path


@dataclass
class Args:
    """Which clips to generate, and where."""

    out: Path = param(MISSING, "output folder (clips are added to it)", positional=True)
    split: str = param(
        "train",
        "seed range: train, test (held out), val (calibration), unseen (held-out families)",
        choices=("train", "test", "val", "unseen"),
    )
    clips: int = param(10, "number of clips", 1)
    start: int = param(0, "first clip index of the split", 0)
    frames: int = param(25, "frames per clip", 1)
    image_height: int = param(128, "image height, pixels", 16, MAX_IMAGE_SIDE)
    image_width: int = param(256, "image width, pixels", 16, MAX_IMAGE_SIDE)
    bags: bool = param(False, "also write a rosbag2 per clip")
    camera_fps: float = param(8.0, "camera rate of the bags, frames/s", 0.01, 1000.0)
    progress: bool = param(True, "progress bar")


def run(args: Args) -> dict:
    """Write the clips; returns {"out", "clips"}."""
    from tqdm.auto import tqdm

    from amodal_ros.data.scenes import (
        make_scene,
        make_unseen_scene,
        split_seeds,
        write_clip_folder,
    )

    if args.clips < 1:
        raise ValueError(f"--clips must be >= 1, got {args.clips}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"OUT {args.out} is a file; synth writes clip folders into a folder")
    check_makeable(args.out, "OUT")
    written = []
    seeds = split_seeds(args.split, args.clips, args.start)
    names = [f"{args.split}_{seed}" for seed in seeds]

    def written_before(name: str) -> list[Path]:
        paths = [args.out / name] + ([args.out / f"{name}_bag"] if args.bags else [])
        return [p for p in paths if p.exists()]

    clashes = [name for name in names if written_before(name)]
    if clashes:  # before any work: a clash found half-way would leave half a run
        done = next((i for i, name in enumerate(names) if name not in clashes), len(names))
        hint = "choose another OUT or --start"
        if 0 < done < len(names) and not set(clashes) - set(names[:done]):  # a run cut short
            hint = f"to write the rest: --start {args.start + done} --clips {args.clips - done}"
        raise InputError(f"{written_before(clashes[0])[0]} exists; {hint}")
    for seed, name in tqdm(
        list(zip(seeds, names)), desc=args.split, unit="clip", disable=not args.progress
    ):
        make = make_unseen_scene if args.split == "unseen" else make_scene
        clip = make(seed, num_frames=args.frames, height=args.image_height, width=args.image_width)
        with staged_path(args.out / name) as folder:  # a failed bag takes its clip along
            write_clip_folder(clip, folder)
            if args.bags:
                from amodal_ros.bags.demo_bag import write_clip_bag

                bag = args.out / f"{name}_bag"
                write_clip_bag(clip.rgb, clip.depth, clip.labels, bag, args.camera_fps)
        written.append(name)
    print(
        f"wrote {len(written)} {args.split} clip(s) to {args.out}: {written[0]} .. {written[-1]}"
    )
    return {"out": str(args.out), "clips": written}
