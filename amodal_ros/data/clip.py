"""One synthetic amodal clip: what a robot's RGB-D camera and segmenter give, with the answers.

`labels` (what a model is given) carry a segmenter's errors; `amodal`, `visible` and
`appearance` (the ground truth) are exact, so an evaluation scores the true amodal mask given
the noisy modal input, as a deployment would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The generator's clips: raised whenever a seed's clip changes (test_scenes' fingerprints), and
# recorded with every clip folder and evaluation, since scores compare only on the same clips.
# 1: until 2026-12-06; 2: targets cut by the image's edge, turning at most 90 degrees a clip.
CLIPS_VERSION = 2


@dataclass
class AmodalClip:
    """One synthetic clip.

    Attributes:
        rgb: [T, H, W, 3] uint8 frames (with sensor noise).
        depth: [T, H, W] float32 metres, 0 = invalid (no return), as a depth camera gives.
        labels: [T, H, W] uint16 instance ids (targets and occluders) as a segmenter gives,
            with its errors; 0 = background. The model's modal input.
        amodal: {target id: [T, H, W] bool} whole object, visible or not (clipped to the image).
        appearance: {target id: [T, H, W, 4] uint8} the target alone, unoccluded and noise-free;
            alpha 255 on its amodal mask.
        target_depth: {target id: float} metres (constant over the clip).
        occluder_ids: ids of the pure occluders (poles, boards, hands, blobs); targets occlude
            each other too.
        seed: the generator seed.
        visible: {target id: [T, H, W] bool} exact visible part (ground truth); defaults to
            `labels == id` (clips without segmenter errors).
        families: {target id: family name}; empty when unknown.
        camera: [T, 2] float32 camera shift (x, y) in pixels per frame (0 = no motion).
        clips_version: the generator's CLIPS_VERSION that made it.
    """

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    amodal: dict[int, np.ndarray]
    appearance: dict[int, np.ndarray] = field(repr=False)
    target_depth: dict[int, float]
    occluder_ids: list[int]
    seed: int
    visible: dict[int, np.ndarray] | None = field(default=None, repr=False)
    families: dict[int, str] = field(default_factory=dict)
    camera: np.ndarray | None = field(default=None, repr=False)
    clips_version: int = CLIPS_VERSION

    def __post_init__(self) -> None:
        if self.visible is None:
            self.visible = {i: self.labels == i for i in self.amodal}
        if self.camera is None:
            self.camera = np.zeros((len(self.rgb), 2), np.float32)

    @property
    def target_ids(self) -> list[int]:
        """Ids of the targets (the objects with ground truth), ascending."""
        return sorted(self.amodal)

    def modal(self, object_id: int) -> np.ndarray:
        """[T, H, W] bool: the object's mask in `labels`, the (noisy) input a model gets."""
        return self.labels == object_id

    def occlusion_ratio(self, object_id: int) -> np.ndarray:
        """[T] float32 hidden share of the object's amodal area, from the exact visible mask
        (0 where it is outside the image)."""
        from amodal_ros.core.types import occlusion_ratio

        return occlusion_ratio(self.visible[object_id], self.amodal[object_id])
