"""Synthetic training items in pixels, drawn from seeded random streams: in the training
process, or prepared ahead by worker processes (`data_workers`), which a GPU's step outruns.

An item is numpy and OpenCV work only (no model): the window, its conditioning noise level
and noise, every draw of its own stream (`train.batches.item_random`). So a worker needs just
the run's config, the training process only encodes what it gets, and the batches are the
same for any number of workers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
from typing import NamedTuple

import numpy as np

from amodal_ros.train.config import TrainConfig

AHEAD_PER_WORKER = 4  # items queued per worker: enough to hide a slow scene, little memory


class TrainingItem(NamedTuple):
    """One batch item before encoding, frames [F, 3, h, w] in [-1, 1] at the working size."""

    target: np.ndarray  # what the model learns to give: amodal masks, or the whole object
    conditions: list[np.ndarray]  # what it is given, noise-augmented: [modal, depth] / ...
    clip_input: np.ndarray  # the frames CLIP embeds
    hidden: np.ndarray  # [F, 1, h, w] share of each pixel where the object is hidden
    sigma_cond: float  # the conditioning noise level (an added time id)


class WindowRenderer:
    """Windows of the train split as a stage draws them (stage 1: modal masks + depth ->
    amodal masks; stage 2: self-supervised completion pairs). Picklable: only the config."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def item(self, rng: np.random.Generator) -> TrainingItem:
        """One training item of the run's stage: its window, then its conditioning noise
        augmentation (the reference's), all drawn from `rng`."""
        from amodal_ros.train.edm import COND_P_MEAN, COND_P_STD

        if self.config.completion:
            target, conditions, clip_input, visible = self.completion_window(rng)
            amodal = conditions[1]
        else:
            visible, amodal, depth = self.window(rng)
            target, clip_input = amodal, visible
            conditions = [visible, depth] if self.config.depth else [visible]
        sigma_cond = float(np.exp(COND_P_MEAN + COND_P_STD * rng.standard_normal()))
        noisy = [
            c + sigma_cond * rng.standard_normal(c.shape).astype(np.float32) for c in conditions
        ]
        return TrainingItem(target, noisy, clip_input, hidden_share(amodal, visible), sigma_cond)

    def scene(self, rng: np.random.Generator):
        """A clip of the train split at `render_scale` x the working size."""
        from amodal_ros.data.scenes import make_scene

        cfg = self.config
        return make_scene(
            int(rng.integers(0, 1_000_000)),  # the train split: test seeds start at 10^6
            num_frames=cfg.num_frames,
            height=cfg.height * cfg.render_scale,
            width=cfg.width * cfg.render_scale,
        )

    def window(self, rng: np.random.Generator):
        """(modal, amodal, depth) pixels [F, 3, h, w] in [-1, 1] of one object window."""
        from amodal_ros.depth.camera import inverse_depth_from_camera
        from amodal_ros.depth.normalize import normalize_window
        from amodal_ros.pipeline.preprocess import depth_pixels, mask_pixels

        cfg = self.config
        while True:
            clip = self.scene(rng)
            visible = [i for i in clip.target_ids if clip.modal(i).any()]
            if visible:
                break
        i = visible[int(rng.integers(len(visible)))]
        depth = normalize_window(inverse_depth_from_camera(clip.depth, "32FC1"))
        return (
            mask_pixels(clip.modal(i), cfg.height, cfg.width, cfg.mask_resize),
            mask_pixels(clip.amodal[i], cfg.height, cfg.width, cfg.mask_resize),
            depth_pixels(depth, cfg.height, cfg.width),
        )

    def completion_window(self, rng: np.random.Generator):
        """(target, [modal RGB, amodal mask], CLIP input, visible mask) pixels of one
        self-supervised pair.

        Synthetic scenes render every object unoccluded (`appearance`), so each one is a fully
        visible source object; this clip's amodal tracks (its own among them, so a clip of one
        target still has occluders), shifted with wrap-around, are pasted over it until it is
        hidden enough (amodal_ros.data.pairs.make_pair). Every object of a scene is tried
        before another scene is drawn: a scene costs most of an item, and most objects are
        too large for the tracks to hide enough of them."""
        from amodal_ros.data.pairs import make_pair
        from amodal_ros.pipeline.preprocess import mask_pixels, modal_rgb_pixels

        cfg = self.config
        while True:
            clip = self.scene(rng)
            ids = [i for i in clip.target_ids if clip.amodal[i].any()]
            for i in rng.permutation(ids):
                amodal = clip.amodal[i]
                tracks = [
                    np.roll(clip.amodal[j], _shift(rng, amodal.shape), (1, 2)) for j in clip.amodal
                ]
                look = clip.appearance[i][..., :3]
                shown = make_pair(amodal, amodal, tracks, rng)
                if shown is None:
                    continue
                noise = rng.normal(0.0, 4.0, look.shape)  # the scene's sensor noise
                rgb = _on_white(np.clip(look + noise, 0, 255).astype(np.uint8), amodal)
                modal_rgb = modal_rgb_pixels(rgb, shown, cfg.height, cfg.width, cfg.mask_resize)
                whole = object_on_white(clip, i, True, cfg.height, cfg.width, cfg.mask_resize)
                amodal_px = mask_pixels(amodal, cfg.height, cfg.width, cfg.mask_resize)
                visible = mask_pixels(shown, cfg.height, cfg.width, cfg.mask_resize)
                return whole, [modal_rgb, amodal_px], modal_rgb, visible


