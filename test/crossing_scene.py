"""A scene for id tracking through the node and replay: what a per-frame instance segmenter
gives when two objects cross and one hides fully behind the other for 1 s at 8 fps.

Object 1 (10 x 10 px, 1.5 m away) moves right at 2 px/frame; object 2 (16 x 42 px, 1.0 m,
in front) moves left at 2 px/frame over the same rows. Object 1 is fully hidden in frames
17-24 (8 frames), then comes out on the other side. Every frame numbers the masks afresh with
random ids, as YOLO-seg or Mask R-CNN do. Also: the true labels, to check what came out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEIGHT, WIDTH, FRAMES = 48, 96, 32
HIDDEN = tuple(range(17, 25))  # frames where object 1 is fully hidden
BACKGROUND_DEPTH = 3.0  # m
BOXES = {1: (20, 4, 10, 10, 2, 1.5), 2: (17, 70, 16, 42, -2, 1.0)}  # y, x, h, w, px/frame, m


@dataclass
class CrossingScene:
    rgb: np.ndarray  # [T, H, W, 3] uint8
    depth: np.ndarray  # [T, H, W] float32 metres
    truth: np.ndarray  # [T, H, W] true ids (1, 2; 0 background)
    labels: np.ndarray  # [T, H, W] the same masks under fresh random ids every frame


def crossing_scene(seed: int = 0) -> CrossingScene:
    rng = np.random.default_rng(seed)
    truth = np.zeros((FRAMES, HEIGHT, WIDTH), np.int64)
    depth = np.full((FRAMES, HEIGHT, WIDTH), BACKGROUND_DEPTH, np.float32)
    rgb = np.zeros((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    rgb[:] = rng.integers(90, 140, (HEIGHT, WIDTH, 3), dtype=np.uint8)  # textured background
    colours = {1: (220, 60, 40), 2: (40, 90, 220)}
    for t in range(FRAMES):
        for object_id, (y, x, h, w, speed, metres) in BOXES.items():  # 2 painted last: in front
            left = x + speed * t
            rows, cols = slice(y, y + h), slice(max(left, 0), max(left + w, 0))
            truth[t, rows, cols] = object_id
            depth[t, rows, cols] = metres
            rgb[t, rows, cols] = colours[object_id]
    labels = np.stack([_renumber(f, rng) for f in truth])
    return CrossingScene(rgb, depth, truth, labels)


def _renumber(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame's masks under distinct random ids in [1, 65536) (mono16 label images)."""
    ids = rng.choice(np.arange(1, 65536), size=3, replace=False)
    lookup = np.array([0, ids[0], ids[1]], np.int64)
    return lookup[truth]


def track_of_each_object(truth: np.ndarray, frames: dict[int, dict[int, tuple]]) -> dict:
    """{true id: set of track ids} over frames; `frames` maps a frame index to {object id:
    (modal mask, amodal valid)}; an id belongs to the true object its modal mask covers."""
    owners: dict[int, set[int]] = {1: set(), 2: set()}
    for t, objects in frames.items():
        for track_id, (modal, _) in objects.items():
            if modal.any():
                true_ids = np.unique(truth[t][modal])
                assert len(true_ids) == 1 and true_ids[0] > 0, (t, track_id, true_ids)
                owners[int(true_ids[0])].add(track_id)
    return owners


def assert_one_track_each(truth: np.ndarray, frames: dict[int, dict[int, tuple]], window: int):
    """Each object has one id in every frame, the two ids differ, and from the first full
    window on the hidden object is answered by the model in every frame, hidden ones included
    (a window longer than the occlusion always holds frames where it was seen)."""
    assert sorted(frames) == list(range(FRAMES))
    owners = track_of_each_object(truth, frames)
    assert len(owners[1]) == len(owners[2]) == 1 and owners[1] != owners[2], owners
    (one,) = owners[1]
    for t in range(window - 1, FRAMES):
        modal, valid = frames[t][one]
        assert valid, t
        assert modal.any() == (t not in HIDDEN), t


def check_scene() -> None:
    """The scene is what its docstring says (called by the tests that use it)."""
    scene = crossing_scene()
    hidden = [t for t in range(FRAMES) if not (scene.truth[t] == 1).any()]
    assert tuple(hidden) == HIDDEN, hidden
    assert (scene.truth[-1] == 1).sum() == 100  # out again, whole
    for t in range(FRAMES):
        assert len(np.unique(scene.labels[t])) == len(np.unique(scene.truth[t]))
    assert len({int(scene.labels[t][scene.truth[t] == 2][0]) for t in range(FRAMES)}) > 20
