"""Training on synthetic amodal video, through HF `accelerate`: stage 1 (mask + depth UNet)
and, for small models built here, the autoencoder it works in.

`stage: vae` trains the temporal VAE as an autoencoder on synthetic conditioning frames
(modal and amodal masks, depth, RGB) with a reconstruction + small KL loss; SVD's own VAE is a
pretrained, frozen component, so a small model needs this first. `stage: amodal` trains the
UNet. The same loop runs on a CPU here and under `accelerate launch` on GPUs: batches are built on
the fly from seeded synthetic clips (amodal_ros.data.scenes, train split), encoded with the
frozen VAE and CLIP of the starting checkpoint, and the reference's EDM objective trains the
temporal blocks and the input convolution. Checkpoints are saved in the folder layout the
loader reads; `resume` continues from the last saved training state.

Output folder:
    loss.csv              step, loss, sigma-weighted loss per logged step
    state/                accelerate training state (model, optimizer, RNG) + step.json
    checkpoint-<step>/    published-layout checkpoints; final/ at the end
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from amodal_ros.core.config import check_fields, param


@dataclass
class TrainConfig:
    """A training run; flat fields so it round-trips through YAML/JSON."""

    init: str = param("", "starting checkpoint folder (published layout); '' = tiny model")
    stage: str = param(
        "amodal",
        "'amodal' (stage-1 UNet) or 'vae' (the autoencoder first)",
        None,
        None,
        ("amodal", "vae"),
    )
    kl_weight: float = param(1e-6, "KL weight of the autoencoder loss (stage vae)", 0.0, 1.0)
    out: str = param("train_out", "output folder")
    steps: int = param(1000, "optimizer steps", 1)
    batch_size: int = param(1, "windows per step", 1)
    lr: float = param(3e-6, "AdamW learning rate (the reference's)", 0.0, 1.0)
    num_frames: int = param(25, "frames per window", 1)
    height: int = param(128, "working height (the reference trains at 128x256)", 16)
    width: int = param(256, "working width", 16)
    seed: int = param(0, "seed of data order, noise and dropout", 0)
    save_every: int = param(500, "steps between checkpoints", 1)
    log_every: int = param(10, "steps between loss.csv rows", 1)
    mixed_precision: str = param(
        "no", "accelerate mixed precision", None, None, ("no", "fp16", "bf16")
    )
    progress: bool = param(True, "progress bar")

    def __post_init__(self) -> None:
        check_fields(self)


def train(config: TrainConfig) -> dict:
    """Run (or resume) a training run; returns {"steps", "final", "losses"}."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from amodal_ros.models.tiny import build_tiny_components, save_published_layout
    from amodal_ros.train.edm import edm_loss, sample_sigmas, set_trainable

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    components = _load(config.init) if config.init else build_tiny_components(seed=config.seed)
    components.vae.to(accelerator.device)
    components.image_encoder.to(accelerator.device)
    if config.stage == "vae":
        model = components.vae
        model.requires_grad_(True)
        params = list(model.parameters())
    else:
        model = components.unet
        params = set_trainable(model)
    model.train()
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    model, optimizer = accelerator.prepare(model, optimizer)

    start = 0
    if (out / "state" / "step.json").is_file():  # resume
        accelerator.load_state(str(out / "state"))
        start = json.loads((out / "state" / "step.json").read_text())["step"]
    generator = torch.Generator().manual_seed(config.seed + start)
    rng = np.random.default_rng(config.seed + start)
    batches = _Batches(components, config, accelerator.device)

    losses = []
    bar = tqdm(
        range(start, config.steps),
        desc="train",
        unit="step",
        disable=not config.progress,
        initial=start,
        total=config.steps,
    )
    with open(out / "loss.csv", "a", newline="") as log_file:
        log = csv.writer(log_file)
        if start == 0:
            log.writerow(["step", "loss"])
        for step in bar:
            with accelerator.autocast():
                if config.stage == "vae":
                    loss = autoencoder_loss(model, batches.frames(rng), config.kl_weight)
                else:
                    target, cond, context, ids = batches.sample(rng, generator)
                    sigmas = sample_sigmas(len(target), generator)
                    noise = torch.randn(target.shape, generator=generator).to(target)
                    loss = edm_loss(model, target, cond, context, ids, sigmas, noise)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            value = float(loss.detach())
            losses.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
            done = step + 1
            if done % config.log_every == 0 or done == config.steps:
                log.writerow([done, f"{value:.6f}"])
                log_file.flush()
            if done % config.save_every == 0 or done == config.steps:
                accelerator.save_state(str(out / "state"))
                (out / "state" / "step.json").write_text(json.dumps({"step": done}))
                trained = accelerator.unwrap_model(model)
                if config.stage == "vae":
                    components.vae = trained
                else:
                    components.unet = trained
                name = "final" if done == config.steps else f"checkpoint-{done}"
                save_published_layout(components, out / name)
    return {"steps": config.steps, "final": str(out / "final"), "losses": losses}


