"""Numpy-only data types passed between the pipeline, the CLI and the ROS node."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ObjectTrack:
    """Modal masks of one object over a window.

    Attributes:
        object_id: the instance-label id (or any hashable key) that names the object.
        masks: [T, H, W] bool, True where the object is visible.
        frame_keys: one hashable key per frame (e.g. the ROS stamp in ns) used for the
            per-frame encoding cache; defaults to 0..T-1.
    """

    object_id: Hashable
    masks: np.ndarray
    frame_keys: Sequence[Hashable] | None = None

    def keys(self) -> list:
        """One key per frame: `frame_keys`, or 0..T-1."""
        return list(range(len(self.masks))) if self.frame_keys is None else list(self.frame_keys)


@dataclass
class AmodalResult:
    """Stage-1 output for one object, at the input resolution.

    Attributes:
        amodal: [T, H, W] bool, the whole object (visible or hidden); contains `modal`
            except a segmenter's small detached specks (`detached_part_share`).
        soft: [T, H, W] float32 in [0, 1]; with one sample the decoded R+G+B / 765, with
            several the share of samples that mark the pixel (both OR-ed with the modal mask).
        modal: [T, H, W] bool, the input modal masks.
        disagreement: [T, H, W] float32 in [0, 1], 1 - |2p - 1| over samples (0 = all agree);
            None with one sample.
        samples: [S, T, H, W] bool hypotheses when num_samples > 1, else None.
        decoded: [T] bool, the frames the model decoded when only some were asked for (the
            others carry the modal mask as amodal); None when every frame was decoded.
    """

    object_id: Hashable
    amodal: np.ndarray
    soft: np.ndarray
    modal: np.ndarray
    disagreement: np.ndarray | None = None
    samples: np.ndarray | None = None
    decoded: np.ndarray | None = None

    @property
    def occlusion_ratio(self) -> np.ndarray:
        """[T] float32: hidden share of the amodal area (0 when the amodal mask is empty)."""
        return occlusion_ratio(self.modal, self.amodal)

    def decoded_frames(self) -> list[int]:
        """Indices of the frames the model decoded (every frame when `decoded` is None): the
        only frames post-processing may change, the others carry the modal mask."""
        if self.decoded is None:
            return list(range(len(self.amodal)))
        return np.flatnonzero(self.decoded).tolist()

    def clear(self, t: int, pixels: np.ndarray, box=(slice(None), slice(None))) -> None:
        """Removes `pixels` ([h, w] bool over `box` of frame t) from every output, in place:
        masks, soft scores, disagreement and samples; the modal masks (the input) stay."""
        self.amodal[t][box][pixels] = False
        self.soft[t][box][pixels] = 0.0
        if self.disagreement is not None:
            self.disagreement[t][box][pixels] = 0.0
        if self.samples is not None:
            self.samples[:, t][(slice(None), *box)][:, pixels] = False

    @property
    def bboxes(self) -> np.ndarray:
        """[T, 4] int32 amodal boxes x, y, w, h in pixels (all zero for an empty mask)."""
        return np.stack([mask_bbox(m) for m in self.amodal])


@dataclass
class CompletionResult:
    """Stage-2 output for one object: its appearance with the hidden part painted in.

    Attributes:
        rgb: [T, H, W, 3] uint8, the completed object on white.
        rgba: [T, H, W, 4] uint8, the completed object with the amodal mask as alpha.
    """

    object_id: Hashable
    rgb: np.ndarray
    rgba: np.ndarray = field(repr=False)


def occlusion_ratio(modal: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """Hidden share of the amodal area per frame; modal/amodal are [T, H, W] bool."""
    amodal_area = amodal.reshape(len(amodal), -1).sum(1).astype(np.float64)
    hidden = (amodal & ~modal).reshape(len(amodal), -1).sum(1)
    ratio = np.divide(hidden, amodal_area, out=np.zeros_like(amodal_area), where=amodal_area > 0)
    return ratio.astype(np.float32)


def touches_border(mask: np.ndarray) -> bool:
    """Whether an [H, W] mask reaches the image's border: the object may go on outside the
    image, where no model predicts, so its amodal mask and box cover only the part inside."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    """x, y, w, h (int32) of the True pixels of an [H, W] mask; zeros when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(4, np.int32)
    return np.array(
        [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.int32
    )


def occluders(labels: np.ndarray, modal: np.ndarray, amodal: np.ndarray) -> dict[int, int]:
    """Which labelled objects cover the hidden part of one object in one frame.

    Args:
        labels: [H, W] integer instance labels (0 = background).
        modal, amodal: [H, W] bool masks of the object.

    Returns:
        {occluder label id: overlap in pixels}, largest first; background is not an occluder.
    """
    hidden_labels = labels[amodal & ~modal]
    ids, counts = np.unique(hidden_labels[hidden_labels != 0], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {int(ids[i]): int(counts[i]) for i in order}
