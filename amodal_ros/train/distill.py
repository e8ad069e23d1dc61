"""A few-step student of a teacher (`amodal-ros distill`, TrainConfig stage 'distill').

The student has the teacher's architecture and starts from its weights. It is trained so that
the sampler the pipeline runs (pipeline.sampling.denoise: Euler, no guidance) gives in 1 and in
2 UNet evaluations what the teacher gives in 25 steps with guidance from the same noise: the
loss backpropagates through the student's own 1- and 2-step samples (distillation of the
teacher's sampler, Luhman & Luhman 2021, arXiv 2101.02388). What it regresses to
(`distill_target`):

    teacher  the teacher's samples; needs no labels, so it distils on the deployment domain
             (a folder of the user's own bags, replayed through the teacher);
    truth    the ground truth: fresh synthetic windows every step, drawn as the teacher was
             trained (train.loop's batches), no teacher sampling; the only choice for a
             stage-2 (content completion) student, whose teacher is not recorded;
    mix      the teacher's samples and the ground truth of its windows, the losses averaged.

Its schedule is sigmas [sigma_max, student_sigma, 0] (models.components.student_schedule),
which the pipeline samples unchanged (`student: true`).

For 'teacher' and 'mix', the teacher's windows are collected once, before training, into
OUT/targets/ (safetensors shards; a rerun continues the collection, then the training):

    meta.json              teacher, conditioning mode, time ids, windows so far, sources done
    shard-00000.safetensors  cond [N, T, C, h, w], clip [N, T, D], noise [N, T, 4, h, w],
                           teacher [N, T, 4, h, w], truth [N, T, 4, h, w], has_truth [N]
    replays/<bag>/         each bag as the teacher replayed it (look at what the student learns)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from amodal_ros.core.config import STUDENT_MAX_STEPS
from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import staged_path
from amodal_ros.core.types import ObjectTrack
from amodal_ros.pipeline.cache import stable_seed
from amodal_ros.pipeline.stage1 import AmodalSegmenter

log = logging.getLogger("amodal_ros.distill")

# the UNet evaluations a student is trained (and may be run) with
STUDENT_STEPS = tuple(range(1, STUDENT_MAX_STEPS + 1))
SHARD_WINDOWS = 32  # windows per targets shard


class TeacherRecorder(AmodalSegmenter):
    """The teacher's stage 1, keeping what each window's sampling took and gave (a window's
    conditioning, noise and sampled latents): the distillation targets. Runs wherever an
    AmodalSegmenter does, e.g. in replay's WindowProcessor."""

    def __init__(self, components, config):
        super().__init__(components, config)
        if self.config.num_samples != 1 or self.config.ensembles:
            raise ValueError(
                "the teacher records one pass per object (num_samples 1, ensembles off)"
            )
        self.items: list[dict[str, torch.Tensor]] = []
        self.seed = self.config.seed

    def __call__(self, tracks, inverse_depth=None, **kwargs):
        """AmodalSegmenter.__call__, keeping each window's sampling in `items`.

        Each window is sampled from noise of its own, seeded by its masks: the pipeline's
        noise follows the seed and the object id alone (steady for a live object), so a store
        would hold one noise per object id (four in synthetic scenes) for the student to learn
        by heart."""
        masks = b"".join(np.packbits(track.masks).tobytes() for track in tracks)
        window = hashlib.sha256(masks).hexdigest()
        self.config = self.config.replace(seed=stable_seed(self.seed, "teacher window", window))
        results = super().__call__(tracks, inverse_depth, **kwargs)
        sampler = self.sampler
        for job, latents in zip(sampler.last_jobs, sampler.last_latents):
            self.items.append(
                {
                    "cond": job.cond.float().cpu(),
                    "clip": job.clip.float().cpu(),
                    "noise": sampler.noise(len(job.cond), job.seed),
                    "teacher": latents.float().cpu(),
                }
            )
        return results

    def record(
        self,
        tracks: Sequence[ObjectTrack],
        inverse_depth: np.ndarray | None,
        truths: Sequence[np.ndarray],
    ) -> None:
        """Sample a window whose ground truth is known; `truths` are the tracks' [T, H, W] bool
        amodal masks, kept as latents beside the teacher's."""
        first = len(self.items)
        self(
            tracks, inverse_depth if self.needs_depth else None, frames=[len(tracks[0].masks) - 1]
        )
        for item, truth in zip(self.items[first:], truths):
            item["truth"] = self.truth_latents(truth)

    @torch.no_grad()
    def truth_latents(self, amodal: np.ndarray) -> torch.Tensor:
        """[T, H, W] bool -> [T, 4, h, w] latents of the mask as the teacher's targets were
        made (VAE posterior mean x scaling factor)."""
        from amodal_ros.pipeline.preprocess import mask_pixels

        cfg, vae = self.config, self.components.vae
        pixels = mask_pixels(amodal, cfg.height, cfg.width, cfg.mask_resize)
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.sampler.device, vae.dtype)
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        return z.float().cpu()