def autoencoder_loss(vae, frames: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Reconstruction (MSE on [-1, 1] pixels) + kl_weight * KL of one window of frames
    [F, 3, h, w], decoded by the temporal decoder as a window."""
    dist = vae.encode(frames).latent_dist
    z = dist.sample()
    recon = vae.decode(z, num_frames=len(frames)).sample
    return torch.mean((recon - frames) ** 2) + kl_weight * dist.kl().mean()


def _load(folder: str):
    from amodal_ros.models.loading import load_components

    return load_components(folder)


class _Batches:
    """Encoded training windows from synthetic clips: target = amodal-mask latents (sampled,
    x scaling factor), conditions = modal-mask + depth latents (raw mode, conditioning
    noise augmentation), context = per-frame CLIP embeddings of the modal masks, every frame
    seeing the whole window (the training-consistent conditioning)."""

    def __init__(self, components, config: TrainConfig, device):
        from amodal_ros.pipeline.encoding import ConditionEncoder

        self.c, self.config, self.device = components, config, device
        encoder = ConditionEncoder(components, _inference_config(config), device, torch.float32)
        self.clip = encoder._clip_embed

    @torch.no_grad()
    def sample(self, rng: np.random.Generator, generator: torch.Generator):
        from amodal_ros.train.edm import COND_P_MEAN, COND_P_STD, conditioning_dropout

        targets, conds, clips, ids = [], [], [], []
        for _ in range(self.config.batch_size):
            modal, amodal, depth = self._window(rng)
            sigma_cond = float(np.exp(COND_P_MEAN + COND_P_STD * rng.standard_normal()))
            targets.append(self._encode(amodal, sample=True, generator=generator))
            noisy_modal = modal + sigma_cond * rng.standard_normal(modal.shape).astype(np.float32)
            noisy_depth = depth + sigma_cond * rng.standard_normal(depth.shape).astype(np.float32)
            conds.append(torch.cat([self._encode(noisy_modal), self._encode(noisy_depth)], 1))
            clips.append(self.clip(modal))  # [F, D]
            ids.append([8.0, 127.0, sigma_cond])  # fps 8 as trained, motion bucket, cond noise
        clip = torch.stack(clips)  # [B, F, D]
        b, f, d = clip.shape
        context = clip[:, None].expand(b, f, f, d).reshape(b * f, f, d)
        cond = torch.stack(conds)
        context, cond = conditioning_dropout(context, cond, generator)
        return torch.stack(targets), cond, context, torch.tensor(ids, device=self.device)

    def frames(self, rng: np.random.Generator) -> torch.Tensor:
        """[F, 3, h, w] frames of one kind the VAE must encode: modal or amodal masks, depth or
        RGB of a synthetic window (the autoencoder stage)."""
        from amodal_ros.data.scenes import make_scene
        from amodal_ros.pipeline.preprocess import resize_stack

        modal, amodal, depth = self._window(rng)
        kind = int(rng.integers(4))
        if kind == 3:  # RGB, for stage 2's modal RGB conditions
            cfg = self.config
            clip = make_scene(
                int(rng.integers(0, 1_000_000)),
                num_frames=cfg.num_frames,
                height=cfg.height,
                width=cfg.width,
            )
            rgb = resize_stack(clip.rgb, cfg.height, cfg.width, nearest=False)
            pixels = rgb.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
        else:
            pixels = (modal, amodal, depth)[kind]
        return torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)

    def _window(self, rng: np.random.Generator):
        """(modal, amodal, depth) pixels [F, 3, h, w] in [-1, 1] of one object window."""
        from amodal_ros.data.scenes import make_scene
        from amodal_ros.depth.camera import inverse_depth_from_camera
        from amodal_ros.depth.normalize import normalize_window
        from amodal_ros.pipeline.preprocess import depth_pixels, mask_pixels

        cfg = self.config
        while True:
            clip = make_scene(
                int(rng.integers(0, 1_000_000)),
                num_frames=cfg.num_frames,
                height=cfg.height,
                width=cfg.width,
            )
            visible = [i for i in clip.target_ids if clip.modal(i).any()]
            if visible:
                break
        i = visible[int(rng.integers(len(visible)))]
        depth = normalize_window(inverse_depth_from_camera(clip.depth, "32FC1"))
        return (
            mask_pixels(clip.modal(i), cfg.height, cfg.width),
            mask_pixels(clip.amodal[i], cfg.height, cfg.width),
            depth_pixels(depth, cfg.height, cfg.width),
        )

    def _encode(self, pixels: np.ndarray, sample: bool = False, generator=None) -> torch.Tensor:
        vae = self.c.vae
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device, vae.dtype)
        dist = vae.encode(x).latent_dist  # [F, 3, h, w] -> [F, 4, h/8, w/8]
        if not sample:
            return dist.mode().float()  # conditioning latents are raw (as the reference)
        eps = torch.randn(dist.mean.shape, generator=generator).to(dist.mean)
        return ((dist.mean + dist.std * eps) * vae.config.scaling_factor).float()


def _inference_config(config: TrainConfig):
    from amodal_ros.core.config import InferenceConfig

    return InferenceConfig(height=config.height, width=config.width, num_frames=config.num_frames)
