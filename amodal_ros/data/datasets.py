"""Readers for the published Diffusion-VAS window annotations (as the reference code,
diffusion-vas, reads them): SAIL-VOS windows and TAO-Amodal windows, as the files come.

Each reader is a sequence of windows; a window holds its frames' image paths and masks as
[T, H, W] bool (decoded from COCO RLE on access, so a large file costs little memory).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal_ros.data.rle import decode


@dataclass
class AnnotatedWindow:
    """One object's window. `amodal` is None where the dataset has only amodal boxes (TAO)."""

    object_id: int
    category_id: int
    image_paths: list[Path]
    modal: np.ndarray  # [T, H, W] bool
    amodal: np.ndarray | None  # [T, H, W] bool
    amodal_boxes: np.ndarray  # [T, 4] float x, y, w, h


class _JsonWindows(Sequence):
    REQUIRED: tuple[str, ...] = ()

    def __init__(self, annotations: str | Path, root: str | Path):
        path = Path(annotations)
        if not path.is_file():
            raise FileNotFoundError(f"annotation file {path} does not exist")
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            raise ValueError(
                f"{path}: expected a JSON list of windows, got {type(entries).__name__}"
            )
        for n, entry in enumerate(entries):
            missing = [k for k in self.REQUIRED if k not in entry]
            if missing:
                raise ValueError(f"{path}: window {n} lacks {missing}")
        self.entries, self.root, self.path = entries, Path(root), path

    def __len__(self) -> int:
        return len(self.entries)


class SailVosWindows(_JsonWindows):
    """`diffusion_vas_sailvos_{train,val}.json`: amodal (`segmentation`) and modal
    (`visible_mask`) COCO RLEs per frame, amodal `bbox`, `image_file_names` under `root`."""

    REQUIRED = (
        "segmentation",
        "visible_mask",
        "bbox",
        "obj_id",
        "category_id",
        "image_file_names",
    )

    def __getitem__(self, i: int) -> AnnotatedWindow:
        e = self.entries[i]
        return AnnotatedWindow(
            object_id=int(e["obj_id"]),
            category_id=int(e["category_id"]),
            image_paths=[self.root / f for f in e["image_file_names"]],
            modal=np.stack([decode(r) for r in e["visible_mask"]]),
            amodal=np.stack([decode(r) for r in e["segmentation"]]),
            amodal_boxes=np.asarray(e["bbox"], np.float64).reshape(-1, 4),
        )


class TaoAmodalWindows(_JsonWindows):
    """`diffusion_vas_tao_amodal_val.json`: modal COCO RLEs per frame (`rles`) and amodal boxes
    (`amodal_bboxes`); evaluation there is AP50 on amodal boxes."""

    REQUIRED = ("track_id", "category_id", "file_names", "rles", "amodal_bboxes")

    def __getitem__(self, i: int) -> AnnotatedWindow:
        e = self.entries[i]
        return AnnotatedWindow(
            object_id=int(e["track_id"]),
            category_id=int(e["category_id"]),
            image_paths=[self.root / f for f in e["file_names"]],
            modal=np.stack([decode(r) for r in e["rles"]]),
            amodal=None,
            amodal_boxes=np.asarray(e["amodal_bboxes"], np.float64).reshape(-1, 4),
        )
