"""Synthetic training windows in pixels, drawn from seeded random streams: in the training
process, or rendered ahead by worker processes (`data_workers`), which a GPU's step outruns.

Rendering is numpy and OpenCV only (no model), so a worker needs just the run's config. Each
batch item is drawn from its own stream (`train.loop.item_random`), and a worker sends the
stream back after rendering, so the training process goes on drawing from it exactly where
it would have: the batches are the same for any number of workers.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
from typing import NamedTuple

import numpy as np

from amodal_ros.train.config import TrainConfig

AHEAD_PER_WORKER = 4  # items queued per worker: enough to hide a slow scene, little memory


class WindowPixels(NamedTuple):
    """One object's window at the working size, frames [F, 3, h, w] in [-1, 1]."""

    target: np.ndarray  # what the model learns to give: amodal masks, or the whole object
    conditions: list[np.ndarray]  # what it is given: [modal, depth] / [modal, amodal] ...
    clip_input: np.ndarray  # the frames CLIP embeds
    visible: np.ndarray  # the modal masks
    amodal: np.ndarray  # the amodal masks


class WindowRenderer:
    """Windows of the train split as a stage draws them (stage 1: modal masks + depth ->
    amodal masks; stage 2: self-supervised completion pairs). Picklable: only the config."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def item(self, rng: np.random.Generator) -> WindowPixels:
        """One training item of the run's stage."""
        if self.config.completion:
            target, conditions, clip_input, visible = self.completion_window(rng)
            return WindowPixels(target, conditions, clip_input, visible, conditions[1])
        visible, amodal, depth = self.window(rng)
        conditions = [visible, depth] if self.config.depth else [visible]
        return WindowPixels(amodal, conditions, visible, visible, amodal)

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
        visible source object; other objects' amodal tracks (this clip's, shifted) are pasted
        over it until it is hidden enough (amodal_ros.data.pairs.make_pair)."""
        from amodal_ros.data.pairs import make_pair
        from amodal_ros.pipeline.preprocess import mask_pixels, modal_rgb_pixels

        cfg = self.config
        while True:
            clip = self.scene(rng)
            ids = [i for i in clip.target_ids if clip.amodal[i].any()]
            if not ids:
                continue
            i = ids[int(rng.integers(len(ids)))]
            look = clip.appearance[i]
            noise = rng.normal(0.0, 4.0, look[..., :3].shape)  # the scene's sensor noise
            rgb = np.clip(look[..., :3] + noise, 0, 255).astype(np.uint8)
            amodal = clip.amodal[i]
            tracks = [
                np.roll(clip.amodal[j], _shift(rng, amodal.shape), (1, 2)) for j in clip.amodal
            ]
            pair = make_pair(rgb, amodal, amodal, tracks, rng)
            if pair is None:
                continue
            modal_rgb = modal_rgb_pixels(pair.rgb, pair.modal, cfg.height, cfg.width)
            whole = modal_rgb_pixels(look[..., :3], amodal, cfg.height, cfg.width)
            amodal_px = mask_pixels(amodal, cfg.height, cfg.width, cfg.mask_resize)
            visible = mask_pixels(pair.modal, cfg.height, cfg.width, cfg.mask_resize)
            return whole, [modal_rgb, amodal_px], modal_rgb, visible


def render_item(
    renderer: WindowRenderer, seed: int, step: int, slot: int
) -> tuple[WindowPixels, np.random.Generator]:
    """A worker's job: batch item (step, slot) from the start of its stream, and the stream
    as rendering left it."""
    from amodal_ros.train.loop import item_random

    rng, _ = item_random(seed, step, slot)
    return renderer.item(rng), rng


class RenderedAhead:
    """Items rendered by `workers` processes, queued in the order the loop asks for them:
    every slot of each step from the first one asked for on."""

    def __init__(self, renderer: WindowRenderer, seed: int, slots: range, workers: int):
        # spawn: the training process may hold CUDA and torch's threads, which fork copies badly
        self.pool = multiprocessing.get_context("spawn").Pool(workers)
        self.renderer, self.seed, self.slots = renderer, seed, slots
        self.depth = AHEAD_PER_WORKER * workers
        self.queue: collections.deque = collections.deque()
        self.keys = None

    def take(self, step: int, slot: int) -> tuple[WindowPixels, np.random.Generator]:
        """Item (step, slot), rendered from its own stream, and that stream afterwards."""
        if self.keys is None:
            self.keys = ((s, i) for s in itertools.count(step) for i in self.slots)
        while len(self.queue) < self.depth:
            key = next(self.keys)
            job = self.pool.apply_async(render_item, (self.renderer, self.seed, *key))
            self.queue.append((key, job))
        key, job = self.queue.popleft()
        if key != (step, slot):  # the loop asks in order; anything else is a bug here
            raise RuntimeError(f"rendered item {key} is next, but {(step, slot)} was asked for")
        return job.get()

    def close(self) -> None:
        """Stop the workers (items still queued are not needed: the run has ended)."""
        self.pool.terminate()
        self.pool.join()


def _shift(rng: np.random.Generator, shape) -> tuple[int, int]:
    """A random (dy, dx) within a third of the frame, to move a pasted occluder track."""
    return int(rng.integers(-shape[1] // 3, shape[1] // 3 + 1)), int(
        rng.integers(-shape[2] // 3, shape[2] // 3 + 1)
    )
