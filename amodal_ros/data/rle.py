"""COCO run-length encoded masks (the format SAIL-VOS and TAO-Amodal annotations use), in
numpy, without pycocotools. Both the compressed string form and plain count lists."""

from __future__ import annotations

import numpy as np


def decode(rle: dict) -> np.ndarray:
    """{"size": [h, w], "counts": str | bytes | list[int]} -> [h, w] bool."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = list(counts) if isinstance(counts, list) else _counts_from_string(counts)
    if sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h}x{w} = {h * w}")
    values = np.zeros(len(counts), bool)
    values[1::2] = True  # runs alternate, starting with background
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T  # COCO masks run down the columns (Fortran order)


def encode(mask: np.ndarray) -> dict:
    """[h, w] bool -> {"size": [h, w], "counts": str} (pycocotools' compressed form)."""
    flat = np.asarray(mask, bool).T.reshape(-1)
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.r_[0, change, flat.size]
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]  # counts start with a (possibly empty) background run
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _counts_to_string(runs)}


def _counts_from_string(s: str | bytes) -> list[int]:
    data = s.encode() if isinstance(s, str) else bytes(s)
    counts, p = [], 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p == len(data) or not 48 <= data[p] < 112:  # 48 + 6 bits; a cut or foreign byte
                raise ValueError(f"compressed RLE counts are damaged at character {p}")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # sign-extend
        if len(counts) > 2:
            x += counts[-2]  # counts after the second are stored as differences
        counts.append(x)
    return counts


def _counts_to_string(counts: list[int]) -> str:
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)