class TargetStore:
    """OUT/targets/: the teacher's windows in safetensors shards, written whole or not at all.

    meta.json lists the shards that count: an `add` writes its shards, then one meta update
    takes them in with the windows and the source marked done, so a collection stopped
    half-way redoes that source without keeping any of its windows twice."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.meta_path = self.folder / "meta.json"
        self.meta: dict = (
            json.loads(self.meta_path.read_text()) if self.meta_path.is_file() else {}
        )

    @property
    def windows(self) -> int:
        """Windows stored so far."""
        return int(self.meta.get("windows", 0))

    def start(self, teacher: str, mode: str, time_ids: list[float], source: dict) -> None:
        """Begin (or check that a continued collection has) this teacher and conditioning,
        and windows from this `source` (data, window length, size, truth's render scale: a
        store recorded before it kept them is checked for what it has)."""
        made = {"teacher": teacher, "conditioning_mode": mode, "time_ids": time_ids}
        made |= {k: v for k, v in source.items() if not self.meta or k in self.meta}
        old = {k: self.meta.get(k) for k in made}
        if self.meta and old != made:
            text = ", ".join(f"{k} {old[k]!r} -> {made[k]!r}" for k in made if old[k] != made[k])
            raise InputError(
                f"{self.folder} holds targets of another teacher or setting ({text}); use a "
                "new --out or delete it"
            )
        shards = [p.name for p in sorted(self.folder.glob("shard-*.safetensors"))]
        # stores before the shard list counted every shard on disk
        self.meta = {"windows": 0, "sources_done": [], "shards": shards, **self.meta, **made}
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_meta()

    def add(self, items: list[dict[str, torch.Tensor]], source: str | None = None) -> None:
        """Append windows (and mark `source` done), shard by shard."""
        from safetensors.torch import save_file

        names = list(self.meta["shards"])
        for first in range(0, len(items), SHARD_WINDOWS):
            part = items[first : first + SHARD_WINDOWS]
            tensors = {k: torch.stack([it[k] for it in part]) for k in part[0] if k != "truth"}
            has = torch.tensor(["truth" in it for it in part])
            zero = torch.zeros_like(part[0]["teacher"])
            tensors["truth"] = torch.stack([it.get("truth", zero) for it in part])
            tensors["has_truth"] = has
            names.append(f"shard-{len(names):05d}.safetensors")  # replaces a stopped add's
            with staged_path(self.folder / names[-1]) as staged:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(staged))
        done = [source] if source is not None else []
        self.meta |= {
            "shards": names,
            "windows": self.windows + len(items),
            "sources_done": self.meta["sources_done"] + done,
        }
        self._write_meta()

    def shards(self) -> list[Path]:
        """The shard files that count (meta.json's list), in order."""
        if "shards" not in self.meta:  # a store before the list: every shard on disk
            return sorted(self.folder.glob("shard-*.safetensors"))
        return [self.folder / name for name in self.meta["shards"]]

    def load(self) -> dict[str, torch.Tensor]:
        """Every window, stacked: {name: [N, ...]}."""
        from safetensors.torch import load_file

        parts = [load_file(str(p)) for p in self.shards()]
        if not parts:
            raise InputError(
                f"{self.folder} holds no teacher windows: the data gave none (a window needs "
                "num_frames frames with a visible object)"
            )
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def _write_meta(self) -> None:
        with staged_path(self.meta_path) as staged:
            staged.write_text(json.dumps(self.meta, indent=2))


class Distillation:
    """The teacher's targets, collected before training, and the student's loss over them."""

    def __init__(self, store: TargetStore, config, device):
        self.config, self.device = config, device
        data = store.load()
        if len(data["teacher"]) > config.distill_windows:  # a store collected for a larger run
            log.info(
                "using the first %d of the %d stored teacher windows (distill_windows)",
                config.distill_windows,
                len(data["teacher"]),
            )
            data = {k: v[: config.distill_windows] for k, v in data.items()}
        self.data = data
        self.mode = store.meta["conditioning_mode"]
        self.time_ids = torch.tensor(store.meta["time_ids"])
        if config.distill_target != "teacher" and not bool(data["has_truth"].all()):
            raise InputError(
                f"distill_target {config.distill_target!r} needs ground truth in every window; "
                f"{int((~data['has_truth']).sum())} of {len(data['has_truth'])} have none "
                "(recordings): use distill_target teacher"
            )
        log.info("distilling on %d teacher windows", len(data["teacher"]))

    @classmethod
    def prepare(cls, components, config, accelerator) -> Distillation:
        """Collect the teacher's windows (main process; the others wait), then load them.
        `components` is the teacher, before any training."""
        store = TargetStore(Path(config.out) / "targets")
        if accelerator.is_main_process:
            with accelerator.autocast():
                collect(components, config, accelerator.device, store)
        accelerator.wait_for_everyone()
        return cls(TargetStore(store.folder), config, accelerator.device)

    def loss(self, unet, scheduler_config: dict, step: int, slots: range) -> torch.Tensor:
        """The student's loss (`student_loss`) over the batch items `slots` of optimizer step
        `step`, drawn from the collected windows."""
        from amodal_ros.pipeline.sampling import cross_attention_context
        from amodal_ros.train.batches import item_random

        rows = [
            int(item_random(self.config.seed, step, s)[0].integers(len(self.data["cond"])))
            for s in slots
        ]
        take = {k: v[rows].to(self.device) for k, v in self.data.items()}
        context = cross_attention_context(take["clip"], self.mode, guided=False)
        targets = [take[t] for t in _targets(self.config.distill_target)]
        return student_loss(
            unet, scheduler_config, take["noise"], take["cond"], context, self.time_ids, targets
        )


def student_loss(
    unet,
    scheduler_config: dict,
    noise: torch.Tensor,
    cond: torch.Tensor,
    context: torch.Tensor,
    time_ids: torch.Tensor,
    targets: Sequence[torch.Tensor],
    weights: torch.Tensor | None = None,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    iou_weight: float = 0.0,
) -> torch.Tensor:
    """Mean over STUDENT_STEPS and `targets` of the MSE between the student's k-step sample
    from `noise` (the pipeline's own sampler, gradients through every evaluation) and the
    target: [B, T, 4, h, w] latents, or with `decoder` [B, T, 3, H, W] frames that the sample
    is decoded to first (end to end: a one-step student is judged by what the pipeline
    thresholds, and the decoder learns the student's latents), each cell weighted by
    `weights` [B, T, 1, h, w] (normalised to mean 1) if given, plus `iou_weight` x the soft
    IoU loss of mask frames (`soft_iou_loss`)."""
    from amodal_ros.accel.backends import EagerUNet
    from amodal_ros.pipeline.sampling import denoise

    predict = EagerUNet(unet)
    losses = []
    for steps in STUDENT_STEPS:
        sample = denoise(predict, scheduler_config, noise, cond, context, time_ids, steps, None)
        if decoder is not None:
            sample = decoder(sample)
        for target in targets:
            loss = weighted_mse(sample.float(), target, weights)
            if iou_weight:
                loss = loss + iou_weight * soft_iou_loss(sample.float(), target)
            losses.append(loss)
    return torch.stack(losses).mean()


def weighted_mse(
    sample: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """MSE of [B, T, C, h, w] tensors, each cell weighted by `weights` [B, T, 1, h, w]
    normalised to mean 1: a cell of weight 5 counts five times one of weight 1, and the loss
    keeps its scale (the learning rate means what it meant)."""
    error = (sample - target) ** 2
    return error.mean() if weights is None else (weights * error).mean() / weights.mean()


def soft_iou_loss(frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - the soft IoU per frame of mask frames [B, T, 3, H, W] in [-1, 1], averaged: the
    metric stage 1 is scored by. The MSE alone is met by the per-pixel mean, which leaves an
    uncertain hidden part faint, under the threshold; IoU rewards committing to a shape."""
    p = ((frames.mean(2) + 1) / 2).clamp(0, 1)
    y = ((target.mean(2) + 1) / 2).clamp(0, 1)
    overlap = (p * y).sum((-2, -1))
    union = (p + y - p * y).sum((-2, -1))
    return (1 - (overlap + 1) / (union + 1)).mean()  # +1: an empty frame left empty scores 1


def _targets(choice: str) -> tuple[str, ...]:
    return ("teacher", "truth") if choice == "mix" else (choice,)


def student_record(config, windows: int | None, previous: dict | None = None) -> dict:
    """How a student was made (its model_index.json `amodal_ros.student`); `windows`: the
    teacher's collected windows (None: ground truth, fresh windows every step); `previous`:
    the record of the student this run fine-tunes (distill_target truth), if any."""
    sampled = windows is not None
    teacher, origin = config.init, {}
    if config.fresh_unet:  # no teacher: a new UNet in init's latent space
        teacher, origin = None, {"new_unet": {"width": config.unet_width, "vae": config.init}}
    elif previous:
        teacher = previous["teacher"]
        origin = {"fine_tuned_from": config.init, "before": previous}
    return {
        "teacher": teacher,
        "stage": config.distill_stage,
        "space": config.distill_space,
        **origin,
        "teacher_sampling": "25 Euler steps, guidance 1.5 (preset quality)" if sampled else None,
        "targets": config.distill_target,
        "hidden_weight": config.hidden_weight,
        "newest_weight": config.newest_weight,
        **({"ema_decay": config.ema_decay} if config.ema_decay else {}),  # published: the average
        "initial_noise": config.initial_noise,
        "data": config.data,
        "windows": windows if sampled else "fresh synthetic windows every step",
        "steps": list(STUDENT_STEPS),
        "second_sigma": config.student_sigma,
    }


# -- collecting the teacher's windows -----------------------------------------------------------


def collect(components, config, device, store: TargetStore) -> None:
    """Run the teacher on `config.data` until the store holds `config.distill_windows`
    windows (synthetic) or every recording is done."""
    from amodal_ros.core.config import InferenceConfig

    sampling = InferenceConfig(
        preset="quality",
        device=str(device),
        num_frames=config.num_frames,
        mirror_ensemble="off",  # one pass per window: the items pair with their truths
        reverse_ensemble="off",
    )
    teacher = TeacherRecorder(components, sampling)
    cfg = teacher.config
    # what shapes the windows: a continued collection must draw the same kind
    source = {
        "data": config.data,
        "num_frames": config.num_frames,
        "size": [cfg.height, cfg.width],
    }
    if config.data == "synth":  # the scale its ground truth is drawn at (recordings have none)
        source["render_scale"] = config.render_scale
    store.start(config.init, cfg.conditioning_mode, teacher.sampler.time_ids().tolist(), source)
    if store.windows >= config.distill_windows:
        return
    if config.data == "synth":
        _collect_synthetic(teacher, config, store)
    else:
        _collect_folder(teacher, config, store)


def _collect_synthetic(teacher: TeacherRecorder, config, store: TargetStore) -> None:
    from tqdm.auto import tqdm

    from amodal_ros.data.scenes import make_scene

    cfg = teacher.config
    rng = np.random.default_rng([config.seed, store.windows])  # a continued run draws anew
    bar = tqdm(
        total=config.distill_windows,
        initial=store.windows,
        desc="teacher",
        unit="window",
        disable=not config.progress,
    )
    with bar:
        while store.windows < config.distill_windows:
            clip = make_scene(
                int(rng.integers(0, 1_000_000)),  # the train split: test seeds start at 10^6
                num_frames=cfg.num_frames,
                height=cfg.height * config.render_scale,
                width=cfg.width * config.render_scale,
            )
            before = len(teacher.items)
            room = config.distill_windows - store.windows - before
            _record_clip(teacher, clip, room)
            bar.update(len(teacher.items) - before)
            if len(teacher.items) >= min(SHARD_WINDOWS, room):  # a whole shard, or the last
                store.add(teacher.items)
                teacher.items.clear()


def _record_clip(teacher: TeacherRecorder, clip, room: int) -> None:
    """Up to `room` windows of a synthetic clip (each visible target in each window) into the
    teacher's items."""
    from amodal_ros.depth.camera import inverse_depth_from_camera
    from amodal_ros.pipeline.window import window_starts

    n = teacher.config.num_frames
    for start in window_starts(len(clip.labels), n):
        part = slice(start, start + n)
        ids = [i for i in clip.target_ids if clip.modal(i)[part].any()]
        ids = ids[: max(0, room)]
        if not ids or len(clip.labels[part]) < n:
            continue
        room -= len(ids)
        tracks = [ObjectTrack(i, clip.modal(i)[part]) for i in ids]
        depth = inverse_depth_from_camera(clip.depth[part], "32FC1")
        teacher.record(tracks, depth, [clip.amodal[i][part] for i in ids])


def check_data(config) -> Path:
    """The folder `config.data` names; refused before any work when it is not one."""
    root = Path(config.data).expanduser()
    if not root.is_dir():
        raise InputError(
            f"distill data {root} is not a folder: pass 'synth' or a folder of rosbags or "
            "synthetic clip folders"
        )
    return root


def _train_clips(folders: list[Path]) -> list[Path]:
    """The clip folders of the train split (or of no split: a user's own clips). A held-out
    split's clips (test, val, unseen) are left out, with a warning: distilling on their
    ground truth would leak it into the scores they give."""
    from amodal_ros.data.clip_folder import read_meta
    from amodal_ros.data.scenes import split_of

    kept, held_out = [], Counter()
    for folder in folders:
        seed = read_meta(folder / "meta.json")["seed"]
        split = split_of(seed)
        if split in ("train", ""):
            kept.append(folder)
        else:
            held_out[split] += 1
    if held_out:
        log.warning(
            "distill: left out %s clip folders of held-out splits (their ground truth scores "
            "the model); keep them in a folder of their own",
            ", ".join(f"{n} {split}" for split, n in sorted(held_out.items())),
        )
    return kept


def _collect_folder(teacher: TeacherRecorder, config, store: TargetStore) -> None:
    """Synthetic clip folders (with ground truth) and recordings (bags, replayed through the
    teacher exactly as `amodal-ros replay` runs them) found in `config.data`."""
    from amodal_ros.data.clip_folder import read_clip_folder

    root = check_data(config)
    clips, bags = _sources(root)
    if not clips and not bags:
        raise InputError(f"{root} holds no rosbags and no clip folders (amodal-ros synth)")
    done = set(store.meta["sources_done"])
    for folder in clips:
        if str(folder) in done or store.windows >= config.distill_windows:
            continue
        teacher.items.clear()
        _record_clip(teacher, read_clip_folder(folder), config.distill_windows - store.windows)
        store.add(teacher.items, source=str(folder))
        teacher.items.clear()
    for bag in bags:
        if str(bag) in done or store.windows >= config.distill_windows:
            continue
        _replay_bag(teacher, config, bag, store)


def _sources(root: Path) -> tuple[list[Path], list[Path]]:
    """The train clip folders and the recordings of `root`. A clip's own recording (`synth
    --bags` writes OUT/<clip>_bag beside it) is left out: a train clip is distilled from its
    folder already, and a held-out clip's would leak the inputs it is scored on."""
    from amodal_ros.bags.discovery import find_bags

    folders = sorted(p for p in root.iterdir() if (p / "meta.json").is_file())
    own = {(root / f"{p.name}_bag").resolve() for p in folders}
    try:
        bags = find_bags([str(root)])
    except InputError:
        bags = []
    left_out = own.intersection(bags)
    if left_out:
        log.info(
            "distill: %d recordings are clip folders' own (synth --bags): left out", len(left_out)
        )
    return _train_clips(folders), [bag for bag in bags if bag not in left_out]


def _replay_bag(teacher: TeacherRecorder, config, bag: Path, store: TargetStore) -> None:
    """Replay one bag through the teacher; its windows join the store once it is all done."""
    from amodal_ros.bags.replay import ReplayArgs, replay_stream
    from amodal_ros.bags.replay import run as replay
    from amodal_ros.pipeline.factory import Pipelines, resolve_depth_source

    # the teacher's windows are what is kept, not answers for every frame: any stride will do
    stream = replay_stream().replace(checkpoint=config.init, publish_frames="latest")
    source = resolve_depth_source(stream, teacher.needs_depth)
    out = store.folder / "replays" / bag.name
    args = ReplayArgs(
        bag=bag,
        out=out,
        stream=stream,
        rgb_topic=config.rgb_topic,
        depth_topic=config.depth_topic,
        mask_topic=config.mask_topic,
        camera_info_topic="",  # the teacher's windows need no intrinsics
        overwrite=True,
        progress=config.progress,
    )
    teacher.items.clear()
    replay(args, pipelines=Pipelines(teacher, None, None, source, config.init))
    room = max(0, config.distill_windows - store.windows)
    store.add(teacher.items[:room], source=str(bag))
    teacher.items.clear()
