"""The training loop's batches: encoded windows drawn from seeded synthetic clips, each batch
item from its own random stream (`item_random`), so any split of a step over processes, and a
resumed run, draws the same items. Rendering is `train.windows`' (in worker processes with
`data_workers`); encoding the conditions, targets and CLIP context is here."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from amodal_ros.core.config import InferenceConfig
from amodal_ros.train.config import TrainConfig

log = logging.getLogger("amodal_ros.train")
# Autoencoder frames by kind: modal and amodal masks, depth, an object's visible and whole RGB
# on white. One VAE for both stages (`vae_frames: all`): masks are what stage 1 reads and
# writes, so they dominate; stage 2's own (`appearance`) learns objects' RGB only.
FRAME_KINDS = {"all": (0.3, 0.3, 0.15, 0.125, 0.125), "appearance": (0.0, 0.0, 0.0, 0.5, 0.5)}
# what the diffusion model on each autoencoder generates, whose latents its scaling factor
# brings to unit variance: amodal masks (stage 1), an object's whole RGB on white (stage 2)
TARGET_KIND = {"all": 1, "appearance": 4}
POOL_SIZE = 64  # encoded windows kept for reuse (TrainConfig.sample_reuse)
NOISY_TARGETS = 0.1  # posterior spread / latent spread above which sampled targets are noise
# what a model trained here is conditioned on: fps 8 and motion bucket 127, as the pipeline
# passes them in its 'consistent' mode (diffusion-vas trains so; its inference passes fps - 1)
TRAINED_TIME_IDS = InferenceConfig(conditioning_mode="consistent").time_ids


def item_random(seed: int, step: int, slot: int) -> tuple[np.random.Generator, torch.Generator]:
    """The random streams of one batch item, seeded by (seed, step, its position in the
    global batch): any split of a step's batch over processes draws the same items, and a
    resumed run the same items as one that never stopped (with `sample_reuse` 1; reuse pools
    start empty after a restart)."""
    rng = np.random.default_rng([seed, step, slot])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def loss_weights(hidden: torch.Tensor, hidden_weight: float, newest_weight: float) -> torch.Tensor:
    """A student's loss weight of each target cell [F, 1, h, w]: 1 + `hidden_weight` x its
    hidden share, times 1 + `newest_weight` x t/(F-1) for frame t (the newest frame is what
    the live node publishes)."""
    frames = hidden.shape[0]
    ramp = torch.linspace(0.0, 1.0, frames) if frames > 1 else torch.ones(1)
    return (1 + hidden_weight * hidden) * (1 + newest_weight * ramp).view(frames, 1, 1, 1)


def fit_scaling_factor(vae, batches: Batches, rng: np.random.Generator, windows: int = 8):
    """Set `vae.config.scaling_factor` to 1 / std of the latents of what the diffusion model
    on this autoencoder generates (TARGET_KIND; as SVD's 0.18215 was fitted), so its targets
    have unit variance; returns it. (Stage 2's own autoencoder was fitted to amodal masks,
    frames it never learns.)"""
    was_training = vae.training
    vae.eval()
    kind = TARGET_KIND[batches.config.vae_frames]
    with torch.no_grad():
        targets = [batches.pixels(rng, kind) for _ in range(windows)]
        latents = torch.cat([mean for mean, _std in batches._encode(targets)])
    vae.train(was_training)
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


def student_defaults(config: TrainConfig, components) -> dict:
    """What a student runs with by default (recorded in its folder; its windows are drawn at
    its working size and mask resizing): its teacher's defaults, the noise it starts from,
    and its own working size where it has one."""
    noise = {"initial_noise": config.initial_noise}
    return {**components.defaults, **noise, **config.student_size}


class Batches:
    """Encoded training windows from synthetic clips: target = amodal-mask latents (sampled,
    x scaling factor), conditions = modal-mask + depth latents (raw mode, conditioning
    noise augmentation), context = per-frame CLIP embeddings of the modal masks, every frame
    seeing the whole window (the training-consistent conditioning)."""

    def __init__(self, components, config: TrainConfig, device, slots: range = range(1)):
        from amodal_ros.pipeline.encoding import ConditionEncoder
        from amodal_ros.train.windows import RenderedAhead, WindowRenderer

        self.c, self.config, self.device = components, config, device
        self.render = WindowRenderer(config)
        self.ahead = None  # with data_workers: items rendered by worker processes
        if config.data_workers:
            self.ahead = RenderedAhead(self.render, config.seed, slots, config.data_workers)
        # encoded windows for reuse (`sample_reuse`), one pool per batch position, so a
        # position draws the same windows whichever process owns it
        self.pools: dict[int, list[tuple]] = {}
        self.seconds = 0.0  # spent on windows: rendering or waiting for them, encoding
        self.pool_size = max(1, POOL_SIZE // config.batch_size)
        inference = _inference_config(config)
        encoder = ConditionEncoder(components, inference, device, torch.float32)
        self.clip = encoder.clip_embed
        self.decode_chunk_size = inference.decode_chunk_size
        self.mode = components.defaults.get("conditioning_mode", "consistent")
        self._spread_checked = False
        # the fps time id a student inherits with its teacher's conditioning (the reference
        # trains its stages with 8 and runs them with 7)
        self.student_fps = float(inference.replace(conditioning_mode=self.mode).fps_id)

    def decoder(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, 4, h, w] -> frames as the pipeline decodes them, with gradients."""
        from amodal_ros.pipeline.sampling import decode

        return decode(self.c.vae, latents, self.decode_chunk_size)

    @torch.no_grad()
    def sample(self, step: int, slots: range):
        """Batch items `slots` of optimizer step `step`: (target, cond, context, added time
        ids, sigmas, noise), each item's window, dropout, noise level and noise drawn from its
        own seed (`item_random`)."""
        from amodal_ros.train.edm import conditioning_dropout, sample_sigmas

        parts = []
        for slot in slots:
            rng, generator = item_random(self.config.seed, step, slot)
            target, cond, clip, ids, _ = self._pooled(step, slot, rng, generator)
            f, d = clip.shape
            context = clip[None].expand(f, f, d)  # every frame sees the whole window
            context, cond = conditioning_dropout(context, cond[None], generator)
            sigma = sample_sigmas(1, generator)
            noise = torch.randn(target.shape, generator=generator)
            parts.append((target, cond, context, ids, sigma, noise))
        target, cond, context, ids, sigma, noise = zip(*parts)
        return (
            torch.stack(target).to(self.device),
            torch.cat(cond).to(self.device),
            torch.cat(context),
            torch.tensor(ids, device=self.device),
            torch.cat(sigma),
            torch.stack(noise).to(self.device),
        )

    @torch.no_grad()
    def truth(self, step: int, slots: range):
        """Batch items `slots` of step `step` for a student learning the ground truth:
        (noise, cond, context, added time ids, [target], loss weights from `loss_weights`,
        or None where the config weights nothing). No conditioning dropout: a student runs
        without guidance."""
        from amodal_ros.pipeline.sampling import cross_attention_context

        weighted = bool(self.config.hidden_weight or self.config.newest_weight)
        parts = []
        for slot in slots:
            rng, generator = item_random(self.config.seed, step, slot)
            target, cond, clip, ids, hidden = self._pooled(step, slot, rng, generator)
            ids = [self.student_fps, *ids[1:]]  # what it will run with
            latents = (len(cond), self.c.vae.config.latent_channels, *cond.shape[2:])
            noise = torch.randn(latents, generator=generator)  # drawn either way: same data
            if self.config.initial_noise == "zeros":
                noise = torch.zeros_like(noise)
            weights = loss_weights(hidden, self.config.hidden_weight, self.config.newest_weight)
            parts.append((noise, cond, clip, ids, target, weights))
        noise, cond, clip, ids, target, weights = zip(*parts)
        context = cross_attention_context(torch.stack(clip), self.mode, guided=False)
        device = self.device
        return (
            torch.stack(noise).to(device),
            torch.stack(cond).to(device),
            context.to(device),
            torch.tensor(ids, device=device),
            [torch.stack(target).to(device)],
            torch.stack(weights).to(device) if weighted else None,
        )

    def close(self) -> None:
        """Stop the rendering workers (`data_workers`)."""
        if self.ahead is not None:
            self.ahead.close()

    def _pooled(self, step: int, slot: int, rng: np.random.Generator, generator: torch.Generator):
        """An encoded window: a fresh one, or (with `sample_reuse` > 1) one encoded before.

        Encoding a window's conditions and target costs most of a small model's CPU step; a
        window drawn again meets new diffusion noise, sigma and dropout, so reusing each about
        `sample_reuse` times trains on nearly as much as fresh windows, faster.
        """
        reuse, pool = self.config.sample_reuse, self.pools.setdefault(slot, [])
        if reuse > 1 and len(pool) >= self.pool_size and rng.random() > 1.0 / reuse:
            return pool[int(rng.integers(len(pool)))]
        item = self._item(step, slot, rng, generator)
        if reuse > 1:
            if len(pool) < self.pool_size:
                pool.append(item)
            else:
                pool[int(rng.integers(self.pool_size))] = item
        return item

    def _item(self, step: int, slot: int, rng: np.random.Generator, generator) -> tuple:
        """(target latents, or frames for `pixel_targets`; condition latents, CLIP embeddings,
        added time ids; the target's hidden share [F, 1, h, w], each latent cell's the largest
        of its pixels') of batch item (step, slot), drawn from its stream `rng`."""
        started = time.perf_counter()
        # prepared by a worker from the same stream, or here
        item = self.ahead.take(step, slot) if self.ahead else self.render.item(rng)
        pixel_targets = self.config.pixel_targets  # decoded samples meet the true frames
        posteriors = self._encode(
            item.conditions if pixel_targets else [item.target, *item.conditions]
        )
        cond = torch.cat([mean for mean, _ in posteriors[-len(item.conditions) :]], 1)
        hidden = torch.from_numpy(item.hidden)
        if pixel_targets:
            target = torch.from_numpy(np.ascontiguousarray(item.target)).float()
        else:
            target = self._target(*posteriors[0], generator)
            hidden = torch.nn.functional.adaptive_max_pool2d(hidden, target.shape[-2:])
        # the fps id and motion bucket inference passes (conditioned as trained), and the
        # conditioning noise this item was given
        ids = [*TRAINED_TIME_IDS[:2], item.sigma_cond]
        # [F, D], in the image encoder's own dtype as the pipeline encodes (not the step's
        # autocast: bf16 moved the context by 0.5 %)
        with torch.autocast(torch.device(self.device).type, enabled=False):
            clip = self.clip(item.clip_input)
        self.seconds += time.perf_counter() - started
        return target, cond, clip, ids, hidden

    def frames(self, rng: np.random.Generator) -> torch.Tensor:
        """[F, 3, h, w] frames of one kind the pipeline encodes, drawn by the autoencoder's
        FRAME_KINDS (`pixels`), on the device; their time is the step's window time."""
        started = time.perf_counter()
        shares = FRAME_KINDS[self.config.vae_frames]
        pixels = self.pixels(rng, int(rng.choice(len(shares), p=shares)))
        frames = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
        self.seconds += time.perf_counter() - started
        return frames

    def pixels(self, rng: np.random.Generator, kind: int) -> np.ndarray:
        """[F, 3, h, w] frames of `kind` (FRAME_KINDS' order): modal or amodal masks, depth, or
        an object's RGB on white, visible part or whole (stage 2's condition and target)."""
        from amodal_ros.train.windows import object_on_white

        if kind < 3:
            return self.render.window(rng)[kind]  # modal, amodal, depth
        clip = self.render.scene(rng)
        i = clip.target_ids[int(rng.integers(len(clip.target_ids)))]
        cfg = self.config
        return object_on_white(clip, i, kind == 4, cfg.height, cfg.width, cfg.mask_resize)

    def _encode(self, windows: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The VAE posterior (mean, std) of each window's frames [F, 3, h, w], all in one pass
        (on a GPU a step is mostly small calls). The mean is what conditions are (the raw
        posterior mode, as the reference), in the VAE's own precision as the pipeline encodes,
        not the training step's autocast."""
        vae = self.c.vae
        x = torch.from_numpy(np.concatenate(windows)).to(self.device, vae.dtype)
        with torch.autocast(torch.device(self.device).type, enabled=False):
            dist = vae.encode(x).latent_dist  # [F, 3, h, w] -> [F, 4, h/s, w/s]
        sizes = [len(w) for w in windows]
        return list(zip(dist.mean.float().split(sizes), dist.std.float().split(sizes)))

    def _target(self, mean: torch.Tensor, std: torch.Tensor, generator) -> torch.Tensor:
        """A diffusion target: a posterior sample (or the mean, `sample_targets: false`) x
        the VAE's scaling factor."""
        if self.config.sample_targets:
            self._check_spread(mean, std)
            mean = mean + std * torch.randn(mean.shape, generator=generator).to(mean)
        return mean * self.c.vae.config.scaling_factor

    def _check_spread(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Warn once when posterior samples would be mostly noise: the published VAE's spread
        is tiny, an autoencoder trained here (stage vae) keeps about a unit one."""
        if self._spread_checked:
            return
        self._spread_checked = True
        share = float(std.mean() / mean.std().clamp_min(1e-8))
        if share > NOISY_TARGETS:
            log.warning(
                "sample_targets: the VAE's posterior spread is %.0f %% of its latents' own, so "
                "the diffusion targets would be largely noise; set sample_targets: false for "
                "this VAE (as config/train_*.yaml do)",
                100 * share,
            )


def data_config(config: TrainConfig, components) -> TrainConfig:
    """The config windows are drawn with: a student's are at its own defaults
    (`student_defaults`: working size, mask resizing) and its teacher's depth channels, with
    the targets at the posterior mean, as a decoded sample."""
    if config.stage != "distill":
        return config
    made_for = InferenceConfig(**student_defaults(config, components))
    return config.replace(
        height=made_for.height,
        width=made_for.width,
        mask_resize=made_for.mask_resize,
        depth=components.num_conditions == 2,
        sample_targets=False,
    )


def _inference_config(config: TrainConfig):
    return InferenceConfig(height=config.height, width=config.width, num_frames=config.num_frames)
