r"""`amodal-ros distill`: a one-step student of a stage-1 or stage-2 model (preset `realtime`).

Usage:
    amodal-ros distill --out student_out                        # the embedded model, synthetic
    amodal-ros distill --distill-stage 2 --distill-target truth --out student2_out  # stage 2
    amodal-ros distill --teacher diffusion-vas-amodal-segmentation --data my_bags/ \
        --out student_out --mixed-precision bf16                # your recordings, on a GPU
    accelerate launch -m amodal_ros.cli.main distill --teacher DIR --data my_bags/ --out ...

The teacher (25 steps with guidance) samples `--distill-windows` windows of the data first
(OUT/targets/; bags are replayed through it, OUT/targets/replays/), then the student, started
from the teacher's weights, learns to give the same in 1 and 2 UNet evaluations
(amodal_ros/train/distill.py). With `--distill-target truth` it learns the ground truth of
fresh synthetic windows instead, with no teacher sampling; `--distill-stage 2` (truth only)
makes a student of a completion model. Run the result with `--checkpoint OUT/final --preset
realtime` (stage 2: `--completion-checkpoint OUT/final`). A rerun with the same OUT continues.
"""

from __future__ import annotations

from dataclasses import dataclass

from amodal_ros.core.config import OFFLINE_DEFAULT_CHECKPOINT, group
from amodal_ros.train.config import TrainConfig

# the TrainConfig fields a distillation run is steered by; the rest follow the teacher
OPTIONS = (
    "init",
    "data",
    "rgb_topic",
    "depth_topic",
    "mask_topic",
    "distill_windows",
    "distill_target",
    "distill_stage",
    "distill_space",
    "pixel_iou_weight",
    "hidden_weight",
    "newest_weight",
    "fresh_unet",
    "unet_width",
    "space_time_heads",
    "space_time_causal",
    "student_sigma",
    "out",
    "steps",
    "minutes",
    "batch_size",
    "lr",
    "warmup_steps",
    "lr_schedule",
    "grad_clip",
    "ema_decay",
    "initial_noise",
    "working_size",
    "sample_reuse",
    "data_workers",
    "render_scale",
    "num_frames",
    "seed",
    "save_every",
    "log_every",
    "mixed_precision",
    "progress",
)


def distill_defaults() -> TrainConfig:
    """The recipe of the embedded student (docs/training.md, "Distillation")."""
    return TrainConfig(
        stage="distill",
        init=OFFLINE_DEFAULT_CHECKPOINT,
        trainable="all",
        out="distill_out",
        steps=1500,
        lr=1e-4,
        warmup_steps=50,
        lr_schedule="cosine",
        grad_clip=1.0,
        render_scale=4,
        save_every=250,
        seed=2,
    )


@dataclass
class Args:
    """A distillation run: TrainConfig fields with the student's recipe as defaults."""

    training: TrainConfig = group(distill_defaults, only=OPTIONS)


def run(args: Args) -> dict:
    """Collect the teacher's samples, then train (or resume) the student."""
    from amodal_ros.train.loop import train

    result = train(args.training)
    if result["main_process"]:
        flag = "--completion-checkpoint" if args.training.distill_stage == 2 else "--checkpoint"
        print(
            f"distilled {result['steps']} steps; student: {result['final']} (run it with "
            f"{flag} {result['final']} --preset realtime)"
        )
    return result
