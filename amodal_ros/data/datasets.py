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

from amodal_ros.core.errors import InputError
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
    PER_FRAME: tuple[str, ...] = ()  # lists of one entry per frame, beside the masks

    def __init__(self, annotations: str | Path, root: str | Path):
        path = Path(annotations)
        if not path.is_file():
            raise FileNotFoundError(f"annotation file {path} does not exist")
        try:
            entries = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"annotation file {path} is not readable JSON ({err})") from None
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

    def _masks(self, i: int, *keys: str) -> list[np.ndarray]:
        """[T, H, W] bool of each per-frame RLE list `keys` of window `i`; an RLE that does not
        decode, or lists of different lengths (with the paths and boxes), name the window."""
        e = self.entries[i]
        lengths = {k: len(e[k]) for k in (*keys, *self.PER_FRAME)}
        if len(set(lengths.values())) != 1:
            raise InputError(f"{self.path}: window {i} has frames of different counts {lengths}")
        try:
            return [np.stack([decode(self._rle(e, r)) for r in e[k]]) for k in keys]
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"{self.path}: window {i}: {err}") from None

    @staticmethod
    def _rle(entry: dict, rle) -> dict:
        """A COCO RLE as `decode` takes it."""
        return rle


class SailVosWindows(_JsonWindows):
    """`diffusion_vas_sailvos_{train,val}.json`: amodal (`segmentation`) and modal
    (`visible_mask`) COCO RLEs per frame, amodal `bbox`, `image_file_names` under `root`."""

    PER_FRAME = ("image_file_names", "bbox")
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
        modal, amodal = self._masks(i, "visible_mask", "segmentation")
        return AnnotatedWindow(
            object_id=int(e["obj_id"]),
            category_id=int(e["category_id"]),
            image_paths=[self.root / f for f in e["image_file_names"]],
            modal=modal,
            amodal=amodal,
            amodal_boxes=np.asarray(e["bbox"], np.float64).reshape(-1, 4),
        )


class TaoAmodalWindows(_JsonWindows):
    """`diffusion_vas_tao_amodal_val.json`: modal COCO RLEs per frame (`rles`: each its counts
    string, of the window's `height` x `width`, as the reference reads them) and amodal boxes
    (`amodal_bboxes`); evaluation there is AP50 on amodal boxes."""

    PER_FRAME = ("file_names", "amodal_bboxes")
    REQUIRED = (
        "track_id",
        "category_id",
        "file_names",
        "rles",
        "amodal_bboxes",
        "height",
        "width",
    )

    @staticmethod
    def _rle(entry: dict, rle) -> dict:
        """The counts with the window's size; a whole RLE (with its own size) as it is."""
        if isinstance(rle, dict):
            return rle
        return {"counts": rle, "size": [entry["height"], entry["width"]]}

    def __getitem__(self, i: int) -> AnnotatedWindow:
        e = self.entries[i]
        (modal,) = self._masks(i, "rles")
        return AnnotatedWindow(
            object_id=int(e["track_id"]),
            category_id=int(e["category_id"]),
            image_paths=[self.root / f for f in e["file_names"]],
            modal=modal,
            amodal=None,
            amodal_boxes=np.asarray(e["amodal_bboxes"], np.float64).reshape(-1, 4),
        )
