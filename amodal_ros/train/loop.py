"""Training on synthetic amodal video, through HF `accelerate`: the paper's stages, and for
small models built here, the autoencoder they work in.

- `stage: vae` trains the temporal VAE as an autoencoder on synthetic conditioning frames
  (modal and amodal masks, depth, RGB) with a reconstruction + small KL loss; SVD's own VAE is
  a pretrained, frozen component, so a small model needs this first. The saved VAE's
  `scaling_factor` is refitted so mask latents have unit variance, as for SVD's.
- `stage: amodal` trains stage 1: masks only (`depth: false`, 8 input channels), then
  `depth: true` from that checkpoint, whose input convolution gains zero-initialised depth
  channels (it starts out computing exactly what the mask-only model did).
- `stage: completion` trains stage 2 on self-supervised pairs (amodal_ros.data.pairs): a fully
  visible object with other objects' masks pasted over it; conditions = its remaining visible
  RGB on white + its amodal mask, target = the whole object on white.
- `stage: distill` trains a 1-2-step student of the stage-1 checkpoint `init` (the teacher) on
  the teacher's samples (amodal_ros.train.distill; `amodal-ros distill`).

The same loop runs on a CPU here and under `accelerate launch` on GPUs: batches are built on
the fly from seeded synthetic clips (amodal_ros.data.scenes, train split), encoded with the
frozen VAE and CLIP of the starting checkpoint, and the reference's EDM objective trains the
temporal transformer blocks and the input convolution (`trainable: all` for a UNet trained
from scratch).
Checkpoints are saved in the folder layout the loader reads; a rerun resumes from the last
saved training state, with the same settings (it refuses others but the step counts and logging).
A save is written beside the last one and swapped in when complete (checkpoint first, state
last), so a run killed while saving resumes from the state before, never a half-written one.

Output folder:
    loss.csv              step, loss, sigma-weighted loss per logged step
    train_config.json     the run's settings
    state/                accelerate training state (model, optimizer, RNG) + step.json
    checkpoint-<step>/    published-layout checkpoints; final/ at the end
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shutil
import time
import uuid
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import staged_path
from amodal_ros.train.batches import (
    Batches,
    data_config,
    fit_scaling_factor,
    item_random,
    student_defaults,
)
from amodal_ros.train.budget import TimeBudget
from amodal_ros.train.config import TrainConfig
from amodal_ros.train.ema import EMA_STATE, WeightAverage
from amodal_ros.train.run_folder import (
    STAGED_STATE,
    check_resumable,
    check_same_init,
    keep_plan,
    log_timing,
    repair_state,
    retire_final,
    saved_step,
    swap_in_state,
    truncate_log,
    write_whole,
)

FOREGROUND_EMPHASIS = 10.0  # autoencoder loss weight of pixels away from the frame's median
# ... spread over this many pixels around the object: the field just outside an edge weighs as
# much as the edge, so the decoder learns no bright halo (mask IoU 0.747 against 0.635 after
# 500 steps in a study of the 32x64 autoencoder; docs/training.md)
FOREGROUND_SPREAD = 5
# How long a process waits for the others at a barrier: the others wait while the main process
# collects a distillation's teacher windows (hours for a large teacher; NCCL's default, 10
# minutes, stopped the run) or saves a checkpoint.
PROCESS_GROUP_TIMEOUT = timedelta(hours=6)
# a pixel-space student's VAE decoder in the run's state, beside accelerate's files: as
# safetensors, since accelerate would pickle an unprepared module (and unpickle it on resume)
DECODER_STATE = "decoder.safetensors"
log = logging.getLogger("amodal_ros.train")


def train(config: TrainConfig) -> dict:
    """Run (or resume) a training run, in this process or as one of `accelerate launch`'s;
    returns {"steps", "final", "losses" (the global batch's), "processes", "main_process"}.

    `batch_size` is the global batch: under N processes each draws its N-th of every step's
    items, which are seeded by position (`item_random`), and gradients are averaged across
    processes, so the same config trains the same model on 1 or N processes (test:
    test/train/test_distributed.py). Only the main process writes logs and checkpoints.
    """
    from accelerate import Accelerator, DataLoaderConfiguration, InitProcessGroupKwargs
    from accelerate.utils import broadcast_object_list, gather_object
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    from amodal_ros.models.layout import save_published_layout
    from amodal_ros.train.distill import student_loss
    from amodal_ros.train.edm import edm_loss, set_trainable

    began = time.perf_counter()  # the time budget's start (`minutes`)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; a training run writes a folder there")
    # what a run may start beside: a killed start's partials, a teacher's samples copied in
    ours = out.iterdir() if out.is_dir() else ()
    others = [p for p in ours if not p.name.startswith(".") and p.name != "targets"]
    if others and not (out / "train_config.json").is_file():
        raise InputError(  # its loss.csv, final/ and state/ would replace the folder's own
            f"--out {out} holds other files and is no training run (no train_config.json): "
            "choose a new or empty folder, or a run's folder to continue it"
        )
    if config.stage == "distill" and config.data != "synth":
        from amodal_ros.train.distill import check_data

        check_data(config)  # before the run folder is written
    # split_batches: `batch_size` is already the global batch, so the learning-rate schedule
    # steps once per optimizer step, not once per process (accelerate's default)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT)],
    )
    slots = _process_slots(config, accelerator.num_processes, accelerator.process_index)
    main = accelerator.is_main_process  # the one that writes logs and checkpoints
    if main:
        repair_state(out)
    accelerator.wait_for_everyone()  # then every process reads the same state/
    start = saved_step(out)  # a damaged state/ is refused, never started over beside
    state = out / "state" if start is not None else None
    start = start or 0
    starts = gather_object([start])  # what every process found, the same list in each
    if len(set(starts)) > 1:  # only the main process writes: the others would train apart
        raise InputError(
            f"the processes of this run see its folder {out} at different steps ({starts}): "
            "on several machines --out must be one folder they all share"
        )
    if state:
        check_resumable(out, config, start)
        config = keep_plan(out, config)
    components = _starting_components(config)  # a missing init refuses before out is made
    if main and not state:  # a run continued records its settings once nothing refused it
        out.mkdir(parents=True, exist_ok=True)
        write_whole(out / "train_config.json", json.dumps(asdict(config), indent=2))
    accelerator.wait_for_everyone()
    if main:
        check_same_init(out, config, components, resuming=state is not None)
    components.vae.to(accelerator.device)
    components.image_encoder.to(accelerator.device)
    distillation = None
    if config.stage == "distill":
        from amodal_ros.models.components import student_schedule
        from amodal_ros.train.distill import Distillation, student_record

        components.unet.to(accelerator.device)
        if config.distill_target != "truth":  # the teacher's samples first, untouched teacher
            distillation = Distillation.prepare(components, config, accelerator)
        components.scheduler_config = student_schedule(
            components.scheduler_config, config.student_sigma
        )
        windows = len(distillation.data["teacher"]) if distillation else None
        components.student = student_record(config, windows, components.student or None)
    keep_latents = config.trainable == "decoder"  # the encoder's latent space stays as it is
    if config.stage == "vae":
        model = components.vae
        model.requires_grad_(False)
        (model.decoder if keep_latents else model).requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        model = components.unet
        params = set_trainable(model, everything=config.trainable == "all")
    decoder, decoder_params = None, []
    if config.pixel_targets:  # the decoder learns the student's latents, end to end
        decoder = components.vae.decoder.train()
        decoder_params = [p.requires_grad_(True) for p in decoder.parameters()]
        params = [*params, *decoder_params]
    model.train()
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    average = _weight_average(accelerator.unwrap_model(model), decoder, config.ema_decay)

    if state:  # resume
        from safetensors import SafetensorError

        try:
            accelerator.load_state(str(state))
            if decoder is not None:  # it resumes with the run's state
                decoder.load_state_dict(load_file(state / DECODER_STATE))
            if average is not None:
                average.load_state_dict(load_file(state / EMA_STATE))
        # torch's reader's; safetensors' for a cut weight file (was a traceback)
        except (RuntimeError, OSError, ValueError, EOFError, SafetensorError) as err:
            why = " ".join(str(err).split())  # one line: a size mismatch lists every tensor
            why = why if len(why) <= 300 else f"{why[:300]} ..."
            raise InputError(
                f"the saved training state in {state} does not load ({why}): it is damaged, "
                "or another model's; continue from a carried state (carry unpack) or start a "
                "new --out"
            ) from None
        _rejoin_schedule(schedule)
        if main:
            truncate_log(out / "loss.csv", start)  # rows past the saved state are redone
            retire_final(out, config.steps)  # not before: a refused run keeps its final/
            write_whole(out / "train_config.json", json.dumps(asdict(config), indent=2))
    batches = None
    if distillation is None:
        batches = Batches(components, data_config(config, components), accelerator.device, slots)

    def publish(name: str) -> None:
        """The trained model (its weight average, where the run keeps one) written as the
        published checkpoint OUT/`name`."""
        trained = accelerator.unwrap_model(model)
        with average.swapped_in() if average else contextlib.nullcontext():
            if config.stage == "vae":
                components.vae = trained
                if not keep_latents:  # a new latent space: unit variance again
                    fit_scaling_factor(trained, batches, np.random.default_rng(config.seed))
            else:
                components.unet = trained
            if config.stage == "distill":
                defaults = student_defaults(config, components)
            else:
                defaults = trained_defaults(config)
            with staged_path(out / name) as folder:
                save_published_layout(components, folder, defaults)

    losses = []
    budget = TimeBudget(config.minutes, start, began) if config.minutes else None
    started = time.perf_counter()
    session = uuid.uuid4().hex[:8]  # this call's entry in timing.json

    def steps():  # to the run's length, which a time budget may shorten as it goes
        step = start
        while step < config.steps:
            yield step
            step += 1

    bar = tqdm(
        steps(),
        desc="train",
        unit="step",
        disable=not (config.progress and main),
        initial=start,
        total=config.steps,
    )
    with contextlib.ExitStack() as stack:
        if batches is not None:
            stack.callback(batches.close)  # its worker processes, if any
        log = None
        if main:
            mode = "a" if start else "w"  # a run killed before its first save starts over
            log_file = stack.enter_context(open(out / "loss.csv", mode, newline=""))
            log = csv.writer(log_file)
            if start == 0:
                log.writerow(["step", "loss"])
        for step in bar:
            with accelerator.autocast():
                if config.stage == "vae":
                    windows = [batches.frames(item_random(config.seed, step, i)[0]) for i in slots]
                    loss = torch.stack(
                        [autoencoder_loss(model, w, config.kl_weight) for w in windows]
                    ).mean()
                elif distillation is not None:
                    loss = distillation.loss(model, components.scheduler_config, step, slots)
                elif config.stage == "distill":  # ground truth: fresh windows
                    loss = student_loss(
                        model,
                        components.scheduler_config,
                        *batches.truth(step, slots),
                        decoder=batches.decoder if config.pixel_targets else None,
                        iou_weight=config.pixel_iou_weight if config.mask_pixels else 0.0,
                    )
                else:
                    target, cond, context, ids, sigmas, noise = batches.sample(step, slots)
                    loss = edm_loss(model, target, cond, context, ids, sigmas, noise)
            accelerator.backward(loss)  # gradients averaged over processes: the global batch's
            if accelerator.num_processes > 1:  # the decoder is outside the prepared model
                for p in decoder_params:
                    if p.grad is not None:
                        p.grad = accelerator.reduce(p.grad, "mean")
            if config.grad_clip > 0:
                accelerator.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            value = float(accelerator.reduce(loss.detach(), "mean"))  # the global batch's loss
            losses.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
            done = step + 1
            if average is not None and not accelerator.optimizer_step_was_skipped:
                average.update(done)  # (fp16's scaler skips a step with inf gradients)
            planned = budget.plan(done, config.steps, time.perf_counter()) if budget else None
            if planned is not None:  # every process at this step: one plan, the main one's
                planned = broadcast_object_list([planned])[0]
                if planned < config.steps:
                    config = _shorten(config, planned, schedule, out if main else None)
                    bar.total = planned
            if log is not None and (done % config.log_every == 0 or done == config.steps):
                log.writerow([done, f"{value:.6f}"])
                log_file.flush()
            if done % config.save_every == 0 or done == config.steps:
                staged = out / STAGED_STATE
                if main:
                    shutil.rmtree(staged, ignore_errors=True)  # a save killed earlier
                accelerator.wait_for_everyone()
                accelerator.save_state(str(staged))  # every process: its RNG state
                if main:
                    if decoder is not None:
                        weights = {k: v.contiguous() for k, v in decoder.state_dict().items()}
                        save_file(weights, staged / DECODER_STATE)
                    if average is not None:
                        save_file(average.state_dict(), staged / EMA_STATE)
                    (staged / "step.json").write_text(json.dumps({"step": done}))
                    publish("final" if done == config.steps else f"checkpoint-{done}")
                    swap_in_state(out)  # the state never runs ahead of the checkpoint
                    # then the steps' time: a kill before the swap redoes them, uncounted
                    seconds = time.perf_counter() - started
                    windows_s = batches.seconds if batches is not None else None
                    log_timing(out / "timing.json", done - start, seconds, session, windows_s)
                accelerator.wait_for_everyone()
        if main and start >= config.steps and not (out / "final" / "model_index.json").is_file():
            publish("final")  # a state carried at its last step, without its checkpoint
    return {
        "steps": config.steps,
        "final": str(out / "final"),
        "losses": losses,
        "processes": accelerator.num_processes,
        "main_process": main,
    }


def _weight_average(model, decoder, decay: float) -> WeightAverage | None:
    """The moving average of the run's trained parameters (the model's, and a pixel
    student's decoder's), or None with `decay` 0."""
    if not decay:
        return None
    named = {k: p for k, p in model.named_parameters() if p.requires_grad}
    if decoder is not None:
        named |= {f"decoder.{k}": p for k, p in decoder.named_parameters()}
    return WeightAverage(named, decay)


def _process_slots(config: TrainConfig, processes: int, index: int) -> range:
    """This process's positions in each step's global batch of `config.batch_size` windows."""
    if config.batch_size % processes:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch: it must be a multiple of "
            f"the {processes} training processes"
        )
    if config.stage == "vae" and processes > 1:
        raise ValueError(
            "stage vae trains in one process: its loss calls the VAE's encode and decode, "
            "which DistributedDataParallel does not synchronise; launch it without accelerate"
        )
    share = config.batch_size // processes
    return range(index * share, (index + 1) * share)


def _lr_factor(config: TrainConfig):
    """Step -> learning-rate factor of the configured schedule."""
    import math

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        if config.lr_schedule == "constant":
            return warm
        progress = min(step, config.steps) / config.steps
        return warm * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))

    return factor


def _shorten(config: TrainConfig, steps: int, schedule, out: Path | None) -> TrainConfig:
    """The run's config at the length its time budget allows, which its learning-rate
    schedule follows from this step on (and its train_config.json records, where `out`)."""
    config = replace(config, steps=steps)
    lambda_lr = schedule.scheduler
    lambda_lr.lr_lambdas = [_lr_factor(config)] * len(lambda_lr.lr_lambdas)
    _rejoin_schedule(schedule)
    if out is not None:
        write_whole(out / "train_config.json", json.dumps(asdict(config), indent=2))
        log.info("time budget of %g min: the run ends at step %d", config.minutes, steps)
    return config


def _rejoin_schedule(schedule) -> None:
    """Recompute a resumed run's learning rates at its step under this config's schedule: the
    saved ones follow the `steps` it was saved with, and `steps` may have changed (a cosine
    over more steps is higher at the same step)."""
    lambda_lr = schedule.scheduler  # inside accelerate's wrapper; its step count is restored
    lambda_lr.last_epoch -= 1
    lambda_lr.step()  # back at the saved step, with this config's factor


def autoencoder_loss(
    vae,
    frames: torch.Tensor,
    kl_weight: float,
    emphasis: float = FOREGROUND_EMPHASIS,
    spread: int = FOREGROUND_SPREAD,
) -> torch.Tensor:
    """Weighted reconstruction MSE + kl_weight * KL of one window of frames [F, 3, h, w] in
    [-1, 1], decoded by the temporal decoder as a window.

    Pixels are weighted 1 + emphasis * |x - the frame's median| (max-pooled over `spread`
    pixels): the frames the pipeline encodes are small objects on a uniform field (masks on
    black, RGB on white), and a plain loss is minimised by erasing them. The posterior mean is
    decoded (a deterministic autoencoder): decoding samples makes a new VAE learn slowly, its
    posterior std starting at 1 and the tiny KL weight leaving it there. The pipeline only
    uses the mean (conditions) and the decoder; stage training takes targets from the mean too
    (`sample_targets: false`).
    """
    dist = vae.encode(frames).latent_dist
    recon = vae.decode(dist.mode(), num_frames=len(frames)).sample
    median = frames.flatten(1).median(dim=1).values[:, None, None, None]  # [F, 1, 1, 1]
    away = (frames - median).abs().mean(1, keepdim=True)  # [F, 1, h, w]
    if spread > 1:  # the object's surroundings weigh as much as its edge
        away = torch.nn.functional.max_pool2d(away, spread, stride=1, padding=spread // 2)
    weight = 1.0 + emphasis * away
    return torch.mean(weight * (recon - frames) ** 2) + kl_weight * dist.kl().mean()


def trained_defaults(config: TrainConfig) -> dict:
    """What a model trained here runs with by default (recorded in its folder): the working
    size, conditioning and mask resizing it was trained with, and its mask threshold."""
    return {
        "height": config.height,
        "width": config.width,
        "conditioning_mode": "consistent",
        "mask_resize": config.mask_resize,
        "mask_upsample": "smooth",
        "rgb_sum_threshold": config.rgb_sum_threshold,
    }


def _starting_components(config: TrainConfig):
    """The components a stage starts from: init's (or a seeded tiny model), with a fresh UNet
    if asked, and the depth channels added when stage 1 goes from masks only to mask + depth."""
    from amodal_ros.models import registry
    from amodal_ros.models.architectures import build_components, unet_config
    from amodal_ros.models.unet import PerFrameUNet
    from amodal_ros.train.depth_channels import add_depth_channels

    mask_only = config.stage == "amodal" and not config.depth
    latents = 2 if mask_only else 3  # the noisy latent and each condition's
    if not config.init:
        components = build_components(
            "tiny",
            config.seed,
            latents * config.latent_channels,
            config.vae_blocks,
            config.vae_width,
            unet_width=config.unet_width,
            latent_channels=config.latent_channels,
        )
        _add_space_time(components, config)
        components.stage = _stage_of(config)
        return components
    if registry.missing_folder(config.init):
        fix = (  # each command's own option
            "name the teacher with --teacher (embedded, or a checkpoint folder)"
            if config.stage == "distill"
            else "the shipped configs chain vae, then stage 1 or 2, e.g. amodal-ros train "
            "config/train_vae.yaml --out train_out/vae first; or set --set init=FOLDER"
        )
        raise InputError(  # the checkpoint loader's 'download one' is not the fix here
            f"init {config.init} does not exist: it is the run a stage starts from; {fix}"
        )
    components = registry.components(
        config.init, stage=2 if config.completion else 1, any_stage=True
    )
    components.stage = _stage_of(config)  # what this run writes is for its own stage
    channels = latents * components.latent_channels
    taught = config.stage == "distill" and config.distill_target != "truth"
    if taught and (config.fresh_unet or components.is_student):
        raise ValueError(
            f"a student of the teacher's samples starts from the teacher's UNet: "
            f"{config.init} must be a stage-{config.distill_stage} model that is not "
            "itself a student (a student samples in 1-2 steps, not the teacher's 25), with "
            "fresh_unet false; a student is fine-tuned, or a new UNet trained, only with "
            "distill_target truth"
        )
    if components.is_student and config.stage in ("amodal", "completion"):
        raise ValueError(  # its record and 1-step schedule would ship with the new model
            f"{config.init} is a distilled student (1-2 steps): stages amodal and completion "
            "train a many-step model from a teacher's folder (e.g. embedded's stage1 or "
            "stage2); a student is trained further with stage distill"
        )
    if config.fresh_unet:
        torch.manual_seed(config.seed)
        cross = components.image_encoder.config.projection_dim
        unet = unet_config(
            "tiny",
            channels,
            cross_attention_dim=cross,
            width=config.unet_width,
            latent_channels=components.latent_channels,
        )
        components.unet = PerFrameUNet(**unet)
    _add_space_time(components, config)
    if config.stage == "distill":
        return components
    have = components.unet.config.in_channels
    if have == 2 * components.latent_channels and latents == 3 and config.stage == "amodal":
        components.unet = add_depth_channels(components.unet, components.latent_channels)
    elif have != channels:
        raise ValueError(
            f"{config.init}: its UNet takes {have} input channels; stage {config.stage!r} "
            f"{'(masks only) ' if mask_only else ''}needs {channels}"
        )
    return components


def _stage_of(config: TrainConfig) -> int | None:
    """The stage a run's checkpoints are for (their model_index.json records it); None for an
    autoencoder run, whose VAE either stage may start from."""
    if config.stage == "vae":
        return None
    return 2 if config.completion else 1


def _add_space_time(components, config: TrainConfig) -> None:
    """Gives the UNet the space-time attention `config` asks for (seeded), unless it has it,
    and makes it causal when asked (a causal one stays causal)."""
    from amodal_ros.models.unet import with_space_time

    unet = components.unet
    heads = config.space_time_heads
    has = unet.config.get("space_time_heads", 0)
    if heads and has and heads != has:
        raise ValueError(
            f"{config.init}'s UNet has space-time attention with {has} heads, not {heads}: "
            f"set space_time_heads to {has} (or 0) to continue it"
        )
    causal = config.space_time_causal
    if causal and not (heads or has):
        raise ValueError("space_time_causal needs space-time attention: set space_time_heads")
    if heads and not has:
        torch.manual_seed(config.seed)
        components.unet = with_space_time(unet, heads, causal)
    elif causal and not unet.config.get("space_time_causal", False):
        components.unet = with_space_time(unet, has, causal=True)