def object_on_white(
    clip, object_id: int, whole: bool, height: int, width: int, resize: str
) -> np.ndarray:
    """[F, 3, h, w] an object's RGB on white: its visible pixels in the scene (stage 2's
    condition), or `whole`, its unoccluded appearance over its amodal masks (stage 2's target;
    the scene shows its occluders there); `resize` the model's mask_resize."""
    from amodal_ros.pipeline.preprocess import modal_rgb_pixels

    if whole:
        look = _on_white(clip.appearance[object_id][..., :3], clip.amodal[object_id])
        return modal_rgb_pixels(look, clip.amodal[object_id], height, width, resize)
    return modal_rgb_pixels(clip.rgb, clip.modal(object_id), height, width, resize)


def _on_white(look: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """An object's appearance (black beyond its mask) on white: mask_resize 'nearest' shrinks
    the RGB before it puts it on white, which darkened every edge pixel ('area' puts it on
    white first: the same either way)."""
    from amodal_ros.pipeline.preprocess import WHITE

    return np.where(amodal[..., None], look, np.uint8(WHITE))


def hidden_share(amodal: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """[F, 1, h, w] share of each working pixel where the object is hidden, from mask frames
    [F, 3, h, w] in [-1, 1] (soft with `mask_resize: area`)."""
    share = (amodal.mean(1, keepdims=True) - visible.mean(1, keepdims=True)) / 2
    return np.clip(share, 0.0, 1.0).astype(np.float32)


def render_item(renderer: WindowRenderer, seed: int, step: int, slot: int) -> TrainingItem:
    """A worker's job: batch item (step, slot), drawn from its own stream."""
    from amodal_ros.train.batches import item_random

    return renderer.item(item_random(seed, step, slot)[0])


class RenderedAhead:
    """Items prepared by `workers` processes, queued in the order the loop asks for them:
    every slot of each step from the first one asked for on. The processes start then."""

    def __init__(self, renderer: WindowRenderer, seed: int, slots: range, workers: int):
        self.renderer, self.seed, self.slots, self.workers = renderer, seed, slots, workers
        self.depth = AHEAD_PER_WORKER * workers
        self.queue: collections.deque = collections.deque()
        self.keys = None
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def take(self, step: int, slot: int) -> TrainingItem:
        """Item (step, slot). A worker that died (out of memory, a crash) raises
        BrokenProcessPool here instead of leaving the loop waiting."""
        if self.pool is None:
            self.keys = ((s, i) for s in itertools.count(step) for i in self.slots)
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                # spawn: the training process may hold CUDA and torch threads, badly forked
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_one_thread,
            )
        while len(self.queue) < self.depth:
            key = next(self.keys)
            job = self.pool.submit(render_item, self.renderer, self.seed, *key)
            self.queue.append((key, job))
        key, job = self.queue.popleft()
        if key != (step, slot):  # the loop asks in order; anything else is a bug here
            raise RuntimeError(f"rendered item {key} is next, but {(step, slot)} was asked for")
        return job.result()

    def close(self) -> None:
        """Stop the workers (items still queued are not needed: the run has ended)."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _one_thread() -> None:
    """A worker renders one item at a time on one core (the machine's cores are the workers)."""
    import cv2

    cv2.setNumThreads(1)


def _shift(rng: np.random.Generator, shape) -> tuple[int, int]:
    """A random (dy, dx) within a third of the frame, to move a pasted occluder track."""
    return int(rng.integers(-shape[1] // 3, shape[1] // 3 + 1)), int(
        rng.integers(-shape[2] // 3, shape[2] // 3 + 1)
    )
