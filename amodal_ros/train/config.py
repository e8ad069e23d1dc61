"""The training run's config (torch-free, so the command line is built without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass

from amodal_ros.bags import topics
from amodal_ros.core.config import INITIAL_NOISES, Config, check_fields, param, working_size

DEFAULT_BAG_TOPICS = (topics.RGB_TOPIC, topics.DEPTH_TOPIC, topics.MASK_TOPIC)


@dataclass
class TrainConfig(Config):
    """A training run; flat fields so it round-trips through YAML/JSON."""

    init: str = param(
        "",
        "starting checkpoint folder (published layout) or model name ('embedded'); '' = tiny "
        "model. Stage distill: the teacher, which the student starts from (with target "
        "truth it may be a student, fine-tuned)",
        flags=("--teacher",),
    )
    stage: str = param(
        "amodal",
        "'amodal' (stage 1), 'completion' (stage 2), 'vae' (a small model's autoencoder) or "
        "'distill' (a few-step student of stage 1 or 2)",
        None,
        None,
        ("amodal", "completion", "vae", "distill"),
    )
    data: str = param(
        "synth",
        "stage distill: 'synth' (synthetic train split) or a folder of rosbags (replayed "
        "through the teacher: your own unlabeled recordings) and synthetic clip folders",
    )
    rgb_topic: str = param(
        topics.RGB_TOPIC, "stage distill from bags: their RGB topic (Image or CompressedImage)"
    )
    depth_topic: str = param(
        topics.DEPTH_TOPIC,
        "stage distill from bags: their depth topic (read when the teacher uses camera depth)",
    )
    mask_topic: str = param(
        topics.MASK_TOPIC, "stage distill from bags: their instance-label topic (your segmenter's)"
    )
    distill_stage: int = param(
        1,
        "stage distill: the teacher's stage, 1 (amodal masks) or 2 (content completion; "
        "distill_target truth only: stage 2 has no recorded teacher)",
        1,
        2,
    )
    distill_windows: int = param(
        256,
        "stage distill: teacher-sampled windows to collect (at most, from recordings) and train "
        "on (the first ones of a store collected for more)",
        1,
    )
    distill_target: str = param(
        "teacher",
        "stage distill: regress to the 'teacher' samples, the ground 'truth' (fresh synthetic "
        "windows every step; no teacher sampling) or a 'mix' of both",
        None,
        None,
        ("teacher", "truth", "mix"),
    )
    distill_space: str = param(
        "latents",
        "stage distill, target truth: where the student's samples meet the truth: 'latents' "
        "(the VAE's posterior mean) or 'pixels' (decoded, the VAE decoder trained with the "
        "student end to end)",
        None,
        None,
        ("latents", "pixels"),
    )
    pixel_iou_weight: float = param(
        0.1,
        "stage-1 student in pixels: weight of the soft-IoU loss of its mask frames beside the "
        "MSE (0 = the MSE alone)",
        0.0,
        100.0,
    )
    hidden_weight: float = param(
        0.0,
        "stage distill, target truth: extra weight of the object's hidden part in the "
        "student's loss: each latent cell (or pixel) counts 1 + this x its hidden share. The "
        "hidden part is what the model is for, and a small share of the frame",
        0.0,
        100.0,
    )
    newest_weight: float = param(
        0.0,
        "stage distill, target truth: extra weight of a window's later frames in the "
        "student's loss: frame t of T counts 1 + this x t/(T-1), the newest 1 + this. The live "
        "node publishes each window's newest frame, the one with no later frames to look at",
        0.0,
        100.0,
    )
    student_sigma: float = param(
        1.0, "stage distill: the student's second noise level (2-step schedule)", 0.01, 100.0
    )
    depth: bool = param(True, "stage 1 with depth channels (false = masks only)")
    sample_targets: bool = param(
        True,
        "diffusion targets drawn from the VAE posterior (the reference); false = its mean, for "
        "a VAE trained as a deterministic autoencoder (stage vae)",
    )
    fresh_unet: bool = param(
        False,
        "start from a new seeded tiny UNet instead of init's (after the vae stage; stage "
        "distill with target truth: a student with no teacher, only init's VAE and encoder)",
    )
    unet_width: int = param(
        32,
        "a new UNet's (fresh_unet, or init ''): channels of its first block (the second has "
        "twice as many), a multiple of 32 (the UNet's group norm); 32 is the embedded model's",
        32,
        1024,
    )
    space_time_heads: int = param(
        0,
        "add attention across space and time after the UNet's mid block, with this many heads "
        "(0 = none): to a new UNet, or to init's, which it leaves unchanged until it trains",
        0,
        64,
    )
    space_time_causal: bool = param(
        False,
        "the space-time attention lets a frame see its own and earlier frames only, as the "
        "live node sees a window's newest frame (making init's causal keeps its weights; a "
        "causal UNet stays causal)",
    )
    trainable: str = param(
        "temporal",
        "'temporal' (the reference: temporal transformer blocks + input conv) or 'all' (from "
        "scratch); stage vae: 'decoder' fine-tunes init's decoder alone (its encoder, latents and "
        "scaling factor kept, so every model trained in them stays valid), else the whole VAE",
        None,
        None,
        ("temporal", "all", "decoder"),
    )
    vae_blocks: int = param(
        4, "VAE blocks of a tiny model built here (init ''): 4 = 8x downsampling as SVD", 2, 5
    )
    vae_width: int = param(
        32, "channels per VAE block of a tiny model built here, a multiple of 32", 32, 512
    )
    latent_channels: int = param(
        4,
        "channels of each latent of a tiny model built here (init ''; 4 as SVD's): its UNet "
        "reads and writes that many per latent; a wider latent keeps more appearance",
        1,
        64,
    )
    vae_frames: str = param(
        "all",
        "stage vae: what the autoencoder learns, 'all' (masks, depth and objects' RGB: one "
        "VAE for both stages) or 'appearance' (objects' RGB on white: stage 2's own VAE)",
        None,
        None,
        ("all", "appearance"),
    )
    kl_weight: float = param(1e-6, "KL weight of the autoencoder loss (stage vae)", 0.0, 1.0)
    render_scale: int = param(
        1,
        "clips are rendered at this multiple of the working size and resized to it, as a "
        "camera's frames are (4: 128x256 for a 32x64 model, the eval clips' size)",
        1,
        16,
    )
    mask_resize: str = param(
        "nearest",
        "masks to the working size: 'nearest' (binary) or 'area' (soft edges); recorded in the "
        "checkpoint, so inference resizes as training did",
        None,
        None,
        ("nearest", "area"),
    )
    rgb_sum_threshold: int = param(
        600,
        "the mask threshold recorded in the checkpoint (R+G+B of 765; 382 = half, for 'area' "
        "masks); calibrate it on the val split",
        0,
        764,
    )
    out: str = param("train_out", "output folder")
    steps: int = param(1000, "optimizer steps", 1)
    batch_size: int = param(1, "windows per step", 1)
    lr: float = param(3e-6, "AdamW learning rate (the reference trained at 3e-6)", 0.0, 1.0)
    warmup_steps: int = param(0, "linear learning-rate warm-up from 0, steps", 0)
    sample_reuse: int = param(
        1,
        "stage 1/2: each encoded window is used about this many times (new noise each time); "
        "encoding is most of a small model's CPU step",
        1,
        100,
    )
    data_workers: int = param(
        0,
        "processes preparing synthetic windows ahead of the training step (0 = in the "
        "training process; each accelerate process has its own): a GPU's step outruns one "
        "core's rendering. The batches are the same for any number; needs sample_reuse 1",
        0,
        256,
    )
    grad_clip: float = param(0.0, "largest gradient norm; 0 = no clipping", 0.0, 1e6)
    initial_noise: str = param(
        "gaussian",
        "stage distill, target truth: what the student starts from, 'gaussian' noise or "
        "'zeros' (its mean: a deterministic one-step model, recorded so inference starts "
        "from zeros too)",
        None,
        None,
        INITIAL_NOISES,
    )
    working_size: str = param(
        "",
        "stage distill, target truth: the student's working size HEIGHTxWIDTH (e.g. 64x128, "
        "multiples of 8; recorded, so inference runs it there); '' = its teacher's. Clips are "
        "rendered at render_scale x this size: halve render_scale to keep their size",
    )
    ema_decay: float = param(
        0.0,
        "keep a moving average of the trained weights, this decay a step (0 = off; 0.995 "
        "averages about the last 200 steps); checkpoints publish the average",
        0.0,
        0.9999,
    )
    lr_schedule: str = param(
        "constant",
        "'constant' (the reference) or 'cosine' (to 10 % of lr at `steps`: short runs end finer)",
        None,
        None,
        ("constant", "cosine"),
    )
    num_frames: int = param(25, "frames per window", 1)
    height: int = param(128, "working height (the reference trains at 128x256)", 16)
    width: int = param(256, "working width", 16)
    seed: int = param(0, "seed of data order, noise and dropout", 0)
    minutes: float = param(
        0.0,
        "this call's time budget, loading included (0 = none): after its first steps the run "
        "is shortened to the steps that fit, so the schedule ends low and `final` is published",
        0.0,
    )
    save_every: int = param(500, "steps between checkpoints", 1)
    log_every: int = param(10, "steps between loss.csv rows", 1)
    mixed_precision: str = param(
        "no", "accelerate mixed precision", None, None, ("no", "fp16", "bf16")
    )
    progress: bool = param(True, "progress bar")

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.out.strip():  # Path('') is the current folder, which the run would fill
            raise ValueError("out is empty: name the run's folder")
        for name in ("height", "width"):
            if getattr(self, name) % 8:
                raise ValueError(
                    f"{name} {getattr(self, name)}: the models work on multiples of 8 pixels"
                )
        for name in ("unet_width", "vae_width"):  # both normalise channels in 32 groups
            if getattr(self, name) % 32:
                raise ValueError(
                    f"{name} {getattr(self, name)}: the model normalises channels in 32 "
                    "groups; choose a multiple of 32"
                )
        if self.unet_width != 32 and self.init and not self.fresh_unet:
            raise ValueError(
                f"unet_width {self.unet_width} sets a new UNet's width, but the run continues "
                f"{self.init}'s UNet: add fresh_unet (--fresh-unet) or leave unet_width at 32"
            )
        if self.latent_channels != 4 and self.init:
            raise ValueError(
                f"latent_channels {self.latent_channels} shapes a new tiny model's latent "
                f"(init ''); {self.init}'s VAE keeps its own: leave latent_channels at 4"
            )
        if self.vae_frames != "all" and self.stage != "vae":
            raise ValueError(
                f"vae_frames {self.vae_frames!r} chooses what an autoencoder learns (stage "
                "vae); the other stages train on their own windows"
            )
        if self.trainable == "decoder" and (self.stage != "vae" or not self.init):
            raise ValueError(
                "trainable decoder fine-tunes a trained autoencoder's decoder: it needs stage "
                "vae and init (a checkpoint folder whose VAE the models were trained in)"
            )
        if self.data_workers and (self.sample_reuse > 1 or self.stage == "vae"):
            raise ValueError(
                f"data_workers {self.data_workers} render a fresh window for every batch item "
                "of stage amodal, completion or distill: set sample_reuse 1 (windows are cheap "
                "with workers), and train stage vae without workers"
            )
        if self.initial_noise == "zeros" and (
            self.stage != "distill" or self.distill_target != "truth"
        ):
            raise ValueError(
                "initial_noise zeros trains a student of the ground truth from zero noise "
                "(stage distill, distill_target truth); diffusion training and the teacher's "
                "samples need their gaussian noise"
            )
        if self.working_size and (self.stage != "distill" or self.distill_target != "truth"):
            raise ValueError(
                f"working_size {self.working_size} sets a student's own working size (stage "
                "distill, distill_target truth); other stages train at height and width, and "
                "a student of the teacher's samples at the teacher's"
            )
        working_size(self.working_size)  # a malformed size is refused now, not at a save
        if self.stage != "distill":
            return
        if self.data_workers and self.distill_target != "truth":
            raise ValueError(
                "data_workers render ground-truth windows (distill_target truth); the "
                "teacher's samples are collected before training"
            )
        bag_topics = (self.rgb_topic, self.depth_topic, self.mask_topic)
        if self.data == "synth" and bag_topics != DEFAULT_BAG_TOPICS:
            raise ValueError(
                "rgb_topic, depth_topic and mask_topic name the topics of the bags in data; "
                "data synth has no bags: pass --data FOLDER or leave the topics out"
            )
        if self.distill_target == "truth" and self.data != "synth":
            raise ValueError(
                "distill_target truth trains on fresh synthetic windows (data synth); to learn "
                "from a folder use distill_target teacher (or mix, for synthetic clip folders)"
            )
        if self.distill_space == "pixels" and self.distill_target != "truth":
            raise ValueError(
                "distill_space pixels compares decoded samples with the true frames "
                "(distill_target truth); the teacher's samples are latents"
            )
        if (self.hidden_weight or self.newest_weight) and self.distill_target != "truth":
            raise ValueError(
                "hidden_weight and newest_weight weight the ground truth's cells (distill_target "
                "truth); the teacher's windows are trained on unweighted"
            )
        if self.distill_stage == 2 and self.distill_target != "truth":
            raise ValueError(
                "a stage-2 student learns from the ground truth only (distill_target truth): "
                "stage 2's teacher is not recorded"
            )

    @property
    def student_size(self) -> dict[str, int]:
        """{"height", "width"} of working_size ({} = the teacher's)."""
        return working_size(self.working_size)

    @property
    def completion(self) -> bool:
        """Whether the run's windows are stage 2's (completion pairs) rather than stage 1's."""
        return self.stage == "completion" or (self.stage == "distill" and self.distill_stage == 2)

    @property
    def pixel_targets(self) -> bool:
        """Whether a student's samples are decoded and compared with the true frames."""
        return self.stage == "distill" and self.distill_space == "pixels"

    @property
    def mask_pixels(self) -> bool:
        """Whether a student's decoded samples are stage 1's mask frames (scored by IoU too)."""
        return self.pixel_targets and not self.completion
